//! The message types of the v1 dialect and the direction each travels.

use serde::{Deserialize, Serialize};

/// Every message type the c4bf80a scheduler and its worker exchange (spec §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum FrameType {
    #[serde(rename = "handshake")]
    Handshake,
    #[serde(rename = "register")]
    Register,
    #[serde(rename = "heartbeat")]
    Heartbeat,
    #[serde(rename = "ack")]
    Ack,
    #[serde(rename = "cmd.dispatch")]
    Dispatch,
    #[serde(rename = "result")]
    Result,
    #[serde(rename = "feedback")]
    Feedback,
    #[serde(rename = "command.error")]
    CommandError,
    #[serde(rename = "pkg.event")]
    PkgEvent,
    #[serde(rename = "pkg.install")]
    PkgInstall,
    #[serde(rename = "pkg.uninstall")]
    PkgUninstall,
}

impl FrameType {
    pub const ALL: [FrameType; 11] = [
        FrameType::Handshake,
        FrameType::Register,
        FrameType::Heartbeat,
        FrameType::Ack,
        FrameType::Dispatch,
        FrameType::Result,
        FrameType::Feedback,
        FrameType::CommandError,
        FrameType::PkgEvent,
        FrameType::PkgInstall,
        FrameType::PkgUninstall,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FrameType::Handshake => "handshake",
            FrameType::Register => "register",
            FrameType::Heartbeat => "heartbeat",
            FrameType::Ack => "ack",
            FrameType::Dispatch => "cmd.dispatch",
            FrameType::Result => "result",
            FrameType::Feedback => "feedback",
            FrameType::CommandError => "command.error",
            FrameType::PkgEvent => "pkg.event",
            FrameType::PkgInstall => "pkg.install",
            FrameType::PkgUninstall => "pkg.uninstall",
        }
    }

    /// The type named `s` (exactly the inverse of [`FrameType::as_str`]). A `match` on the
    /// text rather than a scan of [`FrameType::ALL`] comparing each name: every decoded
    /// frame and every simulator trace entry names its type.
    pub fn parse(s: &str) -> Option<FrameType> {
        Some(match s {
            "handshake" => FrameType::Handshake,
            "register" => FrameType::Register,
            "heartbeat" => FrameType::Heartbeat,
            "ack" => FrameType::Ack,
            "cmd.dispatch" => FrameType::Dispatch,
            "result" => FrameType::Result,
            "feedback" => FrameType::Feedback,
            "command.error" => FrameType::CommandError,
            "pkg.event" => FrameType::PkgEvent,
            "pkg.install" => FrameType::PkgInstall,
            "pkg.uninstall" => FrameType::PkgUninstall,
            _ => return None,
        })
    }

    /// True for the types a worker sends to the scheduler.
    pub fn worker_sends(self) -> bool {
        !matches!(
            self,
            FrameType::Dispatch | FrameType::PkgInstall | FrameType::PkgUninstall
        )
    }
}

impl std::fmt::Display for FrameType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::FrameType;

    #[test]
    fn parse_is_the_inverse_of_as_str() {
        for t in FrameType::ALL {
            assert_eq!(FrameType::parse(t.as_str()), Some(t));
            for bad in [
                format!("{} ", t.as_str()),
                t.as_str().to_uppercase(),
                t.as_str()[1..].to_string(),
            ] {
                assert_eq!(FrameType::parse(&bad), None, "{bad:?}");
            }
        }
        assert_eq!(FrameType::parse(""), None);
    }
}
