//! Helpers shared by the integration tests; each test binary picks what it uses.

// Each integration test is its own crate and uses only part of this module.
#![allow(dead_code)]

pub mod docker;
