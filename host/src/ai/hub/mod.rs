//! Downloads from a Hugging Face-compatible model hub into the model cache, in the standard
//! hub cache layout (see [`crate::ai::cache`]), and the `model_download` executor.
//!
//! Written on `ureq` rather than the `hf-hub` crate: the download must be resumable with a
//! byte-level progress callback that can also cancel mid-file, must send the token to the
//! hub's host only (not to the CDN a file redirects to), and must never leave a partial file
//! where a reader would take it for installed. `hf-hub`'s sync API has a progress trait but
//! no way to stop a download from it, and would bring a second HTTP stack (ureq 2).
//!
//! The protocol followed (the hub's, as `huggingface_hub` uses it):
//! - `GET {endpoint}/api/models/{repo}/revision/{rev}` lists the files (`siblings`) and the
//!   commit (`sha`) when the task names no files;
//! - `HEAD {endpoint}/{repo}/resolve/{rev}/{file}` without following redirects gives
//!   `x-repo-commit`, the blob id (`x-linked-etag`, else `etag`) and size
//!   (`x-linked-size`, else `content-length`), and a `Location` for files on a CDN;
//! - `GET` with `Range: bytes=N-` continues `blobs/<etag>.incomplete`; the complete blob is
//!   checked (size; sha256 when the etag is one, as for LFS files), renamed to
//!   `blobs/<etag>` and linked from `snapshots/<commit>/<file>`; `refs/<rev>` and the
//!   completeness record are written only after every file is in place.

mod client;
mod error;
mod handler;
mod pull;

#[cfg(test)]
pub(crate) mod mock;
#[cfg(test)]
mod tests;

pub use client::{FileMeta, HubClient};
pub use error::HubError;
pub use handler::ModelDownload;
pub use pull::{installed, pull, Progress, PullRequest, Pulled};
