//! SCTP: whether this kernel has it. The sessions themselves are module `stream`'s.

use anyhow::{anyhow, Result};
use socket2::{Domain, Protocol, Socket, Type};

/// IANA protocol number of SCTP.
pub const IPPROTO_SCTP: i32 = 132;

/// Open (and close) an SCTP socket, so that a kernel without SCTP (no `sctp` module) is
/// reported once, at start-up, in one line.
pub fn probe() -> Result<()> {
    match Socket::new(
        Domain::IPV4,
        Type::STREAM,
        Some(Protocol::from(IPPROTO_SCTP)),
    ) {
        Ok(_) => Ok(()),
        Err(e) => Err(anyhow!(
            "--ipfix sctp: this kernel does not support SCTP ({e}); use --ipfix tcp or udp, \
             or load the sctp module"
        )),
    }
}
