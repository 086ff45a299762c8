//! The conformance suite against the smol build (`astra-worker-smol`).

astra_tests::conformance_suite!("astra-worker-smol");
