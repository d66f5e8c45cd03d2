//! Output files that cannot be turned against qof (issue 12): links planted at every name it
//! writes, an output that is the input, a full disk, `--become-user` into a directory its
//! user cannot write, a FIFO input with no writer, a second signal. Each checks what is on
//! disk afterwards (the victim's bytes, directory listings), the exit status and the one
//! error line. The parts that need root (a tmpfs, another user, a packet socket) say so and
//! return when not root.

mod common;

use common::*;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/mixed.pcap")
}

/// A capture whose IPFIX (76 KB) and JSON outputs are both far larger than 16 KiB.
fn large_capture() -> PathBuf {
    corpus_dir().join("ndpi__synscan.pcap")
}

fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// The names in `dir`, hidden ones included, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A file the test owns, which qof must never write through a link.
fn victim(dir: &Path) -> PathBuf {
    let p = dir.join("victim");
    std::fs::write(&p, b"the victim's own bytes\n").unwrap();
    p
}

fn assert_victim_untouched(p: &Path) {
    assert_eq!(
        std::fs::read(p).unwrap(),
        b"the victim's own bytes\n",
        "{} was written through a link",
        p.display()
    );
}

/// qof's JSON lines for the sample, as standard output gets them.
fn reference_json() -> Vec<u8> {
    let out = run(qof().arg("--in").arg(sample()).args(["--format", "json"]));
    assert!(out.status.success());
    assert!(!out.stdout.is_empty());
    out.stdout
}

/// A regular file (not a link) holding an IPFIX stream.
fn assert_ipfix_file(p: &Path) {
    let meta = std::fs::symlink_metadata(p).unwrap();
    assert!(meta.is_file(), "{} is not a regular file", p.display());
    let bytes = std::fs::read(p).unwrap();
    assert!(
        bytes.len() > 16 && bytes[..2] == [0, 10],
        "{}: not IPFIX",
        p.display()
    );
}

/// Exactly one line on standard error, `qof: ` + `starts`, and exit status 1: no summary,
/// so nothing claims records were exported.
fn assert_one_error_line(out: &Output, starts: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "exit status: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.starts_with(&format!("qof: {starts}")),
        "expected `qof: {starts}...`: {stderr}"
    );
    assert!(!stderr.contains("packets read"), "a summary: {stderr}");
    stderr
}

/// Waits for `child` at most `limit`; kills it and fails if it is still running then.
fn wait_at_most(mut child: Child, limit: Duration, what: &str) -> Output {
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{what}: qof still ran after {limit:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn signal(child: &Child, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
}

/// Waits (at most 20 s) until `ready` holds; otherwise kills `child` (no qof is left
/// behind) and fails with `what`.
fn wait_until(child: &mut Child, what: &str, mut ready: impl FnMut(&Child) -> bool) {
    let t0 = Instant::now();
    while !ready(child) {
        if t0.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn mkfifo(p: &Path) {
    let made = std::process::Command::new("mkfifo")
        .arg(p)
        .status()
        .unwrap();
    assert!(made.success());
}

/// Whether process `pid` has `path` open.
fn has_open(pid: u32, path: &Path) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
        fds.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .any(|l| l == path)
    })
}

#[test]
fn a_link_at_the_output_name_is_replaced_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let victim = victim(dir);
    let nowhere = dir.join("nowhere");
    let json = reference_json();
    for (name, to) in [
        ("flows.ipfix", &victim),
        ("dangling.ipfix", &nowhere),
        ("flows.json", &victim),
        ("dangling.json", &nowhere),
    ] {
        let out_path = dir.join(name);
        symlink(to, &out_path).unwrap();
        let mut cmd = qof();
        cmd.arg("--in").arg(sample()).arg("--out").arg(&out_path);
        if name.ends_with(".json") {
            cmd.args(["--format", "json"]);
        }
        let out = run(&mut cmd);
        assert!(out.status.success(), "{name}: {out:?}");
        assert_victim_untouched(&victim);
        assert!(!nowhere.exists(), "{name}: a dangling link made a file");
        if name.ends_with(".json") {
            assert!(std::fs::symlink_metadata(&out_path).unwrap().is_file());
            assert_eq!(std::fs::read(&out_path).unwrap(), json, "{name}");
        } else {
            assert_ipfix_file(&out_path);
        }
    }
    assert_eq!(
        listing(dir),
        [
            "dangling.ipfix",
            "dangling.json",
            "flows.ipfix",
            "flows.json",
            "victim"
        ]
    );
}

/// The hidden name of qof before this issue was `.NAME.partial`: a link planted there now
/// lies beside a name qof does not use, and stays as it was.
#[test]
fn a_link_at_the_old_hidden_name_is_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let victim = victim(dir);
    let nowhere = dir.join("nowhere");
    symlink(&victim, dir.join(".flows.ipfix.partial")).unwrap();
    symlink(&nowhere, dir.join(".flows.json.partial")).unwrap();
    let out = run(qof()
        .arg("--in")
        .arg(sample())
        .arg("--out")
        .arg(dir.join("flows.ipfix")));
    assert!(out.status.success(), "{out:?}");
    let out = run(qof()
        .arg("--in")
        .arg(sample())
        .args(["--format", "json", "--out"])
        .arg(dir.join("flows.json")));
    assert!(out.status.success(), "{out:?}");
    assert_victim_untouched(&victim);
    assert!(!nowhere.exists());
    assert_eq!(
        std::fs::read_link(dir.join(".flows.ipfix.partial")).unwrap(),
        victim
    );
    assert_eq!(
        std::fs::read_link(dir.join(".flows.json.partial")).unwrap(),
        nowhere
    );
    assert_ipfix_file(&dir.join("flows.ipfix"));
    assert_eq!(
        std::fs::read(dir.join("flows.json")).unwrap(),
        reference_json()
    );
    assert_eq!(
        listing(dir),
        [
            ".flows.ipfix.partial",
            ".flows.json.partial",
            "flows.ipfix",
            "flows.json",
            "victim"
        ]
    );
}

#[test]
fn a_link_at_a_rotated_name_is_replaced_not_followed() {
    // The name the sample's first file gets (from its packet time), learnt from a clean run.
    let clean = tempfile::tempdir().unwrap();
    let out = run(qof()
        .arg("--in")
        .arg(sample())
        .arg("--out")
        .arg(clean.path().join("flows"))
        .args(["--rotate", "3600", "--lock"]));
    assert!(out.status.success(), "{out:?}");
    let names = listing(clean.path());
    assert_eq!(names.len(), 1, "{names:?}");
    let rotated = &names[0];
    assert!(rotated.starts_with("flows-") && rotated.ends_with(".ipfix"));

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let victim = victim(dir);
    symlink(&victim, dir.join(rotated)).unwrap();
    // And at the hidden name qof used to write it under.
    let old_hidden = format!(".{rotated}.partial");
    symlink(&victim, dir.join(&old_hidden)).unwrap();
    let out = run(qof()
        .arg("--in")
        .arg(sample())
        .arg("--out")
        .arg(dir.join("flows"))
        .args(["--rotate", "3600", "--lock"]));
    assert!(out.status.success(), "{out:?}");
    assert_victim_untouched(&victim);
    assert_ipfix_file(&dir.join(rotated));
    assert_eq!(std::fs::read_link(dir.join(&old_hidden)).unwrap(), victim);
    assert_eq!(
        listing(dir),
        [old_hidden.as_str(), rotated.as_str(), "victim"]
    );
}

/// `NAME.lock` is created only if nothing has that name: a link there is a lock held by
/// someone, never a file to write through, and qof writes nothing.
#[test]
fn a_link_at_the_lock_name_is_an_existing_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let victim = victim(dir);
    let nowhere = dir.join("nowhere");
    for (name, to) in [("flows.ipfix", &victim), ("other.ipfix", &nowhere)] {
        let out_path = dir.join(name);
        let lock = dir.join(format!("{name}.lock"));
        symlink(to, &lock).unwrap();
        let out = run(qof()
            .arg("--in")
            .arg(sample())
            .arg("--out")
            .arg(&out_path)
            .arg("--lock"));
        let line = assert_one_error_line(&out, &format!("--out {}: ", out_path.display()));
        assert!(
            line.contains(&format!("{} exists", lock.display())),
            "{line}"
        );
        assert_victim_untouched(&victim);
        assert!(!nowhere.exists());
        assert!(!out_path.exists());
    }
    assert_eq!(
        listing(dir),
        ["flows.ipfix.lock", "other.ipfix.lock", "victim"]
    );
}

/// A link is followed to a FIFO or device (written in place) only when root or qof's own
/// user made it: one planted by another user is replaced like any other name. (Root only:
/// the link must belong to another user.)
#[test]
fn a_link_planted_by_another_user_is_not_followed_to_a_fifo() {
    if !is_root() {
        println!("skipped: needs root to give a link to another user");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let fifo = dir.join("pipe");
    mkfifo(&fifo);
    let out_path = dir.join("flows.ipfix");
    symlink(&fifo, &out_path).unwrap();
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    std::os::unix::fs::lchown(&out_path, Some(nobody.uid.as_raw()), None).unwrap();
    // Written through the link, the FIFO (no reader) would keep qof waiting.
    let child = qof()
        .arg("--in")
        .arg(sample())
        .arg("--out")
        .arg(&out_path)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_at_most(child, Duration::from_secs(30), "a link to a FIFO");
    assert!(out.status.success(), "{out:?}");
    assert_ipfix_file(&out_path);
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    assert_eq!(listing(dir), ["flows.ipfix", "pipe"]);
}

#[test]
fn the_output_is_never_the_input() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let input = dir.join("capture.pcap");
    std::fs::copy(sample(), &input).unwrap();
    let bytes = std::fs::read(&input).unwrap();
    std::fs::hard_link(&input, dir.join("hard.pcap")).unwrap();
    symlink(&input, dir.join("soft.pcap")).unwrap();
    let before = listing(dir);
    for name in ["capture.pcap", "hard.pcap", "soft.pcap"] {
        let out_path = dir.join(name);
        for format in ["ipfix", "json"] {
            let out = run(qof()
                .arg("--in")
                .arg(&input)
                .arg("--out")
                .arg(&out_path)
                .args(["--format", format]));
            assert_one_error_line(
                &out,
                &format!(
                    "--out {}: is the capture being read (the same file as the input); \
                     refusing to overwrite it",
                    out_path.display()
                ),
            );
            assert_eq!(std::fs::read(&input).unwrap(), bytes, "{name} {format}");
            assert_eq!(listing(dir), before, "{name} {format}");
        }
    }
    // The capture on standard input (`qof --out capture.pcap < capture.pcap`).
    let out = run(qof()
        .arg("--out")
        .arg(&input)
        .stdin(std::fs::File::open(&input).unwrap()));
    assert_one_error_line(&out, &format!("--out {}: is the capture", input.display()));
    assert_eq!(std::fs::read(&input).unwrap(), bytes);
    assert_eq!(listing(dir), before);
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(ok.success(), "mount tmpfs");
        Tmpfs(dir)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.0.path())
            .status();
    }
}

#[test]
fn a_full_disk_fails_naming_the_file_and_leaves_nothing() {
    if !is_root() {
        println!("skipped: mounting a 16 KiB tmpfs needs root");
        return;
    }
    let disk = Tmpfs::mount("16k");
    let dir = disk.path();
    let cases: [(&str, &[&str], &str); 3] = [
        ("flows.ipfix", &[], "flows.ipfix"),
        ("flows.json", &["--format", "json"], "flows.json"),
        // Rotated files are named after the capture's packet time.
        ("flows", &["--rotate", "3600", "--lock"], "flows-"),
    ];
    for (name, args, failing) in cases {
        let out = run(qof()
            .arg("--in")
            .arg(large_capture())
            .arg("--out")
            .arg(dir.join(name))
            .args(args));
        let line = assert_one_error_line(&out, &format!("--out {}", dir.join(failing).display()));
        assert!(
            line.trim_end()
                .ends_with(": No space left on device (os error 28)"),
            "{name}: {line}"
        );
        assert!(listing(dir).is_empty(), "{name}: left {:?}", listing(dir));
    }
}

/// `--become-user nobody` with the output in a directory only root may enter: qof says so
/// before it reads a packet (the input is a FIFO that sends its header and then waits, so a
/// qof that read on would never end), and leaves no hidden file and no lock.
#[test]
fn become_user_into_a_root_only_directory_fails_before_reading() {
    if !is_root() {
        println!("skipped: --become-user needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let locked = tmp.path().join("root-only");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let header = std::fs::read(sample()).unwrap()[..24].to_vec();
    let cases: [(&str, &[&str], String); 3] = [
        (
            "flows.ipfix",
            &["--lock"],
            format!("cannot look in {}: Permission denied", locked.display()),
        ),
        (
            "flows",
            &["--rotate", "60", "--lock"],
            format!(
                "cannot create a file in {}: Permission denied",
                locked.display()
            ),
        ),
        (
            "flows.json",
            &["--format", "json"],
            format!("cannot look in {}: Permission denied", locked.display()),
        ),
    ];
    for (name, args, why) in cases {
        let fifo = tmp.path().join("input.fifo");
        mkfifo(&fifo);
        // The capture's header, then nothing: the FIFO stays open (read and write, so that
        // opening it waits for no reader) until qof has ended.
        let mut held = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo)
            .unwrap();
        std::io::Write::write_all(&mut held, &header).unwrap();
        let out_path = locked.join(name);
        let child = qof()
            .arg("--in")
            .arg(&fifo)
            .arg("--out")
            .arg(&out_path)
            .args(args)
            .args(["--become-user", "nobody"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = wait_at_most(child, Duration::from_secs(30), name);
        let line = assert_one_error_line(&out, &format!("--out {}: ", out_path.display()));
        assert!(line.contains(&why), "{name}: {line}");
        assert!(
            listing(&locked).is_empty(),
            "{name}: {:?}",
            listing(&locked)
        );
        drop(held);
        std::fs::remove_file(&fifo).unwrap();
    }
}

/// The same, into a directory the user may write: the file is created, owned and published
/// by that user, and its lock goes.
#[test]
fn become_user_writes_as_that_user() {
    if !is_root() {
        println!("skipped: --become-user needs root");
        return;
    }
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nobodys");
    std::fs::create_dir(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(nobody.uid.as_raw()), Some(nobody.gid.as_raw())).unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    // (Traversable by nobody: the tempdir is root's and 0700.)
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let out_path = dir.join("flows.ipfix");
    let out = run(qof()
        .arg("--in")
        .arg(sample())
        .arg("--out")
        .arg(&out_path)
        .args(["--lock", "--become-user", "nobody"]));
    assert!(out.status.success(), "{out:?}");
    assert_ipfix_file(&out_path);
    assert_eq!(
        std::fs::metadata(&out_path).unwrap().uid(),
        nobody.uid.as_raw()
    );
    assert_eq!(listing(&dir), ["flows.ipfix"]);
}

/// A FIFO that no writer opens: opening it for reading would wait for ever, deaf to signals.
/// qof waits in a way SIGTERM ends: the run ends as a stop ends it (exit 0, the output
/// published, without packets). The same with a writer that opens it and sends nothing.
#[test]
fn a_fifo_without_a_writer_ends_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("input.fifo");
    mkfifo(&fifo);
    // (As /proc names it.)
    let fifo = fifo.canonicalize().unwrap();
    for writer in [false, true] {
        let out_path = tmp.path().join(format!("writer-{writer}.ipfix"));
        let mut child = qof()
            .arg("--in")
            .arg(&fifo)
            .arg("--out")
            .arg(&out_path)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // qof is waiting once it holds the FIFO open (its signal handlers are set before).
        wait_until(&mut child, "qof never opened the FIFO", |c| {
            has_open(c.id(), &fifo)
        });
        let silent = writer.then(|| std::fs::OpenOptions::new().write(true).open(&fifo).unwrap());
        signal(&child, nix::sys::signal::Signal::SIGTERM);
        let out = wait_at_most(child, Duration::from_secs(10), "SIGTERM on a FIFO");
        drop(silent);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "writer {writer}: {stderr}");
        assert!(stderr.contains("qof: 0 packets read"), "{stderr}");
        assert_ipfix_file(&out_path);
    }
    assert_eq!(
        listing(tmp.path()),
        ["input.fifo", "writer-false.ipfix", "writer-true.ipfix"]
    );
}

/// A FIFO with a writer is read as any capture.
#[test]
fn a_fifo_input_gives_the_same_flows_as_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("input.fifo");
    mkfifo(&fifo);
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::write(fifo, std::fs::read(sample()).unwrap()))
    };
    let out = run(qof().arg("--in").arg(&fifo).args(["--format", "json"]));
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, reference_json());
}

/// A second SIGINT or SIGTERM ends qof at once, and its unfinished hidden file and lock go
/// with it. (A live capture keeps reading for 0.2 s after the first signal, long enough for
/// the second to come while qof still runs; root only.)
#[test]
fn a_second_signal_leaves_no_hidden_file_or_lock() {
    if !is_root() {
        println!("skipped: live capture needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out_path = tmp.path().join("flows.ipfix");
    let mut child = qof()
        .args(["--in", "int:lo", "--lock", "--out"])
        .arg(&out_path)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(
        &mut child,
        "qof never created its hidden file and lock",
        |_| listing(tmp.path()).len() == 2,
    );
    let names = listing(tmp.path());
    assert!(names[0].starts_with(".flows.ipfix.") && names[0].ends_with(".partial"));
    assert_eq!(names[1], "flows.ipfix.lock");
    signal(&child, nix::sys::signal::Signal::SIGTERM);
    signal(&child, nix::sys::signal::Signal::SIGINT);
    let out = wait_at_most(child, Duration::from_secs(10), "two signals");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(listing(tmp.path()).is_empty(), "{:?}", listing(tmp.path()));
}
