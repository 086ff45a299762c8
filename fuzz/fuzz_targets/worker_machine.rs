//! Fuzzes the worker machine with op sequences (frames valid, mutated and arbitrary, ticks,
//! task inputs, disconnects, drain, restore, packages) read from the input bytes, checking
//! after every step the invariants of `core/tests/common/worker_ops.rs` (shared with the
//! proptests and the corpus replay in the normal test run).
#![no_main]

#[path = "../../core/tests/common/worker_ops.rs"]
mod worker_ops;

libfuzzer_sys::fuzz_target!(|data: &[u8]| worker_ops::run_bytes(data));
