//! ward's threads' places in the CPU scheduler.
//!
//! - The reaping thread keeps the kernel's default slice, and asks for the
//!   shortest one (0.1 ms) only during a burst of exits: in a fork storm it
//!   wakes on CPUs busy with the storm's processes, and a shorter slice
//!   than theirs lets it run first. Outside a burst a short slice made each
//!   forwarded signal's wake-up preempt its sender, which then had to run
//!   again before the CPU could idle, and the child's wake-up went to the
//!   other CPU: a slower round trip for nothing.
//! - The watch thread takes the batch policy with the kernel's default
//!   slice: the same share of the CPU, and its wake-ups never preempt the
//!   thread running (the reaper, or the application's). The serving thread
//!   takes the same. Not a long slice: the scheduler (EEVDF, 6.6+) picks
//!   the earliest virtual deadline, a slice past the thread's start, so a
//!   100 ms slice put the watch behind every busy thread in a group short
//!   of CPU until each had run about that long: with 44 busy threads at
//!   0.2 cores no sample for 9 s, then none for 12 (the twenty-sixth
//!   round's review).
//!
//! Owns the scheduler calls for the calling thread only; never changes a
//! nice value, and never applies to the child (called after the fork, and
//! the setting is per thread).

/// The reaping thread's slice in a burst: the kernel's smallest (0.1 ms).
/// The default grows with the number of CPUs (1.4 ms measured on 2 cores);
/// it is about how long a woken thread may wait behind another that just
/// started its slice.
pub const SLICE_NS: u64 = 100_000;

/// `struct sched_attr` as the kernel reads it (SCHED_ATTR_SIZE_VER0 plus the
/// two utilisation clamps, 56 bytes).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
    util_min: u32,
    util_max: u32,
}

/// The attributes for a fair `policy` that keep `nice` and ask for a
/// `slice_ns` slice; 0 is the kernel's default (kernels before 6.12 ignore
/// the runtime for these policies).
pub fn slice_attr(policy: i32, nice: i32, slice_ns: u64) -> SchedAttr {
    SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy: policy as u32,
        nice,
        runtime: slice_ns,
        ..SchedAttr::default()
    }
}

/// `sched_setattr` for the calling thread with `policy` and `slice_ns`,
/// keeping its nice value.
fn set_attr(policy: i32, slice_ns: u64) -> std::io::Result<()> {
    // SAFETY: getpriority for the calling thread. -1 is also a valid nice,
    // so errno tells failure apart.
    let nice = unsafe {
        *libc::__errno_location() = 0;
        let n = libc::getpriority(libc::PRIO_PROCESS, 0);
        if n == -1 && *libc::__errno_location() != 0 {
            return Err(std::io::Error::last_os_error());
        }
        n
    };
    let attr = slice_attr(policy, nice, slice_ns);
    // SAFETY: sched_setattr(0 = this thread, a valid sched_attr, flags 0).
    let rc = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Asks for the short slice for the calling thread (`short`), or gives it
/// back for the kernel's default, keeping its nice value. Fails where the
/// kernel or a seccomp filter refuses; ward works the same without it,
/// only a little later under load.
pub fn request_short_slice(short: bool) -> std::io::Result<()> {
    set_attr(libc::SCHED_OTHER, if short { SLICE_NS } else { 0 })
}

/// Moves the calling thread to the batch policy, keeping its nice value
/// and the default slice. Fails only where a seccomp filter refuses it;
/// the thread then keeps the normal policy.
///
/// The system call itself: musl's `sched_setscheduler` always fails with
/// ENOSYS (POSIX means a process by it, Linux a thread).
pub fn request_background() -> std::io::Result<()> {
    // `struct sched_param` as the kernel reads it: one int.
    let priority: libc::c_int = 0;
    // SAFETY: tid 0 is the calling thread; the kernel reads one int.
    if unsafe {
        libc::syscall(
            libc::SYS_sched_setscheduler,
            0,
            libc::SCHED_BATCH,
            &priority as *const libc::c_int,
        )
    } == 0
    {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The calling thread's slice as the kernel reports it (`se.slice` in
    /// its `sched` file), where the kernel has custom slices and the file.
    fn own_slice() -> Option<u64> {
        // SAFETY: gettid cannot fail.
        let tid = unsafe { libc::gettid() };
        let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/sched")).ok()?;
        let line = text.lines().find(|l| l.starts_with("se.slice"))?;
        line.rsplit(' ').next()?.parse().ok()
    }

    #[test]
    fn the_attr_is_the_kernels_size_and_keeps_nice() {
        assert_eq!(std::mem::size_of::<SchedAttr>(), 56);
        let a = slice_attr(libc::SCHED_BATCH, 5, SLICE_NS);
        assert_eq!(a.size, 56);
        assert_eq!(a.policy, 3);
        assert_eq!(a.nice, 5);
        assert_eq!(a.runtime, 100_000);
        assert_eq!((a.flags, a.priority, a.deadline, a.period), (0, 0, 0, 0));
        assert_eq!(slice_attr(libc::SCHED_OTHER, 0, 0).policy, 0);
    }

    #[test]
    fn a_thread_may_take_the_background_place_and_keeps_its_nice_value() {
        std::thread::spawn(|| {
            let before = own_slice();
            // SAFETY: raising this thread's own nice value needs no privilege.
            unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 4) };
            request_background().expect("sched_setscheduler for the calling thread");
            // SAFETY: both ask about the calling thread.
            unsafe {
                assert_eq!(
                    libc::syscall(libc::SYS_sched_getscheduler, 0) as libc::c_int,
                    libc::SCHED_BATCH
                );
                assert_eq!(libc::getpriority(libc::PRIO_PROCESS, 0), 4);
            }
            // The default slice stays: a long one starves the thread in a
            // busy group (see the module's words).
            assert_eq!(own_slice(), before, "se.slice");
        })
        .join()
        .unwrap();
        // The test's own thread is untouched: the policy is per thread.
        // SAFETY: asks about the calling thread.
        assert_eq!(
            unsafe { libc::syscall(libc::SYS_sched_getscheduler, 0) as libc::c_int },
            libc::SCHED_OTHER
        );
    }

    #[test]
    fn the_short_slice_is_taken_and_given_back_keeping_nice() {
        // On a thread of its own: the setting is per thread.
        std::thread::spawn(|| {
            let default = own_slice();
            // SAFETY: raising this thread's own nice value needs no privilege.
            unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 3) };
            request_short_slice(true).expect("sched_setattr for the calling thread");
            let short = own_slice();
            request_short_slice(false).expect("sched_setattr for the calling thread");
            // SAFETY: getpriority for the calling thread.
            assert_eq!(unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }, 3);
            match (default, short) {
                (Some(d), Some(s)) if d != s => {
                    assert_eq!(s, SLICE_NS);
                    assert_eq!(own_slice(), Some(d), "the default slice back");
                }
                // Straight to fd 2: libtest captures `eprintln!` of a
                // passing test, and a skip must not be silent.
                other => {
                    use std::io::Write as _;
                    let _ = std::io::stderr().write_all(
                        format!("SKIPPED the slice check: se.slice {other:?}\n").as_bytes(),
                    );
                }
            }
        })
        .join()
        .unwrap();
    }
}
