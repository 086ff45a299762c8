//! The AstraFlow control-plane dialect "v1" (scheduler commit c4bf80a): envelope and payload
//! types, the strict codec, and the builder for outbound envelopes. Everything specific to
//! this dialect's wire lives here; task, package and concurrency logic do not depend on it
//! beyond the payload types they exchange.

pub mod codec;
pub mod envelope;
#[doc(hidden)]
pub mod fast_decode;
pub mod json_out;
pub mod payload_json;
pub mod payloads;
pub mod types;

pub use codec::{decode, decode_light, DecodeError, DecodeErrorKind, Inbound, Light, Recovered};
pub use envelope::{AckField, Envelope, Role, Sender};
pub use payloads::*;
pub use types::FrameType;
