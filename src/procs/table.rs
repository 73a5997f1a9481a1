//! Reading the process table from `/proc`: every `PID/stat`, nothing else.
//!
//! This is the hot path of a census, so it uses raw `getdents64`, `openat`
//! relative to the open `/proc` directory and `read` into buffers that are kept
//! between calls: after the first scan it does not allocate. Even so, the cost
//! is the kernel's: at 4,000 processes (Linux 6.18 in a Firecracker VM) a scan
//! takes ~70 ms CPU, ~90% of it in openat/read/close of `stat` (~16 us per
//! process; `perf`: do_task_stat, dentry lookup). The census interval, not
//! this code, is what bounds ward's CPU use. It owns no policy;
//! [`super::census`] and [`super::tree`] decide what the table means.
//!
//! A long scan gives up its CPU every [`YIELD_EVERY`] processes
//! (`sched_yield`, which returns at once when nothing else waits there):
//! the kernel here preempts a running thread only at its tick (4 ms), so a
//! thread of the application woken onto the census's CPU otherwise waited
//! behind the scan for up to a tick. The census, not the application, is
//! what can wait.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::stat::parse_stat;
use super::{ProcsError, Scope};

/// One process as read from its stat file, with its name kept in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcEntry {
    /// Process ID.
    pub pid: i32,
    /// Parent PID.
    pub ppid: i32,
    /// State letter (`b'Z'` for a zombie).
    pub state: u8,
    /// Number of threads.
    pub threads: u32,
    /// Start time after boot, in clock ticks.
    pub starttime: u64,
    /// Resident set size, in pages.
    pub rss_pages: u64,
    name_start: u32,
    name_len: u32,
}

impl ProcEntry {
    /// True for a process that has exited and waits to be reaped. A
    /// process whose main thread alone has ended also shows `Z` (`ps`:
    /// `Zl`) while its other threads run: it is alive, can be signalled and
    /// cannot be reaped yet, so it is not a zombie here.
    pub fn is_zombie(&self) -> bool {
        self.state == b'Z' && self.threads <= 1
    }
}

/// The process table as last read from `/proc`, with the buffers to read it
/// again. Keep one and pass it to every census so scans do not allocate.
#[derive(Debug, Default)]
pub struct ProcTable {
    /// Sorted by pid.
    entries: Vec<ProcEntry>,
    /// All comms, back to back; entries point into it.
    names: String,
    /// Stats that could not be read or parsed (not counting vanished processes).
    unreadable: u32,
    /// Indexed like `entries`: chosen by the last `select`.
    selected: Vec<bool>,
    dirents: Vec<u8>,
    stat_buf: Vec<u8>,
    /// A stat line that is not UTF-8, made text ([`stat_text`]).
    lossy: String,
    by_ppid: Vec<usize>,
    stack: Vec<i32>,
    /// How many times the last scan gave up its CPU.
    yields: u32,
}

/// A scan yields its CPU after every this many processes read: about
/// 0.5 ms of reading (~16 µs each), the longest a thread woken onto the
/// scan's CPU then waits for it. Measured at 4,000 processes (ward-bench
/// `census-signals`, 3 runs each way, about 260 signals sent during
/// censuses per run): round trips over 1 ms during a census 17-31 per run
/// without, 3-5 with; the largest census's CPU 44.8-46.9 ms without, 47.6
/// with.
const YIELD_EVERY: u32 = 32;

/// Large enough for a few hundred /proc entries per getdents64 call.
const DIRENT_BUF: usize = 32 * 1024;
/// A stat line is about 300 bytes; grown on demand if one is longer.
const STAT_BUF: usize = 1024;
/// Below this many entries (10 KiB) the kept buffers are never shrunk.
const KEEP_ENTRIES: usize = 256;
/// Room for this many processes is made at the first scan: a burst of
/// processes up to it (an orphan storm's dozen) then grows no buffer, and
/// an idle ward's heap after it is the heap before it.
const FIRST_ROOM: usize = 64;
/// Room for names made at the first scan: [`FIRST_ROOM`] names of 16
/// bytes (a task's comm is at most 15).
const FIRST_NAME_ROOM: usize = FIRST_ROOM * 16;
/// Below this many bytes of names the name buffer is never shrunk.
const KEEP_NAME_BYTES: usize = 4096;

/// The capacity to shrink a kept buffer to, when a scan used far less of it
/// than a busier scan once needed: under a quarter of it and above `floor`.
/// The new capacity is twice what was used (at least `floor`), so a load
/// that varies less than fourfold never makes a scan allocate.
fn shrunk_capacity(used: usize, capacity: usize, floor: usize) -> Option<usize> {
    (capacity > floor && used < capacity / 4).then(|| (used * 2).max(floor))
}

/// Lets any other thread waiting for this CPU run first. Cannot fail on
/// Linux; it returns at once when nothing else is runnable here.
fn yield_cpu() {
    // SAFETY: no arguments, no memory touched.
    unsafe { libc::sched_yield() };
}

/// Gives a kept buffer's unused room back to the allocator (see
/// [`shrunk_capacity`]): `used` of it is in use, and below `floor` it is
/// never shrunk.
pub(crate) fn fit<T>(v: &mut Vec<T>, used: usize, floor: usize) {
    if let Some(cap) = shrunk_capacity(used, v.capacity(), floor) {
        v.shrink_to(cap);
    }
}

impl ProcTable {
    /// An empty table; buffers are allocated on the first scan.
    pub fn new() -> Self {
        Self::default()
    }

    /// Re-reads every `PID/stat` under `proc_root`. Processes that vanish while
    /// being read are skipped; other per-process failures are only counted
    /// ([`ProcTable::unreadable`]). Fails only if the directory itself cannot be
    /// read.
    pub fn scan(&mut self, proc_root: &Path) -> Result<(), ProcsError> {
        self.entries.clear();
        self.names.clear();
        self.unreadable = 0;
        self.yields = 0;
        let mut since_yield = 0;
        if self.dirents.len() < DIRENT_BUF {
            // Zeroed by the allocator: `resize` writes the 32 KiB a byte at
            // a time (opt-level "z"), about 200,000 instructions per ward.
            self.dirents = vec![0; DIRENT_BUF];
            self.entries.reserve(FIRST_ROOM);
            self.selected.reserve(FIRST_ROOM);
            self.by_ppid.reserve(FIRST_ROOM);
            self.stack.reserve(FIRST_ROOM);
            self.names.reserve(FIRST_NAME_ROOM);
        }
        let io_err = |source| ProcsError::Io {
            path: proc_root.to_path_buf(),
            source,
        };
        // Through std, which puts a short path's C string on its stack: a
        // `CString` here was a heap block made and freed every census.
        let dir = OwnedFd::from(
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECTORY)
                .open(proc_root)
                .map_err(io_err)?,
        );
        let mut dirents = std::mem::take(&mut self.dirents);
        let result = loop {
            // SAFETY: the buffer is valid for its length.
            let n = unsafe {
                libc::syscall(
                    libc::SYS_getdents64,
                    dir.as_raw_fd(),
                    dirents.as_mut_ptr(),
                    dirents.len(),
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                break Err(io_err(e));
            }
            if n == 0 {
                break Ok(());
            }
            let mut off = 0;
            while off < n as usize {
                // struct linux_dirent64: u64 ino, i64 off, u16 reclen, u8 type, name.
                let rec = &dirents[off..];
                let reclen = u16::from_ne_bytes([rec[16], rec[17]]) as usize;
                let name = &rec[19..reclen];
                let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
                if !name.is_empty() && name.iter().all(u8::is_ascii_digit) {
                    self.read_one(&dir, name);
                    since_yield += 1;
                    if since_yield == YIELD_EVERY {
                        since_yield = 0;
                        yield_cpu();
                        self.yields += 1;
                    }
                }
                off += reclen;
            }
        };
        self.dirents = dirents;
        // /proc lists PIDs in ascending order already; fixture directories
        // may come in any order, and only they pay for the sort (in place:
        // pids are unique).
        if !self.entries.is_sorted_by_key(|e| e.pid) {
            crate::rank::heapsort_by_key(&mut self.entries, |e| e.pid);
        }
        self.give_back_room();
        self.select(Scope::All);
        result
    }

    /// After a burst of processes is over, returns the room the buffers
    /// grew to for it. Without this a container that once ran thousands of
    /// processes would keep ~60 bytes per process of them resident for
    /// good (above glibc's mmap threshold the buffers are their own
    /// mappings, and shrinking one unmaps its tail at once).
    fn give_back_room(&mut self) {
        let n = self.entries.len();
        // Rebuilt by the next `select`; a Vec never shrinks below its length.
        self.selected.clear();
        self.by_ppid.clear();
        self.stack.clear();
        fit(&mut self.entries, n, KEEP_ENTRIES);
        fit(&mut self.selected, n, KEEP_ENTRIES);
        fit(&mut self.by_ppid, n, KEEP_ENTRIES);
        fit(&mut self.stack, n, KEEP_ENTRIES);
        if let Some(cap) = shrunk_capacity(self.names.len(), self.names.capacity(), KEEP_NAME_BYTES)
        {
            self.names.shrink_to(cap);
        }
    }

    /// Reads and records `PID/stat` for one directory entry.
    fn read_one(&mut self, dir: &OwnedFd, pid_name: &[u8]) {
        // "PID/stat\0": a PID has at most 10 digits.
        let mut path = [0u8; 32];
        if pid_name.len() > 16 {
            return;
        }
        path[..pid_name.len()].copy_from_slice(pid_name);
        path[pid_name.len()..pid_name.len() + 5].copy_from_slice(b"/stat");
        // SAFETY: path is NUL-terminated (zero-filled past the name).
        let fd = unsafe {
            libc::openat(
                dir.as_raw_fd(),
                path.as_ptr().cast(),
                libc::O_RDONLY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            if !vanished(&io::Error::last_os_error()) {
                self.unreadable += 1;
            }
            return;
        }
        // SAFETY: fd was just opened and is owned by nobody else.
        let file = unsafe { OwnedFd::from_raw_fd(fd) };
        match read_to_end(&file, &mut self.stat_buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) => {
                if !vanished(&e) {
                    self.unreadable += 1;
                }
                return;
            }
        }
        drop(file);
        let text = stat_text(&self.stat_buf, &mut self.lossy);
        let Ok(stat) = parse_stat(text) else {
            self.unreadable += 1;
            return;
        };
        let name_start = self.names.len() as u32;
        self.names.push_str(stat.comm);
        self.entries.push(ProcEntry {
            pid: stat.pid,
            ppid: stat.ppid,
            state: u8::try_from(stat.state).unwrap_or(b'?'),
            threads: stat.num_threads,
            starttime: stat.starttime,
            rss_pages: stat.rss,
            name_start,
            name_len: stat.comm.len() as u32,
        });
    }

    /// Every process read by the last scan, sorted by pid.
    pub fn entries(&self) -> &[ProcEntry] {
        &self.entries
    }

    /// The process with this pid, if the last scan saw it.
    pub fn get(&self, pid: i32) -> Option<&ProcEntry> {
        self.entries
            .binary_search_by_key(&pid, |e| e.pid)
            .ok()
            .map(|i| &self.entries[i])
    }

    /// The comm of an entry of this table.
    pub fn name(&self, entry: &ProcEntry) -> &str {
        let start = entry.name_start as usize;
        self.names
            .get(start..start + entry.name_len as usize)
            .unwrap_or("")
    }

    /// How many stat files the last scan could not read or parse.
    pub fn unreadable(&self) -> u32 {
        self.unreadable
    }

    /// How many times the last scan gave up its CPU ([`YIELD_EVERY`]).
    pub fn yields(&self) -> u32 {
        self.yields
    }

    /// Chooses which entries [`ProcTable::selected`] yields: all of them, or
    /// the descendants of a pid (not the pid itself), following ppid links.
    pub fn select(&mut self, scope: Scope) {
        self.selected.clear();
        let root = match scope {
            Scope::All => {
                self.selected.resize(self.entries.len(), true);
                return;
            }
            Scope::DescendantsOf(root) => root,
        };
        self.selected.resize(self.entries.len(), false);
        // Indices sorted by ppid, so a parent's children are one contiguous run.
        let entries = &self.entries;
        self.by_ppid.clear();
        self.by_ppid.extend(0..entries.len());
        crate::rank::heapsort_by_key(&mut self.by_ppid, |&i| entries[i].ppid);
        self.stack.clear();
        self.stack.push(root);
        while let Some(parent) = self.stack.pop() {
            let from = self.by_ppid.partition_point(|&i| entries[i].ppid < parent);
            for &i in &self.by_ppid[from..] {
                let e = &entries[i];
                if e.ppid != parent {
                    break;
                }
                // A scan is not atomic, so a ppid loop is not impossible: never
                // visit a process twice.
                if !self.selected[i] && e.pid != root {
                    self.selected[i] = true;
                    self.stack.push(e.pid);
                }
            }
        }
    }

    /// The entries chosen by the last [`ProcTable::select`] (all after a scan).
    pub fn selected(&self) -> impl Iterator<Item = &ProcEntry> {
        self.entries
            .iter()
            .zip(&self.selected)
            .filter_map(|(e, &sel)| sel.then_some(e))
    }
}

/// Capacities of the kept buffers: (entries, names, selected, by_ppid).
#[cfg(test)]
impl ProcTable {
    fn capacities(&self) -> (usize, usize, usize, usize) {
        (
            self.entries.capacity(),
            self.names.capacity(),
            self.selected.capacity(),
            self.by_ppid.capacity(),
        )
    }
}

/// A stat line as text: as read when it is UTF-8 (it is, but for a comm
/// that is not), else with each invalid sequence replaced by U+FFFD, as
/// `String::from_utf8_lossy` does, in `lossy`'s kept room: that made and
/// freed a block for such a process at every scan.
fn stat_text<'a>(bytes: &'a [u8], lossy: &'a mut String) -> &'a str {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return text;
    }
    lossy.clear();
    // As the stat buffer's: every such line after the first fits.
    if lossy.capacity() < STAT_BUF {
        lossy.reserve(STAT_BUF);
    }
    for chunk in bytes.utf8_chunks() {
        lossy.push_str(chunk.valid());
        if !chunk.invalid().is_empty() {
            lossy.push(char::REPLACEMENT_CHARACTER);
        }
    }
    lossy
}

/// True for the errors /proc gives when the process has gone away.
pub(crate) fn vanished(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ESRCH))
}

/// Reads the whole file into `buf` (cleared first); returns the byte count.
fn read_to_end(file: &OwnedFd, buf: &mut Vec<u8>) -> io::Result<usize> {
    buf.clear();
    if buf.capacity() < STAT_BUF {
        buf.reserve(STAT_BUF);
    }
    loop {
        if buf.len() == buf.capacity() {
            buf.reserve(buf.capacity());
        }
        let spare = buf.spare_capacity_mut();
        // SAFETY: reading into the spare capacity, then extending len by what
        // the kernel wrote.
        let n = unsafe { libc::read(file.as_raw_fd(), spare.as_mut_ptr().cast(), spare.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Ok(buf.len());
        }
        // SAFETY: the kernel initialised n bytes past len.
        unsafe { buf.set_len(buf.len() + n as usize) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procs::fixture::FakeProc;

    #[test]
    fn a_stat_line_that_is_not_utf8_reads_as_from_utf8_lossy_reads_it() {
        let mut lossy = String::new();
        for bytes in [
            &b"7 (sh) S 1"[..],
            b"7 (caf\xe9) S 1",
            b"7 (\xff\xfe\xfd) S 1",
            b"7 (a\xe2\x82) S 1",
            b"7 (\xe2\x82\xac\xe2) S \xc3",
        ] {
            let want = String::from_utf8_lossy(bytes);
            assert_eq!(stat_text(bytes, &mut lossy), want, "{bytes:?}");
        }
        // Such a process is named as `ps` would show it.
        let t = FakeProc::new("lossy", "100.0 0");
        t.raw(
            9,
            "9 (x\u{fffd}y) S 1 9 9 0 -1 4194560 10 0 0 0 1 2 0 0 20 0 1 0 100 1000000 4 \
             18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
        );
        let mut bytes = std::fs::read(t.path().join("9/stat")).unwrap();
        let at = bytes
            .windows(3)
            .position(|w| w == "\u{fffd}".as_bytes())
            .unwrap();
        bytes.splice(at..at + 3, [0xff]);
        std::fs::write(t.path().join("9/stat"), bytes).unwrap();
        let mut table = ProcTable::new();
        table.scan(t.path()).unwrap();
        assert_eq!(table.name(&table.entries()[0]), "x\u{fffd}y");
    }

    #[test]
    fn entries_come_in_pid_order_whatever_the_directory_order() {
        let t = FakeProc::new("pid-order", "100.0 0");
        for pid in [300, 7, 1000, 42, 5, 99] {
            t.process(pid, "p", 'S', 1, 1, 100, 0);
        }
        let mut table = ProcTable::new();
        table.scan(t.path()).unwrap();
        let pids: Vec<i32> = table.entries().iter().map(|e| e.pid).collect();
        assert_eq!(pids, vec![5, 7, 42, 99, 300, 1000]);
    }

    #[test]
    fn a_long_scan_gives_up_its_cpu_every_32_processes() {
        let t = FakeProc::new("yields", "1.00");
        for pid in 1..=100 {
            t.process(pid, "p", 'S', 0, 1, 0, 1);
        }
        let mut table = ProcTable::new();
        table.scan(t.path()).unwrap();
        assert_eq!(table.entries().len(), 100);
        assert_eq!(table.yields(), 3, "after the 32nd, 64th and 96th");
        // Directory entries that are not processes do not count.
        for pid in 31..=100 {
            std::fs::remove_dir_all(t.path().join(pid.to_string())).unwrap();
        }
        std::fs::create_dir(t.path().join("sys")).unwrap();
        table.scan(t.path()).unwrap();
        assert_eq!(table.yields(), 0, "30 processes: no yield");
    }

    #[test]
    fn kept_room_shrinks_only_far_below_a_busier_past() {
        // Small buffers are kept whatever the use.
        assert_eq!(shrunk_capacity(0, 256, 256), None);
        assert_eq!(shrunk_capacity(3, 100, 256), None);
        // Busy: a quarter or more in use keeps the room.
        assert_eq!(shrunk_capacity(1024, 4096, 256), None);
        assert_eq!(shrunk_capacity(5000, 4096, 256), None);
        // The burst is over: down to twice the use, never under the floor.
        assert_eq!(shrunk_capacity(1023, 4096, 256), Some(2046));
        assert_eq!(shrunk_capacity(3, 4096, 256), Some(256));
        assert_eq!(shrunk_capacity(0, 257, 256), Some(256));
    }

    #[test]
    fn a_table_gives_back_what_a_burst_of_processes_took() {
        let t = FakeProc::new("burst", "1.00");
        t.process(1, "ward", 'S', 0, 1, 0, 1);
        for pid in 2..3000 {
            t.process(pid, "a-rather-long-name", 'S', 1, 1, 0, 1);
        }
        let mut table = ProcTable::new();
        table.scan(t.path()).unwrap();
        table.select(Scope::DescendantsOf(1));
        assert_eq!(table.selected().count(), 2998);
        let (entries, names, selected, by_ppid) = table.capacities();
        assert!(entries >= 2999 && names >= 2998 * 18, "{entries} {names}");
        assert!(selected >= 2999 && by_ppid >= 2999, "{selected} {by_ppid}");
        for pid in 10..3000 {
            std::fs::remove_dir_all(t.path().join(pid.to_string())).unwrap();
        }
        table.scan(t.path()).unwrap();
        table.select(Scope::DescendantsOf(1));
        assert_eq!(table.selected().count(), 8);
        assert_eq!(
            table.capacities(),
            (KEEP_ENTRIES, KEEP_NAME_BYTES, KEEP_ENTRIES, KEEP_ENTRIES)
        );
        // A steady load then keeps its buffers: the scan does not allocate.
        table.scan(t.path()).unwrap();
        table.select(Scope::DescendantsOf(1));
        assert_eq!(
            table.capacities(),
            (KEEP_ENTRIES, KEEP_NAME_BYTES, KEEP_ENTRIES, KEEP_ENTRIES)
        );
    }
}
