//! ward: a PID 1 for containers.
//!
//! The library holds everything; `main.rs` only parses arguments and
//! dispatches. Three threads: the reaping thread ([`init`]), the watch
//! thread ([`watch`]), which does every `/proc` and cgroup read, and the
//! serving thread ([`serve`]); a fourth writes the log when stderr is a
//! file ([`log`]). Subsystems:
//! - [`check`]: `ward check TARGET`, the health probe for images without curl.
//! - [`cgroup`]: finding ward's own cgroup, its limits, usage samples and OOM events.
//! - [`cli`]: the one flag table: options, `WARD_*` variables, help text.
//! - [`init`]: the reaping thread: starting the child, reaping, forwarding
//!   signals, stop policy and the shutdown sequence.
//! - [`exit`]: every exit code ward can return.
//! - [`log`]: one event per line on stderr, never blocking.
//! - [`metrics`]: the Prometheus endpoint, CloudWatch EMF lines, and the
//!   small HTTP server and client they need.
//! - [`procs`]: process census from /proc: zombies, who fails to reap them.
//! - [`watch`]: the watch thread: the [`watch::Snapshot`] taken every
//!   interval, warnings, OOM attribution, and the reaper's /proc errands.
//! - [`report`]: facts of the run and the exit report.
//! - [`serve`]: the serving thread (metrics endpoint, `ward status`).
//! - [`status`]: `ward status`, the doctor: limits, usage, processes, history.
//! - [`signame`], [`sigmask`], [`sched`], [`units`], [`trim`], [`rank`],
//!   [`unix_connect`], [`stack`]: signal names, the raw signal mask, the
//!   threads' scheduling, numbers in words, ward's own code pages (out of its
//!   RSS, or locked under a memory limit), the one sort for short lists, a
//!   unix socket connect with a time limit, a stack of ward's own under a
//!   small `RLIMIT_STACK`.

pub mod cgroup;
pub mod check;
pub mod cli;
pub mod elf;
pub mod exit;
pub mod init;
pub mod log;
pub mod metrics;
pub mod procs;
pub mod rank;
pub mod report;
pub mod sched;
pub mod serve;
pub mod sigmask;
pub mod signame;
pub mod stack;
pub mod status;
pub mod trim;
pub mod units;
pub mod unix_connect;
pub mod watch;
