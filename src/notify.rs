//! systemd's readiness protocol (`Type=notify`): a datagram `READY=1` to the socket named by
//! `NOTIFY_SOCKET` once qof has opened its input and output and dropped its privileges, and
//! `STOPPING=1` when it starts to wind down. A few lines over a Unix datagram socket, without
//! libsystemd. Outside systemd (no `NOTIFY_SOCKET`) nothing is sent.

use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Send `state` (`READY=1`, `STOPPING=1`, `STATUS=...`) to systemd, if it asked for it.
/// Failures are logged, never fatal: the service manager's bookkeeping is not worth a run.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let path = path.to_string_lossy().into_owned();
    let addr = match path.strip_prefix('@') {
        // An abstract socket (systemd in containers and user managers uses them).
        Some(name) => abstract_addr(name),
        None => SocketAddr::from_pathname(&path),
    };
    let sent = addr.and_then(|a| UnixDatagram::unbound()?.send_to_addr(state.as_bytes(), &a));
    if let Err(e) = sent {
        tracing::warn!("NOTIFY_SOCKET {path}: cannot tell systemd {state}: {e}");
    }
}

#[cfg(target_os = "linux")]
fn abstract_addr(name: &str) -> std::io::Result<SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    SocketAddr::from_abstract_name(name.as_bytes())
}

#[cfg(not(target_os = "linux"))]
fn abstract_addr(_: &str) -> std::io::Result<SocketAddr> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "abstract socket addresses are Linux's",
    ))
}
