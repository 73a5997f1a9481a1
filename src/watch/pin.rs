//! Keeps the reaping thread's wake-ups on the CPU a census runs on, for as
//! long as the census runs. Owns the CPU affinity of two threads of ward's
//! own process during a census (the calling watch thread and the reaping
//! thread) and puts both back after it; never touches another process, the
//! child (it was forked long before, and affinity is per thread), or any
//! scheduling policy or priority.
//!
//! Why: on a VM, a wake-up that the kernel places on an idle vCPU waits for
//! the host to resume that halted vCPU, which was measured at 20 ms while
//! the census kept the other vCPU busy. Pinned to the census's CPU, the
//! reaper's wake-up lands on a CPU that is running, and its short slice
//! (`init::sched`) makes it preempt the census there within microseconds.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::log::{self, Level};

/// Words in the mask: 1024 CPUs, the size glibc's `cpu_set_t` uses. A
/// machine with more possible CPUs makes the calls fail with EINVAL, and
/// the census then runs unpinned.
const WORDS: usize = 16;

/// A CPU affinity mask as the kernel reads and writes it (an array of
/// `unsigned long` bits, CPU n at bit n).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct CpuMask([u64; WORDS]);

impl CpuMask {
    /// No CPU.
    pub const fn empty() -> CpuMask {
        CpuMask([0; WORDS])
    }

    /// Every CPU: the kernel narrows it to the CPUs the cpuset allows.
    pub const fn all() -> CpuMask {
        CpuMask([u64::MAX; WORDS])
    }

    /// Only `cpu` (`None` past the mask's size).
    pub fn only(cpu: usize) -> Option<CpuMask> {
        let mut m = CpuMask::empty();
        *m.0.get_mut(cpu / 64)? = 1 << (cpu % 64);
        Some(m)
    }

    /// `cpu` is in the mask.
    pub fn contains(&self, cpu: usize) -> bool {
        self.0
            .get(cpu / 64)
            .is_some_and(|w| w & (1 << (cpu % 64)) != 0)
    }

    /// How many CPUs the mask holds.
    pub fn count(&self) -> u32 {
        self.0.iter().map(|w| w.count_ones()).sum()
    }
}

/// The CPU to pin both threads to for a census, or `None` to leave them
/// be: the watch thread's CPU when both threads may run there and the
/// reaper may run elsewhere too (with one CPU allowed, its wake-ups have
/// nowhere else to go already).
pub fn pin_target(cpu: Option<usize>, watch: &CpuMask, reaper: &CpuMask) -> Option<usize> {
    let cpu = cpu?;
    (reaper.count() > 1 && watch.contains(cpu) && reaper.contains(cpu)).then_some(cpu)
}

/// The masks to put back when a census ends, in order (reaper first, so its
/// next wake-up may go anywhere again). `restored` says whether writing the
/// saved mask worked; where it did not (a cpuset shrank during the census
/// and no saved CPU is left), every CPU, which the kernel narrows to the
/// cpuset's.
pub fn fallback(restored: bool) -> Option<CpuMask> {
    (!restored).then(CpuMask::all)
}

/// Both threads pinned to the census's CPU; dropping it puts their masks
/// back. Never fails a census: whatever the kernel refuses leaves the
/// threads where they were, with one debug line per process.
#[derive(Debug)]
pub struct CensusPin {
    reaper: libc::pid_t,
    reaper_mask: CpuMask,
    watch_mask: CpuMask,
    /// This pin set [`PINNED`] (not so in tests, which pin threads of
    /// their own).
    owns_flag: bool,
}

/// A pin is in force (the watch thread is the only one that censuses, but
/// nothing else keeps a second from nesting).
static PINNED: AtomicBool = AtomicBool::new(false);

impl CensusPin {
    /// Pins the calling thread and the reaping thread (the main thread: its
    /// tid is the pid) to the CPU the caller runs on. `None` on the reaping
    /// thread itself, where there is nothing to keep apart, while another
    /// pin is in force (a second one would save the first's masks and put
    /// them back for good), or when the kernel refuses or the masks make it
    /// pointless.
    pub fn start() -> Option<CensusPin> {
        // SAFETY: getpid and gettid cannot fail. gettid by its system call:
        // glibc's wrapper is a null weak symbol in ward's static build.
        let (reaper, me) = unsafe { (libc::getpid(), libc::syscall(libc::SYS_gettid) as i32) };
        if reaper == me || PINNED.swap(true, Ordering::Acquire) {
            return None;
        }
        let pin = CensusPin::pin(reaper);
        if pin.is_none() {
            PINNED.store(false, Ordering::Release);
        }
        pin.map(|mut pin| {
            pin.owns_flag = true;
            pin
        })
    }

    /// Pins the calling thread and thread `reaper` of this process.
    fn pin(reaper: libc::pid_t) -> Option<CensusPin> {
        let watch_mask = get_affinity(0).map_err(|e| refused("read", e)).ok()?;
        let reaper_mask = get_affinity(reaper).map_err(|e| refused("read", e)).ok()?;
        let cpu = current_cpu();
        let target = CpuMask::only(pin_target(cpu, &watch_mask, &reaper_mask)?)?;
        // The watch thread first: a reaper pinned to a CPU the census then
        // left (the load balancer may move it at any moment) would wait for
        // that CPU to wake, which is what this avoids.
        if let Err(e) = set_affinity(0, &target) {
            refused("pin", e);
            return None;
        }
        if let Err(e) = set_affinity(reaper, &target) {
            refused("pin", e);
            put_back(0, &watch_mask);
            return None;
        }
        Some(CensusPin {
            reaper,
            reaper_mask,
            watch_mask,
            owns_flag: false,
        })
    }
}

impl Drop for CensusPin {
    fn drop(&mut self) {
        put_back(self.reaper, &self.reaper_mask);
        put_back(0, &self.watch_mask);
        if self.owns_flag {
            PINNED.store(false, Ordering::Release);
        }
    }
}

/// Writes `saved` back to thread `tid` (0: the caller), or every CPU where
/// the kernel refuses it.
fn put_back(tid: libc::pid_t, saved: &CpuMask) {
    let first = set_affinity(tid, saved);
    if let Some(all) = fallback(first.is_ok())
        && let Err(e) = set_affinity(tid, &all)
    {
        refused("restore", e);
    }
}

/// One debug line per process when the kernel refuses a step: the census
/// runs as before, only without the pin.
fn refused(step: &str, e: std::io::Error) {
    static SAID: AtomicBool = AtomicBool::new(false);
    if !SAID.swap(true, Ordering::Relaxed) {
        log::event(
            Level::Debug,
            "census_pin_refused",
            &format!(
                "could not {step} a CPU affinity mask ({e}): the census runs unpinned (logged once)"
            ),
            &[],
        );
    }
}

/// The CPU the calling thread runs on, by the system call: one wrapper
/// less to trust in the static build (see `gettid` above).
fn current_cpu() -> Option<usize> {
    let mut cpu: libc::c_uint = 0;
    // SAFETY: getcpu writes one unsigned int; the node and cache pointers
    // may be null.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_getcpu,
            &mut cpu as *mut libc::c_uint,
            std::ptr::null_mut::<libc::c_uint>(),
            std::ptr::null_mut::<libc::c_void>(),
        )
    };
    (rc == 0).then_some(cpu as usize)
}

fn get_affinity(tid: libc::pid_t) -> std::io::Result<CpuMask> {
    let mut m = CpuMask::empty();
    // SAFETY: sched_getaffinity writes at most the given size into `m`.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_sched_getaffinity,
            tid,
            std::mem::size_of::<CpuMask>(),
            &mut m as *mut CpuMask,
        )
    };
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(m)
    }
}

fn set_affinity(tid: libc::pid_t, m: &CpuMask) -> std::io::Result<()> {
    // SAFETY: sched_setaffinity reads the given size from `m`.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_sched_setaffinity,
            tid,
            std::mem::size_of::<CpuMask>(),
            m as *const CpuMask,
        )
    };
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(cpus: &[usize]) -> CpuMask {
        let mut m = CpuMask::empty();
        for &c in cpus {
            m.0[c / 64] |= 1 << (c % 64);
        }
        m
    }

    #[test]
    fn masks_hold_what_was_put_in() {
        let m = mask(&[0, 63, 64, 1023]);
        assert!(m.contains(0) && m.contains(63) && m.contains(64) && m.contains(1023));
        assert!(!m.contains(1) && !m.contains(1024));
        assert_eq!(m.count(), 4);
        assert_eq!(CpuMask::only(65), Some(mask(&[65])));
        assert_eq!(CpuMask::only(1024), None);
        assert_eq!(CpuMask::all().count(), 1024);
    }

    #[test]
    fn pins_to_the_census_cpu_where_both_may_run() {
        let two = mask(&[0, 1]);
        assert_eq!(pin_target(Some(1), &two, &two), Some(1));
        assert_eq!(pin_target(Some(0), &two, &two), Some(0));
    }

    #[test]
    fn leaves_things_be_where_a_pin_gains_nothing_or_breaks_a_mask() {
        let two = mask(&[0, 1]);
        // CPU unknown.
        assert_eq!(pin_target(None, &two, &two), None);
        // The reaper may run on one CPU only: nowhere else to wake.
        assert_eq!(pin_target(Some(0), &two, &mask(&[0])), None);
        // The reaper may not run on the census's CPU (a mask set from
        // outside): it keeps its own.
        assert_eq!(pin_target(Some(2), &mask(&[2, 3]), &two), None);
        // A stale CPU number outside the watch thread's own mask.
        assert_eq!(pin_target(Some(3), &two, &mask(&[0, 1, 3])), None);
    }

    #[test]
    fn a_refused_restore_falls_back_to_every_cpu() {
        assert_eq!(fallback(true), None);
        assert_eq!(fallback(false), Some(CpuMask::all()));
    }

    #[test]
    fn pins_both_threads_and_puts_their_masks_back() {
        // A stand-in for the reaping thread: a thread of this process that
        // waits (pinning the test harness's main thread would race with
        // other tests that census).
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let reaper = std::thread::spawn(move || {
            // SAFETY: gettid cannot fail.
            tx.send(unsafe { libc::syscall(libc::SYS_gettid) } as i32)
                .unwrap();
            let _ = done_rx.recv();
        });
        let tid = rx.recv().unwrap();
        let reaper_before = get_affinity(tid).unwrap();
        let before = get_affinity(0).unwrap();
        let pin = CensusPin::pin(tid);
        if before.count() < 2 || reaper_before.count() < 2 {
            assert!(pin.is_none(), "one CPU: nothing to pin");
        } else {
            let pinned = pin.expect("pinned with two CPUs allowed");
            let (w, r) = (get_affinity(0).unwrap(), get_affinity(tid).unwrap());
            assert_eq!(w.count(), 1);
            assert_eq!(w, r, "both on the census's CPU");
            drop(pinned);
            assert_eq!(get_affinity(0).unwrap(), before);
            assert_eq!(get_affinity(tid).unwrap(), reaper_before);
        }
        done_tx.send(()).unwrap();
        reaper.join().unwrap();
    }

    #[test]
    fn the_reaping_thread_itself_is_never_pinned() {
        // The census runs on the reaping thread only before the watch
        // thread starts; a child process's main thread stands in for it.
        // SAFETY: fork in a test process; the child calls only what it
        // needs and leaves with _exit, never returning into the harness.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork");
        if pid == 0 {
            let code = if CensusPin::start().is_none() { 0 } else { 1 };
            // SAFETY: leaving the forked child without unwinding.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waiting for our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    }
}
