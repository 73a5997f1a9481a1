//! ward's threads' places in the CPU scheduler.
//!
//! - The reaping thread asks the kernel for a short time slice, so that
//!   when it wakes on a busy CPU (a census on the watch thread, a fork storm
//!   in the container) it runs first. It needs a few microseconds per
//!   signal or reap, so it takes nothing from anyone.
//! - The watch thread takes the batch policy: the same share of the CPU,
//!   but its wake-ups never preempt the thread running (the reaper, or the
//!   application's). Its looks wait for the next free moment; at the
//!   child's start its first look used to push the reaper off its CPU while
//!   the other CPU sat idle. The serving thread takes it too.
//!
//! Owns one scheduler call per thread, for the calling thread only; never
//! changes a nice value, and never applies to the child (called after the
//! fork, and the setting is per thread).

/// The slice asked for: the kernel's smallest (0.1 ms). The default grows
/// with the number of CPUs (1.4 ms measured on 2 cores); it is about how
/// long a woken thread may wait behind another that just started its slice.
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

/// The attributes that keep `nice` and the normal policy and ask for a
/// `slice_ns` slice (kernels before 6.12 ignore the runtime for this policy).
pub fn short_slice_attr(nice: i32, slice_ns: u64) -> SchedAttr {
    SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy: libc::SCHED_OTHER as u32,
        nice,
        runtime: slice_ns,
        ..SchedAttr::default()
    }
}

/// Asks for the short slice for the calling thread, keeping its nice value.
/// Fails where the kernel or a seccomp filter refuses; ward works the same
/// without it, only a little later under load.
pub fn request_short_slice() -> std::io::Result<()> {
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
    let attr = short_slice_attr(nice, SLICE_NS);
    // SAFETY: sched_setattr(0 = this thread, a valid sched_attr, flags 0).
    let rc = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Moves the calling thread to the batch policy (`sched_setscheduler`
/// keeps its nice value). Fails only where a seccomp filter refuses; the
/// thread then keeps the normal policy.
pub fn request_batch() -> std::io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread; a valid sched_param.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_attr_is_the_kernels_size_and_keeps_nice() {
        assert_eq!(std::mem::size_of::<SchedAttr>(), 56);
        let a = short_slice_attr(5, SLICE_NS);
        assert_eq!(a.size, 56);
        assert_eq!(a.policy, 0);
        assert_eq!(a.nice, 5);
        assert_eq!(a.runtime, 100_000);
        assert_eq!((a.flags, a.priority, a.deadline, a.period), (0, 0, 0, 0));
    }

    #[test]
    fn a_thread_may_take_the_batch_policy_and_keeps_its_nice_value() {
        std::thread::spawn(|| {
            // SAFETY: raising this thread's own nice value needs no privilege.
            unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 4) };
            request_batch().expect("sched_setscheduler for the calling thread");
            // SAFETY: both ask about the calling thread.
            unsafe {
                assert_eq!(libc::sched_getscheduler(0), libc::SCHED_BATCH);
                assert_eq!(libc::getpriority(libc::PRIO_PROCESS, 0), 4);
            }
        })
        .join()
        .unwrap();
        // The test's own thread is untouched: the policy is per thread.
        // SAFETY: asks about the calling thread.
        assert_eq!(unsafe { libc::sched_getscheduler(0) }, libc::SCHED_OTHER);
    }

    #[test]
    fn a_thread_may_ask_for_it_and_keeps_its_nice_value() {
        // On a thread of its own: the setting is per thread.
        std::thread::spawn(|| {
            // SAFETY: raising this thread's own nice value needs no privilege.
            unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 3) };
            request_short_slice().expect("sched_setattr for the calling thread");
            // SAFETY: getpriority for the calling thread.
            assert_eq!(unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }, 3);
        })
        .join()
        .unwrap();
    }
}
