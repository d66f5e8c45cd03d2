//! `--filter`: tcpdump expressions, compiled by libpcap, run by a safe classic-BPF interpreter.
//!
//! The expression is compiled by libpcap's own compiler, so syntax and meaning are exactly
//! tcpdump's; libpcap is loaded at run time ([`libpcap`], the only `unsafe` code here) and only
//! when a filter is requested, so qof has no build-time dependency on it. The compiled program
//! is copied out of libpcap and run by [`bpf::Program`], pure safe Rust.
//!
//! Invariants: a [`Filter`] holds an expression that compiled for at least one common link
//! type (Ethernet first; checked up front so a syntax error is reported before any packet is
//! read); programs for other link types are compiled on first sight of that link type and
//! cached (pcapng files can mix link types); a link type the expression cannot be compiled for
//! rejects all of its frames, with one warning.
//! [`Filter::matches`] allocates nothing once a link type has been seen.

pub mod bpf;
mod libpcap;

pub use bpf::Insn;
use bpf::Program;
use libpcap::Libpcap;
use std::fmt;

/// Names tried, in order, to open libpcap: Debian/Ubuntu's soname, the upstream soname, and
/// the development symlink.
pub const LIBPCAP_NAMES: &[&str] = &["libpcap.so.0.8", "libpcap.so.1", "libpcap.so"];

/// Snapshot length the programs are compiled for; it only bounds what the program returns on
/// acceptance, which is treated as a boolean here.
const SNAPLEN: i32 = 262_144;

/// Link types an expression is compiled for when the filter is built: Ethernet first (its
/// error is the one reported when none accepts the expression), then Linux cooked v1 and v2,
/// raw IP, PPP, BSD loopback and 802.11 with radiotap.
const VALIDATION_LINKTYPES: [u32; 7] = [1, 113, 276, 101, 9, 0, 127];

/// `DLT_RAW` is 12 on most systems but 14 on OpenBSD (LINKTYPE_RAW is 101 everywhere).
#[cfg(target_os = "openbsd")]
const DLT_RAW: u32 = 14;
#[cfg(not(target_os = "openbsd"))]
const DLT_RAW: u32 = 12;

/// Maps a LINKTYPE_ value (as stored in pcap and pcapng files) to the DLT_ value that
/// `pcap_open_dead` expects, as libpcap does when it reads a file. Used only when programs
/// cannot be compiled on a savefile handle (see [`libpcap`]'s docs), where libpcap does this
/// mapping itself.
///
/// Most LINKTYPE_ values equal their DLT_ value. The exceptions are the link types whose DLT_
/// numbers differed between operating systems, for which the file format got its own numbers:
///
/// | LINKTYPE_          | value | DLT_ on Linux    |
/// |--------------------|-------|------------------|
/// | ATM_RFC1483        | 100   | 11               |
/// | RAW                | 101   | 12 (OpenBSD: 14) |
/// | SLIP_BSDOS         | 102   | 15               |
/// | PPP_BSDOS          | 103   | 16               |
/// | ATM_CLIP           | 106   | 19               |
///
/// `LINKTYPE_PPP_HDLC` (50) and `LINKTYPE_PPP_ETHER` (51) are `DLT_PPP_SERIAL` and
/// `DLT_PPP_ETHER`, same numbers; `LINKTYPE_LINUX_SLL2` (276), `LINKTYPE_IPV4` (228) and
/// `LINKTYPE_IPV6` (229) are also unchanged.
pub fn linktype_to_dlt(linktype: u32) -> u32 {
    match linktype {
        100 => 11,
        101 => DLT_RAW,
        102 => 15,
        103 => 16,
        106 => 19,
        other => other,
    }
}

/// Why a filter could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FilterError {
    /// No libpcap shared library could be loaded; `detail` is the loader's message.
    LibpcapMissing { detail: String },
    /// libpcap refused the expression; `message` is its error text.
    Expression { expression: String, message: String },
    /// libpcap produced a program the interpreter refuses (a libpcap bug or an unknown
    /// extension opcode).
    Program { expression: String, message: String },
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilterError::LibpcapMissing { detail } => write!(
                f,
                "--filter: libpcap is not installed (apt-get install libpcap0.8): {detail}"
            ),
            FilterError::Expression {
                expression,
                message,
            } => write!(f, "--filter '{expression}': {message}"),
            FilterError::Program {
                expression,
                message,
            } => write!(
                f,
                "--filter '{expression}': libpcap produced an unusable program: {message}"
            ),
        }
    }
}

impl std::error::Error for FilterError {}

/// A compiled tcpdump filter expression.
pub struct Filter {
    expression: String,
    libpcap: Libpcap,
    /// (LINKTYPE_, program); `None` when the expression cannot apply to that link type.
    programs: Vec<(u32, Option<Program>)>,
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Filter")
            .field("expression", &self.expression)
            .field("linktypes", &self.programs.len())
            .finish()
    }
}

impl Filter {
    /// Loads libpcap and compiles `expression`, so a bad expression is reported now rather
    /// than at the first packet (see [`VALIDATION_LINKTYPES`]).
    pub fn new(expression: &str) -> Result<Filter, FilterError> {
        Self::with_library_names(expression, LIBPCAP_NAMES)
    }

    /// As [`Filter::new`], trying the given shared-library names (tests use it to simulate a
    /// machine without libpcap).
    pub fn with_library_names(expression: &str, names: &[&str]) -> Result<Filter, FilterError> {
        let libpcap =
            Libpcap::load(names).map_err(|detail| FilterError::LibpcapMissing { detail })?;
        let mut filter = Filter {
            expression: expression.to_string(),
            libpcap,
            programs: Vec::new(),
        };
        // Some expressions only make sense for some link types (`inbound` needs a direction
        // field, `wlan` an 802.11 header): the expression is good if it compiles for any of a
        // few common ones, and otherwise Ethernet's error is the one reported.
        let mut first_error = None;
        for linktype in VALIDATION_LINKTYPES {
            match filter.compile(linktype) {
                Ok(program) => filter.programs.push((linktype, Some(program))),
                // Link types it fails for are compiled again at their first frame, to warn then.
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match (filter.programs.is_empty(), first_error) {
            (true, Some(e)) => Err(e),
            _ => Ok(filter),
        }
    }

    /// The expression as given.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// Whether the frame passes the filter. `linktype` is the frame's LINKTYPE_ value,
    /// `wire_len` its length on the wire, `data` the captured bytes.
    pub fn matches(&mut self, linktype: u32, wire_len: u32, data: &[u8]) -> bool {
        let index = match self.programs.iter().position(|(lt, _)| *lt == linktype) {
            Some(i) => i,
            None => {
                let program = match self.compile(linktype) {
                    Ok(p) => Some(p),
                    Err(e) => {
                        tracing::warn!(
                            "{e} (link type {linktype}); frames of this link type are filtered out"
                        );
                        None
                    }
                };
                self.programs.push((linktype, program));
                self.programs.len() - 1
            }
        };
        match self.programs.get(index) {
            Some((_, Some(program))) => program.run(data, wire_len) != 0,
            _ => false,
        }
    }

    /// The expression compiled for frames of `linktype`, its accepting return value
    /// `snaplen`: a program for the kernel to run (`SO_ATTACH_FILTER`), which then keeps only
    /// the frames it accepts, cut to `snaplen` octets.
    pub fn kernel_program(&self, linktype: u32, snaplen: u32) -> Result<Vec<Insn>, FilterError> {
        let bad = |message: String| FilterError::Expression {
            expression: self.expression.clone(),
            message,
        };
        let dlt = i32::try_from(linktype_to_dlt(linktype))
            .map_err(|_| bad(format!("link type {linktype} out of range")))?;
        let snaplen = i32::try_from(snaplen).map_err(|_| bad("snap length out of range".into()))?;
        self.libpcap
            .compile(linktype, dlt, snaplen, &self.expression)
            .map_err(bad)
    }

    fn compile(&self, linktype: u32) -> Result<Program, FilterError> {
        let dlt =
            i32::try_from(linktype_to_dlt(linktype)).map_err(|_| FilterError::Expression {
                expression: self.expression.clone(),
                message: format!("link type {linktype} out of range"),
            })?;
        let insns = self
            .libpcap
            .compile(linktype, dlt, SNAPLEN, &self.expression)
            .map_err(|message| FilterError::Expression {
                expression: self.expression.clone(),
                message,
            })?;
        Program::new(&insns).map_err(|e| FilterError::Program {
            expression: self.expression.clone(),
            message: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// libpcap is an external dependency of these tests: fail loudly without it unless
    /// QOF_SKIP_EXTERNAL=1.
    fn have_libpcap() -> bool {
        match Libpcap::load(LIBPCAP_NAMES) {
            Ok(_) => true,
            Err(_) if std::env::var("QOF_SKIP_EXTERNAL").as_deref() == Ok("1") => false,
            Err(e) => panic!("libpcap is not installed ({e}); set QOF_SKIP_EXTERNAL=1 to skip"),
        }
    }

    #[test]
    fn syntax_error_is_reported_with_libpcap_text() {
        if !have_libpcap() {
            return;
        }
        let err = Filter::new("tcp port x").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("--filter 'tcp port x': "), "{text}");
        assert!(!text.contains('\n'), "{text}");
        assert!(matches!(err, FilterError::Expression { .. }), "{err:?}");
    }

    #[test]
    fn missing_library_is_reported() {
        let err = Filter::with_library_names("tcp", &["libnotthere.so"]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("--filter: libpcap is not installed (apt-get install libpcap0.8): "),
            "{text}"
        );
        assert!(text.contains("libnotthere.so"), "{text}");
    }

    #[test]
    fn errors_convert_into_anyhow() {
        if !have_libpcap() {
            return;
        }
        fn build() -> anyhow::Result<Filter> {
            Ok(Filter::new("tcp and")?)
        }
        assert!(build().is_err());
    }

    #[test]
    fn linktype_mapping() {
        assert_eq!(linktype_to_dlt(1), 1);
        assert_eq!(linktype_to_dlt(101), DLT_RAW);
        assert_eq!(linktype_to_dlt(113), 113);
        assert_eq!(linktype_to_dlt(276), 276);
        assert_eq!(linktype_to_dlt(228), 228);
    }

    #[test]
    fn link_type_without_the_header_rejects_and_is_cached() {
        if !have_libpcap() {
            return;
        }
        let mut f = Filter::new("ether host 1:2:3:4:5:6").unwrap();
        // A raw IPv4 header: no Ethernet addresses exist, so libpcap refuses; we reject.
        let ip = [
            0x45u8, 0, 0, 20, 0, 0, 0, 0, 64, 6, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8,
        ];
        assert!(!f.matches(101, 20, &ip));
        assert!(!f.matches(101, 20, &ip));
        let raw: Vec<_> = f.programs.iter().filter(|(lt, _)| *lt == 101).collect();
        assert_eq!(raw.len(), 1, "compiled once, then cached");
        assert!(raw[0].1.is_none());
    }

    #[test]
    fn expression_valid_only_for_some_link_types_is_accepted() {
        if !have_libpcap() {
            return;
        }
        // `inbound` needs a direction field: refused on Ethernet files, fine on Linux SLL.
        let mut f = Filter::new("inbound").unwrap();
        let mut sll = [0u8; 16];
        assert!(f.matches(113, 16, &sll), "packet type 0: to us");
        sll[1] = 4;
        assert!(!f.matches(113, 16, &sll), "packet type 4: outgoing");
        assert!(!f.matches(1, 16, &[0; 16]));
    }

    #[test]
    fn loopback_ip6_has_capture_file_meaning() {
        if !have_libpcap() {
            return;
        }
        // LINKTYPE_NULL: a host-order AF_ word, then the packet. Reading a file, libpcap (and
        // so tcpdump -r) takes `ip6` to mean the BSD AF_INET6 values 24, 28 and 30, not the
        // running host's own value (10 on Linux): the frame layout is the file's, not ours.
        let mut f = Filter::new("ip6").unwrap();
        let mut frame = [0u8; 44];
        frame[4] = 0x60;
        for af in [24u32, 28, 30] {
            frame[..4].copy_from_slice(&af.to_ne_bytes());
            assert!(f.matches(0, 44, &frame), "AF {af}");
        }
        frame[..4].copy_from_slice(&10u32.to_ne_bytes());
        assert!(
            !f.matches(0, 44, &frame),
            "Linux AF_INET6 is not a savefile value"
        );
    }
}
