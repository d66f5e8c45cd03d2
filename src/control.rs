//! Runtime control: softflowctl's verbs over a Unix socket (`qof --ctl PATH`, `qofctl`).
//!
//! A client connects, writes one command word and a newline, and reads the answer (text
//! lines; a failure is one line starting `error: `) until qof closes the connection. The
//! socket's thread only carries words: every command is carried out by qof's reading loop,
//! where the meter lives (sans-IO), at its next housekeeping point. The thread raises the
//! loop's wake flag, so that point comes with the next frame read (a file read at full
//! speed), or within 0.1 s on a live interface that is quiet; a loop held up (its input
//! waiting for a collector) answers when it goes on, and a client that waited
//! [`ANSWER_TIMEOUT`] is told so.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::Arc;
use std::time::Duration;

// The command line of `qofctl` lives here, in the library, so that its man page and shell
// completions are generated with qof's (`cargo xtask dist`).
/// Control a running qof (started with --ctl PATH): softflowctl's commands.
#[derive(clap::Parser, Debug)]
#[command(name = "qofctl", version, after_help = commands_help())]
pub struct CtlArgs {
    /// The control socket qof listens on (its --ctl).
    #[arg(
        short = 'c',
        long = "ctl",
        value_name = "PATH",
        default_value = "/run/qof.ctl"
    )]
    pub ctl: PathBuf,

    /// The command (see below).
    #[arg(value_name = "COMMAND")]
    pub command: String,
}

fn commands_help() -> String {
    let mut s = String::from("Commands:\n");
    for (_, word, what) in Command::ALL {
        s.push_str(&format!("  {word:<14} {what}\n"));
    }
    s
}

/// softflowctl's commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Counts of the run so far: packets, flows, fragments, each collector.
    Statistics,
    /// The flows in memory, one line each.
    DumpFlows,
    /// End every flow now: their records are exported at once.
    ExpireAll,
    /// Remove every flow from memory without exporting it.
    DeleteAll,
    /// The flow timeouts in force.
    Timeouts,
    /// Send every template again before the next records.
    SendTemplate,
    /// Stop reading, export every flow in memory, exit (as SIGTERM does).
    Shutdown,
    /// Exit without exporting the flows in memory.
    Exit,
}

impl Command {
    /// Every command, its word and what it does (for `qofctl --help` and error lines).
    pub const ALL: [(Command, &'static str, &'static str); 8] = [
        (
            Command::Statistics,
            "statistics",
            "counts of the run so far: packets, flows, fragments, each collector",
        ),
        (
            Command::DumpFlows,
            "dump-flows",
            "the flows in memory, one line each",
        ),
        (
            Command::ExpireAll,
            "expire-all",
            "end every flow now: its record is exported at once",
        ),
        (
            Command::DeleteAll,
            "delete-all",
            "remove every flow from memory without exporting it",
        ),
        (Command::Timeouts, "timeouts", "the flow timeouts in force"),
        (
            Command::SendTemplate,
            "send-template",
            "send every template again before the next records",
        ),
        (
            Command::Shutdown,
            "shutdown",
            "stop reading, export every flow in memory and exit",
        ),
        (
            Command::Exit,
            "exit",
            "exit at once without exporting the flows in memory",
        ),
    ];

    pub fn parse(word: &str) -> Option<Command> {
        Self::ALL
            .iter()
            .find(|(_, w, _)| *w == word)
            .map(|(c, _, _)| *c)
    }

    pub fn word(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(c, _, _)| *c == self)
            .map_or("", |(_, w, _)| w)
    }

    /// `statistics, dump-flows, ...`
    pub fn words() -> String {
        Self::ALL
            .iter()
            .map(|(_, w, _)| *w)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// How long a client waits for qof's loop to answer.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest command line read from a client, and how long it may take to send it.
const MAX_LINE: u64 = 256;
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// A command waiting for qof's loop, and where its answer goes.
pub struct Request {
    pub command: Command,
    reply: Sender<String>,
}

impl Request {
    /// Answer the client (text; a failure starts with `error: `).
    pub fn answer(self, text: String) {
        // (A client that went away is nobody's problem.)
        let _ = self.reply.send(text);
    }
}

/// The control socket and its thread.
pub struct Server {
    rx: Receiver<Request>,
    path: PathBuf,
    /// The socket file as created (device, inode): removed at the end only if still ours.
    id: Option<(u64, u64)>,
}

impl Server {
    /// Listen on `path` (a socket left by a qof that is gone is replaced; a live one, or any
    /// other file, is an error). Commands raise `wake`. The socket is the owner's only.
    pub fn start(path: &Path, wake: Arc<AtomicBool>) -> io::Result<Server> {
        let named =
            |e: io::Error| io::Error::new(e.kind(), format!("--ctl {}: {e}", path.display()));
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                return Err(named(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "exists and is not a socket",
                )));
            }
            match UnixStream::connect(path) {
                Ok(_) => {
                    return Err(named(io::Error::new(
                        io::ErrorKind::AddrInUse,
                        "another process is listening on it",
                    )))
                }
                // Nobody listens: a socket left behind by a qof that ended abruptly.
                Err(_) => std::fs::remove_file(path).map_err(named)?,
            }
        }
        let listener = UnixListener::bind(path).map_err(named)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(named)?;
        let id = std::fs::symlink_metadata(path).ok().map(|m| {
            use std::os::unix::fs::MetadataExt;
            (m.dev(), m.ino())
        });
        let (tx, rx) = mpsc::sync_channel(16);
        std::thread::Builder::new()
            .name("qof-ctl".into())
            .spawn(move || serve(listener, tx, wake))?;
        Ok(Server {
            rx,
            path: path.to_path_buf(),
            id,
        })
    }

    /// The next command waiting for the loop, if any.
    pub fn next(&self) -> Option<Request> {
        self.rx.try_recv().ok()
    }
}

impl Drop for Server {
    /// The socket file goes with qof (if it is still the one qof made).
    fn drop(&mut self) {
        use std::os::unix::fs::MetadataExt;
        let same = std::fs::symlink_metadata(&self.path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        if same.is_some() && same == self.id {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The socket's thread: one client at a time (commands are short; qof's loop answers them
/// one after another anyway).
fn serve(listener: UnixListener, tx: SyncSender<Request>, wake: Arc<AtomicBool>) {
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else {
            // (Out of descriptors, say: no busy loop while it lasts.)
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        let answer = match read_command(&conn) {
            Err(why) => format!("error: {why}\n"),
            Ok(command) => {
                let (reply, answered) = mpsc::channel();
                if tx.send(Request { command, reply }).is_err() {
                    return; // qof is ending
                }
                wake.store(true, Ordering::Release);
                match answered.recv_timeout(ANSWER_TIMEOUT) {
                    Ok(text) => text,
                    Err(_) => format!(
                        "error: qof did not answer within {} s (its input may be waiting for a \
                         collector); the command is carried out when it goes on\n",
                        ANSWER_TIMEOUT.as_secs()
                    ),
                }
            }
        };
        let _ = conn.set_write_timeout(Some(READ_TIMEOUT));
        let _ = conn.write_all(answer.as_bytes());
    }
}

fn read_command(conn: &UnixStream) -> Result<Command, String> {
    let _ = conn.set_read_timeout(Some(READ_TIMEOUT));
    let mut line = String::new();
    BufReader::new(conn.take(MAX_LINE))
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the command: {e}"))?;
    let word = line.trim();
    Command::parse(word)
        .ok_or_else(|| format!("unknown command `{word}` (commands: {})", Command::words()))
}

/// Send `command` to the qof listening on `path` and return its answer.
pub fn request(path: &Path, command: &str, timeout: Duration) -> io::Result<String> {
    let mut conn = UnixStream::connect(path)?;
    conn.set_write_timeout(Some(timeout))?;
    conn.set_read_timeout(Some(timeout))?;
    conn.write_all(command.as_bytes())?;
    conn.write_all(b"\n")?;
    let mut answer = String::new();
    conn.read_to_string(&mut answer)?;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        for (c, w, _) in Command::ALL {
            assert_eq!(Command::parse(w), Some(c));
            assert_eq!(c.word(), w);
        }
        assert_eq!(Command::parse("reboot"), None);
    }

    /// A command reaches the loop with the wake flag raised, and the loop's answer reaches
    /// the client; an unknown one is answered by the socket's thread; a stale socket file is
    /// replaced, a live one or another file refused; the file goes with the server.
    #[test]
    fn commands_go_to_the_loop_and_answers_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qof.ctl");
        // A socket left behind by a process that is gone.
        drop(UnixListener::bind(&path).unwrap());
        let wake = Arc::new(AtomicBool::new(false));
        let server = Server::start(&path, wake.clone()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let e = Server::start(&path, wake.clone()).err().unwrap();
        assert!(
            e.to_string().contains("another process is listening"),
            "{e}"
        );
        let p = path.clone();
        let client = std::thread::spawn(move || request(&p, "dump-flows", ANSWER_TIMEOUT));
        let req = loop {
            if let Some(r) = server.next() {
                break r;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        assert!(wake.load(Ordering::Acquire));
        assert_eq!(req.command, Command::DumpFlows);
        req.answer("2 flows\n".into());
        assert_eq!(client.join().unwrap().unwrap(), "2 flows\n");
        let a = request(&path, "reboot", ANSWER_TIMEOUT).unwrap();
        assert!(
            a.starts_with("error: unknown command `reboot` (commands: statistics,"),
            "{a}"
        );
        drop(server);
        assert!(!path.exists());
        std::fs::write(&path, "x").unwrap();
        let e = Server::start(&path, wake).err().unwrap();
        assert!(e.to_string().ends_with("exists and is not a socket"), "{e}");
    }
}
