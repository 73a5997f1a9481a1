//! The `ward` binary: parse the command line, then hand over to the library.
//!
//! Owns only dispatch, the process start-up that replaces std's, and the
//! three things printed before the library runs: help, version and a usage
//! error. None of them may panic: a closed stdout (`ward --help | true`) is
//! ignored, not an abort.

// ward starts itself instead of std's runtime start (`lang_start`). What std
// does there, ward does in `start_process` below, less the stack overflow
// handler: std installs a SIGSEGV/SIGBUS handler and an alternate signal
// stack for the main thread and for every thread it spawns (nine system calls
// and two page faults before the child starts, four more per thread), only to
// print a sentence ward no longer gets anyway (see `pthread_getattr_np`). The
// guard pages stay, so an overflow still stops ward with SIGSEGV. The
// arguments are read from `main`'s own `argv` ([`args`]): std's
// `std::env::args_os` is filled by `lang_start` on musl (only glibc hands
// them to std's `.init_array` entry). Under `cargo test`
// the harness brings its own `main` (and has no test here to run).
#![cfg_attr(not(test), no_main)]
#![cfg_attr(test, allow(dead_code))]

use std::ffi::{OsStr, OsString};
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt as _;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use ward::cli::{self, Invocation};
use ward::exit;
use ward::log::{self, Format, Level};

/// Stands in for glibc's `pthread_getattr_np`, which costs 96 KiB in a static
/// build: glibc reads `/proc/self/maps` with `sscanf`, and that pulls in all
/// of `vfscanf` and the `strtod`/`strtof128` family. Nothing in ward asks for
/// a thread's attributes; only std does, to learn where a thread's guard page
/// sits so that a stack overflow is reported as "thread 'x' has overflowed its
/// stack" rather than a plain SIGSEGV. std treats an error here as "guard
/// unknown" (`get_stack_start` returns `None`): the guard pages themselves
/// (the kernel's gap below the main stack, glibc's below each thread's) stay,
/// so an overflow still stops ward at once; only that sentence is lost.
/// Defined in the binary, not the library, so that only `ward` is affected.
#[unsafe(no_mangle)]
pub extern "C" fn pthread_getattr_np(
    _thread: libc::pthread_t,
    _attr: *mut libc::pthread_attr_t,
) -> libc::c_int {
    libc::ENOSYS
}

/// Stands in for glibc's `__assert_fail`, which only glibc's own start-up
/// code calls here (ward's code has no C `assert`). glibc's prints a
/// translated message: it pulls in `dcgettext` and `fxprintf` for a line
/// that, in a process that never calls `setlocale`, is always the
/// untranslated English this one writes. Then, as glibc's, it aborts. With
/// the `dlsym` below, 704 bytes of the binary. (In the test build too, so
/// that the test below runs this one.)
#[unsafe(no_mangle)]
pub extern "C" fn __assert_fail(
    assertion: *const libc::c_char,
    file: *const libc::c_char,
    line: libc::c_uint,
    function: *const libc::c_char,
) -> ! {
    // No allocation here: the line number goes into a buffer on the stack.
    let mut digits = [0u8; 10];
    let mut at = digits.len();
    let mut n = line;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let text = |p: *const libc::c_char| -> &[u8] {
        if p.is_null() {
            return b"?";
        }
        // SAFETY: glibc passes NUL-terminated constants.
        unsafe { std::ffi::CStr::from_ptr(p) }.to_bytes()
    };
    for part in [
        b"ward: ".as_slice(),
        text(file),
        b":",
        &digits[at..],
        b": ",
        text(function),
        b": Assertion `",
        text(assertion),
        b"' failed.\n",
    ] {
        // SAFETY: writing a valid slice to fd 2; a failed write changes nothing.
        unsafe { libc::write(2, part.as_ptr().cast(), part.len()) };
    }
    // SAFETY: ends the process, as glibc's does.
    unsafe { libc::abort() }
}

/// Stands in for `dlsym`, which in a static binary finds nothing: glibc's
/// answers NULL for every name (std asks it for optional functions such as
/// `__pthread_get_minstack` and then uses its fallback). This one answers
/// NULL without glibc's `dlerror` text, which pulls in its message
/// catalogue code.
#[unsafe(no_mangle)]
pub extern "C" fn dlsym(
    _handle: *mut libc::c_void,
    _symbol: *const libc::c_char,
) -> *mut libc::c_void {
    std::ptr::null_mut()
}

/// `main`'s `argc` and `argv`, kept for [`args`].
static ARGC: AtomicUsize = AtomicUsize::new(0);
static ARGV: AtomicPtr<*const libc::c_char> = AtomicPtr::new(std::ptr::null_mut());

/// The process entry point (C `main`, called by the libc's start-up code).
#[cfg(not(test))]
#[unsafe(no_mangle)]
pub extern "C" fn main(argc: libc::c_int, argv: *const *const libc::c_char) -> libc::c_int {
    ARGC.store(usize::try_from(argc).unwrap_or(0), Ordering::Relaxed);
    ARGV.store(argv.cast_mut(), Ordering::Relaxed);
    start_process();
    libc::c_int::from(ward::stack::with_room(dispatch))
}

/// What std's runtime start does and ward needs: fds 0-2 open (a closed one
/// would be taken by the next file ward opens, and the child would inherit
/// that as its stdin or stdout), and SIGPIPE ignored (a write to a stderr
/// nobody reads must fail with EPIPE, not become a pending signal that the
/// signalfd would pass on to the child). The inherited SIGPIPE disposition,
/// which the child gets back, was recorded before this (`.init_array`).
fn start_process() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: three valid pollfds; a zero timeout only reports POLLNVAL.
    if unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) } > 0 {
        for p in fds.iter().filter(|p| p.revents & libc::POLLNVAL != 0) {
            // SAFETY: a constant C path; open takes the lowest free fd, the
            // closed one.
            let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
            if fd != p.fd && fd >= 0 {
                // Not the slot expected (cannot happen: fds are taken lowest
                // first); keep going, ward's own files simply sit higher.
                // SAFETY: closing the fd just opened.
                unsafe { libc::close(fd) };
            }
        }
    }
    // SAFETY: setting a standard disposition for one signal.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

/// The command line after the program's name, from `main`'s `argv` (std's,
/// in the test build, which has no `main` of ward's).
fn args() -> Vec<OsString> {
    let argv = ARGV.load(Ordering::Relaxed);
    if argv.is_null() {
        return std::env::args_os().skip(1).collect();
    }
    (1..ARGC.load(Ordering::Relaxed))
        // SAFETY: `argv` holds `argc` pointers, as the libc passed them to
        // `main`, each a NUL-terminated string that lives as long as the
        // process (nothing in ward writes to them).
        .map(|i| unsafe { *argv.add(i) })
        .take_while(|p| !p.is_null())
        // SAFETY: as above.
        .map(|p| {
            OsStr::from_bytes(unsafe { std::ffi::CStr::from_ptr(p) }.to_bytes()).to_os_string()
        })
        .collect()
}

fn dispatch() -> u8 {
    let vars = cli::ward_variables_now();
    let env = |name: &str| cli::variable(&vars, name);
    match cli::parse(args(), &env) {
        Ok(Invocation::Help) => print(&cli::help::help_text()),
        Ok(Invocation::Version) => print(&format!("ward {}\n", env!("CARGO_PKG_VERSION"))),
        Ok(Invocation::Run(cfg)) => ward::init::run(*cfg),
        Ok(Invocation::Status(args)) => ward::status::main(args),
        Ok(Invocation::Check(args)) => ward::check::main(args),
        Err(e) => {
            log::configure(Level::Error, usage_error_format());
            log::event(Level::Error, "usage", &e.0, &[]);
            // The line is queued if stderr is slow; give it a moment, never forever.
            log::flush(std::time::Duration::from_secs(1));
            exit::USAGE
        }
    }
}

/// The format a usage error is written in: JSON when `--log-format json`
/// (or `=json`) comes before the command's `--`, or else `WARD_LOG_FORMAT`
/// says json, as the rest of the run's lines would be. The format may itself
/// be what was wrong, so anything but json is human.
fn usage_error_format() -> Format {
    let is_json = |v: &[u8]| v.trim_ascii() == b"json";
    let mut json =
        std::env::var_os("WARD_LOG_FORMAT").is_some_and(|v| is_json(v.as_encoded_bytes()));
    let mut args = args().into_iter();
    while let Some(arg) = args.next() {
        match arg.as_encoded_bytes() {
            b"--" => break,
            b"--log-format" => json = args.next().is_some_and(|v| is_json(v.as_encoded_bytes())),
            a => {
                if let Some(v) = a.strip_prefix(b"--log-format=") {
                    json = is_json(v);
                }
            }
        }
    }
    if json { Format::Json } else { Format::Human }
}

/// Writes to stdout, ignoring failure: a reader that went away (EPIPE) has
/// nothing left to tell, and `print!` would panic on it.
fn print(text: &str) -> u8 {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    exit::OK
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stand-in, called in a forked child with stderr on a pipe: glibc's
    /// line, then SIGABRT.
    #[test]
    fn assert_fail_says_glibcs_line_and_aborts() {
        let mut fds = [0; 2];
        // SAFETY: a valid array for the two ends.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: the child only dup2s, calls the stand-in (write + abort)
        // and never returns into the harness.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork");
        if pid == 0 {
            // SAFETY: fds from pipe(2); the child's own copies.
            unsafe {
                libc::dup2(fds[1], 2);
                // No core file from the abort.
                let none = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                libc::setrlimit(libc::RLIMIT_CORE, &none);
                __assert_fail(
                    c"n > 0".as_ptr(),
                    c"dl-support.c".as_ptr(),
                    4096,
                    c"_dl_aux_init".as_ptr(),
                );
            }
        }
        // SAFETY: the parent's write end, closed so the read sees the end.
        unsafe { libc::close(fds[1]) };
        let mut out = Vec::new();
        let mut buf = [0u8; 256];
        loop {
            // SAFETY: reading into a valid buffer.
            let n = unsafe { libc::read(fds[0], buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                break;
            }
            out.extend_from_slice(&buf[..n as usize]);
        }
        let mut status = 0;
        // SAFETY: waiting for the child just forked.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "ward: dl-support.c:4096: _dl_aux_init: Assertion `n > 0' failed.\n"
        );
        assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGABRT);
    }

    /// NULL for every name, as glibc's static `dlsym` answers.
    #[test]
    fn dlsym_finds_nothing() {
        assert!(dlsym(libc::RTLD_DEFAULT, c"malloc".as_ptr()).is_null());
    }
}
