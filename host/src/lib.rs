//! astra-host: everything the worker does on its own machine, blocking and independent of
//! any async runtime. Drivers call it from their blocking pools and feed its completions
//! back into the core machine as inputs.

pub mod agent;
pub mod ai;
pub mod app;
pub mod config;
pub mod metrics;
pub mod outbox;
pub mod packages;
pub mod runner;
pub mod sandbox;
