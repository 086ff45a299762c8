//! Helpers shared by astra-host integration tests.

pub mod ai;
