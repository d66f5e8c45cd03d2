//! Run-time binding to libpcap's filter compiler; the only `unsafe` code of the filter.
//!
//! Six functions are used: `pcap_open_offline` (or `pcap_open_dead`), `pcap_compile`,
//! `pcap_geterr`, `pcap_freecode` and `pcap_close`. The library is opened with `dlopen` when a
//! filter is requested, so qof neither links against libpcap nor needs it installed otherwise.
//!
//! Why a savefile handle: libpcap compiles some expressions differently for a capture file
//! than for a live or "dead" handle. For `DLT_NULL`, `ip6` must match the `AF_INET6` values of
//! every BSD (24, 28, 30) when reading a file, but only the host's own value (10 on Linux)
//! otherwise; `inbound` on link types without a direction field is refused for files. qof
//! reads files, so to give exactly `tcpdump -r`'s meaning the expression is compiled on a
//! handle opened with `pcap_open_offline` on a header-only pcap file (24 bytes, host byte
//! order, the frame's LINKTYPE_ value: libpcap then also maps LINKTYPE_ to DLT_ itself, as
//! tcpdump gets it). Only if that temporary file cannot be written does it fall back to
//! `pcap_open_dead` with our own mapping ([`super::linktype_to_dlt`]).
//!
//! Invariants: the function pointers in [`Libpcap`] are valid for as long as the struct lives,
//! because it owns the [`Library`] they were resolved from; every compiled program is copied
//! into Rust memory and freed (`pcap_freecode`, `pcap_close`) before [`Libpcap::compile`]
//! returns, so no libpcap allocation outlives a call; calls into the compiler are serialised
//! by a process-wide lock, because libpcap before 1.8 kept the parser state in globals.

use super::bpf::Insn;
use libloading::Library;
use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::sync::Mutex;

/// `struct bpf_insn` of `<pcap/bpf.h>`.
#[repr(C)]
#[derive(Clone, Copy)]
struct BpfInsn {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

/// `struct bpf_program` of `<pcap/bpf.h>`.
#[repr(C)]
struct BpfProgram {
    bf_len: c_uint,
    bf_insns: *mut BpfInsn,
}

type PcapT = c_void;
type OpenDeadFn = unsafe extern "C" fn(linktype: c_int, snaplen: c_int) -> *mut PcapT;
type OpenOfflineFn = unsafe extern "C" fn(fname: *const c_char, errbuf: *mut c_char) -> *mut PcapT;
type CompileFn = unsafe extern "C" fn(
    p: *mut PcapT,
    fp: *mut BpfProgram,
    expr: *const c_char,
    optimize: c_int,
    netmask: u32,
) -> c_int;
type GetErrFn = unsafe extern "C" fn(p: *mut PcapT) -> *mut c_char;
type FreeCodeFn = unsafe extern "C" fn(fp: *mut BpfProgram);
type CloseFn = unsafe extern "C" fn(p: *mut PcapT);

/// The loader's error with its cause: libloading's own text is only "dlopen failed", the
/// useful `dlerror()` message is its source.
fn describe(e: libloading::Error) -> String {
    match std::error::Error::source(&e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// Serialises calls into libpcap's compiler (see the module invariants).
static COMPILER: Mutex<()> = Mutex::new(());

/// An opened libpcap with the functions the filter needs.
pub(crate) struct Libpcap {
    open_dead: OpenDeadFn,
    open_offline: OpenOfflineFn,
    compile: CompileFn,
    geterr: GetErrFn,
    freecode: FreeCodeFn,
    close: CloseFn,
    /// Keeps the function pointers above valid.
    _library: Library,
}

impl Libpcap {
    /// Opens the first of `names` that loads and resolves the five functions; on failure the
    /// error is the loader's message for the last name tried.
    pub(crate) fn load(names: &[&str]) -> Result<Libpcap, String> {
        let mut last_error = String::from("no library name given");
        for name in names {
            match Self::load_one(name) {
                Ok(lib) => return Ok(lib),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    fn load_one(name: &str) -> Result<Libpcap, String> {
        // SAFETY: loading a shared library runs its initialisers; libpcap's only set up
        // internal tables and are safe to run in any process.
        let library = unsafe { Library::new(name) }.map_err(describe)?;
        // SAFETY: each symbol is declared with the C signature documented in libpcap's
        // `pcap/pcap.h` (stable since libpcap 0.x); the copied pointers stay valid because
        // `library` is stored next to them and never unloaded before them.
        unsafe {
            let open_dead = *library
                .get::<OpenDeadFn>("pcap_open_dead")
                .map_err(describe)?;
            let open_offline = *library
                .get::<OpenOfflineFn>("pcap_open_offline")
                .map_err(describe)?;
            let compile = *library.get::<CompileFn>("pcap_compile").map_err(describe)?;
            let geterr = *library.get::<GetErrFn>("pcap_geterr").map_err(describe)?;
            let freecode = *library
                .get::<FreeCodeFn>("pcap_freecode")
                .map_err(describe)?;
            let close = *library.get::<CloseFn>("pcap_close").map_err(describe)?;
            Ok(Libpcap {
                open_dead,
                open_offline,
                compile,
                geterr,
                freecode,
                close,
                _library: library,
            })
        }
    }

    /// Compiles `expression` for frames of LINKTYPE_ `linktype` (optimised, netmask unknown)
    /// as `tcpdump -r` would for a file of that link type, and returns a copy of the
    /// instructions, or libpcap's error message. `dlt` is the DLT_ value for the fallback
    /// handle (see the module docs).
    pub(crate) fn compile(
        &self,
        linktype: u32,
        dlt: i32,
        snaplen: i32,
        expression: &str,
    ) -> Result<Vec<Insn>, String> {
        let expr = CString::new(expression)
            .map_err(|_| String::from("the expression contains a NUL byte"))?;
        let _guard = COMPILER
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let handle = match self.open_savefile(linktype, snaplen)? {
            Some(handle) => handle,
            None => {
                // SAFETY: pcap_open_dead takes two integers and returns an owned handle or
                // NULL.
                let handle = unsafe { (self.open_dead)(dlt, snaplen) };
                if handle.is_null() {
                    return Err(String::from("pcap_open_dead failed (out of memory)"));
                }
                handle
            }
        };
        let mut program = BpfProgram {
            bf_len: 0,
            bf_insns: std::ptr::null_mut(),
        };
        // SAFETY: `handle` is a live pcap_t from pcap_open_offline or pcap_open_dead, `program` is a valid
        // bpf_program to fill, `expr` is NUL-terminated and outlives the call;
        // PCAP_NETMASK_UNKNOWN (0xffffffff) is the documented "no netmask" value.
        let status = unsafe { (self.compile)(handle, &mut program, expr.as_ptr(), 1, 0xffff_ffff) };
        let result = if status != 0 {
            // SAFETY: after a failed pcap_compile, pcap_geterr returns the handle's
            // NUL-terminated error buffer, valid until the handle is closed; it is copied
            // into a String before pcap_close below.
            let message = unsafe {
                let text = (self.geterr)(handle);
                if text.is_null() {
                    String::from("pcap_compile failed")
                } else {
                    CStr::from_ptr(text).to_string_lossy().into_owned()
                }
            };
            Err(message)
        } else {
            let insns = if program.bf_insns.is_null() || program.bf_len == 0 {
                Vec::new()
            } else {
                // SAFETY: after a successful pcap_compile, `bf_insns` points to `bf_len`
                // initialised bpf_insn structs owned by libpcap until pcap_freecode; they are
                // copied out here, before that call.
                let raw = unsafe {
                    std::slice::from_raw_parts(program.bf_insns, program.bf_len as usize)
                };
                raw.iter()
                    .map(|i| Insn::new(i.code, i.jt, i.jf, i.k))
                    .collect()
            };
            // SAFETY: `program` was filled by a successful pcap_compile and is freed once.
            unsafe { (self.freecode)(&mut program) };
            Ok(insns)
        };
        // SAFETY: `handle` came from pcap_open_offline or pcap_open_dead, is closed exactly
        // once (which also closes the savefile's FILE), and nothing
        // derived from it (error text, program) is used after this point.
        unsafe { (self.close)(handle) };
        result
    }

    /// A savefile handle for `linktype`, opened on a temporary header-only pcap file; `None`
    /// when the temporary file cannot be written (the caller falls back to a dead handle).
    /// A header libpcap refuses is an error: it would refuse a real file of that link type.
    fn open_savefile(&self, linktype: u32, snaplen: i32) -> Result<Option<*mut PcapT>, String> {
        let Some(file) = HeaderFile::create(linktype, snaplen) else {
            return Ok(None);
        };
        let Some(path) = file.c_path() else {
            return Ok(None);
        };
        // PCAP_ERRBUF_SIZE.
        let mut errbuf = [0 as c_char; 256];
        // SAFETY: `path` is NUL-terminated and outlives the call; `errbuf` has the
        // PCAP_ERRBUF_SIZE bytes libpcap may write its message into. libpcap reads the
        // 24-byte header and keeps its own FILE open; removing the file afterwards (when
        // `file` drops) does not disturb that open file on Unix.
        let handle = unsafe { (self.open_offline)(path.as_ptr(), errbuf.as_mut_ptr()) };
        if handle.is_null() {
            // SAFETY: libpcap NUL-terminates its message within `errbuf`; the last byte is
            // forced to NUL so the read stays inside the buffer whatever it wrote.
            let message = unsafe {
                if let Some(last) = errbuf.last_mut() {
                    *last = 0;
                }
                CStr::from_ptr(errbuf.as_ptr())
                    .to_string_lossy()
                    .into_owned()
            };
            return Err(message);
        }
        Ok(Some(handle))
    }
}

/// A temporary pcap file holding only a file header, removed when dropped.
struct HeaderFile {
    path: std::path::PathBuf,
}

impl HeaderFile {
    fn create(linktype: u32, snaplen: i32) -> Option<HeaderFile> {
        use std::io::Write;
        use std::sync::atomic::{AtomicU64, Ordering};
        static SEQUENCE: AtomicU64 = AtomicU64::new(0);
        let mut header = Vec::with_capacity(24);
        header.extend_from_slice(&0xa1b2_c3d4u32.to_ne_bytes()); // µs magic, host order
        header.extend_from_slice(&2u16.to_ne_bytes()); // version 2.4
        header.extend_from_slice(&4u16.to_ne_bytes());
        header.extend_from_slice(&0i32.to_ne_bytes()); // thiszone
        header.extend_from_slice(&0u32.to_ne_bytes()); // sigfigs
        header.extend_from_slice(&snaplen.to_ne_bytes());
        header.extend_from_slice(&linktype.to_ne_bytes());
        let name = format!(
            "qof-filter-{}-{}-{linktype}.pcap",
            std::process::id(),
            SEQUENCE.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .ok()?;
        let file = HeaderFile { path };
        f.write_all(&header).ok()?;
        Some(file)
    }

    #[cfg(unix)]
    fn c_path(&self) -> Option<CString> {
        use std::os::unix::ffi::OsStrExt;
        CString::new(self.path.as_os_str().as_bytes()).ok()
    }

    #[cfg(not(unix))]
    fn c_path(&self) -> Option<CString> {
        CString::new(self.path.to_str()?).ok()
    }
}

impl Drop for HeaderFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
