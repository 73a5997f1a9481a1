//! The `ward` binary: parse the command line, then hand over to the library.
//!
//! Owns only dispatch and the three things printed before the library runs:
//! help, version and a usage error. None of them may panic: a closed stdout
//! (`ward --help | true`) is ignored, not an abort.

use std::io::Write as _;
use std::process::ExitCode;

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

fn main() -> ExitCode {
    let env = |name: &str| std::env::var_os(name);
    match cli::parse(std::env::args_os().skip(1), &env) {
        Ok(Invocation::Help) => print(&cli::help::help_text()),
        Ok(Invocation::Version) => print(&format!("ward {}\n", env!("CARGO_PKG_VERSION"))),
        Ok(Invocation::Run(cfg)) => ExitCode::from(ward::init::run(*cfg)),
        Ok(Invocation::Status(args)) => ExitCode::from(ward::status::main(args)),
        Ok(Invocation::Check(args)) => ExitCode::from(ward::check::main(args)),
        Err(e) => {
            // The format may itself be what was wrong, so honour the variable
            // only when it parses.
            let format = match std::env::var("WARD_LOG_FORMAT").as_deref() {
                Ok("json") => Format::Json,
                _ => Format::Human,
            };
            log::configure(Level::Error, format);
            log::event(Level::Error, "usage", &e.0, &[]);
            // The line is queued if stderr is slow; give it a moment, never forever.
            log::flush(std::time::Duration::from_secs(1));
            ExitCode::from(exit::USAGE)
        }
    }
}

/// Writes to stdout, ignoring failure: a reader that went away (EPIPE) has
/// nothing left to tell, and `print!` would panic on it.
fn print(text: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    ExitCode::SUCCESS
}
