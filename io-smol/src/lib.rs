//! The smol driver of astra-worker: [`SmolRuntime`], smol's implementation of the
//! application's runtime seam. The application itself (control loop, reference scheduler,
//! commands, CLI) is `astra_host::app`, shared with the tokio build.

pub mod runtime;

pub use astra_host::app;
pub use runtime::SmolRuntime;
