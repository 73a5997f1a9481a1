//! Keeps ward's resident set to the code it runs. The kernel maps a file's
//! pages 64 KiB around each page fault ("fault-around"), so a short start-up
//! leaves nearly all of ward's code and read-only data resident,
//! and all of it counts in the RSS the OOM killer ranks processes by
//! (measured: 1.2 MiB of 1.7 MiB VmRSS was code). Once the child runs, ward
//! drops those pages from its page tables and asks for no fault-around on
//! them; the pages the loop really uses come back one by one, on first use.
//!
//! Only the read-only segments (headers, `.rodata`, `.eh_frame`, `.text`) are
//! touched: they are never written, so dropping them loses nothing (the file
//! still has them). Relocated data (RELRO, `.data`) is left alone.

unsafe extern "C" {
    /// glibc's own clean-up of a thread's malloc state at thread exit: it
    /// gives the thread's cache back to the arena, marks the cache shut
    /// down for good, and detaches the thread from its arena (the next
    /// allocation attaches it again; with one arena, to the same one).
    fn __malloc_arena_thread_freeres();
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
pub fn end_thread_malloc_cache() {
    // SAFETY: glibc's thread-exit hook for malloc; it only frees the
    // calling thread's cache and detaches the thread from its arena,
    // which the next malloc attaches again. Nothing of the thread's is
    // freed but the cache's own blocks.
    unsafe { __malloc_arena_thread_freeres() }
}

/// Drops the read-only segments' pages from ward's RSS and turns off
/// fault-around on them; returns the bytes advised. Errors are harmless (a
/// kernel without MADV_RANDOM on file mappings keeps the pages resident).
pub fn trim_read_only_segments() -> std::io::Result<usize> {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
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
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ENOMEM) {
                return Err(e);
            }
        }
    }
    Ok(len)
}
