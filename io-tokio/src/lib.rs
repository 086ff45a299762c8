//! The tokio driver of astra-worker: [`TokioRuntime`], tokio's implementation of the
//! application's runtime seam. The application itself (control loop, reference scheduler,
//! commands, CLI) is `astra_host::app`, shared with the smol build.

pub mod runtime;

pub use astra_host::app;
pub use runtime::TokioRuntime;
