//! The one table of Information Elements: name, PEN, id, type, reversibility, what each
//! enables, which records carry it and how its value is read from a flow record. Templates,
//! the IPFIX encoder, the JSON printer, `qofdump` and the documentation all work from it.

mod registry;
mod table;
mod value;

pub use registry::{registry_xml, type_name};
pub use table::{dir_values, DirVal, DIR_VALS, TABLE};
pub use value::{put_unsigned, write_json_key, write_json_str, write_json_value, Value};

use crate::meter::{DirStats, ExtKey, ExtValue, Extensions, FlowRecord, TcpConfig};

/// Private Enterprise Numbers used by qof's elements.
pub mod pen {
    pub const IANA: u32 = 0;
    /// RFC 5103 reverse elements of IANA elements.
    pub const REVERSE: u32 = 29305;
    /// CERT (YAF) elements.
    pub const CERT: u32 = 6871;
    /// trammell.ch (QoF) elements.
    pub const QOF: u32 = 35566;
    /// CESNET elements (ipfixprobe's plugins).
    pub const CESNET: u32 = 8057;
    /// Flowmon (Progress) elements (ipfixprobe's HTTP and TLS plugins).
    pub const FLOWMON: u32 = 39499;
}

/// The flow plugins (per-flow extensions, as ipfixprobe's process plugins) whose elements the
/// table holds. A plugin's number is its bit in a record's `Extensions::present`: it decides
/// which of the plugin's elements a record's template carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PluginKind {
    Pstats = 0,
    Phists = 1,
    Bstats = 2,
    Basicplus = 3,
    Nettisa = 4,
    Ssadetector = 5,
    Idpcontent = 6,
    Flowhash = 7,
    Icmp = 8,
    Vlan = 9,
    Mpls = 10,
    /// The IANA header fields of ipt-netflow (ipClassOfService, ethernetType, ipv4Options,
    /// ipv6ExtensionHeaders).
    Headers = 11,
    Dns = 12,
    Passivedns = 13,
    Http = 14,
    Rtsp = 15,
    Tls = 16,
    Quic = 17,
    Ntp = 18,
    Sip = 19,
    Smtp = 20,
    Ssdp = 21,
    Dnssd = 22,
    Netbios = 23,
    Mqtt = 24,
    Ovpn = 25,
    Wg = 26,
}

impl PluginKind {
    pub const ALL: [PluginKind; 27] = [
        PluginKind::Pstats,
        PluginKind::Phists,
        PluginKind::Bstats,
        PluginKind::Basicplus,
        PluginKind::Nettisa,
        PluginKind::Ssadetector,
        PluginKind::Idpcontent,
        PluginKind::Flowhash,
        PluginKind::Icmp,
        PluginKind::Vlan,
        PluginKind::Mpls,
        PluginKind::Headers,
        PluginKind::Dns,
        PluginKind::Passivedns,
        PluginKind::Http,
        PluginKind::Rtsp,
        PluginKind::Tls,
        PluginKind::Quic,
        PluginKind::Ntp,
        PluginKind::Sip,
        PluginKind::Smtp,
        PluginKind::Ssdp,
        PluginKind::Dnssd,
        PluginKind::Netbios,
        PluginKind::Mqtt,
        PluginKind::Ovpn,
        PluginKind::Wg,
    ];

    /// The name `--plugin` takes (ipfixprobe's, lower case).
    pub fn name(self) -> &'static str {
        match self {
            PluginKind::Pstats => "pstats",
            PluginKind::Phists => "phists",
            PluginKind::Bstats => "bstats",
            PluginKind::Basicplus => "basicplus",
            PluginKind::Nettisa => "nettisa",
            PluginKind::Ssadetector => "ssadetector",
            PluginKind::Idpcontent => "idpcontent",
            PluginKind::Flowhash => "flowhash",
            PluginKind::Icmp => "icmp",
            PluginKind::Vlan => "vlan",
            PluginKind::Mpls => "mpls",
            PluginKind::Headers => "headers",
            PluginKind::Dns => "dns",
            PluginKind::Passivedns => "passivedns",
            PluginKind::Http => "http",
            PluginKind::Rtsp => "rtsp",
            PluginKind::Tls => "tls",
            PluginKind::Quic => "quic",
            PluginKind::Ntp => "ntp",
            PluginKind::Sip => "sip",
            PluginKind::Smtp => "smtp",
            PluginKind::Ssdp => "ssdp",
            PluginKind::Dnssd => "dnssd",
            PluginKind::Netbios => "netbios",
            PluginKind::Mqtt => "mqtt",
            PluginKind::Ovpn => "ovpn",
            PluginKind::Wg => "wg",
        }
    }

    pub fn number(self) -> u8 {
        self as u8
    }

    pub fn by_name(name: &str) -> Option<PluginKind> {
        PluginKind::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(name))
    }

    /// The plugin's elements, in table order.
    pub fn elements(self) -> impl Iterator<Item = &'static InfoElement> {
        TABLE.iter().filter(move |ie| ie.plugin() == Some(self))
    }
}

/// RFC 5103: an enterprise element's reverse has this bit set in its id, same PEN.
pub const REVERSE_BIT: u16 = 0x4000;

/// IPFIX abstract data types (RFC 7011 §6.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IeType {
    Unsigned8,
    Unsigned16,
    Unsigned32,
    Unsigned64,
    Signed8,
    Signed16,
    Signed32,
    Signed64,
    Float32,
    Float64,
    Boolean,
    MacAddress,
    OctetArray,
    String,
    DateTimeSeconds,
    DateTimeMilliseconds,
    DateTimeMicroseconds,
    DateTimeNanoseconds,
    Ipv4Address,
    Ipv6Address,
    BasicList,
    SubTemplateList,
    SubTemplateMultiList,
}

impl IeType {
    /// The natural encoded length, or `None` for variable-length types.
    pub fn full_len(self) -> Option<u16> {
        use IeType::*;
        Some(match self {
            Unsigned8 | Signed8 | Boolean => 1,
            Unsigned16 | Signed16 => 2,
            Unsigned32 | Signed32 | Float32 | DateTimeSeconds | Ipv4Address => 4,
            Unsigned64 | Signed64 | Float64 | DateTimeMilliseconds | DateTimeMicroseconds
            | DateTimeNanoseconds => 8,
            MacAddress => 6,
            Ipv6Address => 16,
            OctetArray | String | BasicList | SubTemplateList | SubTemplateMultiList => {
                return None
            }
        })
    }
}

/// Measurement features an element switches on (QoF's feature flags).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Features(pub u16);

impl Features {
    pub const NONE: Features = Features(0);
    pub const IPV4: Features = Features(1 << 0);
    pub const IPV6: Features = Features(1 << 1);
    pub const MAC: Features = Features(1 << 2);
    pub const TRANSPORT: Features = Features(1 << 3);
    pub const SEQ: Features = Features(1 << 4);
    pub const ACK: Features = Features(1 << 5);
    pub const RTT: Features = Features(1 << 6);
    pub const RWIN: Features = Features(1 << 7);
    pub const TS: Features = Features(1 << 8);
    pub const IAT: Features = Features(1 << 9);
    pub const TCPOPT: Features = Features(1 << 10);
    /// Why segments were sent again, and reordering.
    pub const CAUSE: Features = Features(1 << 11);
    /// Mean and maximum RTT.
    pub const RTTLOAD: Features = Features(1 << 12);

    pub const fn with(self, other: Features) -> Features {
        Features(self.0 | other.0)
    }
    pub fn has(self, f: Features) -> bool {
        self.0 & f.0 == f.0 && f.0 != 0
    }
    pub fn ipv4(self) -> bool {
        self.has(Features::IPV4)
    }
    pub fn ipv6(self) -> bool {
        self.has(Features::IPV6)
    }
    pub fn mac(self) -> bool {
        self.has(Features::MAC)
    }
    pub fn transport(self) -> bool {
        self.has(Features::TRANSPORT)
    }
    /// TCP options must be parsed (MSS, window scale, SACK, timestamps).
    pub fn tcp_options(self) -> bool {
        self.has(Features::TCPOPT)
    }

    /// The TCP measurements these features switch on. (The mapping lives here, beside the
    /// features, so that the meter knows nothing of the element table.)
    pub fn tcp_config(self) -> TcpConfig {
        // Causes classify by the flow's RTT, RTT under load needs its samples, and RTT needs
        // sequence tracking (to know which segments are new).
        let causes = self.has(Features::CAUSE);
        let rtt_load = self.has(Features::RTTLOAD);
        let rtt = self.has(Features::RTT) || causes || rtt_load;
        TcpConfig {
            seq: self.has(Features::SEQ) || rtt,
            rtt,
            ack: self.has(Features::ACK),
            rwin: self.has(Features::RWIN),
            ts: self.has(Features::TS),
            iat: self.has(Features::IAT),
            options: self.has(Features::TCPOPT),
            causes,
            rtt_load,
            ..TcpConfig::default()
        }
    }
}

/// Which records carry an element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applies {
    /// Every flow record.
    All,
    /// TCP flows only.
    Tcp,
    /// TCP flows with at least one RTT sample.
    TcpRtt,
    /// TCP flows where either direction's timestamp clock rate is known.
    TcpTs,
    /// IPv4 flows (IPv4 address elements).
    Ipv4,
    /// IPv6 flows (and IPv4 flows mapped into IPv6 when the template has no IPv4 addresses).
    Ipv6,
    /// Process statistics (options records), never flow records.
    Stats,
    /// Records of flows the plugin had something for: a plugin's elements.
    Plugin(PluginKind),
}

/// Which direction of a biflow a value is read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Reverse,
}

/// Reads an element's value from a flow record; `dir` picks the direction for reversible
/// elements (flow-level elements ignore it).
#[derive(Clone, Copy, Debug)]
pub enum Getter {
    /// An unsigned integer, as most elements are: returned in a register, so the encoder
    /// stores it without building and matching a [`Value`].
    Unsigned(UnsignedGetter),
    /// A per-direction unsigned value, one of [`DirVal`].
    Dir(DirVal),
    Other(fn(&FlowRecord, &DirStats) -> Value<'static>),
    /// Written by a plugin: read from the record's extensions by the element's wire id.
    Ext,
}

/// Reads an unsigned element's value.
pub type UnsignedGetter = fn(&FlowRecord, &DirStats) -> u64;

impl Getter {
    /// The value for a core element (plugin elements are read by [`ext_value`]).
    #[inline(always)]
    pub fn value(&self, rec: &FlowRecord, dir: &DirStats) -> Value<'static> {
        match self {
            Getter::Unsigned(f) => Value::Unsigned(f(rec, dir)),
            Getter::Dir(v) => Value::Unsigned(v.of(dir)),
            Getter::Other(f) => f(rec, dir),
            Getter::Ext => Value::Unsigned(0),
        }
    }
}

/// The value a plugin wrote for element `ie` (its `reverse` form) in `rec`, or `None` when it
/// wrote none (the element is then exported as zero, or empty if it has variable length).
/// A list element's value is its encoded items ([`Value::List`]).
pub fn ext_value<'r>(
    ie: &'static InfoElement,
    reverse: bool,
    rec: &'r FlowRecord,
) -> Option<Value<'r>> {
    let (pen, id) = ie.wire_id(reverse);
    let v = rec.ext.as_ref()?.get(ExtKey { pen, id })?;
    Some(ext_to_value(ie, v))
}

/// [`ext_value`] for elements read in template order from the record's values `ext`: `next`
/// carries where the last one was found (start at 0).
pub fn ext_value_next<'r>(
    ie: &'static InfoElement,
    reverse: bool,
    ext: &'r Extensions,
    next: &mut usize,
) -> Option<Value<'r>> {
    let (pen, id) = ie.wire_id(reverse);
    let v = ext.get_next(ExtKey { pen, id }, next)?;
    Some(ext_to_value(ie, v))
}

/// A plugin's value as element `ie`'s value.
fn ext_to_value<'r>(ie: &'static InfoElement, v: ExtValue<'r>) -> Value<'r> {
    match v {
        ExtValue::Unsigned(x) => Value::Unsigned(x),
        ExtValue::Signed(x) => Value::Signed(x),
        ExtValue::Float(x) if ie.ty == IeType::Float32 => Value::Float32(x as f32),
        ExtValue::Float(x) => Value::Float(x),
        ExtValue::Bytes(b) if ie.ty == IeType::String => {
            Value::Str(std::str::from_utf8(b).unwrap_or(""))
        }
        ExtValue::Bytes(b) => Value::Bytes(b),
        ExtValue::List {
            item_len, items, ..
        } => Value::List(ie.ty, item_len, items),
    }
}

/// One Information Element.
#[derive(Clone, Copy, Debug)]
pub struct InfoElement {
    pub name: &'static str,
    pub pen: u32,
    pub id: u16,
    pub ty: IeType,
    /// Length qof encodes it with (QoF's lengths; counters may be reduced to 4 at run time).
    pub len: u16,
    /// Has an RFC 5103 reverse counterpart.
    pub reversible: bool,
    /// A delta counter that qof may encode in 4 octets when the value fits (RFC 7011 §6.2).
    pub counter: bool,
    pub applies: Applies,
    pub enables: Features,
    /// How qof measures it; `None` for elements it can name and decode but does not measure.
    pub value: Option<Getter>,
    /// Exported as an RFC 6313 basicList of this element (the template names basicList,
    /// 291; the list's header names this element, and JSON prints an array under its name).
    pub list: bool,
    /// A plugin element that only flows of this IP version carry (4 or 6; 0: either), where
    /// the other version has no such header field: icmpTypeCodeIPv4 on an ICMPv6 flow, or
    /// ipv4Options on an IPv6 flow, would state something false (a 0 there reads as a type
    /// and code, or as "no options seen").
    pub ip_version: u8,
}

impl InfoElement {
    /// The plugin that measures this element, if a plugin does.
    pub fn plugin(&self) -> Option<PluginKind> {
        match self.applies {
            Applies::Plugin(k) => Some(k),
            _ => None,
        }
    }

    /// A record of a flow of IP version 4 (`v4`) or 6 carries this element, as far as its IP
    /// version goes.
    pub fn fits_ip_version(&self, v4: bool) -> bool {
        match self.ip_version {
            4 => v4,
            6 => !v4,
            _ => true,
        }
    }

    /// The element's key in a record's extensions (its forward or reverse wire id).
    pub fn ext_key(&self, reverse: bool) -> ExtKey {
        let (pen, id) = self.wire_id(reverse);
        ExtKey { pen, id }
    }

    /// Variable length on the wire (RFC 7011 §7): strings, octet arrays of no fixed length,
    /// and lists.
    pub fn variable(&self) -> bool {
        self.list || self.len == 0
    }

    /// The reverse element's (pen, id) per RFC 5103.
    pub fn reverse_id(&self) -> (u32, u16) {
        if self.pen == pen::IANA {
            (pen::REVERSE, self.id)
        } else {
            (self.pen, self.id | REVERSE_BIT)
        }
    }

    /// (pen, id) for the forward or reverse form.
    pub fn wire_id(&self, reverse: bool) -> (u32, u16) {
        if reverse {
            self.reverse_id()
        } else {
            (self.pen, self.id)
        }
    }
}

/// Find an element by name; `reverseX` names the reverse of a reversible `x`.
/// Returns the element and whether the reverse form was named.
pub fn by_name(name: &str) -> Option<(&'static InfoElement, bool)> {
    if let Some(ie) = TABLE.iter().find(|ie| ie.name == name) {
        return Some((ie, false));
    }
    let rest = name.strip_prefix("reverse")?;
    let mut chars = rest.chars();
    let first = chars.next()?;
    if !first.is_ascii_uppercase() {
        return None;
    }
    TABLE
        .iter()
        .find(|ie| {
            ie.reversible
                && ie.name.len() == rest.len()
                && ie.name.as_bytes()[0] == first.to_ascii_lowercase() as u8
                && ie.name[1..] == rest[1..]
        })
        .map(|ie| (ie, true))
}

/// Find an element by (PEN, id) as it appears on the wire, reverse forms included.
pub fn by_id(pen_no: u32, id: u16) -> Option<(&'static InfoElement, bool)> {
    if let Some(ie) = TABLE.iter().find(|ie| ie.pen == pen_no && ie.id == id) {
        return Some((ie, false));
    }
    if pen_no == pen::REVERSE {
        return TABLE
            .iter()
            .find(|ie| ie.pen == pen::IANA && ie.id == id && ie.reversible)
            .map(|ie| (ie, true));
    }
    if pen_no != pen::IANA && id & REVERSE_BIT != 0 {
        let fwd = id & !REVERSE_BIT;
        return TABLE
            .iter()
            .find(|ie| ie.pen == pen_no && ie.id == fwd && ie.reversible)
            .map(|ie| (ie, true));
    }
    None
}

/// The IANA basicList element (RFC 6313), whose header names the element it carries.
pub const BASIC_LIST_ID: u16 = 291;

/// A decoded basicList field: the element its items are, and the items.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BasicList<'a> {
    pub semantic: u8,
    pub pen: u32,
    pub id: u16,
    /// Octets per item, or 0xFFFF (`meter::VARIABLE_ITEMS`) when each item carries its own
    /// length (RFC 6313 §4.5.1); `meter::list_items` splits `items`.
    pub item_len: u16,
    pub items: &'a [u8],
}

/// Read a basicList field's content (RFC 6313 §4.5.1: semantic, field id with the enterprise
/// bit, element length, enterprise number if the bit is set, then the items). `None` if it is
/// too short for its header.
pub fn parse_basic_list(b: &[u8]) -> Option<BasicList<'_>> {
    let semantic = *b.first()?;
    let raw_id = u16::from_be_bytes([*b.get(1)?, *b.get(2)?]);
    let item_len = u16::from_be_bytes([*b.get(3)?, *b.get(4)?]);
    let (pen_no, items) = if raw_id & 0x8000 != 0 {
        let p = b.get(5..9)?;
        (u32::from_be_bytes([p[0], p[1], p[2], p[3]]), b.get(9..)?)
    } else {
        (pen::IANA, b.get(5..)?)
    };
    Some(BasicList {
        semantic,
        pen: pen_no,
        id: raw_id & 0x7fff,
        item_len,
        items,
    })
}

/// Write an element's name (with the `reverse` prefix when asked) into `out`.
pub fn write_name(ie: &InfoElement, reverse: bool, out: &mut String) {
    if reverse {
        out.push_str("reverse");
        let mut chars = ie.name.chars();
        if let Some(c) = chars.next() {
            out.push(c.to_ascii_uppercase());
        }
        out.push_str(chars.as_str());
    } else {
        out.push_str(ie.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direction_values_read_together_match_each_read_alone() {
        // Every field a different value, so a value read from the wrong place shows.
        let mut d = DirStats {
            packets: 1,
            octets: 2,
            transport_packets: 3,
            transport_octets: 4,
            min_ttl: 5,
            max_ttl: 6,
            initial_tcp_flags: 0x41,
            union_tcp_flags: 0x52,
            ..DirStats::default()
        };
        let t = &mut d.tcp;
        t.seq.isn = 7;
        t.seq.octets = 8;
        t.seq.retransmits = 9;
        t.seq.jumps = 10;
        t.seq.max_jump = 11;
        t.seq.lost = 12;
        t.seq.loss_events = 13;
        t.observed_mss = 14;
        t.declared_mss = 15;
        t.characteristics = 16;
        t.rwin_min = 17;
        t.rwin_mean = 18;
        t.rwin_max = 19;
        t.stalls = 20;
        t.dup_acks = 21;
        t.sel_acks = 22;
        t.ts_hz = 23;
        t.iat_min_us = 24_000;
        t.iat_max_us = 25_000;
        t.fast_retransmits = 26;
        t.timeout_retransmits = 27;
        t.spurious_retransmits = 28;
        t.reorders = 29;
        let mut all = [0; DIR_VALS];
        dir_values(&d, true, true, &mut all);
        let mut basic = [0; DIR_VALS];
        dir_values(&d, false, true, &mut basic);
        let mut no_causes = [0; DIR_VALS];
        dir_values(&d, true, false, &mut no_causes);
        for v in DirVal::ALL {
            let want = if v.is_tcp() { 0 } else { v.of(&d) };
            assert_eq!(basic[*v as usize], want, "{v:?} without TCP");
            let want = if v.is_cause() { 0 } else { v.of(&d) };
            assert_eq!(no_causes[*v as usize], want, "{v:?} without causes");
        }
        assert!(DirVal::TcpSequenceCount.is_tcp() && !DirVal::PacketDeltaCount.is_tcp());
        assert_eq!(DirVal::ALL.len(), DIR_VALS);
        for (i, v) in DirVal::ALL.iter().enumerate() {
            assert_eq!(*v as usize, i);
            assert_eq!(all[i], v.of(&d), "{v:?}");
        }
        let mut seen: Vec<u64> = all.to_vec();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), DIR_VALS, "{all:?}");
        assert_eq!(DirVal::TcpControlBits.of(&d), 0x53);
        assert_eq!(DirVal::TcpRetransmitCount.of(&d), 9);
        assert_eq!(DirVal::MaxTcpIOTMilliseconds.of(&d), 25);
        assert_eq!(DirVal::TcpReorderCount.of(&d), 29);
    }

    #[test]
    fn names_and_ids_round_trip_for_every_element() {
        let mut name = String::new();
        for ie in TABLE {
            for reverse in [false, true] {
                if reverse && !ie.reversible {
                    continue;
                }
                name.clear();
                write_name(ie, reverse, &mut name);
                let (found, rev) =
                    by_name(&name).unwrap_or_else(|| panic!("{name} not found by name"));
                assert!(std::ptr::eq(found, ie) && rev == reverse, "{name}");
                let (p, i) = ie.wire_id(reverse);
                let (found, rev) = by_id(p, i).unwrap_or_else(|| panic!("{name} not found by id"));
                assert!(std::ptr::eq(found, ie) && rev == reverse, "{name} by id");
            }
        }
    }

    #[test]
    fn no_duplicate_names_or_ids() {
        for (i, a) in TABLE.iter().enumerate() {
            for b in &TABLE[i + 1..] {
                assert_ne!(a.name, b.name);
                assert!(
                    (a.pen, a.id) != (b.pen, b.id),
                    "{} and {} share an id",
                    a.name,
                    b.name
                );
            }
            if let Some(full) = a.ty.full_len() {
                assert!(a.len <= full, "{} is longer than its type", a.name);
            }
        }
    }

    #[test]
    fn rfc5103_reverse_ids() {
        let (ie, _) = by_name("octetDeltaCount").unwrap();
        assert_eq!(ie.reverse_id(), (29305, 1));
        let (ie, rev) = by_name("reverseInitialTCPFlags").unwrap();
        assert!(rev);
        assert_eq!(ie.wire_id(true), (6871, 16398));
        let (ie, rev) = by_name("reverseTcpSequenceCount").unwrap();
        assert!(rev);
        assert_eq!(ie.wire_id(true), (35566, 17408));
        // A forward element whose own name starts with "reverse".
        let (ie, rev) = by_name("reverseFlowDeltaMilliseconds").unwrap();
        assert!(!rev);
        assert_eq!((ie.pen, ie.id), (6871, 21));
        assert!(
            by_name("reverseMinTcpRttMilliseconds").is_none(),
            "not reversible"
        );
        assert!(by_name("reverseoctetDeltaCount").is_none());
    }
}
