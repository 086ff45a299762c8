//! The worker session machine: handshake, registration, heartbeats, acks and retries,
//! dispatch admission, the durable outbox protocol, package lifecycle and drain.
//!
//! Contract (quinn-proto / str0m style): call [`Worker::handle`] with the current time and
//! one input, drain [`Worker::poll_action`] until `None`, then sleep until
//! [`Worker::poll_timeout`] and feed [`Input::Tick`].

pub mod config;
pub mod io;

pub use config::{DuplicatePolicy, WorkerConfig};
pub use io::*;
