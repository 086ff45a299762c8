//! The fault catalogue and the `--faults all|none|a,b,c` selection. Which selected faults are
//! live in a given seed, and how hard they hit, is decided per seed by the swarm.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// Frames silently lost.
    Drop,
    /// Frames delivered twice.
    Dup,
    /// A frame overtakes earlier ones on its connection.
    Reorder,
    /// A frame (and what queues behind it) arrives seconds late.
    Delay,
    /// The connection dies; both sides see it.
    Reset,
    /// Frames silently dropped for a while; the connection stays "open".
    Partition,
    /// The scheduler process restarts and forgets everything.
    SchedRestart,
    /// A worker process crashes; its durable outbox survives.
    Crash,
    /// Executors take several times longer.
    SlowExec,
    /// Executors fail tasks.
    FailExec,
    /// A worker's timers fire a little late.
    Skew,
    /// The scheduler's ack-registration race (spec §5.1).
    AckRace,
    /// Dispatch text corrupted before delivery.
    Malformed,
    /// `pkg.install` / `pkg.uninstall` pushed to workers.
    Packages,
}

impl Fault {
    pub const ALL: [Fault; 14] = [
        Fault::Drop,
        Fault::Dup,
        Fault::Reorder,
        Fault::Delay,
        Fault::Reset,
        Fault::Partition,
        Fault::SchedRestart,
        Fault::Crash,
        Fault::SlowExec,
        Fault::FailExec,
        Fault::Skew,
        Fault::AckRace,
        Fault::Malformed,
        Fault::Packages,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::Drop => "drop",
            Fault::Dup => "dup",
            Fault::Reorder => "reorder",
            Fault::Delay => "delay",
            Fault::Reset => "reset",
            Fault::Partition => "partition",
            Fault::SchedRestart => "sched-restart",
            Fault::Crash => "crash",
            Fault::SlowExec => "slow-exec",
            Fault::FailExec => "fail-exec",
            Fault::Skew => "skew",
            Fault::AckRace => "ack-race",
            Fault::Malformed => "malformed",
            Fault::Packages => "packages",
        }
    }

    pub fn parse(s: &str) -> Option<Fault> {
        Fault::ALL.into_iter().find(|f| f.name() == s)
    }
}

/// A set of faults as a bit mask (cheap to copy into every seed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultSet(u32);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownFault(pub String);

impl fmt::Display for UnknownFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
        write!(
            f,
            "unknown fault `{}` (known: all, none, {})",
            self.0,
            names.join(", ")
        )
    }
}

impl std::error::Error for UnknownFault {}

impl FaultSet {
    pub fn all() -> Self {
        Fault::ALL.into_iter().fold(FaultSet(0), |s, f| s.with(f))
    }
    pub fn none() -> Self {
        FaultSet(0)
    }
    pub fn with(self, f: Fault) -> Self {
        FaultSet(self.0 | 1 << f as u32)
    }
    pub fn without(self, f: Fault) -> Self {
        FaultSet(self.0 & !(1 << f as u32))
    }
    pub fn has(self, f: Fault) -> bool {
        self.0 & (1 << f as u32) != 0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// `all`, `none`, or a comma-separated list of names.
    pub fn parse(s: &str) -> Result<Self, UnknownFault> {
        match s {
            "all" => return Ok(Self::all()),
            "none" | "" => return Ok(Self::none()),
            _ => {}
        }
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .try_fold(Self::none(), |set, p| {
                Fault::parse(p)
                    .map(|f| set.with(f))
                    .ok_or_else(|| UnknownFault(p.to_string()))
            })
    }
}

impl fmt::Display for FaultSet {
    /// The form `parse` reads back (used in replay commands).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == Self::all() {
            return f.write_str("all");
        }
        if self.is_empty() {
            return f.write_str("none");
        }
        let names: Vec<&str> = Fault::ALL
            .into_iter()
            .filter(|x| self.has(*x))
            .map(|x| x.name())
            .collect();
        f.write_str(&names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_round_trip() {
        assert_eq!(FaultSet::parse("all").unwrap(), FaultSet::all());
        assert!(FaultSet::parse("none").unwrap().is_empty());
        let s = FaultSet::parse("drop,crash").unwrap();
        assert!(s.has(Fault::Drop) && s.has(Fault::Crash) && !s.has(Fault::Dup));
        assert_eq!(FaultSet::parse(&s.to_string()).unwrap(), s);
        assert!(FaultSet::parse("drop,bogus").is_err());
    }
}
