//! `--filter`: tcpdump's filter language with exactly tcpdump's semantics.
//!
//! The expression is compiled by libpcap's own compiler, loaded at run time only when a filter
//! is asked for ([`libpcap`]), and the resulting classic BPF program runs in a small safe
//! interpreter ([`bpf`]). Programs are compiled per link type on first use, because pcapng
//! files can mix link types.

pub mod bpf;
mod libpcap;

use crate::capture::linktype;
use bpf::Program;
use std::fmt;

/// The filter of one run.
pub struct Filter {
    expression: String,
    lib: libpcap::Libpcap,
    /// Per link type: the program, or `None` when the expression does not apply to it.
    programs: Vec<(u32, Option<Program>)>,
}

#[derive(Debug)]
pub struct FilterError(String);

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FilterError {}

/// The DLT_ value libpcap's compiler expects for a LINKTYPE_ value read from a file. They are
/// the same numbers except where DLT values were platform-specific (pcap-linktype(7)).
pub fn dlt_of(lt: u32) -> i32 {
    match lt {
        linktype::RAW => 12,         // LINKTYPE_RAW -> DLT_RAW (Linux)
        linktype::RAW_OPENBSD => 12, // OpenBSD's DLT_RAW
        other => other.min(i32::MAX as u32) as i32,
    }
}

impl Filter {
    pub fn new(expression: &str) -> Result<Filter, FilterError> {
        Self::with_library_names(expression, libpcap::LIBRARY_NAMES)
    }

    /// As `new`, trying the given library names (tests use this to simulate a missing libpcap).
    pub fn with_library_names(expression: &str, names: &[&str]) -> Result<Filter, FilterError> {
        let lib = libpcap::Libpcap::load(names).map_err(|e| {
            FilterError(format!(
                "--filter needs libpcap at run time (apt-get install libpcap0.8): {e}"
            ))
        })?;
        // Check the syntax up front, for Ethernet.
        let insns = lib
            .compile(expression, dlt_of(linktype::ETHERNET))
            .map_err(|e| FilterError(format!("--filter '{expression}': {e}")))?;
        let program = Program::new(insns)
            .map_err(|e| FilterError(format!("--filter '{expression}': {}", e.0)))?;
        Ok(Filter {
            expression: expression.to_string(),
            lib,
            programs: vec![(linktype::ETHERNET, Some(program))],
        })
    }

    /// Does the frame pass? `wire_len` is its length on the wire, `data` what was captured.
    pub fn matches(&mut self, linktype: u32, wire_len: u32, data: &[u8]) -> bool {
        let idx = match self.programs.iter().position(|(lt, _)| *lt == linktype) {
            Some(i) => i,
            None => {
                let prog = match self
                    .lib
                    .compile(&self.expression, dlt_of(linktype))
                    .map(Program::new)
                {
                    Ok(Ok(p)) => Some(p),
                    Ok(Err(e)) => {
                        tracing::warn!(
                            "--filter '{}': link type {linktype}: {}; its frames are rejected",
                            self.expression,
                            e.0
                        );
                        None
                    }
                    Err(e) => {
                        tracing::warn!(
                            "--filter '{}': link type {linktype}: {e}; its frames are rejected",
                            self.expression
                        );
                        None
                    }
                };
                self.programs.push((linktype, prog));
                self.programs.len() - 1
            }
        };
        match &self.programs[idx].1 {
            Some(p) => p.run(data, wire_len) != 0,
            None => false,
        }
    }
}
