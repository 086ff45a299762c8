//! Unit tests of the scheduler machine, one file per behaviour area, sharing a small harness.

mod acks;
mod dispatch;
mod e2e;
mod harness;
mod results;
mod sessions;
mod strict;
