//! The DNS messages of a flow, for the plugins that export after each one (dns, passivedns):
//! each UDP datagram is one (a fragmented datagram is read from its first fragment and ends
//! with its last), and each direction of a TCP connection carries a sequence of them, each
//! after a two-octet length (RFC 1035 §4.2.2), several per connection and per segment, one
//! over several segments (RFC 7766), read from the meter's stream of that direction.
//!
//! A record ends after a packet that completes a message, as ipfixprobe ends it after each
//! DNS packet; over TCP only when that packet leaves its direction between messages, so that
//! the next record's stream starts with a message's length (the stream of a new record
//! starts at its first segment). A message longer than the stream keeps ([`STREAM`]), or one
//! whose segments were captured short, is read from its first octets once segments reaching
//! its end have been seen.

use super::dns_wire::{framed, Framed};
use crate::meter::PacketView;

/// Octets of each TCP direction's stream the plugins read: a whole message of nearly every
/// exchange (a zone transfer's messages, up to 64 KiB each, are read from their first
/// octets). Every TCP flow whose plugins read streams holds this much per direction while
/// they do, so it is kept well below the 65,537 a message can take.
pub const STREAM: usize = 16 * 1024;

/// One TCP direction.
#[derive(Clone, Copy, Debug, Default)]
struct Dir {
    /// Stream offset of the next message's length.
    next: usize,
    /// Sequence number of the stream's first octet, once known (found as `meter::stream`
    /// finds it: after the SYN, or the first segment with payload).
    base: Option<u32>,
    /// The furthest stream offset a segment reached (by its sequence number and wire length).
    reached: usize,
    /// A segment was captured shorter than it was sent (snap length): the stream has a gap
    /// that nothing will fill.
    cut: bool,
}

/// What a plugin keeps to find a flow's messages.
#[derive(Clone, Debug, Default)]
pub struct Messages {
    dirs: [Dir; 2],
    /// A fragmented datagram whose first fragment was read as a message: its IP id.
    fragmented: Option<u32>,
}

/// Stream offsets beyond this are no segment of the stream (a jump of a gigabyte).
const FAR: usize = 1 << 30;

impl Messages {
    /// Read `p`: `f` is called with each message it completes and whether that is the
    /// whole message (not: the first fragment's payload for a fragmented datagram, a
    /// datagram cut by the snap length, the first octets of a message the stream could not
    /// hold), and says whether it read one. True when the record should end after `p`.
    pub fn packet(&mut self, p: &PacketView<'_>, mut f: impl FnMut(&[u8], bool) -> bool) -> bool {
        let whole = p.payload.len() >= p.pkt.payload_len as usize;
        match p.pkt.tcp {
            Some(tcp) => self.tcp(p, tcp.seq, tcp.flags & 0x02 != 0, &mut f),
            None => match p.pkt.frag {
                None => f(p.payload, whole),
                Some(fr) if fr.offset == 0 => {
                    if f(p.payload, false) {
                        self.fragmented = Some(fr.id);
                    }
                    false
                }
                Some(fr) => {
                    let last = !fr.more && self.fragmented == Some(fr.id);
                    if last {
                        self.fragmented = None;
                    }
                    last
                }
            },
        }
    }

    fn tcp(
        &mut self,
        p: &PacketView<'_>,
        seq: u32,
        syn: bool,
        f: &mut dyn FnMut(&[u8], bool) -> bool,
    ) -> bool {
        let d = &mut self.dirs[usize::from(p.reverse)];
        if syn && d.base.is_none() {
            d.base = Some(seq.wrapping_add(1));
        }
        let sent = p.pkt.payload_len as usize;
        if sent > 0 {
            let base = *d.base.get_or_insert(seq);
            let start = seq.wrapping_add(u32::from(syn)).wrapping_sub(base) as usize;
            if start < FAR {
                d.reached = d.reached.max(start + sent);
            }
            d.cut |= p.payload.len() < sent;
        }
        let stream = p.stream;
        let mut read = false;
        loop {
            match framed(stream, d.next) {
                Framed::Complete(msg, after) => {
                    read |= f(msg, true);
                    d.next = after;
                }
                Framed::Partial { len, have }
                    if (stream.len() >= STREAM || d.cut) && d.reached >= d.next + 2 + len =>
                {
                    // Sent in full, but the stream holds only its start (its bound, or a
                    // segment captured short): read what there is.
                    read |= f(have, false);
                    d.next += 2 + len;
                }
                _ => break,
            }
        }
        read && d.next >= d.reached.max(stream.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{FragInfo, Packet, TcpInfo};
    use crate::time::Timestamp;

    /// One direction's stream as `meter::stream` gives it (which is private to the meter):
    /// octets placed by sequence number from after the SYN or the first segment, the prefix
    /// without a gap, at most `cap` octets.
    #[derive(Default)]
    struct Stream {
        base: Option<u32>,
        buf: Vec<Option<u8>>,
    }

    impl Stream {
        fn push(&mut self, cap: usize, seq: u32, syn: bool, data: &[u8]) -> Vec<u8> {
            if syn {
                self.base.get_or_insert(seq.wrapping_add(1));
            } else if !data.is_empty() {
                self.base.get_or_insert(seq);
            }
            if let Some(base) = self.base {
                let off = seq.wrapping_add(u32::from(syn)).wrapping_sub(base) as usize;
                for (i, &b) in data.iter().enumerate() {
                    if off + i < cap {
                        if self.buf.len() <= off + i {
                            self.buf.resize(off + i + 1, None);
                        }
                        self.buf[off + i] = Some(b);
                    }
                }
            }
            self.buf.iter().map_while(|b| *b).collect()
        }
    }

    /// What one segment did: the messages it completed (with `f`'s `whole`), and whether the
    /// record ends after it.
    type Done = (Vec<(Vec<u8>, bool)>, bool);

    /// Feed TCP segments (direction, seq, flags, payload) through a stream of `cap` octets.
    fn run(cap: usize, segs: &[(bool, u32, u8, &[u8])]) -> Vec<Done> {
        let mut streams = [Stream::default(), Stream::default()];
        let mut m = Messages::default();
        let mut out = Vec::new();
        for &(reverse, seq, flags, payload) in segs {
            let mut pkt = Packet {
                payload_len: payload.len() as u32,
                tcp: Some(TcpInfo {
                    seq,
                    flags,
                    ..TcpInfo::default()
                }),
                ..Packet::default()
            };
            pkt.key.proto = 6;
            let stream = streams[usize::from(reverse)].push(cap, seq, flags & 2 != 0, payload);
            let view = PacketView {
                ts: Timestamp::from_millis(1),
                pkt: &pkt,
                details: &Default::default(),
                reverse,
                payload,
                stream: &stream,
            };
            let mut got = Vec::new();
            let end = m.packet(&view, |msg, whole| {
                got.push((msg.to_vec(), whole));
                true
            });
            out.push((got, end));
        }
        out
    }

    fn framed_msg(body: &[u8]) -> Vec<u8> {
        let mut v = (body.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn tcp_messages_split_over_segments_and_several_in_one() {
        let a = vec![1u8; 30];
        let b = vec![2u8; 20];
        let c = vec![3u8; 25];
        let mut s = framed_msg(&a);
        s.extend(framed_msg(&b));
        let s2 = framed_msg(&c);
        let out = run(
            STREAM,
            &[
                (false, 99, 0x02, &[]),
                (true, 499, 0x12, &[]),
                // The length alone, then the rest of `a` and all of `b` in one segment.
                (false, 100, 0x18, &s[..2]),
                (false, 102, 0x18, &s[2..]),
                // The other direction: `c` in two segments, the second retransmitted.
                (true, 500, 0x18, &s2[..10]),
                (true, 510, 0x18, &s2[10..]),
                (true, 510, 0x18, &s2[10..]),
            ],
        );
        let ends: Vec<bool> = out.iter().map(|o| o.1).collect();
        assert_eq!(ends, [false, false, false, true, false, true, false]);
        assert_eq!(out[3].0, [(a, true), (b, true)]);
        assert_eq!(out[5].0, [(c, true)]);
        assert!(out[6].0.is_empty());
    }

    #[test]
    fn a_segment_ending_inside_the_next_message_does_not_end_the_record() {
        let a = vec![1u8; 30];
        let b = vec![2u8; 20];
        let mut s = framed_msg(&a);
        s.extend(framed_msg(&b));
        // Joined late: no SYN, the stream starts at the first segment.
        let out = run(
            STREAM,
            &[(false, 7, 0x18, &s[..40]), (false, 47, 0x18, &s[40..])],
        );
        assert_eq!((out[0].0.clone(), out[0].1), (vec![(a, true)], false));
        assert_eq!((out[1].0.clone(), out[1].1), (vec![(b, true)], true));
    }

    #[test]
    fn a_message_longer_than_the_stream_is_read_from_its_start() {
        let big = vec![7u8; STREAM + 100];
        let s = framed_msg(&big);
        let mut segs = Vec::new();
        for (i, chunk) in s.chunks(1448).enumerate() {
            segs.push((false, 1000 + 1448 * i as u32, 0x10, chunk));
        }
        let out = run(STREAM, &segs);
        let last = out.len() - 1;
        assert!(out[..last].iter().all(|o| o.0.is_empty() && !o.1));
        assert_eq!(out[last].0.len(), 1);
        assert_eq!(out[last].0[0], (big[..STREAM - 2].to_vec(), false));
        assert!(out[last].1);
    }

    /// Read one UDP packet: the messages `f` was given, and whether the record ends.
    fn datagram(m: &mut Messages, frag: Option<FragInfo>, payload: &[u8]) -> (usize, bool) {
        let pkt = Packet {
            frag,
            ..Packet::default()
        };
        let v = PacketView {
            ts: Timestamp::from_millis(1),
            pkt: &pkt,
            details: &Default::default(),
            reverse: false,
            payload,
            stream: &[],
        };
        let mut seen = 0;
        let end = m.packet(&v, |msg, whole| {
            seen += 1;
            assert_eq!(whole, frag.is_none());
            !msg.is_empty()
        });
        (seen, end)
    }

    #[test]
    fn datagrams_and_fragments() {
        let mut m = Messages::default();
        assert_eq!(datagram(&mut m, None, b"abc"), (1, true));
        assert_eq!(datagram(&mut m, None, b""), (1, false), "not read: goes on");
        let frag = |id, offset, more| Some(FragInfo { id, offset, more });
        // A first fragment is read; the record ends with the last one of that datagram.
        assert_eq!(datagram(&mut m, frag(9, 0, true), b"head"), (1, false));
        assert_eq!(datagram(&mut m, frag(8, 1480, false), b"other"), (0, false));
        assert_eq!(datagram(&mut m, frag(9, 1480, true), b"mid"), (0, false));
        assert_eq!(datagram(&mut m, frag(9, 2960, false), b"tail"), (0, true));
        assert_eq!(m.fragmented, None);
        // A first fragment not read as a message: its last fragment ends nothing.
        assert_eq!(datagram(&mut m, frag(5, 0, true), b""), (1, false));
        assert_eq!(datagram(&mut m, frag(5, 8, false), b"x"), (0, false));
    }
}
