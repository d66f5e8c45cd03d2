//! `Type=notify`: qof tells systemd it is ready (`READY=1`) once its input and output are
//! open, and `STOPPING=1` when it winds down, over the datagram socket `NOTIFY_SOCKET` names
//! (a path, or `@name` for an abstract socket), as systemd's sd_notify does.

mod common;
use common::*;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

fn messages(sock: &UnixDatagram) -> Vec<String> {
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while let Ok(n) = sock.recv(&mut buf) {
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    got
}

fn run_with(notify_socket: &str) -> std::process::Output {
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/mixed.pcap");
    run(qof()
        .arg("--in")
        .arg(sample)
        .args(["--format", "json", "--out", "/dev/null"])
        .env("NOTIFY_SOCKET", notify_socket))
}

#[test]
fn ready_and_stopping_reach_a_socket_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify");
    let sock = UnixDatagram::bind(&path).unwrap();
    let out = run_with(path.to_str().unwrap());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(messages(&sock), ["READY=1", "STOPPING=1"]);
}

#[test]
fn ready_and_stopping_reach_an_abstract_socket() {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("qof-notify-test-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let sock = UnixDatagram::bind_addr(&addr).unwrap();
    let out = run_with(&format!("@{name}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(messages(&sock), ["READY=1", "STOPPING=1"]);
}

/// A socket that is not there costs a warning, not the run.
#[test]
fn a_missing_socket_is_a_warning() {
    let out = run_with("/nonexistent/notify");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("NOTIFY_SOCKET /nonexistent/notify"),
        "{stderr}"
    );
}
