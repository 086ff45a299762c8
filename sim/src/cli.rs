//! Command-line parsing for `astra-sim` (hand-rolled; errors are values).

use crate::faults::{FaultSet, UnknownFault};
use std::fmt;

pub const USAGE: &str = "\
usage:
  astra-sim --seed N [--workers N] [--faults all|none|a,b] [--minutes M] [--check-determinism]
  astra-sim --seeds K [--first-seed S] [--workers N] [--faults ...] [--minutes M] [--jobs J]
            [--check-determinism]

  --seed N             run one seed verbosely (exit 1 on a violation)
  --seeds K            run seeds S..S+K on --jobs threads and print a summary table
  --workers N          each seed draws 1..=N workers (default 3)
  --faults LIST        all (default), none, or a comma list of:
                       drop,dup,reorder,delay,reset,partition,sched-restart,crash,
                       slow-exec,fail-exec,skew,ack-race,malformed,packages
  --minutes M          simulated minutes of chaos per seed (default 10)
  --jobs J             threads (default: available cores)
  --trace-len N        events in a failure trace (default 200)
  --check-determinism  run every seed twice and compare action-log hashes
  --debug              print every action of every machine to stderr (one seed)
";

#[derive(Debug, Clone, PartialEq)]
pub struct Args {
    pub seed: Option<u64>,
    pub seeds: Option<u64>,
    pub first_seed: u64,
    pub workers: usize,
    pub faults: FaultSet,
    pub minutes: f64,
    pub jobs: usize,
    pub trace_len: usize,
    pub check_determinism: bool,
    pub debug: bool,
    pub help: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ArgError {
    Missing(String),
    Bad { flag: String, value: String },
    Unknown(String),
    Faults(UnknownFault),
    Conflict,
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgError::Missing(flag) => write!(f, "{flag} needs a value"),
            ArgError::Bad { flag, value } => write!(f, "bad value `{value}` for {flag}"),
            ArgError::Unknown(a) => write!(f, "unknown argument `{a}`"),
            ArgError::Faults(e) => write!(f, "{e}"),
            ArgError::Conflict => write!(f, "give either --seed or --seeds, not both"),
        }
    }
}

impl std::error::Error for ArgError {}

fn num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, ArgError> {
    v.parse().map_err(|_| ArgError::Bad {
        flag: flag.into(),
        value: v.into(),
    })
}

pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, ArgError> {
    let mut a = Args {
        seed: None,
        seeds: None,
        first_seed: 0,
        workers: 3,
        faults: FaultSet::all(),
        minutes: 10.0,
        jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
        trace_len: 200,
        check_determinism: false,
        debug: false,
        help: false,
    };
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or_else(|| ArgError::Missing(flag.clone()));
        match flag.as_str() {
            "--seed" => a.seed = Some(num(&flag, &val()?)?),
            "--seeds" => a.seeds = Some(num(&flag, &val()?)?),
            "--first-seed" => a.first_seed = num(&flag, &val()?)?,
            "--workers" => a.workers = num::<usize>(&flag, &val()?)?.max(1),
            "--faults" => a.faults = FaultSet::parse(&val()?).map_err(ArgError::Faults)?,
            "--minutes" => a.minutes = num(&flag, &val()?)?,
            "--jobs" => a.jobs = num::<usize>(&flag, &val()?)?.max(1),
            "--trace-len" => a.trace_len = num(&flag, &val()?)?,
            "--check-determinism" => a.check_determinism = true,
            "--debug" => a.debug = true,
            "-h" | "--help" => a.help = true,
            _ => return Err(ArgError::Unknown(flag)),
        }
    }
    if a.seed.is_some() && a.seeds.is_some() {
        return Err(ArgError::Conflict);
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Args, ArgError> {
        parse(s.split_whitespace().map(str::to_string))
    }

    #[test]
    fn parses_flags_and_refuses_nonsense() {
        let a = p("--seeds 100 --workers 4 --faults drop,crash --minutes 2.5 --jobs 2").unwrap();
        assert_eq!(a.seeds, Some(100));
        assert_eq!(a.workers, 4);
        assert_eq!(a.minutes, 2.5);
        assert_eq!(a.jobs, 2);
        assert!(matches!(p("--seed x"), Err(ArgError::Bad { .. })));
        assert!(matches!(p("--seed"), Err(ArgError::Missing(_))));
        assert!(matches!(p("--frob"), Err(ArgError::Unknown(_))));
        assert!(matches!(p("--faults nope"), Err(ArgError::Faults(_))));
        assert_eq!(p("--seed 1 --seeds 2"), Err(ArgError::Conflict));
    }
}
