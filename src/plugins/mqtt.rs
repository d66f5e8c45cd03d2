//! `mqtt`: MQTT sessions over TCP (ipfixprobe's mqtt plugin, CESNET 8057/1033-1039): the
//! control packet types seen, the last CONNECT's protocol level, flags and keep alive, the
//! last CONNACK's return code and session-present flag, the PUBLISH flags, and with
//! `topiccount=N` the first N PUBLISH topic names, each followed by `#`. A DISCONNECT ends
//! the flow (flowEndReason 3, end of flow detected), as ipfixprobe's FLOW_FLUSH does.
//!
//! A flow is MQTT when the first octets of the first direction to carry payload are a
//! CONNECT naming MQTT (3.1.1, 5.0) or MQIsdp (3.1), wherever that direction's stream starts.
//! (ipfixprobe looks at the flow's first packet only, which for a connection it saw open is
//! the SYN: it never detects those.) Packets are read from each direction's stream, so a
//! packet split over segments, several in one segment, or segments out of order are read
//! whole; past the stream's window, each segment is read from where the next packet starts
//! (`framer`). The remaining length is MQTT's variable byte integer (ipfixprobe's is wrong
//! above 127).

pub mod wire;

use super::framer::{Framer, Segment};
use super::{Built, Needs, OptionSpec, Options, PluginError, Spec};
use crate::ie::{pen, PluginKind};
use crate::meter::{
    ExtKey, ExtWriter, FlowPlugin, FlowSummary, Host, Opening, PacketView, Verdict,
};
use wire::{kind, ConnAck, Connect, Mqtt as Framing};

pub static SPEC: Spec = Spec {
    kind: PluginKind::Mqtt,
    about: "MQTT: packet types, CONNECT level, flags and keep alive, CONNACK code, PUBLISH flags and topics",
    options: &[OptionSpec {
        name: "topiccount",
        short: "tc",
        takes_value: true,
        help: "export the first N PUBLISH topic names, each followed by # (0-1000, default 0)",
    }],
    build,
};

/// Octets of each TCP direction's stream read (the CONNECT and the first packets; later
/// ones are read segment by segment).
pub const WINDOW: usize = 4096;
/// Octets of topic names kept at most (with their `#`s): the string stays bounded whatever
/// `topiccount` says.
pub const MAX_TOPICS_OCTETS: usize = 4096;
/// Packets with payload that may pass before the first direction's octets show whether the
/// flow starts with a CONNECT (its first segment missing, say).
const MAX_UNDECIDED: u8 = 8;

const fn key(id: u16) -> ExtKey {
    ExtKey {
        pen: pen::CESNET,
        id,
    }
}
const TYPE_CUMULATIVE: ExtKey = key(1033);
const VERSION: ExtKey = key(1034);
const CONNECTION_FLAGS: ExtKey = key(1035);
const KEEP_ALIVE: ExtKey = key(1036);
const LAST_RETURN_CODE: ExtKey = key(1037);
const PUBLISH_FLAGS: ExtKey = key(1038);
const TOPICS: ExtKey = key(1039);

fn build(o: &Options) -> Result<Built, PluginError> {
    let p = MqttPlugin {
        topic_count: o.number("mqtt", "topiccount", 0..=1000, 0)? as u32,
    };
    let needs = Needs {
        stream: WINDOW,
        ..Needs::default()
    };
    Ok((Box::new(Host::new(p)), needs))
}

pub struct MqttPlugin {
    /// Topic names kept at most.
    topic_count: u32,
}

/// What a flow's packets said.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Session {
    /// Bit *t*: a packet of type *t* was seen.
    pub types: u16,
    /// Session present, from the last CONNACK.
    pub session_present: bool,
    pub version: u8,
    pub connect_flags: u8,
    pub keep_alive: u16,
    pub return_code: u8,
    pub publish_flags: u8,
    /// Topic names (each followed by '#'), and how many PUBLISH topics were counted.
    pub topics: String,
    pub topics_seen: u32,
    pub disconnect: bool,
}

impl Session {
    /// One control packet (its first octets at least, `len` in all).
    pub fn packet(&mut self, bytes: &[u8], topic_count: u32) {
        let Ok(p) = wire::Packet::new_checked(bytes) else {
            return;
        };
        self.types |= 1 << p.kind();
        match p.kind() {
            kind::CONNECT => {
                if let Ok(c) = Connect::parse(p.body()) {
                    self.version = c.level;
                    self.connect_flags = c.flags;
                    self.keep_alive = c.keep_alive;
                }
            }
            kind::CONNACK => {
                if let Ok(a) = ConnAck::parse(p.body()) {
                    self.session_present = a.flags & 1 != 0;
                    self.return_code = a.code;
                }
            }
            kind::PUBLISH => {
                self.publish_flags |= p.flags();
                if let Ok(topic) = wire::publish_topic(p.body()) {
                    self.topic(topic, topic_count);
                }
            }
            kind::DISCONNECT => self.disconnect = true,
            _ => {}
        }
    }

    /// A PUBLISH topic name: kept while fewer than `topic_count` are and there is room. Names
    /// with a wildcard or that are not UTF-8 are not names (3.1.1 §4.7): left out, as
    /// ipfixprobe leaves out the first.
    fn topic(&mut self, name: &[u8], topic_count: u32) {
        let Ok(name) = std::str::from_utf8(name) else {
            return;
        };
        if name.contains(['#', '+']) {
            return;
        }
        if self.topics_seen < topic_count && self.topics.len() + name.len() < MAX_TOPICS_OCTETS {
            self.topics.push_str(name);
            self.topics.push('#');
        }
        self.topics_seen = self.topics_seen.saturating_add(1);
    }
}

/// Whether the flow is MQTT.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Detect {
    /// No payload yet, or not enough of the first direction's.
    #[default]
    Undecided,
    Mqtt,
}

#[derive(Default)]
pub struct State {
    detect: Detect,
    /// The direction that carried payload first (`PacketView::reverse`).
    first: Option<bool>,
    undecided: u8,
    dirs: [Framer; 2],
    session: Session,
}

impl FlowPlugin for MqttPlugin {
    type State = State;
    const READS_STREAM: bool = true;

    fn number(&self) -> u8 {
        PluginKind::Mqtt.number()
    }

    fn attach(&mut self, p: &PacketView<'_>) -> Option<State> {
        p.pkt.tcp.is_some().then(State::default)
    }

    // (An MQTT session is read from the connection's first payload, its CONNECT.)
    const FROM_PAYLOAD: bool = true;

    fn attach_late(&mut self, p: &PacketView<'_>, before: &Opening) -> Option<State> {
        let mut s = self.attach(p)?;
        Framer::opened(&mut s.dirs, before);
        Some(s)
    }

    fn packet(&mut self, s: &mut State, p: &PacketView<'_>) -> Verdict {
        let Some(seg) = Segment::of(p) else {
            return Verdict::Continue;
        };
        let d = usize::from(p.reverse);
        if s.detect == Detect::Undecided {
            if !p.payload.is_empty() && s.first.is_none() {
                s.first = Some(p.reverse);
            }
            if s.first == Some(p.reverse) {
                match wire::starts_with_connect(p.stream) {
                    Ok(true) => s.detect = Detect::Mqtt,
                    Ok(false) => return Verdict::Drop,
                    Err(_) => {
                        s.undecided += 1;
                        if s.undecided > MAX_UNDECIDED || p.stream.len() >= WINDOW {
                            return Verdict::Drop;
                        }
                    }
                }
            }
            if s.detect == Detect::Undecided {
                s.dirs[d].track(seg.seq, seg.syn, seg.payload);
                return Verdict::Continue;
            }
        }
        let (session, topic_count) = (&mut s.session, self.topic_count);
        s.dirs[d].push::<Framing>(WINDOW, &seg, &mut |m| session.packet(m.bytes, topic_count));
        if session.disconnect {
            Verdict::EndAfter
        } else {
            Verdict::Continue
        }
    }

    fn wants_stream(&self, s: &State) -> bool {
        s.detect == Detect::Undecided || s.dirs.iter().any(|f| f.wants_stream(WINDOW))
    }

    fn export(&mut self, s: State, _: &FlowSummary, out: &mut ExtWriter<'_>) -> bool {
        if s.detect != Detect::Mqtt {
            return false;
        }
        let m = &s.session;
        // Bit 0 (type 0 is reserved) carries the session-present flag, as in ipfixprobe.
        out.unsigned(
            TYPE_CUMULATIVE,
            u64::from(m.types | u16::from(m.session_present)),
        );
        out.unsigned(VERSION, m.version.into());
        out.unsigned(CONNECTION_FLAGS, m.connect_flags.into());
        out.unsigned(KEEP_ALIVE, m.keep_alive.into());
        out.unsigned(LAST_RETURN_CODE, m.return_code.into());
        out.unsigned(PUBLISH_FLAGS, m.publish_flags.into());
        out.bytes(TOPICS, m.topics.as_bytes());
        true
    }
}

#[cfg(test)]
mod tests;
