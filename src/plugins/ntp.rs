//! `ntp`: NTP over UDP port 123 (ipfixprobe's ntp), each packet its own record: the record
//! ends after every packet on port 123 (ipfixprobe flushes each such flow as it is created),
//! and a packet read as NTP carries its header's fields.
//!
//! ipfixprobe's rules for what is NTP: version 4, mode 3 (client) or 4 (server), stratum at
//! most 16, poll at most 17 (so control messages, mode 6, and NTPv3 are not read). Where qof
//! differs: the packet must hold the 48-octet header (ipfixprobe reads past a shorter one);
//! NTPDelay and NTPDispersion are the root delay and dispersion as sent, NTP short format
//! (16.16 seconds; ipfixprobe always sends 9); the timestamps are "seconds.microseconds"
//! since 1900 with six digits, rounded (ipfixprobe drops the zero padding of each octet's hex,
//! so its numbers are wrong); the reference id of stratum 0 (a kiss code) and 1 (a clock
//! source) is its ASCII text when printable ("INIT", "GPS"), as RFC 5905 §7.3 defines it, and
//! otherwise, as ipfixprobe writes every one but its four kiss codes, a dotted quad.

use super::{Built, Needs, Options, PluginError, Spec};
use crate::ie::{pen, PluginKind};
use crate::key::proto;
use crate::meter::{ExtKey, ExtWriter, FlowPlugin, FlowSummary, Host, PacketView, Verdict};

pub static SPEC: Spec = Spec {
    kind: PluginKind::Ntp,
    about: "NTP over UDP port 123, one record per packet: mode, stratum, poll, delays, \
            reference id, timestamps",
    options: &[],
    build,
};

/// The NTP header (RFC 5905 §7.3), without extension fields or MAC.
pub const HEADER_LEN: usize = 48;

const fn key(id: u16) -> ExtKey {
    ExtKey {
        pen: pen::CESNET,
        id,
    }
}
const LEAP: ExtKey = key(18);
const VERSION: ExtKey = key(19);
const MODE: ExtKey = key(20);
const STRATUM: ExtKey = key(21);
const POLL: ExtKey = key(22);
const PRECISION: ExtKey = key(23);
const DELAY: ExtKey = key(24);
const DISPERSION: ExtKey = key(25);
const REF_ID: ExtKey = key(26);
const REF: ExtKey = key(27);
const ORIG: ExtKey = key(28);
const RECV: ExtKey = key(29);
const SENT: ExtKey = key(30);

fn build(_: &Options) -> Result<Built, PluginError> {
    let needs = Needs {
        payload: HEADER_LEN,
        ..Needs::default()
    };
    Ok((Box::new(Host::new(NtpPlugin)), needs))
}

/// An NTP packet: a view of at least its header.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    header: &'a [u8; HEADER_LEN],
}

impl<'a> Packet<'a> {
    pub fn new_checked(buf: &'a [u8]) -> Option<Packet<'a>> {
        Some(Packet {
            header: buf.first_chunk()?,
        })
    }

    fn u32_at(&self, at: usize) -> u32 {
        let b = self.header;
        u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    fn u64_at(&self, at: usize) -> u64 {
        u64::from(self.u32_at(at)) << 32 | u64::from(self.u32_at(at + 4))
    }

    pub fn leap(&self) -> u8 {
        self.header[0] >> 6
    }
    pub fn version(&self) -> u8 {
        self.header[0] >> 3 & 7
    }
    pub fn mode(&self) -> u8 {
        self.header[0] & 7
    }
    pub fn stratum(&self) -> u8 {
        self.header[1]
    }
    pub fn poll(&self) -> u8 {
        self.header[2]
    }
    /// A signed power of two, sent as is.
    pub fn precision(&self) -> u8 {
        self.header[3]
    }
    /// NTP short format: 16.16 seconds.
    pub fn root_delay(&self) -> u32 {
        self.u32_at(4)
    }
    pub fn root_dispersion(&self) -> u32 {
        self.u32_at(8)
    }
    pub fn reference_id(&self) -> [u8; 4] {
        self.u32_at(12).to_be_bytes()
    }
    /// The reference, origin, receive and transmit timestamps (NTP 32.32, since 1900).
    pub fn timestamps(&self) -> [u64; 4] {
        [16, 24, 32, 40].map(|at| self.u64_at(at))
    }
}

/// What the ntp plugin exports of one packet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fields {
    pub leap: u8,
    pub version: u8,
    pub mode: u8,
    pub stratum: u8,
    pub poll: u8,
    pub precision: u8,
    pub delay: u32,
    pub dispersion: u32,
    pub ref_id: String,
    /// Reference, origin, receive, transmit.
    pub times: [String; 4],
}

/// An NTP timestamp as "seconds.microseconds" since 1900, six digits, rounded.
pub fn timestamp_text(t: u64) -> String {
    let secs = t >> 32;
    // (Rounded to the nearest microsecond; 999,999.5 and up carries into the seconds.)
    let micros = ((t & 0xffff_ffff) * 1_000_000 + (1 << 31)) >> 32;
    // (Not `format!("{}.{:06}")`: its padding cost more than the rest of reading a packet.)
    let mut s = (secs + micros / 1_000_000).to_string();
    s.push('.');
    let frac = micros % 1_000_000;
    for d in [100_000, 10_000, 1_000, 100, 10, 1] {
        s.push(char::from(b'0' + (frac / d % 10) as u8));
    }
    s
}

/// The reference id as text: see the module documentation.
pub fn reference_id_text(stratum: u8, id: [u8; 4]) -> String {
    let text_len = id.iter().position(|&b| b == 0).unwrap_or(4);
    let (text, pad) = id.split_at(text_len);
    let ascii = stratum <= 1
        && !text.is_empty()
        && text.iter().all(|b| b.is_ascii_graphic() || *b == b' ')
        && pad.iter().all(|&b| b == 0);
    if ascii {
        text.iter().map(|&b| char::from(b)).collect()
    } else {
        std::net::Ipv4Addr::from(id).to_string()
    }
}

/// Read an NTP packet by ipfixprobe's rules (version 4, mode 3 or 4, stratum at most 16,
/// poll at most 17); `None` otherwise.
pub fn read(payload: &[u8]) -> Option<Fields> {
    let p = Packet::new_checked(payload)?;
    let ok = p.version() == 4 && matches!(p.mode(), 3 | 4) && p.stratum() <= 16 && p.poll() <= 17;
    if !ok {
        return None;
    }
    Some(Fields {
        leap: p.leap(),
        version: p.version(),
        mode: p.mode(),
        stratum: p.stratum(),
        poll: p.poll(),
        precision: p.precision(),
        delay: p.root_delay(),
        dispersion: p.root_dispersion(),
        ref_id: reference_id_text(p.stratum(), p.reference_id()),
        times: p.timestamps().map(timestamp_text),
    })
}

struct NtpPlugin;

impl FlowPlugin for NtpPlugin {
    type State = Option<Box<Fields>>;

    fn number(&self) -> u8 {
        PluginKind::Ntp.number()
    }

    fn attach(&mut self, p: &PacketView<'_>) -> Option<Self::State> {
        let k = &p.pkt.key;
        (k.proto == proto::UDP && (k.src_port == 123 || k.dst_port == 123)).then_some(None)
    }

    fn packet(&mut self, s: &mut Self::State, p: &PacketView<'_>) -> Verdict {
        // (A later fragment carries no header.)
        if !matches!(p.pkt.frag, Some(f) if f.offset != 0) && s.is_none() {
            *s = read(p.payload).map(Box::new);
        }
        Verdict::EndAfter
    }

    fn export(&mut self, s: Self::State, _: &FlowSummary, out: &mut ExtWriter<'_>) -> bool {
        let Some(f) = s else {
            return false;
        };
        out.unsigned(LEAP, f.leap.into());
        out.unsigned(VERSION, f.version.into());
        out.unsigned(MODE, f.mode.into());
        out.unsigned(STRATUM, f.stratum.into());
        out.unsigned(POLL, f.poll.into());
        out.unsigned(PRECISION, f.precision.into());
        out.unsigned(DELAY, f.delay.into());
        out.unsigned(DISPERSION, f.dispersion.into());
        out.bytes(REF_ID, f.ref_id.as_bytes());
        for (k, t) in [REF, ORIG, RECV, SENT].into_iter().zip(&f.times) {
            out.bytes(k, t.as_bytes());
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testdata::{self, exported, hex, json, udp, view};

    #[test]
    fn a_client_request_and_a_server_reply_as_tshark_dissects_them() {
        // tshark: LI 3 (unsynchronized), v4, client, stratum 0, poll 6, precision -24
        // (0xe8), refid INIT, transmit 0xdab51fe5.1f27d8e1.
        let f = read(&hex(testdata::NTP_CLIENT)).unwrap();
        assert_eq!(
            (f.leap, f.version, f.mode, f.stratum, f.poll, f.precision),
            (3, 4, 3, 0, 6, 0xe8)
        );
        assert_eq!(f.ref_id, "INIT");
        assert_eq!(f.times[0], "0.000000");
        // 0x1f27d8e1 / 2^32 = 0.121702...
        assert_eq!(f.times[3], format!("{}.121702", 0xdab5_1fe5u32));
        let f = read(&hex(testdata::NTP_SERVER)).unwrap();
        assert_eq!((f.leap, f.mode, f.stratum, f.poll), (0, 4, 2, 6));
        // Root delay 0x000002b7 (0.0106 s), dispersion 0x000008ac, refid 193.190.230.66.
        assert_eq!((f.delay, f.dispersion), (0x2b7, 0x8ac));
        assert_eq!(f.ref_id, "193.190.230.66");
        assert_eq!(
            f.times[1],
            read(&hex(testdata::NTP_CLIENT)).unwrap().times[3]
        );
    }

    #[test]
    fn timestamps_keep_their_zeros_and_round() {
        assert_eq!(timestamp_text(0x0000_0001_0000_0000), "1.000000");
        // A fraction whose octets are below 0x10: ipfixprobe prints "%x" per octet, so
        // 0x01020304 became 0x1234 = 0.000001 s instead of 0.003937 s.
        assert_eq!(timestamp_text(0x0000_0005_0102_0304), "5.003937");
        assert_eq!(timestamp_text(0x0000_0007_8000_0000), "7.500000");
        // Half a microsecond below the next second rounds up into it.
        assert_eq!(timestamp_text(0x0000_0007_ffff_ffff), "8.000000");
        assert_eq!(timestamp_text(u64::MAX), "4294967296.000000");
        for t in (0..64).map(|i| 0x9e37_79b9_7f4a_7c15u64.wrapping_mul(i)) {
            let micros = ((t & 0xffff_ffff) * 1_000_000 + (1 << 31)) >> 32;
            let want = format!(
                "{}.{:06}",
                (t >> 32) + micros / 1_000_000,
                micros % 1_000_000
            );
            assert_eq!(timestamp_text(t), want);
        }
    }

    #[test]
    fn reference_ids() {
        assert_eq!(reference_id_text(0, *b"RATE"), "RATE");
        assert_eq!(reference_id_text(1, *b"GPS\0"), "GPS");
        assert_eq!(reference_id_text(1, [0x80, 1, 2, 3]), "128.1.2.3");
        assert_eq!(reference_id_text(0, [0; 4]), "0.0.0.0");
        assert_eq!(reference_id_text(0, *b"A\0B\0"), "65.0.66.0");
        assert_eq!(reference_id_text(2, *b"INIT"), "73.78.73.84");
    }

    #[test]
    fn only_ipfixprobes_ntp_is_read() {
        let good = hex(testdata::NTP_SERVER);
        assert!(read(&good).is_some());
        assert!(read(&good[..47]).is_none(), "short");
        assert!(read(&[]).is_none());
        let mut v3 = good.clone();
        v3[0] = 0x1c; // LI 0, version 3, mode 4
        assert!(read(&v3).is_none());
        let mut control = good.clone();
        control[0] = 0x26; // version 4, mode 6
        assert!(read(&control).is_none());
        let mut bad = good.clone();
        bad[1] = 17;
        assert!(read(&bad).is_none());
        bad[1] = 2;
        bad[2] = 18;
        assert!(read(&bad).is_none());
        // Extension fields after the header change nothing.
        let mut ext = good.clone();
        ext.extend_from_slice(&[0; 20]);
        assert_eq!(read(&ext), read(&good));
    }

    #[test]
    fn every_packet_on_port_123_ends_its_record() {
        let mut p = NtpPlugin;
        let ntp = hex(testdata::NTP_SERVER);
        let pkt = udp(123, 40000, ntp.len());
        let v = view(&pkt, &ntp, &[], false);
        let mut s = p.attach(&v).unwrap();
        assert_eq!(p.packet(&mut s, &v), Verdict::EndAfter);
        let ext = exported(&mut p, PluginKind::Ntp, s).unwrap();
        assert_eq!(json(&ext, "NTPStratum"), "2");
        assert_eq!(json(&ext, "NTPDelay"), "695");
        assert_eq!(json(&ext, "NTPRefID"), "\"193.190.230.66\"");
        let junk = [0u8; 4];
        let pkt = udp(123, 123, 4);
        let v = view(&pkt, &junk, &[], false);
        let mut s = p.attach(&v).unwrap();
        assert_eq!(p.packet(&mut s, &v), Verdict::EndAfter);
        assert!(exported(&mut p, PluginKind::Ntp, s).is_none());
        let pkt = udp(124, 53, 0);
        assert!(p.attach(&view(&pkt, &[], &[], false)).is_none());
    }

    #[test]
    fn thousands_of_damaged_real_packets_never_panic() {
        let real = [hex(testdata::NTP_CLIENT), hex(testdata::NTP_SERVER)];
        let mut n = 0;
        for m in testdata::mutations(&real, 2_000) {
            if let Some(f) = read(&m) {
                n += 1;
                assert!(f.times.iter().all(|t| t.len() >= 8));
            }
        }
        assert!(n > 500, "{n}");
    }
}
