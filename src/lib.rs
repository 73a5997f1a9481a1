//! ward: a PID 1 for containers.
//!
//! The library holds everything; `main.rs` only parses arguments and calls
//! [`init::run`]. Subsystems:
//! - [`check`]: `ward check TARGET`, the health probe for images without curl.
//! - [`cgroup`]: finding ward's own cgroup, its limits, usage samples and OOM events.
//! - [`cli`]: options, `WARD_*` variables, help text.
//! - [`init`]: starting the child, the event loop that reaps and forwards
//!   signals, and the shutdown sequence.
//! - [`exit`]: every exit code ward can return.
//! - [`log`]: one event per line on stderr.
//! - [`metrics`]: the Prometheus endpoint, CloudWatch EMF lines, and the
//!   small HTTP server and client they need.
//! - [`procs`]: process census from /proc: zombies, who fails to reap them.
//! - [`watch`]: the [`watch::Snapshot`] taken every interval, and warnings.
//! - [`report`]: facts of the run and the exit report.

pub mod cgroup;
pub mod check;
pub mod cli;
pub mod exit;
pub mod init;
pub mod log;
pub mod metrics;
pub mod procs;
pub mod report;
pub mod sigmask;
pub mod signame;
pub mod units;
pub mod watch;
