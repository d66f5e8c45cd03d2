//! `qofctl`: control a running qof through its `--ctl` socket (softflowctl's commands).

use clap::Parser;
use qof::control::{request, Command, CtlArgs, ANSWER_TIMEOUT};
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let args = match CtlArgs::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    if Command::parse(&args.command).is_none() {
        eprintln!(
            "qofctl: unknown command `{}` (commands: {})",
            args.command,
            Command::words()
        );
        return ExitCode::from(2);
    }
    // (qof answers within its own timeout; a little more here, so that its word comes.)
    let timeout = ANSWER_TIMEOUT + Duration::from_secs(5);
    match request(&args.ctl, &args.command, timeout) {
        Ok(answer) => {
            print!("{answer}");
            if answer.starts_with("error: ") {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("qofctl: {}: {e}", args.ctl.display());
            ExitCode::from(1)
        }
    }
}
