//! `qofctl`: control a running qof through its `--ctl` socket (softflowctl's commands).

use clap::Parser;
use qof::control::{request, Command, ANSWER_TIMEOUT};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Control a running qof (started with --ctl PATH): softflowctl's commands.
#[derive(Parser, Debug)]
#[command(name = "qofctl", version, after_help = commands_help())]
struct Args {
    /// The control socket qof listens on (its --ctl).
    #[arg(
        short = 'c',
        long = "ctl",
        value_name = "PATH",
        default_value = "/run/qof.ctl"
    )]
    ctl: PathBuf,

    /// The command (see below).
    #[arg(value_name = "COMMAND")]
    command: String,
}

fn commands_help() -> String {
    let mut s = String::from("Commands:\n");
    for (_, word, what) in Command::ALL {
        s.push_str(&format!("  {word:<14} {what}\n"));
    }
    s
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
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
