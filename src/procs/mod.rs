//! Process census from `/proc`: who is running, zombies and who fails to reap
//! them, the biggest memory users.
//!
//! Reads only `/proc` (under a root path, so tests use fixture trees); never
//! signals or waits for processes: that is the init's job.
//! - [`stat`]: pure parser of `/proc/PID/stat`.

pub mod stat;
