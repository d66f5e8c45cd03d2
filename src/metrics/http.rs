//! The `/metrics` endpoint: a small HTTP/1.1 server on a thread of its own, one connection at
//! a time (a Prometheus server scrapes every few seconds; nothing here needs more).
//!
//! A scrape asks qof's loop for fresh figures (raising its wake flag, as the control socket
//! does) and waits at most [`FRESH_WAIT`] for them; a loop that is held up (its input waiting
//! for a collector) still gets the figures it published last. Requests are read with a
//! deadline and a size limit, so a client that sends nothing or too much cannot hold the
//! thread.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// How long a scrape waits for the loop's fresh figures.
const FRESH_WAIT: Duration = Duration::from_millis(500);
/// How long a client may take to send its request, and the most it may send.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_REQUEST: u64 = 8192;

/// The figures as last published, shared between the loop and the server.
pub struct Shared {
    /// (How many times published, the text.)
    text: Mutex<(u64, String)>,
    published: Condvar,
    /// A scrape is waiting for fresh figures.
    wanted: AtomicBool,
    /// The loop's wake flag.
    wake: Arc<AtomicBool>,
}

impl Shared {
    pub fn new(wake: Arc<AtomicBool>) -> Arc<Shared> {
        Arc::new(Shared {
            text: Mutex::new((0, String::new())),
            published: Condvar::new(),
            wanted: AtomicBool::new(false),
            wake,
        })
    }

    /// True (once) when a scrape waits for fresh figures.
    pub fn wanted(&self) -> bool {
        self.wanted.swap(false, Ordering::AcqRel)
    }

    /// The loop's fresh figures, rendered.
    pub fn publish(&self, text: String) {
        let mut t = match self.text.lock() {
            Ok(t) => t,
            Err(p) => p.into_inner(),
        };
        t.0 += 1;
        t.1 = text;
        self.published.notify_all();
    }

    /// Ask the loop for fresh figures and wait a little for them; the latest either way.
    fn fresh(&self) -> String {
        let guard = match self.text.lock() {
            Ok(t) => t,
            Err(p) => p.into_inner(),
        };
        let seen = guard.0;
        self.wanted.store(true, Ordering::Release);
        self.wake.store(true, Ordering::Release);
        let (guard, _) = match self
            .published
            .wait_timeout_while(guard, FRESH_WAIT, |t| t.0 == seen)
        {
            Ok(r) => r,
            Err(p) => p.into_inner(),
        };
        guard.1.clone()
    }
}

/// Listen on `addr` and serve `/metrics` from `shared` on a thread of its own.
pub fn start(addr: SocketAddr, shared: Arc<Shared>) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    std::thread::Builder::new()
        .name("qof-metrics".into())
        .spawn(move || {
            for conn in listener.incoming() {
                match conn {
                    Ok(c) => {
                        let _ = answer(c, &shared);
                    }
                    // (Out of descriptors, say: no busy loop while it lasts.)
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        })?;
    Ok(local)
}

/// Read one request and answer it; the connection closes after.
fn answer(conn: TcpStream, shared: &Shared) -> io::Result<()> {
    conn.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    conn.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    let mut reader = BufReader::new((&conn).take(MAX_REQUEST));
    let mut line = String::new();
    reader.read_line(&mut line)?;
    // The header lines, up to the blank one (their content is not needed).
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim_end().is_empty() {
            break;
        }
    }
    let mut parts = line.split_whitespace();
    let (method, target, version) = (parts.next(), parts.next(), parts.next());
    let (status, content_type, body) = match (method, target, version) {
        (Some(m), Some(t), Some(v)) if v.starts_with("HTTP/1.") => {
            let path = t.split('?').next().unwrap_or(t);
            match (m, path) {
                ("GET" | "HEAD", "/metrics") => (
                    "200 OK",
                    "text/plain; version=0.0.4; charset=utf-8",
                    shared.fresh(),
                ),
                ("GET" | "HEAD", _) => (
                    "404 Not Found",
                    "text/plain; charset=utf-8",
                    "qof serves /metrics only\n".to_string(),
                ),
                _ => (
                    "405 Method Not Allowed",
                    "text/plain; charset=utf-8",
                    "GET /metrics\n".to_string(),
                ),
            }
        }
        _ => (
            "400 Bad Request",
            "text/plain; charset=utf-8",
            "not an HTTP/1.x request\n".to_string(),
        ),
    };
    let mut w = &conn;
    write!(
        w,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    )?;
    if method != Some("HEAD") {
        w.write_all(body.as_bytes())?;
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(addr: SocketAddr, request: &str) -> String {
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(request.as_bytes()).unwrap();
        let mut s = String::new();
        c.read_to_string(&mut s).unwrap();
        s
    }

    /// A scrape raises the wake flag and gets what the loop publishes meanwhile; other paths,
    /// methods and garbage get the right status.
    #[test]
    fn scrapes_ask_the_loop_and_get_its_figures() {
        let wake = Arc::new(AtomicBool::new(false));
        let shared = Shared::new(wake.clone());
        shared.publish("old 1\n".into());
        let addr = start("127.0.0.1:0".parse().unwrap(), shared.clone()).unwrap();
        let loop_side = {
            let shared = shared.clone();
            std::thread::spawn(move || {
                while !wake.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_millis(2));
                }
                assert!(shared.wanted());
                shared.publish("fresh 2\n".into());
            })
        };
        let r = get(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        loop_side.join().unwrap();
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(r.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
        assert!(r.contains("Content-Length: 8\r\n"), "{r}");
        assert!(r.ends_with("\r\n\r\nfresh 2\n"), "{r}");
        // Nobody publishes: the last figures, after the wait.
        let r = get(addr, "GET /metrics?x=1 HTTP/1.0\r\n\r\n");
        assert!(r.ends_with("fresh 2\n"), "{r}");
        assert!(get(addr, "GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 "));
        assert!(get(addr, "POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405 "));
        assert!(get(addr, "hello\r\n\r\n").starts_with("HTTP/1.1 400 "));
        let head = get(addr, "HEAD /metrics HTTP/1.1\r\n\r\n");
        assert!(head.ends_with("\r\n\r\n"), "{head}");
    }
}
