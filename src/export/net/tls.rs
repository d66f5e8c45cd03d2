//! TLS over TCP (RFC 7011 §11, `--tls`): rustls with the ring provider.
//!
//! The collector's certificate must chain to a CA of `--tls-ca` and name the host given in
//! `--out` (a DNS name, or an IP address in its subjectAltName); our own chain
//! (`--tls-cert`) and key (`--tls-key`) are presented for client authentication. The key may
//! be PKCS#8, PKCS#1 (RSA) or SEC1 (EC) PEM; an encrypted PKCS#8 key ("ENCRYPTED PRIVATE KEY",
//! PBES2 with PBKDF2 or scrypt and AES-CBC, as `openssl genpkey -aes-256-cbc` writes it) is
//! decrypted with the password in the environment variable `QOF_TLS_PASS`. Old
//! OpenSSL-style encrypted PEM ("Proc-Type: 4,ENCRYPTED") is refused with a line saying how to
//! convert it.
//!
//! The session writes TLS records itself rather than through `rustls::StreamOwned`, so that
//! sending never blocks on a read: a collector sends nothing but the handshake, session
//! tickets and alerts, which [`TlsSession::alive`] reads without blocking.

use super::stream::{reset_on_close, send_queue, wait_writable, SocketConnector};
use super::{ConnectError, Connector, TlsFiles, Transport};
use anyhow::{anyhow, bail, Context, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use socket2::Socket;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// TLS 1.3: how long to wait after the handshake for the collector's verdict on our
/// certificate (see [`TlsConnector::connect`]).
const VERDICT_TIMEOUT: Duration = Duration::from_secs(1);

/// The environment variable holding the password of an encrypted `--tls-key`.
pub const PASSWORD_VAR: &str = "QOF_TLS_PASS";

/// Build the client configuration from the three files (read now, before privileges are
/// dropped). Every problem is one line naming the option and file.
pub fn client_config(files: &TlsFiles) -> Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    let cas = read_certs(&files.ca).with_context(|| format!("--tls-ca {}", files.ca.display()))?;
    for ca in cas {
        roots
            .add(ca)
            .map_err(|e| anyhow!("--tls-ca {}: {e}", files.ca.display()))?;
    }
    let chain =
        read_certs(&files.cert).with_context(|| format!("--tls-cert {}", files.cert.display()))?;
    let key = load_key(&files.key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| {
            anyhow!(
                "--tls-cert {} / --tls-key {}: {e}",
                files.cert.display(),
                files.key.display()
            )
        })?;
    Ok(Arc::new(config))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| anyhow!("{}", pem_error(e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("{}", pem_error(e)))?;
    if certs.is_empty() {
        bail!("no PEM certificate in the file");
    }
    Ok(certs)
}

fn pem_error(e: rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(e) => e.to_string(),
        e => format!("not a PEM file ({e:?})"),
    }
}

/// The private key of `--tls-key`, decrypted with `QOF_TLS_PASS` if it is encrypted.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let opt = || format!("--tls-key {}", path.display());
    let bytes = std::fs::read(path).with_context(opt)?;
    let text = String::from_utf8_lossy(&bytes);
    if let Some(block) = pem_block(&text, "ENCRYPTED PRIVATE KEY") {
        let password = std::env::var(PASSWORD_VAR).map_err(|_| {
            anyhow!(
                "{}: the key is encrypted and {PASSWORD_VAR} is not set",
                opt()
            )
        })?;
        let (_, doc) = pkcs8::der::Document::from_pem(block)
            .map_err(|e| anyhow!("{}: not a PKCS#8 PEM key ({e})", opt()))?;
        let info = pkcs8::EncryptedPrivateKeyInfo::try_from(doc.as_bytes())
            .map_err(|e| anyhow!("{}: not an encrypted PKCS#8 key ({e})", opt()))?;
        let plain = info.decrypt(password.as_bytes()).map_err(|e| {
            anyhow!(
                "{}: cannot decrypt it with {PASSWORD_VAR} ({e}): wrong password, or an \
                 unsupported cipher",
                opt()
            )
        })?;
        return Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            plain.as_bytes().to_vec(),
        )));
    }
    if text.contains("Proc-Type: 4,ENCRYPTED") {
        bail!(
            "{}: OpenSSL's legacy encrypted PEM is not supported; convert the key to encrypted \
             PKCS#8 with `openssl pkcs8 -topk8 -v2 aes-256-cbc -in OLD -out NEW`",
            opt()
        );
    }
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| anyhow!("{}: {}", opt(), pem_error(e)))
}

/// The first `-----BEGIN label-----` … `-----END label-----` block of `text`, markers included.
fn pem_block<'a>(text: &'a str, label: &str) -> Option<&'a str> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)?;
    let stop = start + text[start..].find(&end)? + end.len();
    text.get(start..stop)
}

pub struct TlsConnector {
    tcp: SocketConnector,
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    /// The whole handshake must end within this: `--export-timeout`.
    timeout: Duration,
}

impl TlsConnector {
    pub fn new(
        tcp: SocketConnector,
        host: &str,
        files: &TlsFiles,
        timeout: Duration,
    ) -> Result<Self> {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let name = ServerName::try_from(bare.to_string())
            .map_err(|e| anyhow!("--out {host}: not a host name for TLS ({e})"))?;
        Ok(TlsConnector {
            tcp,
            config: client_config(files)?,
            name,
            timeout,
        })
    }

    fn timed_out(&self) -> ConnectError {
        ConnectError::transient(format!(
            "TLS handshake timed out after {} s (--export-timeout)",
            self.timeout.as_secs_f64()
        ))
    }
}

/// A read or write that gave up at its socket timeout (Linux reports EAGAIN for it).
fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// A failed handshake: certificate and protocol errors are configuration problems
/// (permanent at start-up); a connection that broke is not.
fn handshake_error(e: io::Error) -> ConnectError {
    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::InvalidCertificate(_)) => ConnectError {
            message: format!("the collector's certificate was rejected: {e}"),
            permanent: true,
        },
        Some(rustls::Error::AlertReceived(_)) => ConnectError {
            message: format!(
                "the collector refused the handshake ({e}): does it trust the CA of --tls-cert?"
            ),
            permanent: true,
        },
        Some(_) => ConnectError {
            message: format!("TLS handshake failed: {e}"),
            permanent: true,
        },
        None => ConnectError::transient(format!("TLS handshake failed: {e}")),
    }
}

impl Connector for TlsConnector {
    fn connect(&mut self) -> Result<Box<dyn Transport>, ConnectError> {
        let mut sock = self.tcp.connect_socket()?;
        let deadline = Instant::now() + self.timeout;
        let mut conn =
            ClientConnection::new(self.config.clone(), self.name.clone()).map_err(|e| {
                ConnectError {
                    message: format!("TLS: {e}"),
                    permanent: true,
                }
            })?;
        while conn.is_handshaking() {
            // Each read and write waits at most what is left of the whole handshake's time.
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.timed_out());
            }
            sock.set_read_timeout(Some(left))
                .and_then(|()| sock.set_write_timeout(Some(left)))
                .map_err(ConnectError::transient)?;
            match conn.complete_io(&mut sock) {
                Ok(_) => {}
                Err(e) if is_timeout(&e) => return Err(self.timed_out()),
                Err(e) => return Err(handshake_error(e)),
            }
        }
        if conn.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3) {
            await_verdict(&mut conn, &mut sock, VERDICT_TIMEOUT.min(self.timeout))?;
        }
        sock.set_read_timeout(None)
            .and_then(|()| sock.set_write_timeout(None))
            .and_then(|()| sock.set_nonblocking(true))
            .map_err(ConnectError::transient)?;
        Ok(Box::new(TlsSession {
            conn,
            sock,
            written: 0,
        }))
    }
}

/// In TLS 1.3 the client's handshake ends before the server has checked the client's
/// certificate: a collector that refuses it says so (an alert, a close) only after, and what
/// was written meanwhile would be lost without a trace. Collectors send a session ticket
/// once they accept the client, so wait (briefly) for the first record after the handshake:
/// a ticket means accepted, an alert or a close means refused; silence (a collector that
/// sends no tickets) is taken as accepted.
fn await_verdict(
    conn: &mut ClientConnection,
    sock: &mut Socket,
    wait: Duration,
) -> Result<(), ConnectError> {
    sock.set_read_timeout(Some(wait.max(Duration::from_millis(1))))
        .map_err(ConnectError::transient)?;
    let refused = |why: String| ConnectError {
        message: format!(
            "the collector refused the connection after the handshake ({why}): does it trust \
             the CA of --tls-cert?"
        ),
        permanent: true,
    };
    loop {
        match conn.read_tls(sock) {
            Ok(0) => return Err(refused("it closed the connection".into())),
            Ok(_) => match conn.process_new_packets() {
                Err(e) => return Err(refused(e.to_string())),
                Ok(state) if state.peer_has_closed() => return Err(refused("close_notify".into())),
                Ok(_) => return Ok(()),
            },
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if is_timeout(&e) => return Ok(()),
            Err(e) => return Err(refused(e.to_string())),
        }
    }
}

/// A TLS session over a non-blocking socket. TLS records are written by rustls into the
/// socket; `written` counts their octets, which are what the kernel's send queue counts, so
/// that the collector's TCP acknowledgements can be mapped to messages.
pub struct TlsSession {
    conn: ClientConnection,
    sock: Socket,
    written: u64,
}

impl Transport for TlsSession {
    /// Plaintext is taken only when every earlier TLS record is in the kernel: then the TLS
    /// octets between two messages' ends are the later message's.
    fn write(&mut self, msg: &[u8]) -> io::Result<usize> {
        if !self.flush()? {
            return Ok(0);
        }
        let n = self.conn.writer().write(msg)?;
        self.flush()?;
        Ok(n)
    }

    fn local_addr(&self) -> Option<std::net::SocketAddr> {
        self.sock.local_addr().ok()?.as_socket()
    }

    fn flush(&mut self) -> io::Result<bool> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.sock) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    fn written(&self) -> u64 {
        self.written
    }

    fn unacked(&mut self) -> Option<u64> {
        send_queue(&self.sock)
    }

    fn wait_writable(&mut self, timeout: Duration) {
        wait_writable(&self.sock, timeout);
    }

    /// Read whatever the collector sent, without blocking: session tickets are absorbed; the
    /// end of the stream, a close_notify, an alert or a broken record mean it is gone.
    fn alive(&mut self) -> bool {
        for _ in 0..64 {
            match self.conn.read_tls(&mut self.sock) {
                Ok(0) => return false,
                Ok(_) => match self.conn.process_new_packets() {
                    Ok(state) if !state.peer_has_closed() => {
                        let mut sink = [0u8; 1024];
                        while matches!(self.conn.reader().read(&mut sink), Ok(n) if n > 0) {}
                        continue;
                    }
                    _ => return false,
                },
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            }
        }
        true
    }

    fn close(&mut self) {
        self.conn.send_close_notify();
        let _ = self.flush();
        let _ = self.sock.shutdown(Shutdown::Write);
    }

    fn abort(&mut self) {
        reset_on_close(&self.sock);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_blocks_are_found_by_label() {
        let t = "junk\n-----BEGIN X-----\nAAAA\n-----END X-----\n-----BEGIN Y-----\nB\n-----END Y-----\n";
        assert_eq!(
            pem_block(t, "X"),
            Some("-----BEGIN X-----\nAAAA\n-----END X-----")
        );
        assert_eq!(
            pem_block(t, "Y"),
            Some("-----BEGIN Y-----\nB\n-----END Y-----")
        );
        assert_eq!(pem_block(t, "Z"), None);
        assert_eq!(pem_block("-----BEGIN X-----\nunterminated", "X"), None);
    }

    #[test]
    fn key_problems_are_one_line_naming_the_option() {
        let dir = tempfile::tempdir().unwrap();
        let legacy = dir.path().join("legacy.pem");
        std::fs::write(
            &legacy,
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n",
        )
        .unwrap();
        let e = load_key(&legacy).unwrap_err().to_string();
        assert!(e.starts_with("--tls-key ") && e.contains("legacy"), "{e}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "nothing here\n").unwrap();
        let e = format!("{:#}", load_key(&empty).unwrap_err());
        assert!(e.starts_with("--tls-key ") && !e.contains('\n'), "{e}");
        let e = format!(
            "{:#}",
            load_key(&dir.path().join("missing.pem")).unwrap_err()
        );
        assert!(e.starts_with("--tls-key ") && !e.contains('\n'), "{e}");
    }
}
