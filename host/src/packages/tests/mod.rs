//! Tests of the package subsystem that span several modules (fixtures built in code, no
//! binary files committed).

mod archive_tests;
mod fixtures;
mod http_tests;
mod install_tests;
mod manifest_tests;
mod store_tests;
