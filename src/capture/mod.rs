//! Capture sources: where frames come from.
//!
//! A [`PacketSource`] yields [`Frame`]s, each borrowed from the source's own buffer until the next
//! call (a lending iterator), so reading a file copies nothing per packet.
//!
//! [`open`] reads pcap (µs, ns and the "modified" variant, either byte order) and pcapng files,
//! plain or gzip-compressed (recognised by content, not name), from a path or standard input.
//! The readers share one large reusable buffer (module `input`) and hand out frames as slices
//! of it: no allocation or copy per packet. A plain regular file of 1 MiB or more is read
//! through a memory map instead (module `mapped`): not even the copy of `read()`. A damaged
//! file yields every complete frame before the damage, then one error naming the byte offset;
//! nothing in a file can make a reader panic, loop, or allocate more than about twice the
//! file's real size (records are capped at [`MAX_CAPLEN`]).

mod input;
#[cfg(target_os = "linux")]
pub mod live;
mod mapped;
mod pcap;
pub use pcap::{open_records, RecordAt, RecordLayout, WalkEnd};
mod pcapng;
#[cfg(target_os = "linux")]
mod ring;
mod stdin;

use crate::time::Timestamp;
use std::fmt;
use std::io::{self, Read};
use std::os::unix::fs::FileTypeExt;

/// Link-layer header types (the tcpdump.org LINKTYPE_ values, as in pcap and pcapng headers).
pub mod linktype {
    pub const NULL: u32 = 0;
    pub const ETHERNET: u32 = 1;
    pub const PPP: u32 = 9;
    pub const RAW_BSD: u32 = 12; // DLT_RAW on some BSDs
    pub const RAW_OPENBSD: u32 = 14;
    pub const PPP_HDLC: u32 = 50;
    pub const PPP_ETHER: u32 = 51; // PPPoE
    pub const RAW: u32 = 101;
    pub const C_HDLC: u32 = 104;
    pub const LOOP: u32 = 108;
    pub const LINUX_SLL: u32 = 113;
    pub const IPV4: u32 = 228;
    pub const IPV6: u32 = 229;
    pub const LINUX_SLL2: u32 = 276;

    /// Every link type above, for tests and fuzzing.
    pub const ALL: [u32; 14] = [
        NULL,
        ETHERNET,
        PPP,
        RAW_BSD,
        RAW_OPENBSD,
        PPP_HDLC,
        PPP_ETHER,
        RAW,
        C_HDLC,
        LOOP,
        LINUX_SLL,
        IPV4,
        IPV6,
        LINUX_SLL2,
    ];
}

/// One captured frame.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    pub ts: Timestamp,
    /// LINKTYPE_ value of the interface the frame was captured on.
    pub linktype: u32,
    /// Length of the frame on the wire (may exceed `data.len()` when the snaplen cut it).
    pub orig_len: u32,
    /// The captured bytes, exactly `caplen` long (pcapng block padding already removed).
    pub data: &'a [u8],
    /// The index of the interface it came in on (ingressInterface): a live interface's; 0
    /// from files, whose frames the caller numbers (`--ingress-interface`).
    pub ifindex: u32,
}

/// Something that yields frames: a capture file, standard input, a live interface.
pub trait PacketSource {
    /// The next frame, `Ok(None)` at the end of input, or an error that ends the input
    /// (frames already returned stay valid results).
    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError>;

    /// When [`frame_ready`](PacketSource::frame_ready) said no: wait a moment for a frame.
    /// A live source that got none says so with the time, so that the caller can move its
    /// clock on (flows idle past their timeout end without a later frame). `None` when a
    /// frame may have come, or at once from a source that has no clock of its own (files,
    /// standard input).
    fn wait_quiet(&mut self) -> Option<Timestamp> {
        None
    }

    /// Bytes consumed so far from the underlying file, for progress display (compressed bytes
    /// for gzip input).
    fn position(&self) -> u64 {
        0
    }

    /// True for a live interface: once the stop flag it was given is set, it still gives the
    /// frames it had captured and then ends the input itself, so the caller reads on until
    /// the end rather than stopping at once.
    fn is_live(&self) -> bool {
        false
    }

    /// Frames the source itself knows it lost (e.g. kernel drops on a live interface).
    fn dropped(&self) -> u64 {
        0
    }

    /// When several readers share the input (one socket per worker of a fanout group): each
    /// one's frames read and frames dropped by the kernel, in order; empty otherwise.
    fn per_reader(&self) -> Vec<(u64, u64)> {
        Vec::new()
    }

    /// Total size of the underlying file when known (a regular file; compressed size for gzip),
    /// to set against [`position`](PacketSource::position) in a progress bar.
    fn len_hint(&self) -> Option<u64> {
        None
    }

    /// True when the next frame is already read in whole, so that
    /// [`next_frame`](PacketSource::next_frame) returns it without waiting for input. A caller
    /// that holds packets back (the meter's look-ahead) meters them before a call that may
    /// wait: a pipe that goes quiet must not hold back the records of the packets before.
    fn frame_ready(&self) -> bool {
        false
    }

    /// Passes over the frames already read in whole that `keep` turns down, stopping before
    /// the first it keeps (or where the buffered input ends): [`next_frame`] then returns
    /// that one. `keep` is given each frame's link type, seconds and bytes. For a reader of
    /// a file that several workers all read, each metering its share: turning the others'
    /// frames down here costs a fraction of returning each. A source may pass over nothing
    /// (the default); a frame it could not read whole, or a damaged record, is left for
    /// [`next_frame`] to return or report.
    ///
    /// [`next_frame`]: PacketSource::next_frame
    fn pass_over(&mut self, _keep: &mut dyn FnMut(u32, u64, &[u8]) -> bool) {}

    /// For a source that tells a worker which of its frames are its own (a file read once for
    /// every worker): whether the frame the next [`next_frame`] returns is, or is given only
    /// to move the worker's clock. `None`: the source does not tell.
    ///
    /// [`next_frame`]: PacketSource::next_frame
    fn owns_next(&mut self) -> Option<bool> {
        None
    }
}

/// Largest captured length accepted in a record; larger is taken as damage, not data.
pub const MAX_CAPLEN: u32 = 16 * 1024 * 1024;

/// Read buffer size for files and standard input: large enough that refills are rare, small
/// enough to stay in L2/L3 with the frame being decoded.
pub const DEFAULT_BUFFER: usize = 2 * 1024 * 1024;

/// Opens a capture named as on the command line.
///
/// `spec` is a path, `-` for standard input, or either with the libtrace-style `pcapfile:` prefix,
/// or (on Linux) `int:INTERFACE` for live capture ([`live`]). Other `scheme:` prefixes
/// (`pcapint:`, `dag:` ...) name live sources this build cannot read; a path that merely
/// contains ':' is opened when it exists.
pub fn open(spec: &str) -> Result<Box<dyn PacketSource + Send>, CaptureError> {
    #[cfg(target_os = "linux")]
    if spec.starts_with("int:") {
        return open_stoppable(
            spec,
            std::sync::Arc::default(),
            &live::LiveOptions::default(),
        );
    }
    let path = spec.strip_prefix("pcapfile:").unwrap_or(spec);
    if path == "-" {
        return from_reader_named(
            Box::new(io::stdin()),
            DEFAULT_BUFFER,
            None,
            "standard input",
        );
    }
    open_path(spec, std::sync::Arc::default())
}

/// A capture file named by `spec` (a path, maybe after `pcapfile:`); a FIFO is read as a
/// pipe that ends once `stop` is set.
fn open_path(
    spec: &str,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Result<Box<dyn PacketSource + Send>, CaptureError> {
    let path = spec.strip_prefix("pcapfile:").unwrap_or(spec);
    if path.len() == spec.len() && looks_like_live_source(spec) {
        return Err(CaptureError::new(
            0,
            CaptureErrorKind::Unsupported(format!(
                "cannot read {spec}: the only live source is int:INTERFACE (Linux) \
                 (else give a pcap or pcapng file, or - for standard input)"
            )),
        ));
    }
    let cannot_open = |e| CaptureError {
        offset: 0,
        kind: CaptureErrorKind::Open(e),
        file: Some(path.to_string()),
    };
    if std::fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo()) {
        let fifo = stdin::StoppableStdin::fifo(std::path::Path::new(path), stop.clone())
            .map_err(cannot_open)?;
        return stopped_is_empty(
            from_reader_named(Box::new(fifo), DEFAULT_BUFFER, None, path),
            &stop,
        );
    }
    let file = std::fs::File::open(path).map_err(cannot_open)?;
    let meta = file.metadata().ok();
    if meta.as_ref().is_some_and(|m| m.is_dir()) {
        return Err(CaptureError {
            offset: 0,
            kind: CaptureErrorKind::Open(io::Error::other("is a directory")),
            file: Some(path.to_string()),
        });
    }
    let len_hint = meta.filter(|m| m.is_file()).map(|m| m.len());
    let mappable = len_hint.filter(|&len| len >= mapped::MIN_MAPPED);
    if let Some(buf) = mappable.and_then(|len| mapped_file(&file, len, mapped::WINDOW)) {
        return from_buf(buf).map_err(|mut e| {
            e.file = Some(path.to_string());
            e
        });
    }
    from_reader_named(Box::new(file), DEFAULT_BUFFER, len_hint, path)
}

/// A regular file of `len` bytes read through a memory map, `window` bytes at a time, when it
/// can be mapped and is not gzip (which is read through its decoder). The file's own position
/// is moved past the map, where `read()` goes on should the file have grown.
fn mapped_file(file: &std::fs::File, len: u64, window: usize) -> Option<input::ByteBuf> {
    use std::io::Seek;
    let map = mapped::FileMap::of(file, len)?;
    if map.bytes().starts_with(&[0x1f, 0x8b]) {
        return None;
    }
    let mut rest = file.try_clone().ok()?;
    rest.seek(io::SeekFrom::Start(len)).ok()?;
    Some(input::ByteBuf::mapped(
        map,
        window,
        Box::new(rest),
        DEFAULT_BUFFER,
        Some(len),
    ))
}

/// As [`open`], except that standard input and live capture end (as if the writer had closed
/// the pipe) once `stop` is set, within a fraction of a second, even while nothing comes.
pub fn open_stoppable(
    spec: &str,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    #[cfg(target_os = "linux")] live: &live::LiveOptions,
) -> Result<Box<dyn PacketSource + Send>, CaptureError> {
    #[cfg(target_os = "linux")]
    if let Some(name) = spec.strip_prefix("int:") {
        return Ok(Box::new(live::LiveSource::open(name, stop, live)?));
    }
    let path = spec.strip_prefix("pcapfile:").unwrap_or(spec);
    if path != "-" {
        return open_path(spec, stop);
    }
    let stdin = stdin::StoppableStdin::new(stop.clone()).map_err(|e| CaptureError {
        offset: 0,
        kind: CaptureErrorKind::Open(e),
        file: Some("standard input".to_string()),
    })?;
    stopped_is_empty(
        from_reader_named(Box::new(stdin), DEFAULT_BUFFER, None, "standard input"),
        &stop,
    )
}

/// A pipe stopped by a signal before its capture header was whole is a capture without
/// packets, not a damaged one: the run ends as a signal ends it later (every output written,
/// exit status 0), instead of an error about an empty or truncated input.
fn stopped_is_empty(
    opened: Result<Box<dyn PacketSource + Send>, CaptureError>,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<Box<dyn PacketSource + Send>, CaptureError> {
    match opened {
        Err(e)
            if matches!(
                e.kind,
                CaptureErrorKind::Empty | CaptureErrorKind::Truncated
            ) && stop.load(std::sync::atomic::Ordering::Relaxed) =>
        {
            Ok(Box::new(NoPackets))
        }
        other => other,
    }
}

/// The capture of a pipe stopped before it sent one.
struct NoPackets;

impl PacketSource for NoPackets {
    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        Ok(None)
    }
}

/// `scheme:rest` where `scheme` is a word and no such file exists (so `C:\x` or `./a:b` are paths).
fn looks_like_live_source(spec: &str) -> bool {
    match spec.split_once(':') {
        Some((scheme, _)) => {
            scheme.len() >= 2
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !std::path::Path::new(spec).exists()
        }
        None => false,
    }
}

/// A capture read from any byte stream (a file, a pipe, bytes in memory); gzip is detected.
pub fn from_reader<R: Read + Send + 'static>(
    r: R,
) -> Result<Box<dyn PacketSource + Send>, CaptureError> {
    from_reader_with_buffer(r, DEFAULT_BUFFER)
}

/// As [`from_reader`] with a chosen initial buffer size (tests use tiny ones to exercise
/// refills; the buffer still grows for records larger than it).
pub fn from_reader_with_buffer<R: Read + Send + 'static>(
    r: R,
    buffer: usize,
) -> Result<Box<dyn PacketSource + Send>, CaptureError> {
    from_reader_inner(Box::new(r), buffer, None)
}

fn from_reader_named(
    r: Box<dyn Read + Send>,
    buffer: usize,
    len_hint: Option<u64>,
    name: &str,
) -> Result<Box<dyn PacketSource + Send>, CaptureError> {
    from_reader_inner(r, buffer, len_hint).map_err(|mut e| {
        e.file = Some(name.to_string());
        e
    })
}

fn from_reader_inner(
    r: Box<dyn Read + Send>,
    buffer: usize,
    len_hint: Option<u64>,
) -> Result<Box<dyn PacketSource + Send>, CaptureError> {
    let input =
        input::Input::detect(r).map_err(|e| CaptureError::new(0, CaptureErrorKind::Io(e)))?;
    from_buf(input::ByteBuf::new(input, buffer, len_hint))
}

/// The reader for what `buf`'s first bytes say it holds.
fn from_buf(mut buf: input::ByteBuf) -> Result<Box<dyn PacketSource + Send>, CaptureError> {
    if !buf.fill(4).map_err(|e| io_error(&buf, e))? {
        let head = buf.available();
        let mut magic = [0u8; 4];
        for (m, b) in magic.iter_mut().zip(head) {
            *m = *b;
        }
        let known_prefix = KNOWN_MAGICS.iter().any(|m| m.starts_with(head));
        return Err(if head.is_empty() {
            CaptureError::new(0, CaptureErrorKind::Empty)
        } else if known_prefix {
            // The start of a capture whose magic number was cut.
            CaptureError::new(0, CaptureErrorKind::Truncated)
        } else {
            CaptureError::new(0, CaptureErrorKind::BadMagic(magic))
        });
    }
    let magic = buf
        .available()
        .first_chunk::<4>()
        .copied()
        .unwrap_or_default();
    if u32::from_le_bytes(magic) == pcapng::SHB_TYPE {
        Ok(Box::new(pcapng::PcapngReader::new(buf)?))
    } else if pcap::is_pcap_magic(magic) {
        Ok(Box::new(pcap::PcapReader::new(buf)?))
    } else {
        Err(CaptureError::new(0, CaptureErrorKind::BadMagic(magic)))
    }
}

/// The first four bytes of every format we read, as they appear in the file.
const KNOWN_MAGICS: [[u8; 4]; 7] = [
    pcapng::SHB_TYPE.to_le_bytes(),
    pcap::MAGIC_MICROS.to_le_bytes(),
    pcap::MAGIC_MICROS.to_be_bytes(),
    pcap::MAGIC_NANOS.to_le_bytes(),
    pcap::MAGIC_NANOS.to_be_bytes(),
    pcap::MAGIC_MODIFIED.to_le_bytes(),
    pcap::MAGIC_MODIFIED.to_be_bytes(),
];

/// An I/O error met while filling the buffer. A stream that ends inside a gzip member is a
/// truncated capture, like a plain file that ends inside a record.
fn io_error(buf: &input::ByteBuf, e: io::Error) -> CaptureError {
    let kind = if e.kind() == io::ErrorKind::UnexpectedEof {
        CaptureErrorKind::Truncated
    } else {
        CaptureErrorKind::Io(e)
    };
    CaptureError::new(buf.offset(), kind)
}

/// Why a capture stopped early. Always names where.
#[derive(Debug)]
pub struct CaptureError {
    /// Byte offset in the (decompressed) input where the problem was found.
    pub offset: u64,
    pub kind: CaptureErrorKind,
    /// The file (or "standard input") when the error happened while opening it.
    pub file: Option<String>,
}

impl CaptureError {
    pub fn new(offset: u64, kind: CaptureErrorKind) -> CaptureError {
        CaptureError {
            offset,
            kind,
            file: None,
        }
    }
}

#[derive(Debug)]
pub enum CaptureErrorKind {
    Io(std::io::Error),
    /// Not a pcap or pcapng file (first four bytes shown).
    BadMagic([u8; 4]),
    /// A header field that cannot be right (explained).
    Malformed(&'static str),
    /// The file ends inside a header or record.
    Truncated,
    /// The file could not be opened (the path is in [`CaptureError::file`]).
    Open(std::io::Error),
    /// The input holds no bytes at all.
    Empty,
    /// Input this build cannot read (live capture, an unknown format version), explained.
    Unsupported(String),
    /// A live capture that cannot go on (the interface went down or away).
    Live(std::io::Error),
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.as_deref();
        match (&self.kind, file) {
            (CaptureErrorKind::Open(e), _) => {
                return write!(f, "cannot open {}: {e}", file.unwrap_or("input"))
            }
            (_, Some(name)) => write!(f, "{name}: ")?,
            (_, None) => {}
        }
        match &self.kind {
            CaptureErrorKind::Io(e) => write!(f, "read error at byte {}: {e}", self.offset),
            CaptureErrorKind::BadMagic(m) => write!(
                f,
                "not a pcap or pcapng capture (magic {:02x}{:02x}{:02x}{:02x})",
                m[0], m[1], m[2], m[3]
            ),
            CaptureErrorKind::Malformed(why) => {
                write!(f, "damaged capture at byte {}: {why}", self.offset)
            }
            CaptureErrorKind::Truncated => write!(f, "capture truncated at byte {}", self.offset),
            CaptureErrorKind::Empty => f.write_str("empty input, not a pcap or pcapng capture"),
            CaptureErrorKind::Open(e) => write!(f, "cannot open: {e}"),
            CaptureErrorKind::Unsupported(why) => f.write_str(why),
            CaptureErrorKind::Live(e) => write!(f, "capture stopped: {e}"),
        }
    }
}

/// No `source`: the message already says what the underlying error said (a chain printed
/// whole, as `qof` prints errors, would say it twice).
impl std::error::Error for CaptureError {}
