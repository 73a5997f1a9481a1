//! ward: a PID 1 for containers.
//!
//! The library holds everything; `main.rs` only parses arguments and calls
//! [`init::run`]. Subsystems:
//! - [`cli`]: options, `WARD_*` variables, help text.
//! - [`init`]: starting the child, the event loop that reaps and forwards
//!   signals, and the shutdown sequence.
//! - [`exit`]: every exit code ward can return.
//! - [`log`]: one event per line on stderr.

pub mod cli;
pub mod exit;
pub mod init;
pub mod log;
pub mod procs;
