//! `cargo xtask dist DIR`: the files a package installs beside the binaries, generated from
//! qof's, qofdump's and qofctl's clap definitions: man pages (`DIR/man/man1/qof.1`,
//! `qofdump.1`, `qofctl.1`) and shell completions for bash, zsh and fish (`DIR/completions/`).

use clap::CommandFactory;
use clap_complete::Shell;
use qof::config::{Args, DumpArgs};
use qof::control::CtlArgs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = match args.as_slice() {
        [task, dir] if task == "dist" => PathBuf::from(dir),
        _ => {
            eprintln!("usage: cargo xtask dist DIR   (man pages and shell completions into DIR)");
            return ExitCode::from(2);
        }
    };
    match dist(&out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {}: {e}", out.display());
            ExitCode::FAILURE
        }
    }
}

fn dist(out: &Path) -> std::io::Result<()> {
    let man = out.join("man/man1");
    let completions = out.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions)?;
    for mut cmd in [Args::command(), DumpArgs::command(), CtlArgs::command()] {
        let name = cmd.get_name().to_string();
        cmd = cmd.version(env!("CARGO_PKG_VERSION"));
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd.clone())
            .section("1")
            .source(format!("qof {}", qof_version()))
            .manual("qof")
            .render(&mut page)?;
        std::fs::write(man.join(format!("{name}.1")), page)?;
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            // Each shell's own file name: bash-completion's NAME, zsh's _NAME, fish's NAME.fish.
            clap_complete::generate_to(shell, &mut cmd, &name, &completions)?;
        }
    }
    Ok(())
}

/// qof's version (the library's), not the xtask's.
fn qof_version() -> &'static str {
    qof::VERSION
}
