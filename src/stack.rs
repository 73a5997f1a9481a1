//! Room on the main thread's stack: under a small `RLIMIT_STACK` ward runs
//! on a stack of its own.
//!
//! The main thread's stack grows on demand up to the soft `RLIMIT_STACK`.
//! ward's start-up and reaping loop need about 40 KiB of it; tini,
//! dumb-init and catatonit start with 16 KiB. Measured: `ulimit -s 32`
//! (Docker's `--ulimit stack=32768`, both limits) and ward, as PID 1, died
//! of SIGSEGV before its first line, and with it the container. Below
//! [`ENOUGH`], ward maps [`OWN_STACK`] bytes (only the pages it touches
//! are ever resident) and runs there. The limit itself is left alone: the
//! child inherits it as set (raising it would also fail where the hard
//! limit is as small).

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

/// A soft `RLIMIT_STACK` of at least this leaves ward enough room.
const ENOUGH: u64 = 256 * 1024;

/// The stack ward maps for itself under a smaller limit, guard page below.
const OWN_STACK: usize = 1024 * 1024;

/// Whether a soft `RLIMIT_STACK` of `soft` bytes is too small for ward
/// (`RLIM_INFINITY` is not).
pub fn too_small(soft: u64) -> bool {
    soft < ENOUGH
}

/// Runs `f` on the main thread's stack, or on one of ward's own when the
/// soft `RLIMIT_STACK` is [`too_small`] (and a mapping can be had; if not,
/// on the main stack as before). Returns `f`'s result.
pub fn with_room(f: fn() -> u8) -> u8 {
    let mut lim = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: getrlimit fills a struct on the stack.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_STACK, &mut lim) } == 0 {
        lim.rlim_cur
    } else {
        libc::RLIM_INFINITY
    };
    if !too_small(soft) {
        return f();
    }
    on_own_stack(f).unwrap_or_else(f)
}

/// The function [`trampoline`] calls, and its result.
static TASK: AtomicUsize = AtomicUsize::new(0);
static RESULT: AtomicU8 = AtomicU8::new(0);

extern "C" fn trampoline() {
    let task = TASK.load(Ordering::Relaxed);
    // SAFETY: `on_own_stack` stored a `fn() -> u8` there just before.
    let f: fn() -> u8 = unsafe { std::mem::transmute::<usize, fn() -> u8>(task) };
    RESULT.store(f(), Ordering::Relaxed);
}

/// Runs `f` on a freshly mapped stack of [`OWN_STACK`] bytes; `None` when
/// the mapping or its guard page is refused. The mapping stays (the
/// process ends after `f`). For one caller at a time: `f` and its result
/// pass through statics (ward calls it once, from `main`, before any
/// thread exists).
pub fn on_own_stack(f: fn() -> u8) -> Option<u8> {
    let page = 4096;
    // SAFETY: an anonymous private mapping; checked below.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            OWN_STACK,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return None;
    }
    // The lowest page is the guard: an overflow stops with SIGSEGV there
    // instead of writing into whatever is mapped below. Without it, no
    // stack of ward's own.
    // SAFETY: the first page of the mapping just made.
    if unsafe { libc::mprotect(base, page, libc::PROT_NONE) } != 0 {
        // SAFETY: the mapping just made, not used.
        unsafe { libc::munmap(base, OWN_STACK) };
        return None;
    }
    // 16-byte aligned: `call` pushes the return address, leaving the
    // callee's stack as the ABI expects.
    let top = (base as usize + OWN_STACK) & !15;
    TASK.store(f as usize, Ordering::Relaxed);
    switch_and_call(top);
    Some(RESULT.load(Ordering::Relaxed))
}

#[cfg(target_arch = "x86_64")]
fn switch_and_call(top: usize) {
    // SAFETY: `top` is the aligned top of a writable mapping of OWN_STACK
    // bytes. The old stack pointer is kept in r12, which the callee
    // preserves (System V ABI), and put back after the call; every other
    // register the call may change is declared clobbered.
    unsafe {
        std::arch::asm!(
            "mov r12, rsp",
            "mov rsp, {top}",
            "call {f}",
            "mov rsp, r12",
            top = in(reg) top,
            f = in(reg) trampoline as extern "C" fn(),
            out("r12") _,
            clobber_abi("C"),
        );
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn switch_and_call(_top: usize) {
    trampoline();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_usual_limits_leave_room_small_ones_do_not() {
        assert!(!too_small(libc::RLIM_INFINITY));
        assert!(!too_small(8 << 20));
        assert!(!too_small(256 << 10));
        assert!(too_small(32 << 10));
        assert!(too_small(0));
    }

    /// About 300 KiB of stack: room the mapping must have.
    fn deep(n: u32) -> u64 {
        let pad = std::hint::black_box([n as u8; 3000]);
        if n == 0 {
            return u64::from(pad[0]);
        }
        deep(n - 1) + u64::from(pad[7] % 2)
    }

    static SP: AtomicUsize = AtomicUsize::new(0);

    fn on_mapped() -> u8 {
        let here = 0u8;
        SP.store(std::ptr::addr_of!(here) as usize, Ordering::Relaxed);
        std::hint::black_box(deep(100));
        42
    }

    #[test]
    fn a_task_runs_on_the_mapped_stack_and_its_result_comes_back() {
        let outer = 0u8;
        let outer_at = std::ptr::addr_of!(outer) as usize;
        assert_eq!(on_own_stack(on_mapped), Some(42));
        // The task's locals were far from the caller's (on the same stack
        // they would be a few KiB apart): another mapping.
        let inner_at = SP.load(Ordering::Relaxed);
        assert!(
            inner_at.abs_diff(outer_at) > 256 << 10,
            "{inner_at:x} {outer_at:x}"
        );
        // And the caller's stack is usable again after it.
        assert_eq!(std::hint::black_box(deep(3)), 2);
    }
}
