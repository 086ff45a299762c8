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

    pub fn parse(s: &str) -> Option<FrameType> {
        FrameType::ALL.into_iter().find(|t| t.as_str() == s)
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
