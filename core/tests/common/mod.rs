//! Helpers shared by several integration tests (and, by path, by the fuzz targets).
pub mod differential_check;
pub mod frame_check;
pub mod worker_ops;
