//! Helpers for the plugins' unit tests: frames built octet by octet and decoded as the meter
//! decodes them, and a plugin run over a flow of them.

use crate::capture::linktype as lt;
use crate::decode::{decode_with_details, DecodeConfig, Details, Packet};
use crate::ie::PluginKind;
use crate::meter::{ExtKey, ExtValue, ExtWriter, Extensions, FlowPlugin, FlowSummary, PacketView};
use crate::meter::{Hosted, Verdict};
use crate::time::Timestamp;

/// One packet of a test flow, as the meter shows it to plugins.
pub struct Pkt {
    pub pkt: Packet,
    pub details: Details,
    pub reverse: bool,
    pub payload: Vec<u8>,
}

impl Pkt {
    /// A frame of link type `linktype`, decoded with every detail switched on; its payload
    /// prefix is what the meter copies (what was captured of the transport payload).
    pub fn frame(linktype: u32, frame: &[u8], reverse: bool) -> Pkt {
        let cfg = DecodeConfig {
            tcp_options: true,
            headers: true,
            ..DecodeConfig::default()
        };
        let (mut pkt, mut details) = (Packet::default(), Details::default());
        decode_with_details(linktype, frame, &cfg, &mut pkt, &mut details)
            .unwrap_or_else(|e| panic!("test frame not decoded: {e:?}"));
        let off = details.payload_off as usize;
        let payload = match off {
            0 => Vec::new(),
            _ => {
                let end = frame.len().min(off + pkt.payload_len as usize);
                frame.get(off..end).unwrap_or(&[]).to_vec()
            }
        };
        Pkt {
            pkt,
            details,
            reverse,
            payload,
        }
    }

    /// A raw IP packet (link type RAW).
    pub fn ip(packet: &[u8], reverse: bool) -> Pkt {
        Pkt::frame(lt::RAW, packet, reverse)
    }
}

/// The wire ids of every element of plugin `kind`, reverse forms included, sorted (what a
/// biflow template listing them all wants).
pub fn keys_of(kind: PluginKind) -> Vec<ExtKey> {
    let mut keys: Vec<ExtKey> = kind
        .elements()
        .flat_map(|ie| {
            let rev = ie.reversible.then(|| ie.ext_key(true));
            std::iter::once(ie.ext_key(false)).chain(rev)
        })
        .collect();
    keys.sort_unstable();
    keys
}

/// A flow of `pkts` (the first starts it): `plugin` attaches to it and sees each packet
/// until it says it is done, then exports. `None`: it did not attach, or had nothing.
pub fn run<P: FlowPlugin>(plugin: &mut P, pkts: &[Pkt]) -> Option<Extensions> {
    let mut state = None;
    let mut done = false;
    let mut summary = FlowSummary::default();
    for (i, p) in pkts.iter().enumerate() {
        let view = PacketView {
            ts: Timestamp::from_millis(1_000 + i as u64),
            pkt: &p.pkt,
            details: &p.details,
            reverse: p.reverse,
            payload: &p.payload,
            stream: &[],
        };
        if i == 0 {
            summary.key = p.pkt.key;
            state = plugin.attach(&view);
        }
        summary.packets[usize::from(p.reverse)] += 1;
        if let (Some(s), false) = (state.as_mut(), done) {
            match plugin.packet(s, &view) {
                Verdict::Done => done = true,
                Verdict::Drop => return None,
                Verdict::Continue | Verdict::EndAfter => {}
            }
        }
    }
    let mut ext = Extensions::default();
    let kind = PluginKind::ALL
        .into_iter()
        .find(|k| k.number() == plugin.number())?;
    let keys = keys_of(kind);
    let mut out = ExtWriter::new(&mut ext, &keys);
    plugin.export(state?, &summary, &mut out).then_some(ext)
}

/// The unsigned value filed under `key` (0 when none was written, as the record then says).
pub fn unsigned(ext: &Extensions, key: ExtKey) -> u64 {
    match ext.get(key) {
        Some(ExtValue::Unsigned(v)) => v,
        None => 0,
        Some(other) => panic!("{key:?} is not unsigned: {other:?}"),
    }
}

/// The octets filed under `key` (empty when none were written).
pub fn bytes(ext: &Extensions, key: ExtKey) -> Vec<u8> {
    match ext.get(key) {
        Some(ExtValue::Bytes(b)) => b.to_vec(),
        None => Vec::new(),
        Some(other) => panic!("{key:?} is not octets: {other:?}"),
    }
}

/// A plugin, hosted as the meter hosts it, shown `n` pseudo-random packets over a few flow
/// slots (headers, details and payloads of every shape, lengths at their limits): it must
/// neither panic nor keep state after each flow's export.
pub fn hostile(mut host: Box<dyn Hosted>, n: usize) {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let payload = [0xa5u8; 2000];
    for i in 0..n {
        let r = [next(), next(), next(), next()];
        let mut pkt = Packet::default();
        pkt.key.ip_version = if r[0] & 1 == 0 { 4 } else { 6 };
        pkt.key.proto = [1, 6, 17, 58, 47, 50, 51, 0, 255][(r[0] >> 8) as usize % 9];
        pkt.key.src_port = r[0] as u16;
        pkt.key.dst_port = (r[0] >> 16) as u16;
        pkt.ttl = (r[0] >> 32) as u8;
        pkt.ip_len = [0, 20, 65_535, 70_000, u32::MAX][(r[1] % 5) as usize];
        pkt.ip_header_len = (r[1] >> 8) as u32 % 80;
        pkt.payload_len = [0, 1, 100, 65_535, u32::MAX][((r[1] >> 16) % 5) as usize];
        pkt.has_l4 = r[1] >> 24 & 1 == 1;
        if r[1] >> 25 & 1 == 1 {
            pkt.frag = Some(crate::decode::FragInfo {
                id: 1,
                offset: (r[1] >> 32) as u32 & 0xfff8,
                more: r[1] >> 31 & 1 == 1,
            });
        }
        if pkt.key.proto == 6 && r[1] >> 26 & 1 == 1 {
            pkt.tcp = Some(crate::decode::TcpInfo {
                flags: (r[2] >> 40) as u8,
                window: (r[2] >> 48) as u16,
                ..Default::default()
            });
            if let Some(t) = pkt.tcp.as_mut() {
                t.options.mss = (r[2] & 1 == 1).then_some(r[2] as u16);
            }
        }
        let details = Details {
            payload_off: r[2] as u32,
            tos: (r[2] >> 8) as u8,
            ip_flags: (r[2] >> 16) as u8,
            ip_options: r[3] as u32,
            tcp_option_kinds: r[3].rotate_left(17),
            ethertype: (r[3] >> 32) as u16,
            vlan_tci: [(r[3] >> 48) as u16, r[3] as u16],
            vlan_tags: (r[3] >> 40) as u8,
            mpls_top: (r[3] >> 8) as u32,
        };
        let view = PacketView {
            ts: Timestamp::from_millis(r[0] >> 20),
            pkt: &pkt,
            details: &details,
            reverse: i % 3 == 1,
            payload: &payload[..(r[3] >> 50) as usize % payload.len()],
            stream: &[],
        };
        let slot = (r[0] >> 40) as u32 % 4;
        if i % 5 == 0 {
            host.attach(slot, &view);
        }
        host.packet(slot, &view);
        if i % 7 == 6 {
            let mut ext = Extensions::default();
            let keys = PluginKind::ALL
                .into_iter()
                .find(|k| k.number() == host.number())
                .map(keys_of)
                .unwrap_or_default();
            let mut out = ExtWriter::new(&mut ext, &keys);
            host.export(slot, &FlowSummary::default(), &mut out);
        }
    }
    for slot in 0..4 {
        let mut ext = Extensions::default();
        host.export(
            slot,
            &FlowSummary::default(),
            &mut ExtWriter::new(&mut ext, &[]),
        );
    }
    assert_eq!(host.memory().0, 0, "every state freed by its export");
}

/// Octet builders for test frames (checksums left 0: the decoder does not check them).
pub mod build {
    /// An IPv4 packet: `flags_frag` is the flags and fragment offset word, `options` a
    /// multiple of 4 octets.
    pub fn ipv4(
        proto: u8,
        ttl: u8,
        tos: u8,
        flags_frag: u16,
        options: &[u8],
        l4: &[u8],
    ) -> Vec<u8> {
        let ihl = 20 + options.len();
        let total = (ihl + l4.len()) as u16;
        let mut v = vec![0x40 | (ihl / 4) as u8, tos];
        v.extend_from_slice(&total.to_be_bytes());
        v.extend_from_slice(&[0x12, 0x34]);
        v.extend_from_slice(&flags_frag.to_be_bytes());
        v.extend_from_slice(&[ttl, proto, 0, 0, 192, 0, 2, 1, 198, 51, 100, 2]);
        v.extend_from_slice(options);
        v.extend_from_slice(l4);
        v
    }

    /// An IPv6 packet whose first header is `next` (then `ext`, the extension headers).
    pub fn ipv6(next: u8, hlim: u8, tclass: u8, ext: &[u8], l4: &[u8]) -> Vec<u8> {
        let mut v = vec![0x60 | tclass >> 4, tclass << 4, 0, 0];
        v.extend_from_slice(&((ext.len() + l4.len()) as u16).to_be_bytes());
        v.extend_from_slice(&[next, hlim]);
        v.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        v.extend_from_slice(&[0; 11]);
        v.push(1);
        v.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        v.extend_from_slice(&[0; 11]);
        v.push(2);
        v.extend_from_slice(ext);
        v.extend_from_slice(l4);
        v
    }

    /// A TCP segment; `options` a multiple of 4 octets.
    pub fn tcp(
        sport: u16,
        dport: u16,
        flags: u8,
        window: u16,
        options: &[u8],
        payload: &[u8],
    ) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&sport.to_be_bytes());
        v.extend_from_slice(&dport.to_be_bytes());
        v.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0]);
        v.push(((20 + options.len()) / 4) as u8 * 16);
        v.push(flags);
        v.extend_from_slice(&window.to_be_bytes());
        v.extend_from_slice(&[0, 0, 0, 0]);
        v.extend_from_slice(options);
        v.extend_from_slice(payload);
        v
    }

    pub fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&sport.to_be_bytes());
        v.extend_from_slice(&dport.to_be_bytes());
        v.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        v.extend_from_slice(&[0, 0]);
        v.extend_from_slice(payload);
        v
    }

    /// An ICMP or ICMPv6 message: type, code, checksum, four octets, then `rest`.
    pub fn icmp(ty: u8, code: u8, rest: &[u8]) -> Vec<u8> {
        let mut v = vec![ty, code, 0, 0, 0, 1, 0, 1];
        v.extend_from_slice(rest);
        v
    }

    /// An Ethernet frame: `tags` are (TPID, TCI) pairs, outer first.
    pub fn ether(tags: &[(u16, u16)], ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
        for (tpid, tci) in tags {
            v.extend_from_slice(&tpid.to_be_bytes());
            v.extend_from_slice(&tci.to_be_bytes());
        }
        v.extend_from_slice(&ethertype.to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    /// An MPLS label stack entry.
    pub fn label(label: u32, tc: u8, bottom: bool, ttl: u8) -> [u8; 4] {
        (label << 12 | u32::from(tc & 7) << 9 | u32::from(bottom) << 8 | u32::from(ttl))
            .to_be_bytes()
    }
}
