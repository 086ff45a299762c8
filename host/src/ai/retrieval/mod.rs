//! `retrieval` (splai-worker.md §6.5): rank documents against a query by embedding cosine,
//! with metadata filters, over inline documents or a persistent local index.
//!
//! The index and the filters need no ML and are always built; the executor needs the
//! embedding model and exists only with feature `ai`.

pub mod filter;
pub mod index;

#[cfg(feature = "ai")]
mod handler;

#[cfg(feature = "ai")]
pub use handler::Retrieval;
