//! Starting the main child: PATH lookup, fork, terminal hand-over, the signal
//! dispositions and `oom_score_adj` it gets, exec (a script without a shebang
//! through `/bin/sh`, as `execvp` does), and telling exec failures apart (126
//! not executable, 127 not found).
//!
//! The child is started the way `posix_spawn` does it: `clone` with
//! `CLONE_VM | CLONE_VFORK` on a stack of its own. It shares ward's memory
//! until exec, so nothing is copied (no page tables, no copy-on-write faults
//! on either side while it prepares) and this thread sleeps until the exec
//! succeeded or failed. What the child runs before exec is async-signal-safe
//! and touches only memory prepared before the clone: its stack and the
//! prepared arguments, and two slots for errnos (exec's, and that of its
//! `oom_score_adj` write).

use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicI32, Ordering};

use thiserror::Error;

use crate::exit;

/// Why the child could not be started.
#[derive(Debug, Error)]
pub enum SpawnError {
    /// The command or one of its arguments has a NUL byte.
    #[error("cannot run {command:?}: argument contains a NUL byte")]
    NulByte {
        /// The command as given.
        command: String,
    },
    /// clone(2) failed (EAGAIN under a pids limit, ENOMEM).
    #[error("cannot start {command:?}: fork failed: {source}")]
    Fork {
        /// The command as given.
        command: String,
        /// The OS error.
        source: std::io::Error,
    },
}

impl SpawnError {
    /// The errno and the words the exit report gives for it, as for a
    /// failed exec.
    pub fn errno_and_words(&self) -> (i32, &'static str) {
        match self {
            SpawnError::NulByte { .. } => (libc::EINVAL, "argument contains a NUL byte"),
            SpawnError::Fork { source, .. } => match source.raw_os_error() {
                Some(libc::EAGAIN) => (libc::EAGAIN, "fork refused (the pids limit?)"),
                errno => (errno.unwrap_or(0), "fork failed"),
            },
        }
    }
}

/// The child's stack until exec: what it runs (signal resets, a few
/// syscalls, the PATH loop) needs a few KiB; a guard page is not needed for
/// code this small and fixed.
const CHILD_STACK: usize = 64 * 1024;

/// The outcome of an exec attempt in the child.
#[derive(Debug)]
pub enum Started {
    /// The command is running as this pid.
    Running(i32),
    /// exec failed in the child with this errno; the child has exited.
    ExecFailed {
        /// The (exited, not yet reaped) child.
        pid: i32,
        /// errno from the last meaningful exec attempt.
        errno: i32,
    },
}

/// The exit code and wording for an exec errno.
pub fn exec_failure(errno: i32) -> (u8, &'static str) {
    match errno {
        libc::ENOENT | libc::ENOTDIR => (exit::NOT_FOUND, "not found"),
        _ => (exit::NOT_EXECUTABLE, "cannot be executed"),
    }
}

/// For an exec that said "not found" (ENOENT): when the program is there,
/// what is missing is what it names to run it: the `#!` line's interpreter,
/// or an ELF binary's loader (built for another libc: Alpine's musl on a
/// glibc image). Docker says "no such file or directory" of a file that
/// exists; this says which file. `None` when no candidate exists, or when
/// what it names is there too (then something further down is missing).
pub fn missing_runner(cmd: &OsStr) -> Option<String> {
    let path_var = std::env::var_os("PATH");
    candidates(cmd, path_var.as_deref()).iter().find_map(|c| {
        use std::io::Read as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        // One read of the file's start: the #! line, or the ELF headers
        // and (in every linker's layout) the loader's name. Non-blocking:
        // a FIFO among the candidates must not hold ward.
        let mut head = [0u8; 4096];
        let n = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(c)
            .and_then(|mut f| f.read(&mut head))
            .ok()?;
        let (kind, path) = runner_of(&head[..n])?;
        let file = std::path::Path::new(c).display();
        // The kernel ends the #! line at a newline: a script saved with
        // Windows line endings names "/bin/sh\r".
        if path.ends_with('\r') {
            return Some(format!(
                "{file} is there, but its #! line ends in \\r (Windows line endings): the kernel looks for {path:?}"
            ));
        }
        (!std::path::Path::new(&path).exists())
            .then(|| format!("{file} is there, but {kind} {path} is not"))
    })
}

/// What a program's first bytes name to run it: ("its #! interpreter",
/// path) or ("its ELF loader", path). Pure.
pub fn runner_of(head: &[u8]) -> Option<(&'static str, String)> {
    if let Some(rest) = head.strip_prefix(b"#!") {
        // As the kernel reads it: up to the newline, split at spaces and
        // tabs only (a carriage return is part of the name).
        let line = rest.split(|&b| b == b'\n').next()?;
        let interp = line
            .split(|&b| b == b' ' || b == b'\t')
            .find(|w| !w.is_empty())?;
        return Some((
            "its #! interpreter",
            String::from_utf8_lossy(interp).into_owned(),
        ));
    }
    // A 64-bit little-endian ELF: the PT_INTERP program header's string.
    if head.len() < 64 || &head[..6] != b"\x7fELF\x02\x01" {
        return None;
    }
    let u16_at = |o: usize| Some(u16::from_le_bytes(head.get(o..o + 2)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(head.get(o..o + 8)?.try_into().ok()?) as usize);
    let (phoff, size, count) = (u64_at(32)?, usize::from(u16_at(54)?), u16_at(56)?);
    (0..usize::from(count)).find_map(|i| {
        let ph = phoff.checked_add(i.checked_mul(size)?)?;
        let kind = u32::from_le_bytes(head.get(ph..)?.get(..4)?.try_into().ok()?);
        if kind != 3 {
            return None;
        }
        let (at, len) = (u64_at(ph.checked_add(8)?)?, u64_at(ph.checked_add(32)?)?);
        let name = head.get(at..at.checked_add(len)?)?;
        let name = name.strip_suffix(b"\0").unwrap_or(name);
        Some(("its ELF loader", String::from_utf8_lossy(name).into_owned()))
    })
}

/// Candidate paths for `cmd`: itself if it has a slash, else each PATH entry.
pub fn candidates(cmd: &OsStr, path_var: Option<&OsStr>) -> Vec<OsString> {
    if cmd.as_bytes().contains(&b'/') {
        return vec![cmd.to_owned()];
    }
    let default = OsStr::new("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    let path = path_var.unwrap_or(default);
    path.as_bytes()
        .split(|&b| b == b':')
        .map(|dir| {
            // An empty PATH entry means the current directory.
            let dir = if dir.is_empty() { b"." as &[u8] } else { dir };
            let mut full = dir.to_vec();
            if !full.ends_with(b"/") {
                full.push(b'/');
            }
            full.extend_from_slice(cmd.as_bytes());
            OsString::from(std::ffi::OsStr::from_bytes(&full))
        })
        .collect()
}

/// The shell a script without a shebang runs through (ENOEXEC), as in
/// glibc's `execvp`.
const SHELL: &std::ffi::CStr = c"/bin/sh";

/// An `oom_score_adj` value for the child to write before exec.
pub struct OomWrite {
    /// `/proc/self/oom_score_adj` under ward's proc root.
    pub path: CString,
    /// The decimal value.
    pub bytes: [u8; 8],
    /// How many of `bytes` to write.
    pub len: usize,
    /// The errno of the child's open or write, 0 while none failed: the
    /// child shares ward's memory until exec, as with the exec errno.
    failed: AtomicI32,
}

impl OomWrite {
    /// The write of `adj` to `proc_root/self/oom_score_adj`; `None` if the
    /// path has a NUL byte.
    pub fn new(proc_root: &std::path::Path, adj: i32) -> Option<OomWrite> {
        let path =
            CString::new(proc_root.join("self/oom_score_adj").as_os_str().as_bytes()).ok()?;
        let (bytes, len) = super::oom_adj::adj_bytes(adj);
        Some(OomWrite {
            path,
            bytes,
            len,
            failed: AtomicI32::new(0),
        })
    }

    /// Why the child could not write its value, once [`spawn`] returned:
    /// it then runs with ward's own.
    pub fn failure(&self) -> Option<std::io::Error> {
        match self.failed.load(Ordering::Acquire) {
            0 => None,
            errno => Some(std::io::Error::from_raw_os_error(errno)),
        }
    }
}

/// What the child must do before exec, fixed before the fork.
pub struct ChildSetup {
    /// Signal mask to restore.
    pub mask: libc::sigset_t,
    /// Dispositions ward inherited, for each signal in
    /// [`super::signals::RESTORED`].
    pub dispositions: [libc::sighandler_t; super::signals::RESTORED.len()],
    /// Put the child in the terminal's foreground group (stdin is a TTY and
    /// ward is in the foreground).
    pub take_terminal: bool,
    /// The child's `oom_score_adj`, when it must differ from ward's.
    pub oom_adj: Option<OomWrite>,
}

/// Starts `argv` as a child, returning once exec has succeeded or failed.
pub fn spawn(argv: &[OsString], setup: &ChildSetup) -> Result<Started, SpawnError> {
    let command = argv[0].to_string_lossy().into_owned();
    let to_c = |s: &OsStr| CString::new(s.as_bytes());
    let c_args: Vec<CString> = argv
        .iter()
        .map(|a| to_c(a))
        .collect::<Result<_, _>>()
        .map_err(|_| SpawnError::NulByte {
            command: command.clone(),
        })?;
    let c_paths: Vec<CString> = candidates(&argv[0], std::env::var_os("PATH").as_deref())
        .iter()
        .filter_map(|p| to_c(p).ok())
        .collect();
    let mut arg_ptrs: Vec<*const libc::c_char> = c_args.iter().map(|a| a.as_ptr()).collect();
    arg_ptrs.push(std::ptr::null());
    let path_ptrs: Vec<*const libc::c_char> = c_paths.iter().map(|p| p.as_ptr()).collect();
    // `/bin/sh PATH ARGS...` for a file the kernel cannot execute (ENOEXEC);
    // slot 1 is filled in the child with the candidate that failed.
    let mut sh_ptrs: Vec<*const libc::c_char> = Vec::with_capacity(arg_ptrs.len() + 1);
    sh_ptrs.push(SHELL.as_ptr());
    sh_ptrs.push(std::ptr::null());
    sh_ptrs.extend_from_slice(&arg_ptrs[1..]);

    let failed = AtomicI32::new(0);
    let mut child = ChildArgs {
        setup,
        paths: &path_ptrs,
        argv: &arg_ptrs,
        sh_argv: &mut sh_ptrs,
        failed: &failed,
    };
    // Left uninitialised: zeroing 64 KiB would touch every page, and the
    // child writes only the few it uses.
    let mut stack: Vec<u8> = Vec::with_capacity(CHILD_STACK);
    // The top of the stack, 16-byte aligned as the ABI wants at a call.
    // SAFETY: an offset within (one past the end of) the allocation.
    let top = unsafe { stack.as_mut_ptr().add(CHILD_STACK) };
    let top = top.wrapping_sub(top as usize % 16);
    // SAFETY: child_entry runs on its own stack, uses only async-signal-safe
    // calls on memory prepared above, and execs or _exits; CLONE_VFORK keeps
    // this thread (and so `child`, `stack` and `failed`) in place until then.
    let pid = unsafe {
        libc::clone(
            child_entry,
            top.cast(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (&raw mut child).cast(),
        )
    };
    drop(stack);
    if pid < 0 {
        return Err(SpawnError::Fork {
            command,
            source: std::io::Error::last_os_error(),
        });
    }
    // No setpgid from this side (fork-based inits need one to close the
    // race with a signal sent before the child's own): with CLONE_VFORK this
    // thread resumes only after the child's setpgid and exec.
    // The child has exec'd or exited by now (CLONE_VFORK); it wrote the
    // errno before exiting.
    match failed.load(Ordering::Acquire) {
        0 => Ok(Started::Running(pid)),
        errno => Ok(Started::ExecFailed { pid, errno }),
    }
}

/// What the child needs, in memory it shares with ward until exec.
struct ChildArgs<'a> {
    setup: &'a ChildSetup,
    paths: &'a [*const libc::c_char],
    argv: &'a [*const libc::c_char],
    sh_argv: &'a mut [*const libc::c_char],
    /// The errno of a failed exec (0 while none).
    failed: &'a AtomicI32,
}

/// The child's entry point on its own stack.
extern "C" fn child_entry(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the ChildArgs that spawn keeps alive until exec (or
    // exit) of this child, and nothing else touches it meanwhile.
    let a = unsafe { &mut *arg.cast::<ChildArgs<'_>>() };
    // SAFETY: in the cloned child, before exec.
    unsafe { child_before_exec(a.setup, a.paths, a.argv, a.sh_argv, a.failed) }
}

/// The child's side of the clone: new process group, terminal, signal
/// state, exec each candidate; on failure leave the errno in `failed` and
/// `_exit`.
///
/// # Safety
/// Must only be called in the freshly cloned child. Uses async-signal-safe
/// calls only, on memory prepared before the clone: the child shares it with
/// ward until exec, so it writes nothing but its own stack, `failed` and
/// the errno slot of `setup`'s `oom_score_adj` write.
unsafe fn child_before_exec(
    setup: &ChildSetup,
    paths: &[*const libc::c_char],
    argv: &[*const libc::c_char],
    sh_argv: &mut [*const libc::c_char],
    failed: &AtomicI32,
) -> ! {
    unsafe {
        libc::setpgid(0, 0);
        if setup.take_terminal {
            // Signals are still blocked here, so SIGTTOU cannot stop us.
            libc::tcsetpgrp(0, libc::getpid());
        }
        // Dispositions ward changed, back to what ward inherited: SIGTTIN,
        // SIGTTOU, SIGPIPE and musl's 33 and 34 ignored by ward, SIGCHLD set
        // to default by ward (by the raw system call: the libc's refuses
        // its own signals). exec keeps SIG_IGN, so a parent that ignored
        // SIGPIPE gets a workload that ignores it.
        for (&sig, &action) in crate::init::signals::RESTORED
            .iter()
            .zip(setup.dispositions.iter())
        {
            crate::init::signals::set_disposition(sig, action);
        }
        if let Some(w) = &setup.oom_adj {
            // Raising needs no privilege; a failure (a read-only /proc)
            // leaves the inherited value, and ward says so once exec is
            // done (`OomWrite::failure`).
            let fd = libc::open(w.path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            let written = fd >= 0 && libc::write(fd, w.bytes.as_ptr().cast(), w.len) >= 0;
            if !written {
                w.failed.store(*libc::__errno_location(), Ordering::Release);
            }
            if fd >= 0 {
                libc::close(fd);
            }
        }
        // The raw syscall: glibc would filter 32/33 out of the mask.
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &setup.mask,
            std::ptr::null_mut::<libc::sigset_t>(),
            crate::sigmask::KERNEL_SIGSET_BYTES,
        );

        unsafe extern "C" {
            static environ: *const *const libc::c_char;
        }
        let mut errno = libc::ENOENT;
        let mut saw_eacces = false;
        for &path in paths {
            libc::execve(path, argv.as_ptr(), environ);
            let e = *libc::__errno_location();
            match e {
                // Keep looking along PATH, as execvp does.
                libc::ENOENT | libc::ENOTDIR => {}
                libc::EACCES => saw_eacces = true,
                // Not a binary the kernel knows and no shebang: a shell
                // script, as execvp assumes. If /bin/sh itself cannot run,
                // ENOEXEC (126) is still the answer about this file.
                libc::ENOEXEC => {
                    sh_argv[1] = path;
                    libc::execve(SHELL.as_ptr(), sh_argv.as_ptr(), environ);
                    errno = e;
                    break;
                }
                _ => {
                    errno = e;
                    break;
                }
            }
        }
        if saw_eacces && errno == libc::ENOENT {
            errno = libc::EACCES;
        }
        failed.store(errno, Ordering::Release);
        libc::_exit(exec_failure(errno).0 as libc::c_int)
    }
}

/// True when stdin is a terminal whose foreground group is ward's own.
pub fn owns_terminal() -> bool {
    // SAFETY: isatty/tcgetpgrp/getpgrp take no pointers.
    unsafe { libc::isatty(0) == 1 && libc::tcgetpgrp(0) == libc::getpgrp() }
}

/// Gives the terminal's foreground back to ward's own group once the main
/// child (which took it, as group `child`) is done, as it was before: under
/// a shell, the shell's next read would otherwise fail. Left alone when
/// someone else has it by now. SIGTTOU is ignored and blocked in ward, so a
/// background group may set it.
pub fn give_terminal_back(child: i32) {
    // SAFETY: tcgetpgrp/tcsetpgrp/getpgrp take no pointers.
    unsafe {
        if libc::tcgetpgrp(0) == child {
            libc::tcsetpgrp(0, libc::getpgrp());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_program_names_to_run_it() {
        assert_eq!(
            runner_of(b"#!/nonexistent/interp -x\nrest"),
            Some(("its #! interpreter", "/nonexistent/interp".to_string()))
        );
        assert_eq!(
            runner_of(b"#! /bin/sh\r\necho"),
            Some(("its #! interpreter", "/bin/sh\r".to_string()))
        );
        assert_eq!(runner_of(b"#!"), None);
        assert_eq!(runner_of(b"#! \t\n"), None);
        assert_eq!(runner_of(b"plain text"), None);
        // The test binary itself is a dynamic ELF with a loader (or static
        // without one: then None, never a panic).
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        if let Some((kind, path)) = runner_of(&me[..4096]) {
            assert_eq!(kind, "its ELF loader");
            assert!(path.starts_with('/') && path.contains("ld"), "{path}");
        }
        // A built one, and the same cut short anywhere: never a panic.
        let mut elf = vec![0u8; 200];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[32] = 64; // e_phoff
        elf[54] = 56; // e_phentsize
        elf[56] = 1; // e_phnum
        elf[64] = 3; // PT_INTERP
        elf[72] = 150; // p_offset
        elf[96] = 11; // p_filesz
        elf[150..161].copy_from_slice(b"/lib/ld.so\0");
        assert_eq!(
            runner_of(&elf),
            Some(("its ELF loader", "/lib/ld.so".to_string()))
        );
        for cut in 0..elf.len() {
            let _ = runner_of(&elf[..cut]);
        }
        // Program headers said to lie at the very end of the address space.
        elf[32..40].copy_from_slice(&(u64::MAX - 2).to_le_bytes());
        assert_eq!(runner_of(&elf), None);
    }

    #[test]
    fn slash_means_no_path_search() {
        assert_eq!(
            candidates(OsStr::new("./app"), Some(OsStr::new("/bin"))),
            vec![OsString::from("./app")]
        );
    }

    #[test]
    fn path_search_in_order_with_empty_entry_as_cwd() {
        let got = candidates(OsStr::new("app"), Some(OsStr::new("/a:/b/::/c")));
        assert_eq!(
            got,
            ["/a/app", "/b/app", "./app", "/c/app"].map(OsString::from)
        );
    }

    #[test]
    fn default_path_when_unset() {
        let got = candidates(OsStr::new("sh"), None);
        assert!(got.contains(&OsString::from("/bin/sh")));
    }

    #[test]
    fn exec_errors_map_to_126_127() {
        assert_eq!(exec_failure(libc::ENOENT).0, 127);
        assert_eq!(exec_failure(libc::ENOTDIR).0, 127);
        assert_eq!(exec_failure(libc::EACCES).0, 126);
        assert_eq!(exec_failure(libc::ENOEXEC).0, 126);
    }
}
