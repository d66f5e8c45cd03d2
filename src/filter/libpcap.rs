//! libpcap's filter compiler, loaded at run time. The build needs no libpcap headers or
//! library; a machine without libpcap runs qof fine and only `--filter` says what is missing.
//! This is the only file with `unsafe`: calls across the C boundary.

use super::bpf::Insn;
use libloading::{Library, Symbol};
use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};

/// Names tried, in order (Debian ships libpcap.so.0.8; others ship .so.1).
pub const LIBRARY_NAMES: &[&str] = &[
    "libpcap.so.0.8",
    "libpcap.so.1",
    "libpcap.so",
    "libpcap.dylib",
];

#[repr(C)]
struct BpfProgram {
    bf_len: c_uint,
    bf_insns: *mut Insn,
}

type OpenDead = unsafe extern "C" fn(c_int, c_int) -> *mut c_void;
type Compile =
    unsafe extern "C" fn(*mut c_void, *mut BpfProgram, *const c_char, c_int, u32) -> c_int;
type GetErr = unsafe extern "C" fn(*mut c_void) -> *const c_char;
type FreeCode = unsafe extern "C" fn(*mut BpfProgram);
type Close = unsafe extern "C" fn(*mut c_void);

/// PCAP_NETMASK_UNKNOWN: broadcast tests without a known netmask.
const NETMASK_UNKNOWN: u32 = 0xffff_ffff;
const SNAPLEN: c_int = 262_144;

pub struct Libpcap {
    lib: Library,
}

impl Libpcap {
    /// Load the first library of `names` that exists.
    pub fn load(names: &[&str]) -> Result<Libpcap, String> {
        let mut last = String::from("no library names given");
        for name in names {
            // SAFETY: loading libpcap runs only its (trusted, system-installed) initialisers.
            match unsafe { Library::new(*name) } {
                Ok(lib) => {
                    let me = Libpcap { lib };
                    me.check_symbols()?;
                    return Ok(me);
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(last)
    }

    fn check_symbols(&self) -> Result<(), String> {
        for sym in [
            "pcap_open_dead",
            "pcap_compile",
            "pcap_geterr",
            "pcap_freecode",
            "pcap_close",
        ] {
            // SAFETY: only looks the symbol up; its type is not used here.
            unsafe { self.lib.get::<*const c_void>(sym.as_bytes()) }
                .map_err(|e| format!("{sym}: {e}"))?;
        }
        Ok(())
    }

    /// Compile `expr` for data link type `dlt` into classic BPF instructions.
    pub fn compile(&self, expr: &str, dlt: i32) -> Result<Vec<Insn>, String> {
        let cexpr =
            CString::new(expr).map_err(|_| "the expression contains a NUL byte".to_string())?;
        // SAFETY: the symbol types match libpcap's documented C prototypes (pcap(3PCAP)).
        unsafe {
            let open_dead: Symbol<OpenDead> =
                self.lib.get(b"pcap_open_dead").map_err(|e| e.to_string())?;
            let compile: Symbol<Compile> =
                self.lib.get(b"pcap_compile").map_err(|e| e.to_string())?;
            let geterr: Symbol<GetErr> = self.lib.get(b"pcap_geterr").map_err(|e| e.to_string())?;
            let freecode: Symbol<FreeCode> =
                self.lib.get(b"pcap_freecode").map_err(|e| e.to_string())?;
            let close: Symbol<Close> = self.lib.get(b"pcap_close").map_err(|e| e.to_string())?;
            let p = open_dead(dlt, SNAPLEN);
            if p.is_null() {
                return Err(format!("libpcap cannot open link type {dlt}"));
            }
            let mut prog = BpfProgram {
                bf_len: 0,
                bf_insns: std::ptr::null_mut(),
            };
            let rc = compile(p, &mut prog, cexpr.as_ptr(), 1, NETMASK_UNKNOWN);
            let result = if rc != 0 {
                let msg = geterr(p);
                Err(if msg.is_null() {
                    "syntax error".to_string()
                } else {
                    CStr::from_ptr(msg).to_string_lossy().into_owned()
                })
            } else if prog.bf_insns.is_null() {
                Err("libpcap returned an empty program".to_string())
            } else {
                // Copy the instructions out before libpcap frees them.
                let insns =
                    std::slice::from_raw_parts(prog.bf_insns, prog.bf_len as usize).to_vec();
                freecode(&mut prog);
                Ok(insns)
            };
            close(p);
            result
        }
    }
}
