//! Packages on this worker (spec §7): the `manifest.json` model, the store under
//! `packages_dir` and its inventory, safe archive extraction, and install / uninstall.
//!
//! Typical use by the driver:
//! - at start: `PackageStore::open(packages_dir)?`, then `store.inventory()` for the core's
//!   `SetInventory`;
//! - per dispatch: `store.resolve(&handler_key)` gives the package directory and the
//!   [`HandlerSpec`] (runtime, entrypoint, config);
//! - per `PackageOp`: [`run_op`] on a blocking thread, then `store.inventory()` for
//!   `PackageOpDone`.

pub mod archive;
pub mod handlers;
pub mod install;
pub mod manifest;
pub mod names;
pub mod relpath;
pub mod source;
pub mod store;
mod swap;

#[cfg(test)]
mod tests;

pub use archive::{detect_format, extract, ArchiveError, ArchiveFormat, ExtractLimits};
pub use handlers::{resolve_entrypoint, Entrypoint, HandlerSpec, Runtime};
pub use install::{install, run_op, uninstall, InstallError, InstallLimits, OpOutcome};
pub use manifest::{Manifest, ManifestError, MAX_MANIFEST_BYTES};
pub use source::{FetchError, FetchLimits, Source};
pub use store::{InstalledPackage, PackageStore, StoreError};
