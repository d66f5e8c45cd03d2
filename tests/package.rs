//! The Debian package of `scripts/package`, unpacked and tried: binaries that run (with Kafka
//! support), man pages, shell completions, and a systemd unit that `systemd-analyze verify`
//! accepts. Ignored by `cargo test` (it builds a release package, a few minutes);
//! `scripts/test` runs it: `cargo test --test package -- --ignored`.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/mixed.pcap")
}

fn ok(cmd: &mut Command) -> String {
    let o = run(cmd);
    assert!(
        o.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
#[ignore = "builds a release package: scripts/test runs it"]
fn the_package_installs_what_a_user_needs() {
    let out = ok(&mut Command::new(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/package"),
    ));
    let deb = PathBuf::from(out.lines().last().expect("scripts/package printed nothing"));
    assert!(
        deb.is_file() && deb.extension().is_some_and(|e| e == "deb"),
        "{deb:?}"
    );

    // The control file: the package, and the shared libraries it needs (OpenSSL for Kafka's
    // TLS and SCRAM, the C library) as dependencies.
    let info = ok(Command::new("dpkg-deb").arg("--info").arg(&deb));
    assert!(info.contains("Package: qof"), "{info}");
    let depends = info
        .lines()
        .find(|l| l.trim_start().starts_with("Depends:"))
        .unwrap_or_else(|| panic!("no Depends: {info}"));
    assert!(
        depends.contains("libc6") && depends.contains("libssl"),
        "{depends}"
    );

    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    ok(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(root));
    let contents = ok(Command::new("dpkg-deb").arg("--contents").arg(&deb));
    for path in [
        "./usr/bin/qof",
        "./usr/bin/qofdump",
        "./usr/bin/qofctl",
        "./usr/share/man/man1/qof.1.gz",
        "./usr/share/man/man1/qofdump.1.gz",
        "./usr/share/man/man1/qofctl.1.gz",
        "./usr/share/bash-completion/completions/qofctl",
        "./usr/share/bash-completion/completions/qof",
        "./usr/share/zsh/vendor-completions/_qof",
        "./usr/share/fish/vendor_completions.d/qof.fish",
        "./usr/lib/systemd/system/qof@.service",
        "./usr/share/doc/qof/docs/running-as-a-service.md",
        "./usr/share/doc/qof/examples/qof.conf",
    ] {
        assert!(
            contents.lines().any(|l| l.ends_with(path)),
            "{path} not in the package"
        );
        // Owned by root, not by whoever built it.
        assert!(
            contents
                .lines()
                .any(|l| l.ends_with(path) && l.contains("root/root")),
            "{path} not root's"
        );
    }

    // The binaries run: the version, and the sample's records as the tests' build makes them.
    let packaged_qof = root.join("usr/bin/qof");
    let packaged_qofdump = root.join("usr/bin/qofdump");
    assert!(ok(Command::new(&packaged_qof).arg("--version")).starts_with("qof 0."));
    assert!(ok(Command::new(&packaged_qofdump).arg("--version")).starts_with("qofdump 0."));
    assert!(
        ok(Command::new(root.join("usr/bin/qofctl")).arg("--version")).starts_with("qofctl 0.")
    );
    let packaged = ok(Command::new(&packaged_qof)
        .arg("--in")
        .arg(sample())
        .args(["--format", "json"]));
    let built = ok(qof().arg("--in").arg(sample()).args(["--format", "json"]));
    assert_eq!(packaged, built);
    assert!(!packaged.is_empty());
    // Built with Kafka: an unreachable broker is a run with every record counted lost, not
    // "built without Kafka support".
    let o = run(Command::new(&packaged_qof).arg("--in").arg(sample()).args([
        "--kafka",
        "127.0.0.1:1",
        "--kafka-topic",
        "t",
        "--export-timeout",
        "0",
    ]));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("records lost"), "{stderr}");
    assert!(!stderr.contains("without Kafka support"), "{stderr}");

    // Man pages: roff that man renders, naming every option.
    for (page, options) in [
        (
            "qof",
            &["--in", "--kafka-topic", "--export-timeout", "--plugin"][..],
        ),
        ("qofdump", &["--element-xml", "--kafka"][..]),
        ("qofctl", &["--ctl", "statistics"][..]),
    ] {
        let file = root.join(format!("usr/share/man/man1/{page}.1.gz"));
        let text = ok(Command::new("man")
            .args(["-l", "-P", "cat"])
            .arg(&file)
            .env("MANWIDTH", "200"));
        assert!(text.contains("NAME") && text.contains(page), "{text}");
        for o in options {
            assert!(text.contains(o), "{page}(1) lacks {o}");
        }
    }

    // Completions: bash loads its file and completes qof's options; zsh's and fish's files
    // are theirs and know the options.
    let bash = root.join("usr/share/bash-completion/completions/qof");
    let words = ok(Command::new("bash").arg("-c").arg(format!(
        "source '{}' && COMP_WORDS=(qof --kafka-t) COMP_CWORD=1 COMP_LINE='qof --kafka-t' \
         COMP_POINT=13 && _qof qof --kafka-t qof && printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        bash.display()
    )));
    assert_eq!(words.trim(), "--kafka-topic", "bash completion");
    let zsh = std::fs::read_to_string(root.join("usr/share/zsh/vendor-completions/_qof")).unwrap();
    assert!(zsh.starts_with("#compdef qof") && zsh.contains("--kafka-topic"));
    let fish =
        std::fs::read_to_string(root.join("usr/share/fish/vendor_completions.d/qof.fish")).unwrap();
    assert!(fish.contains("complete -c qof") && fish.contains("kafka-topic"));

    // The unit: systemd-analyze verify in the unpacked tree (its ExecStart must be there),
    // beside the system's own units (the targets it orders itself after).
    let units = root.join("usr/lib/systemd/system");
    for e in std::fs::read_dir("/usr/lib/systemd/system").unwrap() {
        let e = e.unwrap();
        let to = units.join(e.file_name());
        if !to.exists() {
            let _ = std::fs::copy(e.path(), to);
        }
    }
    let o = run(Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(format!("--root={}", root.display()))
        .arg("qof@eth0.service"));
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "systemd-analyze verify: {said}");
    assert!(said.trim().is_empty(), "systemd-analyze verify: {said}");
    // Hardened: systemd rates its exposure 1.8 of 10 ("OK"); more than 2.5 fails.
    let o = run(Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--threshold=25"])
        .arg(format!("--root={}", root.display()))
        .arg("qof@eth0.service"));
    let rating = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "systemd-analyze security: {rating}");
    let unit = std::fs::read_to_string(units.join("qof@.service")).unwrap();
    for line in [
        "Type=notify",
        "DynamicUser=yes",
        "CapabilityBoundingSet=CAP_NET_RAW",
        "AmbientCapabilities=CAP_NET_RAW",
        "EnvironmentFile=/etc/qof/%i.conf",
        "ExecStart=/usr/bin/qof --yaml /etc/qof/%i.yaml $QOF_ARGS",
        "RuntimeDirectory=qof/%i",
    ] {
        assert!(unit.lines().any(|l| l == line), "the unit lacks {line}");
    }
}
