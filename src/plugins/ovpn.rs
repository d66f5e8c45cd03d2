//! `ovpn`: how sure it is that a TCP or UDP flow is OpenVPN (ipfixprobe's OpenVPN detector,
//! OVPNConfLevel, CESNET 8057/828), 0 to 100.
//!
//! ipfixprobe's rules: each packet's opcode drives a state machine through a session's
//! opening (the client's hard reset, the server's, the client's ACK, a TLS ClientHello in a
//! control packet from the client, a ServerHello from the server, control packets or ACKs,
//! then data); four packets in a row that move it nowhere reset it. A flow of more than 20
//! packets that reached data is 100. Otherwise, with more than 20 large packets (payload over
//! 500 octets, UDP ones that look like RTP left out) of which at least 60 % are data packets,
//! it is that share × 80. Flows of 5 packets or fewer carry nothing.
//!
//! Beyond ipfixprobe: over TCP, packets are framed by their two-octet length through the
//! whole connection (`framer`: read from the stream, then segment by segment), so several in
//! one segment or one over several are each one packet; ipfixprobe takes every segment for
//! one packet with its opcode at octet 2. The hellos are found under any `--tls-auth` HMAC
//! length (ipfixprobe: none or SHA-1's, at fixed places). The client is a direction, not an
//! address (ipfixprobe compares addresses: a flow between two sockets of one host never
//! passes). A TCP packet of two octets is not read past its end (ipfixprobe reads octet 2).
//! GTP-U datagrams, whose first octet reads as P_DATA_V1, are left out of the large ones as
//! RTP's are (a mobile operator's user plane would otherwise be 80).

pub mod wire;

use super::framer::{Framer, Segment};
use super::{wire_payload, Built, Needs, Options, PluginError, Spec};
use crate::ie::{pen, PluginKind};
use crate::key::proto;
use crate::meter::{
    ExtKey, ExtWriter, FlowPlugin, FlowSummary, Host, Opening, PacketView, Verdict,
};
use wire::opcode as op;

pub static SPEC: Spec = Spec {
    kind: PluginKind::Ovpn,
    about: "OpenVPN detection: confidence 0-100 from opcodes, the handshake and data packets",
    options: &[],
    build,
};

/// Octets of each TCP direction's stream read (the session's opening; later packets are read
/// segment by segment).
pub const WINDOW: usize = 4096;
/// Octets of each UDP datagram read: the deepest ClientHello place (a 64-octet HMAC and
/// eight ACKs) is 131.
const PAYLOAD: usize = 160;

const CONF_LEVEL: ExtKey = ExtKey {
    pen: pen::CESNET,
    id: 828,
};

/// ipfixprobe's thresholds.
const MIN_PACKETS: u64 = 20;
const MIN_EXPORT_PACKETS: u64 = 5;
const LARGE: usize = 500;
const DATA_SHARE: f64 = 0.6;
const INVALID_LIMIT: i32 = 4;

fn build(_: &Options) -> Result<Built, PluginError> {
    let needs = Needs {
        payload: PAYLOAD,
        stream: WINDOW,
        ..Needs::default()
    };
    Ok((Box::new(Host::new(Ovpn)), needs))
}

pub struct Ovpn;

/// Where a session's opening stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    #[default]
    Null,
    ResetClient,
    ResetServer,
    Ack,
    ClientHello,
    ServerHello,
    ControlAck,
    Data,
}

/// ipfixprobe's detector state, packet by packet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Machine {
    pub status: Status,
    /// Packets in a row that moved the state nowhere, less one.
    invalid: i32,
    /// The client's direction (`PacketView::reverse` of its hard reset).
    client: Option<bool>,
    pub large: u32,
    pub data: u32,
}

impl Machine {
    /// One OpenVPN packet (from its opcode octet: what is at hand of it) of `wire_len`
    /// octets, in direction `reverse`; `other`: a UDP datagram that looks like another
    /// protocol (RTP, GTP-U), never counted as large.
    pub fn packet(&mut self, p: &[u8], wire_len: usize, reverse: bool, other: bool) {
        let Some(p) = wire::Packet::new_checked(p) else {
            return;
        };
        let from_client = self.client == Some(reverse);
        let to_client = self.client == Some(!reverse);
        let large = wire_len > LARGE && !other;
        let control = matches!(self.status, Status::ServerHello | Status::ControlAck);
        match p.opcode() {
            op::HARD_RESET_CLIENT_V1 | op::HARD_RESET_CLIENT_V2 | op::HARD_RESET_CLIENT_V3 => {
                self.moved(Status::ResetClient);
                self.client = Some(reverse);
            }
            op::HARD_RESET_SERVER_V1 | op::HARD_RESET_SERVER_V2 => {
                if self.status == Status::ResetClient && to_client {
                    self.moved(Status::ResetServer);
                } else {
                    self.invalid();
                }
            }
            op::CONTROL_V1 => {
                let hello = p.tls_handshake();
                if self.status == Status::Ack && from_client && hello == Some(wire::CLIENT_HELLO) {
                    self.moved(Status::ClientHello);
                } else if self.status == Status::ClientHello
                    && to_client
                    && hello == Some(wire::SERVER_HELLO)
                {
                    self.moved(Status::ServerHello);
                } else if control {
                    self.moved(Status::ControlAck);
                } else {
                    self.invalid();
                }
            }
            op::ACK_V1 => {
                if self.status == Status::ResetServer && from_client {
                    self.moved(Status::Ack);
                } else if control {
                    self.moved(Status::ControlAck);
                }
            }
            op::DATA_V1 | op::DATA_V2 => {
                if matches!(self.status, Status::ControlAck | Status::Data) {
                    self.moved(Status::Data);
                }
                if large {
                    self.data += 1;
                }
            }
            _ => {}
        }
        if large {
            self.large += 1;
        }
        if self.invalid >= INVALID_LIMIT {
            self.status = Status::Null;
            self.invalid = -1;
        }
        self.invalid += 1;
    }

    fn moved(&mut self, to: Status) {
        self.status = to;
        self.invalid = -1;
    }

    /// A packet that cannot be where the state is (counted twice with the count every packet
    /// adds, as ipfixprobe counts it).
    fn invalid(&mut self) {
        self.invalid += 1;
        if self.invalid == INVALID_LIMIT {
            self.status = Status::Null;
        }
    }

    /// The confidence for a flow of `packets` packets.
    pub fn confidence(&self, packets: u64) -> u8 {
        if packets > MIN_PACKETS && self.status == Status::Data {
            return 100;
        }
        if u64::from(self.large) > MIN_PACKETS {
            let share = f64::from(self.data) / f64::from(self.large);
            if share >= DATA_SHARE {
                // (As ipfixprobe: truncated.)
                return (share * 80.0) as u8;
            }
        }
        0
    }
}

#[derive(Default)]
pub struct State {
    machine: Machine,
    /// TCP: each direction's framing.
    dirs: Option<Box<[Framer; 2]>>,
}

impl FlowPlugin for Ovpn {
    type State = State;
    const READS_STREAM: bool = true;

    fn number(&self) -> u8 {
        PluginKind::Ovpn.number()
    }

    fn attach(&mut self, p: &PacketView<'_>) -> Option<State> {
        match p.pkt.key.proto {
            proto::TCP if p.pkt.tcp.is_some() => Some(State {
                dirs: Some(Box::default()),
                ..State::default()
            }),
            proto::UDP if p.pkt.has_l4 => Some(State::default()),
            _ => None,
        }
    }

    // (Over TCP, OpenVPN's packets are the connection's payload: a connection without any
    // keeps nothing, and its record says what any flow without OpenVPN says.)
    const FROM_PAYLOAD: bool = true;

    fn attach_late(&mut self, p: &PacketView<'_>, before: &Opening) -> Option<State> {
        let mut s = self.attach(p)?;
        if let Some(dirs) = s.dirs.as_deref_mut() {
            Framer::opened(dirs, before);
        }
        Some(s)
    }

    fn export_unattached(&mut self, flow: &FlowSummary, out: &mut ExtWriter<'_>) -> bool {
        self.export(State::default(), flow, out)
    }

    fn packet(&mut self, s: &mut State, p: &PacketView<'_>) -> Verdict {
        let State { machine, dirs } = s;
        match (Segment::of(p), dirs) {
            (Some(seg), Some(dirs)) => {
                let reverse = p.reverse;
                // (A packet's length on the wire includes its two-octet prefix, as the
                // segment that carries it alone counts it.)
                dirs[usize::from(reverse)].push::<wire::Tcp>(WINDOW, &seg, &mut |m| {
                    machine.packet(m.bytes.get(2..).unwrap_or(&[]), m.len, reverse, false)
                });
            }
            (None, None) if !p.payload.is_empty() => {
                let wire = wire_payload(p.pkt) as usize;
                let other =
                    wire::looks_like_rtp(p.payload) || wire::looks_like_gtp_u(p.payload, wire);
                machine.packet(p.payload, wire, p.reverse, other);
            }
            _ => {}
        }
        Verdict::Continue
    }

    fn wants_stream(&self, s: &State) -> bool {
        // Every TCP flow is read: once a direction's first octets are not OpenVPN (or a gap
        // lost its framing), the stream goes, so that the many flows that are not cost no
        // buffer; the framer reads segments without it.
        s.dirs.as_ref().is_some_and(|d| {
            !d.iter().any(|f| f.lost()) && d.iter().any(|f| f.wants_stream(WINDOW))
        })
    }

    fn export(&mut self, s: State, flow: &FlowSummary, out: &mut ExtWriter<'_>) -> bool {
        let packets = flow.packets();
        if packets <= MIN_EXPORT_PACKETS {
            // Port scans and the like, as ipfixprobe.
            return false;
        }
        out.unsigned(CONF_LEVEL, s.machine.confidence(packets).into());
        true
    }
}

#[cfg(test)]
mod tests;
