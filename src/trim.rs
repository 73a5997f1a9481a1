//! ward's own memory: its code pages, and (when built against glibc, for
//! the host target) glibc's heap and per-thread malloc cache.
//!
//! Code pages, two ways:
//! - **Trimmed** (no memory limit): the kernel maps a file's pages 64 KiB
//!   around each page fault ("fault-around"), so a short start-up leaves
//!   nearly all of ward's code and read-only data resident, and all of it
//!   counts in the RSS the OOM killer ranks processes by (measured: 1.2 MiB
//!   of 1.7 MiB VmRSS was code). Once the child runs, ward drops those pages
//!   from its page tables again after each watch sample; what the loop uses
//!   next comes back on first use, 64 KiB at a time (`MADV_RANDOM` stops
//!   read-ahead from the file, not fault-around among cached pages), which
//!   is why the linker lays the loop's functions out together
//!   (`link/symbol-order.txt`).
//! - **Locked** (under a cgroup memory limit): a code page ward has not
//!   touched for a while is page cache, which the group's reclaim takes
//!   first. After an OOM kill that freed nothing (a group full of tmpfs),
//!   ward's next instruction on such a page reads it back in, charged to the
//!   full group, and the kernel OOM-kills again ('ward-watch invoked
//!   oom-killer', `filemap_fault`): 2 or 3 kills in 5 of 5 runs with a cold
//!   binary. Locked pages are never reclaimed, so ward's report needs no
//!   memory the group does not have. The unwind tables stay out (nothing
//!   reads them: panics abort), and so does what only a backtrace runs
//!   ([`NOT_LOCKED`]). Once locked, trims are no-ops.
//!
//! The lock takes the writable segments too (RELRO, `.data`, `.bss`): a page
//! of them that was never written is page cache as well. In a static build
//! without relocations nothing writes RELRO, so its vtables and GOT were read
//! back in at the limit after a kill ('ward-watch invoked oom-killer' in
//! `core::fmt::write`, reading a vtable): 3 of 10 cold runs. Locking a
//! private writable page makes it ward's own copy (musl; glibc write-protects
//! RELRO first, whose pages then stay locked page cache); 4 pages in the
//! release build.
//!
//! A trim touches only the read-only segments (headers, `.rodata`,
//! `.eh_frame`, `.text`): they are never written, so dropping them loses
//! nothing (the file still has them). Relocated data is left alone.
//!
//! The heap, the other way round: with glibc, kept resident up to a little
//! above what is in use, so that ward's steady state needs no new page
//! ([`keep_heap_resident`]). musl's malloc, that of the shipped build, maps
//! and unmaps its groups of blocks as they fill and empty: there is no heap
//! to keep, and a storm may move ward's anonymous memory by a page either
//! way (`tests/heap_steady.rs`).

use std::ops::Range;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

/// [`CODE`]: nobody is changing the code pages' state, and they are not locked.
const FREE: u8 = 0;
/// [`CODE`]: a thread is trimming or locking them right now.
const BUSY: u8 = 1;
/// [`CODE`]: locked; trims do nothing.
const LOCKED: u8 = 2;
/// The code pages' state, shared by the three threads: a trim that finds it
/// taken skips (the reaping thread never waits), a lock waits for a trim to
/// end (the watch thread may).
static CODE: AtomicU8 = AtomicU8::new(FREE);

/// `PT_LOAD` and `PT_GNU_EH_FRAME` (elf.h).
const PT_LOAD: u32 = 1;
const PT_GNU_EH_FRAME: u32 = 0x6474_e550;

unsafe extern "C" {
    /// glibc's own clean-up of a thread's malloc state at thread exit: it
    /// gives the thread's cache back to the arena, marks the cache shut
    /// down for good, and detaches the thread from its arena (the next
    /// allocation attaches it again; with one arena, to the same one).
    #[cfg(target_env = "gnu")]
    fn __malloc_arena_thread_freeres();
    /// glibc's `sbrk`: with 0, the current end of the heap (no system call).
    #[cfg(target_env = "gnu")]
    fn sbrk(increment: libc::intptr_t) -> *mut libc::c_void;
    /// Start of the executable's first segment (GNU ld's default script).
    static __executable_start: u8;
    /// End of `.text` (GNU ld's default script).
    static etext: u8;
}

/// Ends glibc's per-thread malloc cache for the calling thread. A block
/// of up to 1032 bytes freed by a thread goes to that thread's cache (up
/// to 7 per size) instead of back to the heap, where it is neither merged
/// with its neighbours nor used for another size; a thread whose
/// allocations follow the process count (the watch thread's census and
/// candidate lists) then keeps cutting new blocks from the heap's top
/// after every burst of processes of a size it had not seen, and those
/// pages stay in the RSS (measured: `[heap]` 96 -> 112 KiB over eight
/// orphan storms; flat with the cache off by `GLIBC_TUNABLES`). Without
/// the cache, its frees go straight back to the heap and merge.
///
/// musl's malloc, that of the shipped binary, has no thread cache: there
/// this does nothing.
pub fn end_thread_malloc_cache() {
    #[cfg(target_env = "gnu")]
    // SAFETY: glibc's thread-exit hook for malloc; it only frees the
    // calling thread's cache and detaches the thread from its arena,
    // which the next malloc attaches again. Nothing of the thread's is
    // freed but the cache's own blocks.
    unsafe {
        __malloc_arena_thread_freeres()
    }
}

/// Drops the read-only segments' pages from ward's RSS and turns off
/// read-ahead on them; returns the bytes advised. Errors are harmless (a
/// kernel without MADV_RANDOM on file mappings keeps the pages resident).
pub fn trim_read_only_segments() -> std::io::Result<usize> {
    if CODE
        .compare_exchange(FREE, BUSY, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        // Locked, or another thread is at it: nothing to do here.
        return Ok(0);
    }
    let done = advise_read_only_segments();
    CODE.store(FREE, Ordering::Release);
    done
}

fn advise_read_only_segments() -> std::io::Result<usize> {
    let page = page_size();
    // Only the addresses of the linker-provided symbols are taken, never
    // their bytes.
    let (start, end) = (
        std::ptr::addr_of!(__executable_start) as usize,
        std::ptr::addr_of!(etext) as usize,
    );
    let start = start & !(page - 1);
    // The page holding etext is still code: keep it in the range.
    let end = (end + page - 1) & !(page - 1);
    if end <= start {
        return Ok(0);
    }
    let len = end - start;
    for advice in [libc::MADV_RANDOM, libc::MADV_DONTNEED] {
        // SAFETY: the range covers only ward's own read-only, file-backed
        // segments (headers through .text): MADV_RANDOM changes read-ahead;
        // MADV_DONTNEED on a private mapping that was never written only
        // drops page-table entries, and the next access reads the same bytes
        // from the page cache. ENOMEM for a hole between segments is fine.
        let rc = unsafe { libc::madvise(start as *mut libc::c_void, len, advice) };
        // errno read as a number: `io::Error::last_os_error()` and its
        // `raw_os_error()` decode through a table in `.rodata`, and that
        // one read, on every trim, faulted 64 KiB of `.rodata` back in
        // right after the trim had dropped it (a layout with a hole: idle
        // RSS 448 KiB against 384).
        // SAFETY: the calling thread's errno, read right after the call.
        let errno = unsafe { *libc::__errno_location() };
        if rc != 0 && errno != libc::ENOMEM {
            return Err(std::io::Error::from_raw_os_error(errno));
        }
    }
    Ok(len)
}

/// How far above the blocks in use [`keep_heap_resident`] keeps the heap
/// resident: room for the bounded buffers that reach their size only after
/// a while (the rings of reaped children, the throttling window, the
/// census's table) and for a census's lists.
pub const HEAP_HEADROOM: usize = 32 * 1024;

/// The heap's start (0: not known yet) and where [`keep_heap_resident`]'s
/// last range ended (0: none yet).
#[cfg_attr(not(target_env = "gnu"), allow(dead_code))]
static HEAP_START: AtomicUsize = AtomicUsize::new(0);
#[cfg_attr(not(target_env = "gnu"), allow(dead_code))]
static HEAP_RESIDENT_TO: AtomicUsize = AtomicUsize::new(0);

/// What [`keep_heap_resident`] makes resident: the heap from `start` to
/// [`HEAP_HEADROOM`] bytes above the start of the free space at its end (glibc's
/// "top chunk", `top` bytes up to the program break `end`), page-aligned and
/// within the heap, less the whole pages of `skip` (room that a block in use
/// reserves and fills only under load). `None` while the last range (ending
/// at `done_to`) still reaches half the headroom above the top's start.
pub fn heap_ranges(
    start: usize,
    end: usize,
    top: usize,
    skip: Range<usize>,
    done_to: usize,
    page: usize,
) -> Option<[Range<usize>; 2]> {
    let top_start = end.checked_sub(top).filter(|&t| t >= start)?;
    if done_to >= top_start.saturating_add(HEAP_HEADROOM / 2).min(end) {
        return None;
    }
    let start = start & !(page - 1);
    let wanted = top_start.saturating_add(HEAP_HEADROOM).min(end);
    let wanted = wanted.checked_add(page - 1)? & !(page - 1);
    if wanted <= start {
        return None;
    }
    // Only the pages wholly inside `skip`: its first and last pages hold
    // other blocks too.
    let skip_start = skip
        .start
        .checked_add(page - 1)
        .map_or(usize::MAX, |s| s & !(page - 1));
    let skip_end = skip.end & !(page - 1);
    if skip_start >= skip_end || skip_end <= start || skip_start >= wanted {
        return Some([start..wanted, wanted..wanted]);
    }
    Some([start..skip_start.max(start), skip_end.min(wanted)..wanted])
}

/// Makes ward's heap resident from its start to [`HEAP_HEADROOM`] above the
/// blocks in use, free blocks among them included, less the pages of `skip`;
/// again whenever the blocks in use have grown into half the headroom.
/// Returns the bytes it covered (0: nothing to do).
///
/// Otherwise a heap page is first written, and first counted in ward's RSS,
/// when a block is first cut from it: from the free space at the heap's end
/// or from a free block that was never written through. A bounded buffer
/// that reaches its size minutes after start (a ring of reaped children, the
/// throttling window) then shows as growth, and under a memory limit at its
/// maximum that first write is a page the group must find, by reclaim or an
/// OOM kill, at the moment ward is busiest. Made resident, ward's idle heap
/// is all its steady state uses.
///
/// With `MADV_POPULATE_WRITE` (Linux 5.14); before that, with `mlock` and
/// `munlock` in pieces ([`populate`]). For the watch thread: `mallinfo2`
/// holds the malloc arena's lock while it counts the free blocks.
#[cfg(target_env = "gnu")]
pub fn keep_heap_resident(skip: Range<usize>) -> std::io::Result<usize> {
    // SAFETY: mallinfo2 only reads the arena's state under its lock, and
    // sbrk(0) returns the current break without changing it.
    let (info, end) = unsafe { (libc::mallinfo2(), sbrk(0) as usize) };
    let mut start = HEAP_START.load(Ordering::Relaxed);
    if start == 0 {
        // One arena (`M_ARENA_MAX`), grown by `sbrk` only: its system
        // memory is the heap from its start to the break, and `keepcost`
        // its top chunk.
        start = end.saturating_sub(info.arena);
        HEAP_START.store(start, Ordering::Relaxed);
    }
    let done_to = HEAP_RESIDENT_TO.load(Ordering::Relaxed);
    let Some(ranges) = heap_ranges(start, end, info.keepcost, skip, done_to, page_size()) else {
        return Ok(0);
    };
    let mut covered = 0;
    for r in ranges.iter().filter(|r| r.end > r.start) {
        populate(r.clone())?;
        covered += r.end - r.start;
    }
    HEAP_RESIDENT_TO.store(ranges[1].end, Ordering::Relaxed);
    Ok(covered)
}

/// musl's malloc, that of the shipped binary, keeps no heap of this shape
/// (its groups of slots are mapped and unmapped as they fill and empty, and
/// it gives freed pages back): there is nothing to make resident.
#[cfg(not(target_env = "gnu"))]
pub fn keep_heap_resident(_skip: Range<usize>) -> std::io::Result<usize> {
    Ok(0)
}

/// Faults `range`'s pages in as if written (`MADV_POPULATE_WRITE`),
/// without changing a byte of them.
#[cfg_attr(not(target_env = "gnu"), allow(dead_code))]
fn populate_write(range: Range<usize>) -> std::io::Result<()> {
    // SAFETY: MADV_POPULATE_WRITE only faults pages in (a zeroed page for
    // one never touched, nothing for one present); it writes no data, so
    // other threads' blocks in the range are unaffected.
    let rc = unsafe {
        libc::madvise(
            range.start as *mut libc::c_void,
            range.end - range.start,
            libc::MADV_POPULATE_WRITE,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// How [`populate`] makes pages resident: not known until its first call.
#[cfg_attr(not(target_env = "gnu"), allow(dead_code))]
const BY_UNKNOWN: u8 = 0;
/// With `MADV_POPULATE_WRITE`.
#[cfg_attr(not(target_env = "gnu"), allow(dead_code))]
const BY_ADVICE: u8 = 1;
/// With `mlock` and `munlock`: the kernel refused the advice (before 5.14).
#[cfg_attr(not(target_env = "gnu"), allow(dead_code))]
const BY_LOCK: u8 = 2;
/// Neither: the kernel refused the advice, and `mlock` is not allowed
/// (`RLIMIT_MEMLOCK` 0 without `CAP_IPC_LOCK`).
#[cfg_attr(not(target_env = "gnu"), allow(dead_code))]
const BY_NOTHING: u8 = 3;
#[cfg_attr(not(target_env = "gnu"), allow(dead_code))]
static POPULATE_BY: AtomicU8 = AtomicU8::new(BY_UNKNOWN);

/// The most [`populate`] locks at once without the advice: 64 KiB,
/// `RLIMIT_MEMLOCK`'s default before Linux 5.16, all a container without
/// `CAP_IPC_LOCK` may lock there (less what is locked already: then the
/// pieces halve).
#[cfg_attr(not(target_env = "gnu"), allow(dead_code))]
const LOCK_PIECE: usize = 64 * 1024;

/// Makes `range` resident as if written, with `MADV_POPULATE_WRITE` or, on
/// a kernel without it (EINVAL, before Linux 5.14: Amazon Linux 2's 5.10),
/// by locking it a piece at a time and unlocking it at once: `mlock`
/// faults each page of a private writable mapping in as a write would, and
/// `munlock` leaves it resident. Pieces that `RLIMIT_MEMLOCK` refuses are
/// halved down to a page ([`lock_in_pieces`]).
#[cfg_attr(not(target_env = "gnu"), allow(dead_code))]
fn populate(range: Range<usize>) -> std::io::Result<()> {
    let by = POPULATE_BY.load(Ordering::Relaxed);
    if by == BY_NOTHING {
        return Err(std::io::Error::from_raw_os_error(libc::EPERM));
    }
    if by != BY_LOCK {
        match populate_write(range.clone()) {
            Err(e) if by == BY_UNKNOWN && e.raw_os_error() == Some(libc::EINVAL) => {
                POPULATE_BY.store(BY_LOCK, Ordering::Relaxed);
            }
            done => {
                if done.is_ok() {
                    POPULATE_BY.store(BY_ADVICE, Ordering::Relaxed);
                }
                return done;
            }
        }
    }
    let done = lock_in_pieces(range, LOCK_PIECE, page_size(), lock_unlock);
    if done
        .as_ref()
        .is_err_and(|e| e.raw_os_error() == Some(libc::EPERM))
    {
        // No lock is allowed at all: not worth a try at every sample.
        POPULATE_BY.store(BY_NOTHING, Ordering::Relaxed);
    }
    done
}

/// Faults `range` in with `fault` (see [`lock_unlock`]) in pieces of at
/// most `piece` bytes, in address order; a refused piece is tried again at
/// half the size, down to one page, and the smaller size is kept for the
/// rest. The first error at one page ends it.
#[cfg_attr(not(target_env = "gnu"), allow(dead_code))]
fn lock_in_pieces(
    range: Range<usize>,
    piece: usize,
    page: usize,
    mut fault: impl FnMut(Range<usize>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut piece = piece.max(page);
    let mut at = range.start;
    while at < range.end {
        let end = at.saturating_add(piece).min(range.end);
        match fault(at..end) {
            Ok(()) => at = end,
            Err(_) if piece > page => piece = (piece / 2).max(page),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Locks `range` and unlocks it again: its pages are resident after.
#[cfg_attr(not(target_env = "gnu"), allow(dead_code))]
fn lock_unlock(range: Range<usize>) -> std::io::Result<()> {
    let (at, len) = (range.start as *const libc::c_void, range.end - range.start);
    // SAFETY: mlock only faults the pages in (a write fault on a private
    // writable mapping: a zeroed page where none was) and pins them; it
    // writes no data, so other threads' blocks in the range are unaffected.
    if unsafe { libc::mlock(at, len) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the range locked just above; only ward's heap, which nothing
    // else locks.
    unsafe { libc::munlock(at, len) };
    Ok(())
}

/// The page size (4096 where sysconf fails).
fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize
}

/// True once [`lock_code`] has locked ward's code.
pub fn code_locked() -> bool {
    CODE.load(Ordering::Acquire) == LOCKED
}

/// One program header, the fields [`lock_ranges`] needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// `p_type`.
    pub kind: u32,
    /// `p_vaddr`.
    pub vaddr: u64,
    /// `p_memsz`.
    pub memsz: u64,
}

/// The address ranges [`lock_code`] locks, from the program headers and
/// the load address (`base`): each loaded segment, page-aligned, without
/// the unwind tables where they end one (from `PT_GNU_EH_FRAME`,
/// `.eh_frame_hdr`, to the segment's end: `.eh_frame_hdr`, `.eh_frame`
/// and `.gcc_except_table`, which only unwinding reads; `tests/elf_layout.rs`
/// checks ward's own build for that order).
pub fn lock_ranges(segments: &[Segment], base: usize, page: usize) -> Vec<Range<usize>> {
    let eh = segments
        .iter()
        .find(|s| s.kind == PT_GNU_EH_FRAME)
        .map(|s| s.vaddr);
    let ranges = segments
        .iter()
        .filter(|s| s.kind == PT_LOAD && s.memsz > 0)
        .filter_map(|s| {
            let mut end = s.vaddr.checked_add(s.memsz)?;
            if let Some(eh) = eh.filter(|e| (s.vaddr..end).contains(e)) {
                end = eh;
            }
            let start = base.checked_add(usize::try_from(s.vaddr).ok()?)? & !(page - 1);
            let end = base
                .checked_add(usize::try_from(end).ok()?)?
                .checked_add(page - 1)?
                & !(page - 1);
            (end > start).then_some(start..end)
        });
    // Loaded segments come in address order (the ELF specification's
    // rule); adjacent or overlapping ones (a page shared by two): one range.
    let mut merged: Vec<Range<usize>> = Vec::new();
    for r in ranges {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    merged
}

/// ward's own program headers, from the auxiliary vector.
fn own_segments() -> Vec<Segment> {
    // SAFETY: getauxval has no preconditions; 0 means absent.
    let (phdr, phnum) = unsafe {
        (
            libc::getauxval(libc::AT_PHDR) as usize,
            libc::getauxval(libc::AT_PHNUM) as usize,
        )
    };
    if phdr == 0 || phnum == 0 {
        return Vec::new();
    }
    // SAFETY: the kernel's AT_PHDR/AT_PHNUM describe this executable's
    // program header table, mapped read-only for the process's lifetime.
    let table = unsafe { std::slice::from_raw_parts(phdr as *const libc::Elf64_Phdr, phnum) };
    table
        .iter()
        .map(|p| Segment {
            kind: p.p_type,
            vaddr: p.p_vaddr,
            memsz: p.p_memsz,
        })
        .collect()
}

/// The sections [`lock_code`] leaves out: what only a backtrace runs
/// (std's symbolizer, the unwinder) and its constants, which the release
/// link gathers after ward's own (`link/backtrace.ld`): 181 KiB that no
/// report needs. A panic's message does not run them.
pub const NOT_LOCKED: [&str; 2] = [".text.backtrace", ".rodata.backtrace"];

/// `ranges` without the whole pages of each of `holes`: a page that also
/// holds anything else stays in.
pub fn leave_out(
    ranges: Vec<Range<usize>>,
    holes: &[Range<usize>],
    page: usize,
) -> Vec<Range<usize>> {
    let mut out = ranges;
    for hole in holes {
        let start = hole.start.div_ceil(page).saturating_mul(page);
        let end = hole.end / page * page;
        if end <= start {
            continue;
        }
        out = out
            .into_iter()
            .flat_map(|r| {
                let before = r.start..r.end.min(start);
                let after = r.start.max(end)..r.end;
                [before, after]
            })
            .filter(|r| r.start < r.end)
            .collect();
    }
    out
}

/// Why [`lock_code`] could not lock.
pub struct LockRefused {
    /// mlock's error.
    pub error: std::io::Error,
    /// The bytes it was asked to lock.
    pub bytes: usize,
    /// RLIMIT_MEMLOCK's soft value, `None` when unlimited or unknown.
    pub memlock_limit: Option<u64>,
}

/// Locks ward's code, constants and data in memory (see the module's notes);
/// returns the bytes locked, 0 when already locked. Waits for a trim in
/// progress on another thread to end; not for the reaping thread.
pub fn lock_code() -> Result<usize, LockRefused> {
    // Read before the state is taken: a trim on the reaping thread skips
    // while it is, and a file read may wait on the disk.
    let left_out = crate::elf::sections_named(std::path::Path::new("/proc/self/exe"), &NOT_LOCKED);
    loop {
        match CODE.compare_exchange(FREE, BUSY, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => break,
            Err(LOCKED) => return Ok(0),
            // A trim takes microseconds.
            Err(_) => std::thread::yield_now(),
        }
    }
    // The start of the first segment: the load address of a PIE, 0 or
    // the first segment's own address otherwise.
    let segments = own_segments();
    let first = segments
        .iter()
        .filter(|s| s.kind == PT_LOAD)
        .map(|s| s.vaddr as usize)
        .min()
        .unwrap_or(0);
    let page = page_size();
    let base = (std::ptr::addr_of!(__executable_start) as usize).wrapping_sub(first & !(page - 1));
    let holes: Vec<Range<usize>> = left_out
        .into_iter()
        .filter_map(|r| {
            let start = base.checked_add(usize::try_from(r.start).ok()?)?;
            Some(start..start.checked_add(usize::try_from(r.end - r.start).ok()?)?)
        })
        .collect();
    let ranges = leave_out(lock_ranges(&segments, base, page), &holes, page);
    let bytes: usize = ranges.iter().map(|r| r.end - r.start).sum();
    let mut done = 0;
    let mut failed = None;
    if ranges.is_empty() {
        failed = Some(std::io::Error::from(std::io::ErrorKind::NotFound));
    }
    for r in &ranges {
        // SAFETY: the range covers only ward's own loaded segments, mapped
        // for the process's lifetime; mlock only faults them in (a private
        // writable page as ward's own copy, its bytes unchanged) and pins
        // them.
        if unsafe { libc::mlock(r.start as *const libc::c_void, r.end - r.start) } != 0 {
            failed = Some(std::io::Error::last_os_error());
            break;
        }
        done += 1;
    }
    let Some(error) = failed else {
        CODE.store(LOCKED, Ordering::Release);
        return Ok(bytes);
    };
    // The failed range too: an mlock that could not fault a page in has
    // locked its areas all the same (a group with no page to give).
    for r in &ranges[..(done + 1).min(ranges.len())] {
        // SAFETY: the same ranges, locked above (or not: unlocking what is
        // not locked does nothing).
        unsafe { libc::munlock(r.start as *const libc::c_void, r.end - r.start) };
    }
    CODE.store(FREE, Ordering::Release);
    Err(LockRefused {
        error,
        bytes,
        memlock_limit: memlock_limit(),
    })
}

/// RLIMIT_MEMLOCK's soft value; `None` when unlimited or unknown.
fn memlock_limit() -> Option<u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid out pointer.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut r) };
    (rc == 0 && r.rlim_cur != libc::RLIM_INFINITY).then_some(r.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PT_PHDR: u32 = 6;
    const PT_TLS: u32 = 7;
    fn seg(kind: u32, vaddr: u64, memsz: u64) -> Segment {
        Segment { kind, vaddr, memsz }
    }

    /// A PIE layout as GNU ld writes it (an older ward build, readelf -lW):
    /// headers and constants, then the unwind tables, code, RELRO
    /// (writable), data (writable).
    fn ward_layout() -> Vec<Segment> {
        vec![
            seg(PT_PHDR, 0x40, 0x268),
            seg(PT_LOAD, 0, 0x561dc),
            seg(PT_LOAD, 0x57200, 0x11cdd0),
            seg(PT_LOAD, 0x174fd0, 0x9030),
            seg(PT_LOAD, 0x17ea18, 0x88b0),
            seg(PT_TLS, 0x174fd0, 0xd8),
            seg(PT_GNU_EH_FRAME, 0x2ecb8, 0x571c),
        ]
    }

    /// RELRO and `.data` are in: never written in a static build, their
    /// pages are page cache like the code's.
    #[test]
    fn constants_code_and_data_without_unwind_tables() {
        let base = 0x5555_5555_4000;
        let r = lock_ranges(&ward_layout(), base, 4096);
        assert_eq!(
            r,
            vec![base..base + 0x2f000, base + 0x57000..base + 0x188000],
            "{r:x?}"
        );
    }

    #[test]
    #[allow(clippy::single_range_in_vec_init)]
    fn the_backtrace_sections_whole_pages_are_left_out() {
        let ranges = vec![0x1000..0x9000, 0x20000..0x30000];
        // Inside one range: split; the pages shared with other code stay.
        assert_eq!(
            leave_out(ranges.clone(), &[0x2800..0x6010], 4096),
            vec![0x1000..0x3000, 0x6000..0x9000, 0x20000..0x30000]
        );
        // Up to a range's end, over a gap, into the next.
        assert_eq!(
            leave_out(ranges.clone(), &[0x5000..0x24000], 4096),
            vec![0x1000..0x5000, 0x24000..0x30000]
        );
        // Two holes; one of less than a whole page leaves all in.
        assert_eq!(
            leave_out(ranges.clone(), &[0x1000..0x9000, 0x2f001..0x2ffff], 4096),
            vec![0x20000..0x30000]
        );
        assert_eq!(leave_out(ranges.clone(), &[], 4096), ranges);
        assert_eq!(leave_out(ranges.clone(), &[0x40000..0x50000], 4096), ranges);
    }

    #[test]
    fn without_an_unwind_header_every_segment_whole() {
        let mut l = ward_layout();
        l.retain(|s| s.kind != PT_GNU_EH_FRAME);
        // Each segment's last page and the next one's first are adjacent:
        // one range.
        assert_eq!(lock_ranges(&l, 0, 4096), vec![0..0x188000]);
    }

    #[test]
    fn an_unwind_header_in_no_loaded_segment_cuts_nothing() {
        let mut l = ward_layout();
        l.retain(|s| s.kind != PT_GNU_EH_FRAME);
        l.push(seg(PT_GNU_EH_FRAME, 0x900000, 0x10));
        assert_eq!(lock_ranges(&l, 0, 4096), vec![0..0x188000]);
    }

    #[test]
    #[allow(clippy::single_range_in_vec_init)]
    fn empty_segments_are_left_out_and_no_range_overflows() {
        let l = vec![
            seg(PT_LOAD, 0x1000, 0x1000),
            seg(PT_LOAD, 0x3000, 0),
            seg(PT_LOAD, u64::MAX - 10, 0x100),
        ];
        assert_eq!(lock_ranges(&l, 0, 4096), vec![0x1000..0x2000]);
        assert_eq!(lock_ranges(&[], 0, 4096), Vec::<Range<usize>>::new());
    }

    const K: usize = 1024;
    const P: usize = 4096;
    /// A heap of 244 KiB at 0x10000 whose top chunk starts 152 KiB in.
    const START: usize = 0x10000;
    const END: usize = START + 244 * K;
    const TOP: usize = 92 * K;
    const NO_SKIP: Range<usize> = 0..0;

    #[test]
    fn the_heap_is_covered_from_its_start_to_the_headroom_above_the_top() {
        let r = heap_ranges(START, END, TOP, NO_SKIP, 0, P).unwrap();
        assert_eq!(r[0], START..START + 152 * K + HEAP_HEADROOM);
        assert!(r[1].is_empty());
        // An unaligned top: up to the next page.
        let r = heap_ranges(START, END, TOP - 16, NO_SKIP, 0, P).unwrap();
        assert_eq!(r[0], START..START + 152 * K + HEAP_HEADROOM + P);
        // Never past the heap's end.
        let r = heap_ranges(START, END, 8 * K, NO_SKIP, 0, P).unwrap();
        assert_eq!(r[0], START..END);
    }

    #[test]
    fn once_covered_nothing_until_the_top_has_risen_into_half_the_headroom() {
        let first = heap_ranges(START, END, TOP, NO_SKIP, 0, P).unwrap();
        let done = first[1].end.max(first[0].end);
        assert_eq!(heap_ranges(START, END, TOP, NO_SKIP, done, P), None);
        let risen = TOP - HEAP_HEADROOM / 2 + P;
        assert_eq!(heap_ranges(START, END, risen, NO_SKIP, done, P), None);
        let risen = TOP - HEAP_HEADROOM / 2 - P;
        let again = heap_ranges(START, END, risen, NO_SKIP, done, P).unwrap();
        assert_eq!(
            again[0].end,
            START + 152 * K + HEAP_HEADROOM / 2 + P + HEAP_HEADROOM
        );
        // A top that fell (blocks freed into it) asks for nothing.
        assert_eq!(
            heap_ranges(START, END, TOP + 16 * K, NO_SKIP, done, P),
            None
        );
    }

    #[test]
    fn only_the_whole_pages_of_the_skipped_room_are_left_out() {
        let skip = START + 0x1d30 + 4096..START + 0x1d30 + 64 * K;
        let r = heap_ranges(START, END, TOP, skip, 0, P).unwrap();
        assert_eq!(r[0], START..START + 0x3000);
        assert_eq!(r[1], START + 0x11000..START + 152 * K + HEAP_HEADROOM);
        // Less than a whole page, or outside the range: nothing left out.
        for skip in [START + 10..START + 4000, END..END + 64 * K, 0..START] {
            let r = heap_ranges(START, END, TOP, skip, 0, P).unwrap();
            assert_eq!(r[0], START..START + 152 * K + HEAP_HEADROOM);
            assert!(r[1].is_empty());
        }
        // Reaching past the range's end: the range stops where it starts.
        let skip = START + 100 * K..END + P;
        let r = heap_ranges(START, END, TOP, skip, 0, P).unwrap();
        assert_eq!(r[0], START..START + 100 * K);
        assert!(r[1].is_empty());
    }

    #[test]
    fn numbers_that_do_not_fit_a_heap_ask_for_nothing() {
        assert_eq!(heap_ranges(START, END, END, NO_SKIP, 0, P), None);
        assert_eq!(
            heap_ranges(START, END, END - START + 1, NO_SKIP, 0, P),
            None
        );
        assert_eq!(heap_ranges(START, START, 0, NO_SKIP, 0, P), None);
        assert_eq!(
            heap_ranges(usize::MAX - P, usize::MAX, 0, NO_SKIP, 0, P),
            None
        );
    }

    /// Which of `pages` pages from `at` are resident (`mincore`).
    fn resident(at: *mut libc::c_void, pages: usize) -> Vec<bool> {
        let mut v = vec![0u8; pages];
        // SAFETY: `at` is a mapping of `pages` pages; `v` has one byte each.
        assert_eq!(unsafe { libc::mincore(at, pages * P, v.as_mut_ptr()) }, 0);
        v.iter().map(|b| b & 1 == 1).collect()
    }

    /// A fresh mapping of `pages` pages, with one byte written on page 2.
    fn mapping(pages: usize) -> *mut libc::c_void {
        // SAFETY: a fresh private anonymous mapping; the caller unmaps it.
        let at = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                pages * P,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(at, libc::MAP_FAILED);
        // SAFETY: inside the mapping.
        unsafe { *((at as usize + 2 * P + 7) as *mut u8) = 0xa5 };
        assert_eq!(resident(at, pages).iter().filter(|&&r| r).count(), 1);
        at
    }

    #[test]
    fn locking_and_unlocking_leaves_exactly_the_range_resident_and_unlocked() {
        let pages = 16;
        let at = mapping(pages);
        let base = at as usize;
        lock_in_pieces(base + P..base + 9 * P, 2 * P, P, lock_unlock).unwrap();
        let r = resident(at, pages);
        let want: Vec<bool> = (0..pages).map(|i| (1..9).contains(&i)).collect();
        assert_eq!(r, want);
        // SAFETY: inside the mapping.
        assert_eq!(unsafe { *((base + 2 * P + 7) as *const u8) }, 0xa5);
        // SAFETY: inside the mapping.
        assert_eq!(unsafe { *((base + 5 * P) as *const u8) }, 0);
        // Nothing stays locked: every mapping over the range says so.
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut over = false;
        let mut locked = Vec::new();
        for line in smaps.lines() {
            let span = line.split(' ').next().and_then(|r| r.split_once('-'));
            if let Some((a, b)) = span.filter(|_| !line.ends_with("kB")) {
                let a = usize::from_str_radix(a, 16).unwrap_or(usize::MAX);
                let b = usize::from_str_radix(b, 16).unwrap_or(0);
                over = a < base + 9 * P && b > base + P;
            } else if over && line.starts_with("Locked:") {
                locked.push(line.to_string());
            }
        }
        assert!(!locked.is_empty());
        assert!(locked.iter().all(|l| l.ends_with(" 0 kB")), "{locked:?}");
        // SAFETY: the mapping made above.
        unsafe { libc::munmap(at, pages * P) };
    }

    /// The pieces `lock_in_pieces` tries when `allowed` bytes may be locked
    /// at once, and whether it ended well.
    fn pieces(range: Range<usize>, piece: usize, allowed: usize) -> (Vec<Range<usize>>, bool) {
        let mut tried = Vec::new();
        let done = lock_in_pieces(range, piece, P, |r| {
            tried.push(r.clone());
            if r.end - r.start <= allowed {
                Ok(())
            } else {
                Err(std::io::Error::from_raw_os_error(libc::ENOMEM))
            }
        });
        (tried, done.is_ok())
    }

    #[test]
    fn pieces_cover_the_range_in_order_and_the_last_one_is_cut_short() {
        let (tried, ok) = pieces(START..START + 5 * P, 2 * P, usize::MAX);
        assert!(ok);
        assert_eq!(
            tried,
            [
                START..START + 2 * P,
                START + 2 * P..START + 4 * P,
                START + 4 * P..START + 5 * P
            ]
        );
    }

    #[test]
    fn a_refused_piece_is_halved_and_the_smaller_size_kept() {
        // 3 pages may be locked at once: 8 is refused, then 4, then 2 work.
        let (tried, ok) = pieces(START..START + 5 * P, 8 * P, 3 * P);
        assert!(ok);
        assert_eq!(
            tried,
            [
                START..START + 5 * P,
                START..START + 4 * P,
                START..START + 2 * P,
                START + 2 * P..START + 4 * P,
                START + 4 * P..START + 5 * P
            ]
        );
    }

    #[test]
    fn a_refused_page_ends_it_with_the_error() {
        let (tried, ok) = pieces(START..START + 4 * P, 2 * P, 0);
        assert!(!ok);
        assert_eq!(tried, [START..START + 2 * P, START..START + P]);
        // A piece below a page is still a page.
        let (tried, _) = pieces(START..START + 2 * P, 1, usize::MAX);
        assert_eq!(tried, [START..START + P, START + P..START + 2 * P]);
    }

    #[test]
    fn populating_makes_exactly_the_range_resident_and_changes_no_byte() {
        let pages = 16;
        let at = mapping(pages);
        let base = at as usize;
        match populate_write(base + P..base + 9 * P) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                eprintln!("skipped: this kernel has no MADV_POPULATE_WRITE (Linux 5.14)");
                // SAFETY: the mapping made above.
                unsafe { libc::munmap(at, pages * P) };
                return;
            }
            Err(e) => panic!("populate: {e}"),
        }
        let r = resident(at, pages);
        let want: Vec<bool> = (0..pages).map(|i| (1..9).contains(&i)).collect();
        assert_eq!(r, want);
        // SAFETY: inside the mapping.
        assert_eq!(unsafe { *((base + 2 * P + 7) as *const u8) }, 0xa5);
        // SAFETY: inside the mapping.
        assert_eq!(unsafe { *((base + 5 * P) as *const u8) }, 0);
        // SAFETY: the mapping made above.
        unsafe { libc::munmap(at, pages * P) };
    }
}
