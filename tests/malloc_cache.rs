//! `trim::end_thread_malloc_cache`: after it, blocks a thread frees go back
//! to the heap instead of staying in glibc's per-thread cache. glibc's
//! `mallinfo2` counts a cached block as in use, so the test frees blocks of
//! a size the thread has not used before and looks at what is still in use.
//! One test in its own binary: no other test thread allocates meanwhile.
//! glibc's only: the shipped build is against musl, whose malloc has no
//! thread cache (the function does nothing there); this runs with
//! `cargo test --target x86_64-unknown-linux-gnu --test malloc_cache`.
#![cfg(target_env = "gnu")]

/// Bytes glibc counts as in use, all arenas.
fn in_use() -> usize {
    // SAFETY: mallinfo2 only reads malloc's statistics.
    unsafe { libc::mallinfo2() }.uordblks
}

/// Allocates and frees seven blocks of `size` bytes (what one size class of
/// the cache holds) and returns how much more is in use afterwards.
fn kept_after_freeing(size: usize) -> isize {
    let before = in_use();
    // SAFETY: plain malloc and free of blocks nothing else sees.
    let blocks: Vec<*mut libc::c_void> = (0..7).map(|_| unsafe { libc::malloc(size) }).collect();
    assert!(blocks.iter().all(|b| !b.is_null()));
    // A block after them keeps the last one from merging into the heap's top.
    let guard = unsafe { libc::malloc(64) };
    for b in blocks {
        unsafe { libc::free(b) };
    }
    let kept = in_use() as isize - before as isize;
    unsafe { libc::free(guard) };
    kept
}

#[test]
fn a_thread_without_the_cache_gives_freed_blocks_back() {
    std::thread::spawn(|| {
        // With the cache (glibc's default): the seven freed blocks stay in
        // the thread's cache and count as in use.
        let cached = kept_after_freeing(600);
        assert!(
            cached >= 7 * 600,
            "glibc's cache kept {cached} bytes of 7 freed 600-byte blocks: the measure does not see the cache"
        );
        ward::trim::end_thread_malloc_cache();
        // A size not cached before: without the cache, nothing stays.
        let kept = kept_after_freeing(700);
        assert!(
            kept < 700,
            "{kept} bytes of 7 freed 700-byte blocks still count as in use: the cache is still on"
        );
        // And the thread still allocates.
        let v: Vec<u8> = vec![1; 4096];
        assert_eq!(v.iter().map(|&b| b as usize).sum::<usize>(), 4096);
    })
    .join()
    .unwrap();
}
