//! Run-time binding to libpcap's filter compiler; the only `unsafe` code of the filter.
//!
//! Only five functions are used: `pcap_open_dead`, `pcap_compile`, `pcap_geterr`,
//! `pcap_freecode` and `pcap_close`. The library is opened with `dlopen` when a filter is
//! requested, so qof neither links against libpcap nor needs it installed otherwise.
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
            let compile = *library.get::<CompileFn>("pcap_compile").map_err(describe)?;
            let geterr = *library.get::<GetErrFn>("pcap_geterr").map_err(describe)?;
            let freecode = *library
                .get::<FreeCodeFn>("pcap_freecode")
                .map_err(describe)?;
            let close = *library.get::<CloseFn>("pcap_close").map_err(describe)?;
            Ok(Libpcap {
                open_dead,
                compile,
                geterr,
                freecode,
                close,
                _library: library,
            })
        }
    }

    /// Compiles `expression` for DLT value `dlt` (optimised, netmask unknown) and returns a
    /// copy of the instructions, or libpcap's error message.
    pub(crate) fn compile(
        &self,
        dlt: i32,
        snaplen: i32,
        expression: &str,
    ) -> Result<Vec<Insn>, String> {
        let expr = CString::new(expression)
            .map_err(|_| String::from("the expression contains a NUL byte"))?;
        let _guard = COMPILER
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // SAFETY: pcap_open_dead takes two integers and returns an owned handle or NULL.
        let handle = unsafe { (self.open_dead)(dlt, snaplen) };
        if handle.is_null() {
            return Err(String::from("pcap_open_dead failed (out of memory)"));
        }
        let mut program = BpfProgram {
            bf_len: 0,
            bf_insns: std::ptr::null_mut(),
        };
        // SAFETY: `handle` is a live pcap_t from pcap_open_dead, `program` is a valid
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
        // SAFETY: `handle` came from pcap_open_dead, is closed exactly once, and nothing
        // derived from it (error text, program) is used after this point.
        unsafe { (self.close)(handle) };
        result
    }
}
