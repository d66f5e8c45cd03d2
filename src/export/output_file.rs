//! Output files that cannot be turned against qof.
//!
//! qof runs as root to capture, and its output names are predictable, so whoever can write in
//! the output directory could plant a symbolic link there and have qof truncate or create a
//! file anywhere. An output file is therefore never opened by its name:
//!
//! * It is written to a new hidden file beside the target, `.NAME.RANDOM.partial`, created
//!   with `O_CREAT | O_EXCL | O_NOFOLLOW` (a name that exists in any form, a symbolic link
//!   included, is never opened: another random name is tried), and renamed over the target
//!   when complete. The rename replaces whatever is at the target's name, a symbolic link
//!   included; nothing is written through it. A reader never sees half a file.
//! * `NAME.lock` (`--lock`) is created the same way, so a planted link there is an existing
//!   lock, not a file to write through.
//! * A target that exists and is not a regular file (a FIFO, `/dev/null`, a terminal) is
//!   written in place: renaming over it would replace a device with a file. A symbolic link is
//!   followed to one only when root or qof's own user owns the link (as `/dev/stdout` is), the
//!   rule of the kernel's `fs.protected_symlinks`; a regular file behind a link is never
//!   written. Block devices are refused.
//! * The file that is being read (`--in`, by device and inode, whatever the path) is never
//!   an output.
//! * Every error names the target (`--out PATH: ...`), and the hidden file and the lock are
//!   removed on every way out: an error, a dropped sink, and a second SIGINT or SIGTERM
//!   ([`remove_unfinished`]).
//!
//! A regular file is created only by [`OutputFile::start`], which qof calls once it runs as
//! the user it will finish as (after `--become-user`): the user who creates the hidden file
//! and the lock is the one who renames and removes them, and the kernel checks that user's
//! access to the directory (modes, ACLs, read-only mounts, security modules alike) before the
//! first packet is read. Devices and FIFOs are opened at once, while qof may still need root
//! for them.

use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The identity of a regular file: its device and inode, the same whatever path or link
/// leads to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    /// The regular file at `path` (links followed); `None` for anything else, or nothing.
    pub fn of(path: &Path) -> Option<FileId> {
        fs::metadata(path).ok().and_then(|m| FileId::from_meta(&m))
    }

    /// The regular file standard input reads, if it is one (`qof < capture.pcap`).
    pub fn of_stdin() -> Option<FileId> {
        use std::os::fd::AsFd;
        let fd = io::stdin().as_fd().try_clone_to_owned().ok()?;
        File::from(fd)
            .metadata()
            .ok()
            .and_then(|m| FileId::from_meta(&m))
    }

    fn from_meta(m: &fs::Metadata) -> Option<FileId> {
        m.is_file().then(|| FileId {
            dev: m.dev(),
            ino: m.ino(),
        })
    }
}

/// What is known of an output before it is written.
#[derive(Clone, Debug, Default)]
pub struct OutputOptions {
    /// Hold `NAME.lock` while the file is written.
    pub lock: bool,
    /// The input file, which must not be the output.
    pub input: Option<FileId>,
}

/// One output file: a device or FIFO written in place, or a regular file written under a
/// hidden name and published by [`publish`](OutputFile::publish).
pub struct OutputFile {
    target: PathBuf,
    options: OutputOptions,
    state: State,
}

enum State {
    /// A regular file, not created yet ([`OutputFile::start`]).
    Planned,
    /// A device or FIFO, written in place.
    InPlace(File),
    /// The hidden file being written. (Field order: the hidden file is removed before the
    /// lock that guards it.)
    Hidden {
        file: File,
        partial: Unfinished,
        _lock: Option<Unfinished>,
    },
    /// Renamed into place.
    Published,
}

/// How many random names to try before giving up on a directory: each collision needs
/// another file of that exact name, so more than one already means someone is guessing.
const NAME_ATTEMPTS: usize = 16;

impl OutputFile {
    /// Checks `target` and opens it if it is written in place; a regular file is created
    /// later, by [`start`](OutputFile::start) (or the first write).
    pub fn new(target: &Path, options: OutputOptions) -> io::Result<OutputFile> {
        let mut out = OutputFile {
            target: target.to_path_buf(),
            options,
            state: State::Planned,
        };
        out.check_name()?;
        if out.classify()? == Kind::InPlace {
            out.state = State::InPlace(out.open_in_place()?);
        }
        Ok(out)
    }

    /// Creates the hidden file (and the lock) of a regular target, if not done yet. Checked
    /// again from the start: the target may have changed since [`new`](OutputFile::new).
    pub fn start(&mut self) -> io::Result<()> {
        if !matches!(self.state, State::Planned) {
            return Ok(());
        }
        self.state = match self.classify()? {
            Kind::InPlace => State::InPlace(self.open_in_place()?),
            Kind::Replace => {
                // The hidden file first: its error names the directory, the likelier problem.
                let (file, partial) = create_hidden(&self.target).map_err(|e| self.error(e))?;
                let lock = match self.options.lock {
                    true => Some(self.create_lock()?),
                    false => None,
                };
                State::Hidden {
                    file,
                    partial,
                    _lock: lock,
                }
            }
        };
        Ok(())
    }

    /// Finishes the file: to disk, then renamed over the target; the lock goes. A target
    /// written in place has nothing more to do. A regular file not created yet is created
    /// now: an empty output is still an output.
    pub fn publish(&mut self) -> io::Result<()> {
        self.start()?;
        let State::Hidden { file, partial, .. } = &self.state else {
            return Ok(());
        };
        file.sync_all().map_err(|e| self.error(e))?;
        fs::rename(&partial.path, &self.target).map_err(|e| {
            self.error(io::Error::new(
                e.kind(),
                format!("cannot rename the finished file into place: {e}"),
            ))
        })?;
        if let State::Hidden { partial, .. } = std::mem::replace(&mut self.state, State::Published)
        {
            partial.forget();
        }
        Ok(())
    }

    /// True for a device or FIFO written in place (nothing to publish, nothing to reopen).
    pub fn in_place(&self) -> bool {
        matches!(self.state, State::InPlace(_))
    }

    /// The name the file is published under.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// With rotation, before the first file: whether the directory takes a new file from this
    /// user (created and removed at once), so that a problem shows before the first packet.
    pub fn check_directory(prefix: &Path) -> io::Result<()> {
        let naming = |e: io::Error| named(prefix, e);
        check_file_name(prefix).map_err(naming)?;
        let (file, partial) = create_hidden(prefix).map_err(naming)?;
        drop(file);
        let path = partial.path.clone();
        partial.forget();
        fs::remove_file(&path).map_err(|e| {
            naming(io::Error::new(
                e.kind(),
                format!("cannot remove {}: {e}", path.display()),
            ))
        })
    }

    fn check_name(&self) -> io::Result<()> {
        check_file_name(&self.target).map_err(|e| self.error(e))
    }

    fn classify(&self) -> io::Result<Kind> {
        if self.options.input.is_some() && FileId::of(&self.target) == self.options.input {
            return Err(self.error(io::Error::new(
                io::ErrorKind::InvalidInput,
                "is the capture being read (the same file as the input); refusing to overwrite it",
            )));
        }
        classify(&self.target).map_err(|e| self.error(e))
    }

    /// Opens a device or FIFO (through a trusted link) for writing, without creating
    /// anything; what was opened is checked again, since a name can change between looking
    /// and opening.
    fn open_in_place(&self) -> io::Result<File> {
        let file = OpenOptions::new()
            .write(true)
            // A terminal opened by a process without one must not become its controlling tty.
            .custom_flags(libc::O_NOCTTY)
            .open(&self.target)
            .map_err(|e| self.error(e))?;
        let kind = file.metadata().map_err(|e| self.error(e))?.file_type();
        if !(kind.is_fifo() || kind.is_char_device()) {
            return Err(self.error(io::Error::other(
                "changed into a regular file while it was opened; not written",
            )));
        }
        Ok(file)
    }

    fn create_lock(&self) -> io::Result<Unfinished> {
        let mut name = self.target.as_os_str().to_owned();
        name.push(".lock");
        let lock = PathBuf::from(name);
        match create_new(&lock) {
            Ok(_) => Ok(Unfinished::new(lock)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(self.error(io::Error::new(
                e.kind(),
                format!(
                    "{} exists: another qof is writing this file, or one that stopped \
                         left its lock (remove it if no qof writes here)",
                    lock.display()
                ),
            ))),
            Err(e) => Err(self.error(io::Error::new(
                e.kind(),
                format!("cannot create {}: {e}", lock.display()),
            ))),
        }
    }

    fn error(&self, e: io::Error) -> io::Error {
        named(&self.target, e)
    }

    fn file(&mut self) -> io::Result<&mut File> {
        self.start()?;
        let target = &self.target;
        match &mut self.state {
            State::InPlace(f) | State::Hidden { file: f, .. } => Ok(f),
            State::Planned | State::Published => Err(named(
                target,
                io::Error::other("written after it was published"),
            )),
        }
    }
}

impl Write for OutputFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let r = self.file()?.write(buf);
        r.map_err(|e| self.error(e))
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.state {
            State::InPlace(f) | State::Hidden { file: f, .. } => {
                let r = f.flush();
                r.map_err(|e| self.error(e))
            }
            State::Planned | State::Published => Ok(()),
        }
    }
}

/// An I/O error that names the output it happened on, as the command line named it.
fn named(target: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("--out {}: {e}", target.display()))
}

fn check_file_name(target: &Path) -> io::Result<()> {
    match target.file_name() {
        Some(_) => Ok(()),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a file name",
        )),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A device or FIFO: written in place.
    InPlace,
    /// Nothing, a regular file, or a link qof does not follow: replaced by the rename.
    Replace,
}

/// How `target` is written, from what is at its name now.
fn classify(target: &Path) -> io::Result<Kind> {
    let here = match fs::symlink_metadata(target) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Kind::Replace),
        // (Permission denied: a directory on the way that this user may not search.)
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!("cannot look in {}: {e}", directory_of(target)),
            ))
        }
    };
    let kind = if here.file_type().is_symlink() {
        if !trusted_link(&here) {
            return Ok(Kind::Replace);
        }
        match fs::metadata(target) {
            Ok(m) => m.file_type(),
            // A dangling link: replaced, never followed to create a file elsewhere.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Kind::Replace),
            Err(e) => return Err(e),
        }
    } else {
        here.file_type()
    };
    if kind.is_dir() {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "is a directory",
        ))
    } else if kind.is_file() {
        Ok(Kind::Replace)
    } else if kind.is_block_device() || kind.is_socket() {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "is a block device or socket: qof writes to files, FIFOs and character devices",
        ))
    } else {
        Ok(Kind::InPlace)
    }
}

/// A link that root or qof's own user made: not planted by someone else (the kernel's
/// `fs.protected_symlinks` rule, without its exception for the directory's owner).
fn trusted_link(link: &fs::Metadata) -> bool {
    link.uid() == 0 || link.uid() == nix::unistd::Uid::effective().as_raw()
}

/// A new hidden file beside `target`: `.NAME.RANDOM.partial`, readable by all and written by
/// its creator only (the umask may take more away).
fn create_hidden(target: &Path) -> io::Result<(File, Unfinished)> {
    let name = target.file_name().unwrap_or_default().to_string_lossy();
    let mut last = io::Error::from(io::ErrorKind::AlreadyExists);
    for _ in 0..NAME_ATTEMPTS {
        let partial = target.with_file_name(format!(".{name}.{:016x}.partial", random()));
        match create_new(&partial) {
            Ok(file) => return Ok((file, Unfinished::new(partial))),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = e,
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot create a file in {}: {e}", directory_of(target)),
                ))
            }
        }
    }
    Err(io::Error::new(
        last.kind(),
        format!(
            "cannot create a file in {}: {NAME_ATTEMPTS} random names were all taken",
            directory_of(target)
        ),
    ))
}

/// `O_CREAT | O_EXCL | O_NOFOLLOW`, mode 0644: a new file or nothing; never a file that
/// exists, never through a link (O_EXCL alone already refuses one; O_NOFOLLOW says so).
fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

fn directory_of(target: &Path) -> String {
    match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.display().to_string(),
        _ => "the current directory".to_string(),
    }
}

/// 64 bits no other user can predict. std's `RandomState` is keyed from the kernel's random
/// source (getrandom) once per thread, and each new one steps the key, so its SipHash of the
/// time, the process and a counter is unpredictable without reading anything (no file, no
/// new dependency). Unpredictable is enough: `O_EXCL` already makes a guessed name harmless,
/// and the randomness only keeps a planted file from blocking the output.
fn random() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.write_u128(now);
    h.write_u32(std::process::id());
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

/// Files qof made and has not finished: removed when dropped, and by [`remove_unfinished`]
/// if the process must end at once.
static UNFINISHED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn unfinished() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    UNFINISHED.lock().unwrap_or_else(|e| e.into_inner())
}

/// A file qof created that must not outlive the run unless finished: removed on drop.
struct Unfinished {
    path: PathBuf,
}

impl Unfinished {
    fn new(path: PathBuf) -> Unfinished {
        unfinished().push(path.clone());
        Unfinished { path }
    }

    /// The file is finished (renamed into place): keep it.
    fn forget(self) {
        self.unregister();
        std::mem::forget(self);
    }

    fn unregister(&self) {
        let mut list = unfinished();
        if let Some(i) = list.iter().position(|p| *p == self.path) {
            list.swap_remove(i);
        }
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        self.unregister();
        let _ = fs::remove_file(&self.path);
    }
}

/// Removes every hidden file and lock not yet finished: for a process that ends at once (a
/// second SIGINT or SIGTERM), where no destructor runs. Safe to call from any thread.
pub fn remove_unfinished() {
    for path in unfinished().drain(..) {
        let _ = fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn listing(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn write_and_publish(target: &Path, options: OutputOptions) -> io::Result<()> {
        let mut out = OutputFile::new(target, options)?;
        out.start()?;
        out.write_all(b"flows")?;
        out.publish()
    }

    #[test]
    fn a_file_is_hidden_until_published() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("flows.ipfix");
        let mut out = OutputFile::new(&target, OutputOptions::default()).unwrap();
        assert!(listing(dir.path()).is_empty(), "nothing before start");
        out.start().unwrap();
        out.write_all(b"flows").unwrap();
        let hidden = listing(dir.path());
        assert_eq!(hidden.len(), 1);
        assert!(
            hidden[0].starts_with(".flows.ipfix.") && hidden[0].ends_with(".partial"),
            "{hidden:?}"
        );
        out.publish().unwrap();
        assert_eq!(listing(dir.path()), ["flows.ipfix"]);
        assert_eq!(fs::read(&target).unwrap(), b"flows");
    }

    #[test]
    fn hidden_names_differ() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("x");
        let (_a, pa) = create_hidden(&target).unwrap();
        let (_b, pb) = create_hidden(&target).unwrap();
        assert_ne!(pa.path, pb.path);
        drop((pa, pb));
        assert!(listing(dir.path()).is_empty(), "removed when dropped");
    }

    #[test]
    fn a_dropped_file_leaves_nothing_not_even_its_lock() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("flows.ipfix");
        let options = OutputOptions {
            lock: true,
            input: None,
        };
        let mut out = OutputFile::new(&target, options).unwrap();
        out.start().unwrap();
        out.write_all(b"half").unwrap();
        assert_eq!(listing(dir.path()).len(), 2, "the hidden file and the lock");
        drop(out);
        assert!(listing(dir.path()).is_empty());
    }

    /// What a second signal removes (the list is the process's: other tests' files are in
    /// it too, so only this file's entries are looked at, and nothing is removed).
    #[test]
    fn unfinished_files_are_listed_until_published() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("flows.ipfix");
        let options = OutputOptions {
            lock: true,
            input: None,
        };
        let listed = || {
            unfinished()
                .iter()
                .filter(|p| p.starts_with(dir.path()))
                .count()
        };
        let mut out = OutputFile::new(&target, options).unwrap();
        out.start().unwrap();
        assert_eq!(listed(), 2, "the hidden file and the lock");
        out.publish().unwrap();
        assert_eq!(listed(), 0, "published: the lock goes too");
        assert_eq!(listing(dir.path()), ["flows.ipfix"]);
    }

    #[test]
    fn a_link_at_the_target_is_replaced_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        let target = dir.path().join("flows.ipfix");
        symlink(&victim, &target).unwrap();
        write_and_publish(&target, OutputOptions::default()).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert!(fs::symlink_metadata(&target).unwrap().is_file());
        assert_eq!(fs::read(&target).unwrap(), b"flows");
    }

    #[test]
    fn a_dangling_link_creates_nothing_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        let target = dir.path().join("flows.ipfix");
        symlink(&elsewhere, &target).unwrap();
        write_and_publish(&target, OutputOptions::default()).unwrap();
        assert!(!elsewhere.exists());
        assert!(fs::symlink_metadata(&target).unwrap().is_file());
    }

    #[test]
    fn a_link_at_the_lock_is_an_existing_lock() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        let target = dir.path().join("flows.ipfix");
        symlink(&victim, dir.path().join("flows.ipfix.lock")).unwrap();
        let options = OutputOptions {
            lock: true,
            input: None,
        };
        let e = write_and_publish(&target, options).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("--out {}: ", target.display())),
            "{e}"
        );
        assert!(e.contains("flows.ipfix.lock exists"), "{e}");
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert_eq!(listing(dir.path()), ["flows.ipfix.lock", "victim"]);
    }

    #[test]
    fn the_input_is_never_the_output() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.pcap");
        fs::write(&input, b"capture").unwrap();
        let other = dir.path().join("other-name.pcap");
        fs::hard_link(&input, &other).unwrap();
        let options = OutputOptions {
            lock: false,
            input: FileId::of(&input),
        };
        for target in [&input, &other] {
            let e = write_and_publish(target, options.clone())
                .unwrap_err()
                .to_string();
            assert!(e.contains("is the capture being read"), "{e}");
        }
        assert_eq!(fs::read(&input).unwrap(), b"capture");
        assert_eq!(listing(dir.path()), ["in.pcap", "other-name.pcap"]);
    }

    #[test]
    fn devices_are_written_in_place_and_directories_refused() {
        let mut null = OutputFile::new(Path::new("/dev/null"), OutputOptions::default()).unwrap();
        null.write_all(b"gone").unwrap();
        null.publish().unwrap();
        assert!(fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device());
        let dir = tempfile::tempdir().unwrap();
        let e = OutputFile::new(dir.path(), OutputOptions::default())
            .err()
            .unwrap()
            .to_string();
        assert!(e.ends_with(": is a directory"), "{e}");
    }

    #[test]
    fn check_directory_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        OutputFile::check_directory(&dir.path().join("flows")).unwrap();
        assert!(listing(dir.path()).is_empty());
        let e = OutputFile::check_directory(Path::new("/nonexistent-qof/flows"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(
                "--out /nonexistent-qof/flows: cannot create a file in /nonexistent-qof: "
            ),
            "{e}"
        );
    }
}
