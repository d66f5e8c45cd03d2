//! `wg`: WireGuard over UDP (ipfixprobe's wg plugin, CESNET 8057/1100-1102): a confidence
//! that the flow is WireGuard and each peer's index (its "sender index": WGSrcPeer for the
//! flow's forward side, WGDstPeer for the other), numbered as Wireshark shows them.
//!
//! A flow is WireGuard when its first datagram is a WireGuard message (type 1-4, three zero
//! reserved octets, 148, 92 or 64 octets for the handshake messages, 32 or more for transport
//! data); confidence 100, or 1 when the octets could be a DNS query (`wire::looks_like_dns`),
//! and 0, with no more reading, after a datagram that is not WireGuard. An index comes from
//! a handshake message its owner sent, or from a message sent to it (its receiver index).
//! A new Initiation from a side whose index is known and differs starts a new record (a new
//! session; ipfixprobe's FLOW_FLUSH_WITH_REINSERT), the continuation oriented by it.
//!
//! Beyond ipfixprobe: lengths are checked on the wire, so a capture cut by its snap length
//! still sees WireGuard as long as the indexes were kept.

pub mod wire;

use super::{Built, Needs, Options, PluginError, Spec};
use crate::ie::{pen, PluginKind};
use crate::key::proto;
use crate::meter::{ExtKey, ExtWriter, FlowPlugin, FlowSummary, Host, PacketView, Verdict};
use wire::{Error, Message};

pub static SPEC: Spec = Spec {
    kind: PluginKind::Wg,
    about: "WireGuard: confidence and each peer's sender index; a new handshake, a new record",
    options: &[],
    build,
};

const fn key(id: u16) -> ExtKey {
    ExtKey {
        pen: pen::CESNET,
        id,
    }
}
const CONF_LEVEL: ExtKey = key(1100);
const SRC_PEER: ExtKey = key(1101);
const DST_PEER: ExtKey = key(1102);

/// Octets of payload read: type, reserved octets and two indexes.
const PAYLOAD: usize = 12;

fn build(_: &Options) -> Result<Built, PluginError> {
    let needs = Needs {
        payload: PAYLOAD,
        ..Needs::default()
    };
    Ok((Box::new(Host::new(Wg)), needs))
}

pub struct Wg;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct State {
    pub conf: u8,
    /// The forward side's index, and the reverse side's (0: not known).
    pub src: u32,
    pub dst: u32,
}

impl State {
    /// Take the indexes a message of direction `reverse` tells.
    pub fn message(&mut self, m: Message, reverse: bool) {
        // (sender's side, receiver's side) = (forward, reverse) unless reversed.
        let (own, peer) = if reverse {
            (&mut self.dst, &mut self.src)
        } else {
            (&mut self.src, &mut self.dst)
        };
        match m {
            Message::Initiation { sender } => *own = sender,
            Message::Response { sender, receiver } => {
                *own = sender;
                *peer = receiver;
            }
            Message::CookieReply { receiver } | Message::TransportData { receiver } => {
                *peer = receiver
            }
        }
    }
}

fn parse(p: &PacketView<'_>) -> Result<Message, Error> {
    if p.pkt.key.proto != proto::UDP || !p.pkt.has_l4 {
        return Err(Error::NotWireGuard);
    }
    Message::parse(p.payload, p.pkt.payload_len as usize)
}

impl FlowPlugin for Wg {
    type State = State;
    const SPLITS: bool = true;

    fn number(&self) -> u8 {
        PluginKind::Wg.number()
    }

    fn attach(&mut self, p: &PacketView<'_>) -> Option<State> {
        parse(p).is_ok().then(State::default)
    }

    fn split_before(&mut self, s: &mut State, p: &PacketView<'_>) -> bool {
        let Ok(Message::Initiation { sender }) = parse(p) else {
            return false;
        };
        let known = if p.reverse { s.dst } else { s.src };
        known != 0 && known != sender
    }

    fn packet(&mut self, s: &mut State, p: &PacketView<'_>) -> Verdict {
        match parse(p) {
            Ok(m) => {
                s.message(m, p.reverse);
                s.conf = if wire::looks_like_dns(p.payload) {
                    1
                } else {
                    100
                };
                Verdict::Continue
            }
            // Too little captured to tell: nothing learnt, nothing lost.
            Err(Error::Truncated) => Verdict::Continue,
            Err(Error::NotWireGuard) => {
                s.conf = 0;
                Verdict::Done
            }
        }
    }

    fn export(&mut self, s: State, _: &FlowSummary, out: &mut ExtWriter<'_>) -> bool {
        out.unsigned(CONF_LEVEL, s.conf.into());
        out.unsigned(SRC_PEER, s.src.into());
        out.unsigned(DST_PEER, s.dst.into());
        true
    }
}

#[cfg(test)]
mod tests;
