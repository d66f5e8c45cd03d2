//! Real messages from the corpus captures (tests/data/corpus, each named with its frame) for
//! the DNS-family and NTP plugins' unit tests, and a deterministic source of damaged copies.

/// `hex` as octets (whitespace ignored).
pub fn hex(hex: &str) -> Vec<u8> {
    let digits: Vec<u8> = hex
        .bytes()
        .filter(|c| !c.is_ascii_whitespace())
        .map(|c| (c as char).to_digit(16).expect("hex digit") as u8)
        .collect();
    digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect()
}

/// ipfixprobe__dns.pcap frame 1: kernel.org A?, EDNS 4096.
pub const QUERY_A: &str =
    "494301200001000000000001066b65726e656c036f726700000100010000291000000000000000";
/// Frame 2: its response, three A records (compressed owner names), EDNS 512.
pub const RESPONSE_3A: &str = "494381800001000300000001066b65726e656c036f72670000010001c00c0001\
    0001000001680004c7cc2cc2c00c00010001000001680004c691148cc00c00010001000001680004951404450000\
    290200000000000000";
/// Frame 4: 230.144.113.195.in-addr.arpa PTR www.cesnet.cz.
pub const RESPONSE_PTR: &str = "1685818000010001000000010332333003313434033131330331393507696e2d\
    61646472046172706100000c0001c00c000c00010000545f000f03777777066365736e657402637a000000290200\
    000000000000";
/// Frame 6: google.com AAAA 2a00:1450:400d:806::200e.
pub const RESPONSE_AAAA: &str = "fe018180000100010000000106676f6f676c6503636f6d00001c0001c00c001c\
    00010000002000102a001450400d0806000000000000200e0000290200000000000000";
/// Frame 12: google.com MX, five answers.
pub const RESPONSE_MX: &str = "6b1e8180000100050000000106676f6f676c6503636f6d00000f0001c00c000f\
    0001000002570011001404616c7431056173706d78016cc00cc00c000f0001000002570009003204616c7434c02f\
    c00c000f0001000002570009001e04616c7432c02fc00c000f0001000002570009002804616c7433c02fc00c000f\
    0001000002570004000ac02f0000290200000000000000";
/// Frame 14: youtube.com TXT, two answers.
pub const RESPONSE_TXT: &str = "49498180000100020000000107796f757475626503636f6d0000100001c00c00\
    10000100000be2002221763d7370663120696e636c7564653a676f6f676c652e636f6d206d78202d616c6cc00c00\
    10000100000be2004544676f6f676c652d736974652d766572696669636174696f6e3d4f517a363076522d596170\
    6d61567261665743414c7050794138654b4a4b737352686649727a4d2d444a490000290200000000000000";
/// tcpdump__edns-opts.pcap frame 4: example.com A and its RRSIG, EDNS 4096 with DO.
pub const RESPONSE_RRSIG: &str = "b94085000001000200000001076578616d706c6503636f6d0000010001c00c\
    000100010001518000045db8d822c00c002e000100015180009f00010802000151805dbfb6d65da469f2dcff0765\
    78616d706c6503636f6d0002b74defb8185ffcf49a65510c9985c594397da46659c29dd8a8778bb263f51de76859\
    7683ca6cc37864abcd48bfe9fec820d1819a148b15fcd2ef17aed9fc861dbf1ada04c07ee49373cdfe1389e50b33\
    13986f5445a223bd580ec7958e204c660cd246057f45431709247077dd662f77283a384a84e0379ad97e7adc32a7\
    0b0000291000000080000000";
/// slips__test7-malicious.pcap frame 37: an mDNS response (TXT, PTR, SRV, AAAA, PTR).
pub const MDNS_RESPONSE: &str = "0000840000000005000000001f626c61636b2d706561726c205b62383a3237\
    3a65623a63373a65393a63395d0c5f776f726b73746174696f6e045f746370056c6f63616c000010800100001194\
    000100c02c000c0001000011940002c00cc00c002180010000007800140000000000090b626c61636b2d70656172\
    6cc03ec070001c8001000000780010fe80000000000000ba27ebfffec7e9c9095f7365727669636573075f646e73\
    2d7364045f756470c03e000c0001000011940002c02c";
/// Frame 34: an mDNS probe (question ANY, SRV and TXT in the authority section).
pub const MDNS_PROBE: &str = "0000000000010000000200001f626c61636b2d706561726c205b62383a32373a\
    65623a63373a65393a63395d0c5f776f726b73746174696f6e045f746370056c6f63616c0000ff0001c00c002100\
    010000007800140000000000090b626c61636b2d706561726cc03ec00c0010000100001194000100";
/// Frame 26: an mDNS probe for an ip6.arpa name and black-pearl.local (HINFO, AAAA, PTR in
/// the authority section).
pub const MDNS_PROBE_HINFO: &str = "000000000002000000030000013901630139016501370163016501660166\
    016601620165013701320161016201300130013001300130013001300130013001300130013001300138016501\
    660369703604617270610000ff00010b626c61636b2d706561726c056c6f63616c0000ff0001c05a000d000100\
    000078000d0641524d56364c054c494e5558c05a001c0001000000780010fe80000000000000ba27ebfffec7e9c9\
    c00c000c0001000000780002c05a";
/// ipfixprobe's tests/functional/inputs/netbios.pcap frame 1: a name query for WORKGROUP<1d>.
pub const NBNS_QUERY: &str = "45b60110000100000000000020464845504643454c45484643455046464641434\
    143414341434143414341424e0000200001";
/// Its frame 6: a registration of DHCPH219<00> (question and an additional record).
pub const NBNS_REGISTRATION: &str = "45ca30100001000000000001204545454945444641454944434442444a4\
    34143414341434143414341434141410000200001c00c00200001000000000006600093e5b7db";
/// ipfixprobe__ntp.pcap frame 1: an NTPv4 client request, stratum 0, kiss code INIT.
pub const NTP_CLIENT: &str = "e30006e80000000000000000494e49540000000000000000000000000000000000\
    00000000000000dab51fe51f27d8e1";
/// Frame 2: the server's reply, stratum 2.
pub const NTP_SERVER: &str = "240206ea000002b7000008acc1bee642dab51d40cc2b5256dab51fe51f27d8e1da\
    b51fe5229f98fedab51fe522b248d8";

/// Every real message above.
pub fn all() -> Vec<Vec<u8>> {
    [
        QUERY_A,
        RESPONSE_3A,
        RESPONSE_PTR,
        RESPONSE_AAAA,
        RESPONSE_MX,
        RESPONSE_TXT,
        RESPONSE_RRSIG,
        MDNS_RESPONSE,
        MDNS_PROBE,
        MDNS_PROBE_HINFO,
        NBNS_QUERY,
        NBNS_REGISTRATION,
        NTP_CLIENT,
        NTP_SERVER,
    ]
    .iter()
    .map(|h| hex(h))
    .collect()
}

/// `n` damaged copies of each of `msgs`, the same on every run: cut at every length, then
/// with 1 to 4 octets changed (set to 0, 0xff, 0xc0 for a pointer, or a random value, or a
/// pointer aimed at a random place), some also cut.
pub fn mutations(msgs: &[Vec<u8>], n: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut rand = move || {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    for m in msgs {
        for cut in 0..m.len() {
            out.push(m[..cut].to_vec());
        }
        for _ in 0..n {
            let mut c = m.clone();
            if c.is_empty() {
                continue;
            }
            for _ in 0..=rand() % 4 {
                let i = (rand() % c.len() as u64) as usize;
                c[i] = match rand() % 5 {
                    0 => 0,
                    1 => 0xff,
                    2 => 0xc0,
                    3 => rand() as u8,
                    _ => {
                        // A compression pointer to anywhere in (or past) the message.
                        if i + 1 < c.len() {
                            c[i + 1] = rand() as u8;
                        }
                        0xc0 | (rand() % 2) as u8
                    }
                };
            }
            if rand() % 4 == 0 {
                let keep = (rand() % c.len() as u64) as usize;
                c.truncate(keep);
            }
            out.push(c);
        }
    }
    out
}

use crate::decode::{FragInfo, Packet, TcpInfo};
use crate::ie::{IeType, PluginKind, Value};
use crate::meter::{ExtValue, ExtWriter, Extensions, FlowPlugin, FlowSummary, PacketView};
use crate::time::Timestamp;

/// A UDP packet from port `src` to `dst` carrying `payload_len` octets.
pub fn udp(src: u16, dst: u16, payload_len: usize) -> Packet {
    let mut p = Packet {
        payload_len: payload_len as u32,
        ip_len: 28 + payload_len as u32,
        ip_header_len: 20,
        has_l4: true,
        ..Packet::default()
    };
    p.key.proto = 17;
    p.key.ip_version = 4;
    (p.key.src_port, p.key.dst_port) = (src, dst);
    p
}

/// A TCP segment from port `src` to `dst`.
pub fn tcp(src: u16, dst: u16, seq: u32, flags: u8, payload_len: usize) -> Packet {
    let mut p = udp(src, dst, payload_len);
    p.key.proto = 6;
    p.tcp = Some(TcpInfo {
        seq,
        flags,
        ..TcpInfo::default()
    });
    p
}

/// `p` as a fragment of datagram `id`.
pub fn fragment(mut p: Packet, id: u32, offset: u32, more: bool) -> Packet {
    p.frag = Some(FragInfo { id, offset, more });
    p
}

pub fn view<'a>(pkt: &'a Packet, payload: &'a [u8], stream: &'a [u8], rev: bool) -> PacketView<'a> {
    PacketView {
        ts: Timestamp::from_millis(1_000),
        pkt,
        details: &crate::decode::Details {
            payload_off: 0,
            tos: 0,
            ip_flags: 0,
            ip_options: 0,
            tcp_option_kinds: 0,
            ethertype: 0,
            vlan_tci: [0; 2],
            vlan_tags: 0,
            mpls_top: 0,
        },
        reverse: rev,
        payload,
        stream,
    }
}

/// What `plugin` exports for `state` with every element of `kind` in the template (`None`
/// when it has nothing).
pub fn exported<P: FlowPlugin>(
    plugin: &mut P,
    kind: PluginKind,
    state: P::State,
) -> Option<Extensions> {
    let mut keys: Vec<_> = kind.elements().map(|ie| ie.ext_key(false)).collect();
    keys.sort_unstable();
    let mut ext = Extensions::default();
    let mut w = ExtWriter::new(&mut ext, &keys);
    plugin
        .export(state, &FlowSummary::default(), &mut w)
        .then_some(ext)
}

/// The value of element `name` in `ext` as qof's JSON prints it ("-" when not written).
pub fn json(ext: &Extensions, name: &str) -> String {
    let (ie, _) = crate::ie::by_name(name).expect("element");
    let Some(v) = ext.get(ie.ext_key(false)) else {
        return "-".into();
    };
    let v = match v {
        ExtValue::Unsigned(n) => Value::Unsigned(n),
        ExtValue::Signed(n) => Value::Signed(n),
        ExtValue::Float(f) => Value::Float(f),
        ExtValue::Bytes(b) if ie.ty == IeType::String => {
            Value::Str(std::str::from_utf8(b).expect("a string element holds UTF-8"))
        }
        ExtValue::Bytes(b) => Value::Bytes(b),
        ExtValue::List {
            item_len, items, ..
        } => Value::List(ie.ty, item_len, items),
    };
    let mut s = String::new();
    crate::ie::write_json_value(&v, &mut s);
    s
}
