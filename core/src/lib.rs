//! astra-core: the pure, deterministic heart of astra-worker.
//!
//! - [`v1`]: the AstraFlow v1 wire dialect (envelope, payloads, strict codec).
//! - [`work`]: dialect-independent task, package and concurrency model.
//! - [`worker`]: the worker session machine (`handle(now, input)` → `poll_action()` / `poll_timeout()`).
//! - [`scheduler`]: a reference scheduler machine as strict as the real one, for tests, the
//!   simulator and the demo.
//!
//! No I/O, no clock, no threads, no ambient randomness: time arrives as an argument and
//! randomness comes from a PRNG seeded at construction.
#![forbid(unsafe_code)]

pub mod frame_counts;
pub(crate) mod id_map;
pub mod rng;
pub mod scheduler;
pub mod secret;
pub mod time;
pub mod v1;
pub mod work;
pub mod worker;

pub use time::{Instant, WallClock};
