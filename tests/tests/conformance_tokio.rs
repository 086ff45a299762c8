//! The conformance suite against the tokio build (`astra-worker`).

astra_tests::conformance_suite!("astra-worker");
