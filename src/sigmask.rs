//! The kernel's signal mask, set through the raw syscall: the libc's
//! `sigprocmask` silently leaves out the real-time signals it keeps for
//! itself (musl's 32 to 34, glibc's 32 and 33), and a new thread of
//! glibc's starts with those two unblocked.
//!
//! Owns only mask arithmetic and the one syscall; which signals ward blocks
//! is decided in `init::signals`.

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
}
