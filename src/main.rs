//! The `ward` binary: parse the command line, then hand over to the library.

use std::process::ExitCode;

use ward::cli::{self, Invocation};
use ward::exit;
use ward::log::{self, Format, Level};

fn main() -> ExitCode {
    // `ward check TARGET`: the health probe, with its own options and exit codes.
    let mut args = std::env::args_os().skip(1);
    if args.next().is_some_and(|first| first == "check") {
        return ExitCode::from(ward::check::main(args.collect()));
    }
    let env = |name: &str| std::env::var(name).ok();
    match cli::parse(std::env::args_os().skip(1), &env) {
        Ok(Invocation::Help) => {
            print!("{}", cli::HELP);
            ExitCode::SUCCESS
        }
        Ok(Invocation::Version) => {
            println!("ward {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Ok(Invocation::Run(cfg)) => ExitCode::from(ward::init::run(*cfg)),
        Err(e) => {
            // The format may itself be what was wrong, so honour the variable
            // only when it parses.
            let format = match std::env::var("WARD_LOG_FORMAT").as_deref() {
                Ok("json") => Format::Json,
                _ => Format::Human,
            };
            log::configure(Level::Error, format);
            log::event(Level::Error, "usage", &e.0, &[]);
            ExitCode::from(exit::USAGE)
        }
    }
}
