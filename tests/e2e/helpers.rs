//! The test harness lives in the crate's library (`tests/harness.rs`), shared with `coper-loadgen`.

pub use coper_e2e::harness::*;
