//! The only place the cgroup module opens files: whole-file reads into a caller's buffer.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::CgroupError;

/// cgroup and proc files are small; a cap keeps a broken fixture from eating memory.
const MAX_FILE: u64 = 1 << 20;

/// The size of each read of [`reread_into`]: a whole cgroup file at once.
const CHUNK: usize = 8192;

/// The first read's size at discovery (`/proc/self/cgroup`, `mountinfo`).
pub(crate) const DISCOVERY_READ: usize = 16 * 1024;

/// Replaces `buf` with the contents of `path`, a file the kernel generates
/// whole (a cgroup interface file, `/proc/meminfo`, `/proc/self/status`, a
/// sysfs value): one read, as in [`reread_into`], and no second one only to
/// hear the end (four files of the memory limit read before the child starts
/// save a syscall each).
pub(crate) fn read_into(buf: &mut String, path: &Path) -> io::Result<()> {
    // Emptied first, as a failed read empties it: a caller that parsed on
    // error would find nothing, never the last file's text (one buffer
    // serves a sample's files and the limits' alike).
    buf.clear();
    let f = File::open(path)?;
    reread_into(buf, &f)
}

/// Replaces `buf` with the contents of an already open cgroup file, read again from
/// offset 0.
///
/// cgroupfs files are seq_files: a read at offset 0 regenerates the contents, so one
/// fd opened at discovery serves every sample. On the dev VM this is ~1.5 µs per
/// file against ~9 µs for open+read+close, and one read per file, not two. The text is ASCII, so splitting it in
/// chunks cannot cut a UTF-8 sequence.
pub(crate) fn reread_into(buf: &mut String, f: &File) -> io::Result<()> {
    buf.clear();
    // A chunk on the stack, not the buffer's own room: the buffer grows only
    // to what the file holds (asking it for 8 KiB of room would grow every
    // buffer to that, and the heap with them). Not zeroed first: clearing
    // 8 KiB per read was 7 % of the instructions of `ward -- true`.
    let mut chunk = std::mem::MaybeUninit::<[u8; CHUNK]>::uninit();
    let mut off = 0u64;
    while off < MAX_FILE {
        // SAFETY: pread writes at most CHUNK bytes into the chunk.
        let n = unsafe {
            libc::pread(
                f.as_raw_fd(),
                chunk.as_mut_ptr().cast(),
                CHUNK,
                off as libc::off_t,
            )
        };
        let Ok(n) = usize::try_from(n) else {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            buf.clear();
            return Err(e);
        };
        // SAFETY: the kernel wrote the first `n` bytes of the chunk.
        let read = unsafe { std::slice::from_raw_parts(chunk.as_ptr().cast::<u8>(), n) };
        let Ok(text) = std::str::from_utf8(read) else {
            buf.clear();
            return Err(io::Error::new(io::ErrorKind::InvalidData, "not UTF-8"));
        };
        buf.push_str(text);
        off += n as u64;
        // A short read is the end: a cgroup interface file is one seq_file
        // record, generated whole and copied out as far as it fits (and a
        // regular file, as in the fixture trees, ends where a read falls
        // short). Asking again only to hear 0 would add a syscall per
        // file to every sample.
        if n < CHUNK {
            break;
        }
    }
    Ok(())
}

/// Appends the whole of `path` to `buf` (discovery only), read until the
/// kernel says it ended: for `mountinfo`, a file of many records that a
/// read may cut short where the next one would not fit.
///
/// Reads through `Take` on purpose: `File::read_to_string` first calls statx and
/// lseek for a size hint, which on procfs is useless (sizes are 0).
pub(crate) fn read_appended(buf: &mut String, path: &Path) -> Result<(), CgroupError> {
    let err = |source| CgroupError::Read {
        path: path.to_owned(),
        source,
    };
    let f = File::open(path).map_err(err)?;
    (&f).take(MAX_FILE).read_to_string(buf).map_err(err)?;
    Ok(())
}

/// Reads a file when it exists; `None` when it cannot be read for any reason.
pub(crate) fn read_opt(buf: &mut String, path: &Path) -> Option<()> {
    read_into(buf, path).ok()
}

/// As [`read_opt`], for the file `name` in `dir`, its path put together
/// on the stack ([`in_dir`]).
pub(crate) fn read_opt_in(buf: &mut String, dir: &Path, name: &str) -> Option<()> {
    in_dir(dir, &[name], |path| read_opt(buf, path))
}

/// The longest path [`in_dir`] puts together on the stack. std opens a
/// path shorter than 384 bytes from a copy on its own stack too, so such a
/// path costs no heap at all.
const STACK_PATH: usize = 320;

/// Calls `f` with `dir` joined with `names` (relative, in order), as
/// [`Path::join`] would join them, but put together on the stack. The
/// limits are read again every 15 s, a dozen files or more: a `PathBuf`
/// made and dropped for each made malloc map a page and give it back, so
/// an idle ward's anonymous memory went up and down 4 KiB on a 15 s cycle.
/// A longer path (or an absolute name) is joined on the heap.
pub(crate) fn in_dir<R>(dir: &Path, names: &[&str], f: impl FnOnce(&Path) -> R) -> R {
    let mut path = [0u8; STACK_PATH];
    let mut len = 0;
    let mut fits = true;
    for part in
        std::iter::once(dir.as_os_str().as_bytes()).chain(names.iter().map(|n| n.as_bytes()))
    {
        if part.first() == Some(&b'/') && len > 0 {
            fits = false;
            break;
        }
        let slash = len > 0 && path[len - 1] != b'/';
        let end = len + usize::from(slash) + part.len();
        if end > STACK_PATH {
            fits = false;
            break;
        }
        if slash {
            path[len] = b'/';
            len += 1;
        }
        path[len..end].copy_from_slice(part);
        len = end;
    }
    if !fits {
        let mut joined = dir.to_path_buf();
        joined.extend(names);
        return f(&joined);
    }
    f(Path::new(OsStr::from_bytes(&path[..len])))
}

/// True for errors that just mean "this file is not there": a controller file the
/// kernel does not provide, or a group that vanished. Not worth counting.
pub(crate) fn is_absent(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOENT) | Some(libc::ENODEV) | Some(libc::ESRCH)
    ) || e.kind() == io::ErrorKind::NotFound
}

/// True for "feature switched off", e.g. reading `*.pressure` when booted with `psi=0`.
pub(crate) fn is_unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EOPNOTSUPP) | Some(libc::EINVAL)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_put_together_on_the_stack_is_the_joined_one() {
        let long = "x".repeat(STACK_PATH);
        let cases: &[(&str, &[&str])] = &[
            ("/sys/fs/cgroup/memory/docker/abc", &["memory.max"]),
            ("/sys/fs/cgroup/", &["pids.max"]),
            ("/proc", &["self", "status"]),
            ("/proc", &["sys/kernel/pid_max"]),
            ("fixture/proc", &["meminfo"]),
            ("", &["meminfo"]),
            ("/", &["release_agent"]),
            ("/proc", &[]),
            // An absolute name replaces what came before, as join does.
            ("/proc", &["/etc/passwd"]),
            // Too long for the stack: joined on the heap, the same path.
            ("/sys/fs/cgroup", &[long.as_str()]),
            (long.as_str(), &["memory.max"]),
        ];
        for (dir, names) in cases {
            let mut want = Path::new(dir).to_path_buf();
            want.extend(names.iter());
            let got = in_dir(Path::new(dir), names, Path::to_path_buf);
            assert_eq!(got, want, "{dir:?} {names:?}");
        }
    }

    #[test]
    fn reread_takes_a_file_whole_whatever_its_size() {
        let dir = std::env::temp_dir().join(format!("ward-fsread-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut buf = String::new();
        // Shorter than one read, exactly one read, and several reads long.
        for len in [3usize, 8192, 8192 * 2 + 17] {
            let text: String = (0..len)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            let path = dir.join(format!("f{len}"));
            std::fs::write(&path, &text).unwrap();
            let f = File::open(&path).unwrap();
            reread_into(&mut buf, &f).unwrap();
            assert_eq!(buf, text, "length {len}");
            // Again from offset 0: the same text, not appended.
            reread_into(&mut buf, &f).unwrap();
            assert_eq!(buf.len(), len);
        }
        // Not UTF-8, and a read error: an error, and no bytes left behind
        // that a parser could take for text.
        let bad = dir.join("bad");
        std::fs::write(&bad, b"oom_kill 1\n\xff\n").unwrap();
        buf.push_str("stale");
        let e = reread_into(&mut buf, &File::open(&bad).unwrap()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(buf.is_empty());
        buf.push_str("stale");
        let e = reread_into(&mut buf, &File::open(&dir).unwrap()).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EISDIR));
        assert!(buf.is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
