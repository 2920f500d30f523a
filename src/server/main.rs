//! The koopstream binary: parses the command line, runs the chosen command
//! (`koopstream::cmd`, one module per command) and reports a failure once: the error and
//! only those causes whose text it does not already contain, with a backtrace only when
//! `RUST_BACKTRACE` or `RUST_LIB_BACKTRACE` asks for one.

use std::process::ExitCode;

use clap::Parser;
use koopstream::cmd::{Cli, run};

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let error = anyhow::Error::from(error);
            eprintln!("error: {}", report(error.chain().map(ToString::to_string)));
            // anyhow captures a backtrace only when one of the variables asks for it.
            let backtrace = error.backtrace();
            if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
                eprintln!("\nbacktrace:\n{backtrace}");
            }
            ExitCode::FAILURE
        }
    }
}

/// The message of an error chain (outermost first): the top message, then, one per line,
/// each cause whose text is not already part of what is printed. Our errors often quote
/// their source in their own message (`cannot open x: No such file`), and transparent
/// wrappers repeat it whole, so a plain chain would say the same thing two or three times.
fn report(chain: impl IntoIterator<Item = String>) -> String {
    let mut out = String::new();
    for message in chain {
        let message = message.trim();
        if message.is_empty() || out.contains(message) {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\n  caused by: ");
        }
        out.push_str(message);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::report;

    fn chain(messages: &[&str]) -> String {
        report(messages.iter().map(|m| (*m).to_owned()))
    }

    #[test]
    fn a_cause_quoted_by_its_wrapper_is_printed_once() {
        let top = "cannot open data.csv: No such file or directory (os error 2)";
        assert_eq!(chain(&[top, top, "No such file or directory (os error 2)"]), top);
    }

    #[test]
    fn new_causes_follow_on_their_own_lines() {
        assert_eq!(
            chain(&["cannot start a local server", "address in use", "address in use"]),
            "cannot start a local server\n  caused by: address in use"
        );
        assert_eq!(chain(&["only one"]), "only one");
        assert_eq!(chain(&["top", "", "top"]), "top");
    }
}
