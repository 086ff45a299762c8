//! The tokio driver of astra-worker as a library: the control loop, the reference scheduler
//! server, the metrics listener and the commands of the `astra-worker` binary. Integration
//! tests and benchmarks use it directly.

pub mod cli;
pub mod clock;
pub mod cmd;
pub mod driver;
pub mod http;
pub mod logging;
pub mod refsched;
