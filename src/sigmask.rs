//! The kernel's signal mask, set through the raw syscall: the libc's
//! `sigprocmask` silently leaves out the real-time signals it keeps for
//! itself (musl's 32 to 34, glibc's 32 and 33), and a new thread of
//! glibc's starts with those two unblocked.
//!
//! Owns mask arithmetic, the one syscall, and starting a thread whose first
//! act is to block everything; which signals ward blocks is decided in
//! `init::signals`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The highest signal number on Linux.
pub const SIG_MAX: i32 = 64;
/// The signal the watch thread sends the reaping thread (with `tgkill`) to
/// say an observation waits. SIGURG: its default action is to do nothing,
/// and containers' inits and runtimes do not use it for stopping. One sent
/// to the container from outside is still forwarded: the reaper knows its
/// own wake-up by sender and code.
pub const WAKE_SIGNAL: i32 = libc::SIGURG;
/// Size of the kernel's signal set (64 signals).
pub const KERNEL_SIGSET_BYTES: usize = 8;

/// A sigset_t holding exactly `signals`, built bit by bit: the libc's
/// sigaddset refuses its own real-time signals, the kernel does not.
pub fn kernel_sigset(signals: &[i32]) -> libc::sigset_t {
    let mut bits: u64 = 0;
    for &sig in signals {
        if (1..=SIG_MAX).contains(&sig) {
            bits |= 1u64 << (sig - 1);
        }
    }
    // SAFETY: sigset_t is plain data; the kernel reads its first 8 bytes as a
    // bit mask of signals 1..=64, bit N-1 for signal N.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    unsafe { std::ptr::write_unaligned((&mut set as *mut libc::sigset_t).cast::<u64>(), bits) };
    set
}

/// Blocks `set` in the calling thread; returns the mask it had before.
pub fn block(set: &libc::sigset_t) -> std::io::Result<libc::sigset_t> {
    // SAFETY: sigset_t is plain data.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers; the kernel's sigset is 8 bytes.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_BLOCK,
            set,
            &mut old,
            KERNEL_SIGSET_BYTES,
        )
    };
    if rc == 0 {
        Ok(old)
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Sets the calling thread's mask to `set` (one [`block`] returned).
pub fn set(set: &libc::sigset_t) -> std::io::Result<()> {
    // SAFETY: a valid pointer; the kernel's sigset is 8 bytes.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            set,
            std::ptr::null_mut::<libc::sigset_t>(),
            KERNEL_SIGSET_BYTES,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Blocks every signal the kernel lets a thread block, 32 to 34 included.
/// A second thread calls this first thing, so every signal sent to ward
/// stays pending for the reaping thread's signalfd.
pub fn block_all() -> std::io::Result<()> {
    let all: Vec<i32> = (1..=SIG_MAX).collect();
    block(&kernel_sigset(&all)).map(|_| ())
}

/// How long [`spawn_blocked`] waits for the new thread's first act.
pub const BLOCKED_WAIT: Duration = Duration::from_secs(1);

/// Set by the first [`spawn_blocked`].
static STARTED_ONE: AtomicBool = AtomicBool::new(false);

/// Starts a thread that calls [`block_all`] before `f`. The `bool` is false
/// when the start waited for that first act and gave up after
/// [`BLOCKED_WAIT`] (the thread runs on all the same).
///
/// Built against musl, the process's first thread start waits for it.
/// musl's first `pthread_create` starts the new thread with 33 and 34
/// unblocked (see `init::signals::LIBC_OWN`), and a 34 the kernel hands it
/// before its first act is discarded. ward starts its threads before the
/// main child, so the wait keeps that stretch before the child runs: no 34
/// sent once the application is up can fall in it (measured: 1 in 100
/// `kill -34` sent on the child's first line was lost with six busy loops
/// on two cores, while the watch thread waited for a CPU). A later start
/// inherits its creator's mask with 34 blocked and does not wait; neither
/// does any start with glibc, whose new threads hold only its own 32 and 33
/// unblocked, with its handlers. A start that waits blocks 33 and 34 in the
/// calling thread first: musl's first call unblocked them there too.
pub fn spawn_blocked<F, T>(
    builder: std::thread::Builder,
    f: F,
) -> std::io::Result<(std::thread::JoinHandle<T>, bool)>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let first = !STARTED_ONE.swap(true, Ordering::AcqRel);
    spawn_masked(builder, f, first && cfg!(target_env = "musl"))
}

/// [`spawn_blocked`], waiting for the first act when `wait`.
fn spawn_masked<F, T>(
    builder: std::thread::Builder,
    f: F,
    wait: bool,
) -> std::io::Result<(std::thread::JoinHandle<T>, bool)>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let done = Arc::new(AtomicBool::new(false));
    let theirs = done.clone();
    let waiter = wait.then(std::thread::current);
    let handle = builder.spawn(move || {
        let _ = block_all();
        theirs.store(true, Ordering::Release);
        drop(theirs);
        if let Some(w) = waiter {
            w.unpark();
        }
        f()
    })?;
    if !wait {
        return Ok((handle, true));
    }
    // musl's first start unblocked its 33 and 34 in this thread too: block
    // them before waiting. For a signal sent to ward's pid the kernel looks
    // at the first thread's mask to decide whether it is ignored, so while
    // that thread held them unblocked a 34 was discarded at the send.
    let _ = block(&kernel_sigset(&[33, 34]));
    let deadline = Instant::now() + BLOCKED_WAIT;
    loop {
        if done.load(Ordering::Acquire) {
            return Ok((handle, true));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok((handle, false));
        }
        std::thread::park_timeout(left);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_sigset_holds_32_and_33() {
        let set = kernel_sigset(&[1, 32, 33, 64]);
        // SAFETY: reading the first 8 bytes of a sigset_t we built.
        let bits =
            unsafe { std::ptr::read_unaligned((&set as *const libc::sigset_t).cast::<u64>()) };
        assert_eq!(bits, 1 | (1 << 31) | (1 << 32) | (1 << 63));
    }

    /// The thread named `name`'s blocked set, from /proc.
    fn blocked_of(name: &str) -> Option<u64> {
        std::fs::read_dir("/proc/self/task")
            .ok()?
            .flatten()
            .find_map(|t| {
                let comm = std::fs::read_to_string(t.path().join("comm")).ok()?;
                if comm.trim_end() != name {
                    return None;
                }
                let status = std::fs::read_to_string(t.path().join("status")).ok()?;
                let blk = status.lines().find_map(|l| l.strip_prefix("SigBlk:"))?;
                u64::from_str_radix(blk.trim(), 16).ok()
            })
    }

    #[test]
    fn a_start_that_waits_returns_once_the_thread_has_blocked_everything() {
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let (handle, blocked) = spawn_masked(
            std::thread::Builder::new().name("sigmask-test".into()),
            move || wait.recv().is_ok(),
            true,
        )
        .unwrap();
        assert!(blocked);
        // Before the thread's own work has begun: its first act is done.
        let mask = blocked_of("sigmask-test").expect("the new thread in /proc");
        for sig in [1, 15, 33, 34, 64] {
            assert_eq!(mask >> (sig - 1) & 1, 1, "signal {sig} in {mask:x}");
        }
        go.send(()).unwrap();
        assert!(handle.join().unwrap());
    }
}
