//! The messages of one TCP direction, for protocols whose messages say their own length in
//! their first octets (MQTT's fixed header, OpenVPN's two-octet prefix), followed through the
//! whole connection without keeping its bytes.
//!
//! Messages are read from the direction's stream (`meter::stream`: in sequence order, split or
//! out-of-order segments put together) while it holds them. Past the stream's window, where a
//! long-lived connection spends most of its life, only the sequence number of the next
//! message is kept, and each segment's own payload is read from there: several messages in
//! one segment, a message cut by a segment's end (its first octets, up to [`KEEP`], carried
//! over until its head and the fields after it are at hand), a message longer than its
//! segment. A gap (a segment missed by the capture, or payload cut by
//! the snap length) loses the framing; it is found again on a segment that parses as whole
//! messages from its first octet to its last, which is where senders put them.
//!
//! The stream's first octet is placed as `meter::stream` places it: after the direction's SYN,
//! or at its first segment with payload when the meter joined the connection late.

use crate::meter::{Opening, PacketView};

/// What the first octets of a message say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Head {
    /// More octets are needed to know its length.
    Need,
    /// They cannot start a message of this protocol.
    Bad,
    /// A message of this many octets, its head included.
    Msg(usize),
}

/// A protocol's message framing.
pub trait Framing {
    /// The message that starts at `b[0]`. `strict`: where framing is (re)gained, at the
    /// stream's first octet or on a segment after a gap, the octets must also look like a
    /// message beyond reasonable doubt (the protocol's fixed values, plausible lengths).
    /// `Need` only while `b` is shorter than a head (a few octets).
    fn head(b: &[u8], strict: bool) -> Head;
}

/// A message as a plugin sees it.
#[derive(Clone, Copy, Debug)]
pub struct Msg<'a> {
    /// Its octets from the first, as far as they are at hand: all of them, or (for a message
    /// that runs past the stream's window into later segments, or past what was captured) a
    /// prefix.
    pub bytes: &'a [u8],
    /// Its length on the wire.
    pub len: usize,
}

/// One TCP segment as a framer reads it.
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    /// Its sequence number (the SYN's, when `syn`).
    pub seq: u32,
    pub syn: bool,
    /// What was captured of its payload.
    pub payload: &'a [u8],
    /// Octets of payload on the wire.
    pub wire_len: u32,
    /// The direction's stream as it stands after the segment (empty when the meter keeps
    /// none, or no longer).
    pub stream: &'a [u8],
}

impl<'a> Segment<'a> {
    /// The segment a TCP packet carries.
    pub fn of(p: &PacketView<'a>) -> Option<Segment<'a>> {
        let tcp = p.pkt.tcp?;
        Some(Segment {
            seq: tcp.seq,
            syn: tcp.flags & 0x02 != 0,
            payload: p.payload,
            wire_len: p.pkt.payload_len,
            stream: p.stream,
        })
    }
}

/// Octets of a message kept from one segment to the next until they are at hand: its head,
/// and the fields a plugin reads after it (an MQTT topic name, the first octets of an
/// OpenVPN control packet). A message is given to the plugin whole, or (longer than this,
/// over several segments) by at least its first `KEEP` octets.
pub const KEEP: usize = 256;

/// Segments that may arrive beyond a gap in the stream before the gap is taken for a loss (it
/// is usually a reordering, filled by the next segment or two).
const MAX_STALL: u8 = 8;

/// Where the framing stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Sync {
    /// No payload seen yet: the first message starts at the stream's first octet.
    #[default]
    Start,
    /// The next message starts at this sequence number (its first octets in `carry`, when
    /// it began in an earlier segment).
    At(u32),
    /// A gap or an octet that cannot start a message: waiting for a segment to frame anew.
    Lost,
}

/// What to do with a message that starts at the first octet of what is at hand.
enum Step {
    /// Give it to the plugin (it is this long).
    Deliver(usize),
    /// Keep its octets for the next segment.
    Wait,
    Lost,
}

/// One direction's framing. See the [module documentation](self).
#[derive(Clone, Debug, Default)]
pub struct Framer {
    /// Sequence number of the stream's first octet, once known.
    base: Option<u32>,
    sync: Sync,
    /// The next message is the first since framing was (re)gained: checked strictly.
    strict: bool,
    /// Segments seen beyond a gap the stream may still fill.
    stalled: u8,
    /// The first octets of the next message, when it began before the segments to come and
    /// fewer than it needs are at hand (fewer than `KEEP`; taken only then).
    carry: Vec<u8>,
    /// Messages framed so far.
    framed: u32,
}

/// `a - b` in sequence space, as a signed distance (RFC 1982).
fn dist(a: u32, b: u32) -> i64 {
    i64::from(a.wrapping_sub(b) as i32)
}

impl Framer {
    /// Messages framed so far in this direction.
    pub fn framed(&self) -> u32 {
        self.framed
    }

    /// The framing is lost (waiting for a segment to frame anew).
    pub fn lost(&self) -> bool {
        self.sync == Sync::Lost
    }

    /// The stream may still give this direction's next message: no payload yet, or the next
    /// message starts inside the first `window` octets and none of it is carried. (Past the
    /// window, or lost, it gives nothing more: the next message only moves forward, and a
    /// lost framing is found again on segments only. Without a stream the framer reads
    /// segments alone.)
    pub fn wants_stream(&self, window: usize) -> bool {
        match (self.sync, self.base) {
            (Sync::Start, _) => true,
            (Sync::At(n), Some(base)) => {
                self.carry.is_empty() && (0..window as i64).contains(&dist(n, base))
            }
            _ => false,
        }
    }

    /// Note where the stream starts without framing anything (for a plugin that does not
    /// read this direction yet): as `meter::stream` does, after a SYN or at the first payload.
    pub fn track(&mut self, seq: u32, syn: bool, payload: &[u8]) {
        if syn && self.base.is_none() {
            self.base = Some(seq.wrapping_add(1));
        }
        if !payload.is_empty() && self.base.is_none() {
            self.base = Some(seq);
        }
    }

    /// A connection's two directions (forward, reverse) opened as `before` says, seen before
    /// the plugin attached at the flow's first payload: each SYN is tracked as if it had been.
    pub fn opened(dirs: &mut [Framer; 2], before: &Opening) {
        for (d, syn) in dirs.iter_mut().zip(before.syn) {
            if let Some(seq) = syn {
                d.track(seq, true, &[]);
            }
        }
    }

    /// One segment of this direction, with the direction's stream as it stands after it.
    /// Every message that becomes known is given to `on`, in order, once. `window`: the
    /// stream octets this plugin asked for.
    pub fn push<F: Framing>(
        &mut self,
        window: usize,
        seg: &Segment<'_>,
        on: &mut impl FnMut(Msg<'_>),
    ) {
        self.track(seg.seq, seg.syn, seg.payload);
        let data_seq = if seg.syn {
            seg.seq.wrapping_add(1)
        } else {
            seg.seq
        };
        let Some(base) = self.base else { return };
        if seg.payload.is_empty() {
            // Payload that crossed the wire but was not captured: a message starting there
            // is out of reach.
            if seg.wire_len > 0 && self.covers(data_seq, seg.wire_len) {
                self.lose();
            }
            return;
        }
        if self.sync == Sync::Start {
            self.sync = Sync::At(base);
            self.strict = true;
        }
        self.read_stream::<F>(window, base, seg.stream, on);
        self.read_segment::<F>(window, base, data_seq, seg, on);
    }

    fn lose(&mut self) {
        self.sync = Sync::Lost;
        self.carry.clear();
        self.stalled = 0;
    }

    /// The next message's first unknown octet lies in this segment.
    fn covers(&self, data_seq: u32, wire_len: u32) -> bool {
        match self.sync {
            Sync::At(n) => {
                let d = dist(n.wrapping_add(self.carry.len() as u32), data_seq);
                (0..i64::from(wire_len)).contains(&d)
            }
            _ => false,
        }
    }

    /// A message at the start of `buf`; `more`: octets after `buf` come in later segments.
    fn step<F: Framing>(&self, buf: &[u8], more: bool) -> Step {
        match F::head(buf, self.strict) {
            Head::Bad => Step::Lost,
            Head::Need if more && buf.len() < KEEP => Step::Wait,
            Head::Need => Step::Lost,
            Head::Msg(len) if buf.len() >= len.min(KEEP) || !more => Step::Deliver(len),
            Head::Msg(_) => Step::Wait,
        }
    }

    fn deliver(&mut self, on: &mut impl FnMut(Msg<'_>), buf: &[u8], len: usize) {
        on(Msg {
            bytes: &buf[..len.min(buf.len())],
            len,
        });
        self.strict = false;
        self.framed = self.framed.saturating_add(1);
    }

    /// Messages the stream holds from the next one on.
    fn read_stream<F: Framing>(
        &mut self,
        window: usize,
        base: u32,
        stream: &[u8],
        on: &mut impl FnMut(Msg<'_>),
    ) {
        let Sync::At(n) = self.sync else { return };
        if !self.carry.is_empty() {
            return;
        }
        let Ok(mut off) = usize::try_from(dist(n, base)) else {
            return;
        };
        // The stream will not grow for this plugin: what it holds is all it will hold.
        let full = stream.len() >= window;
        while off < stream.len() {
            let buf = &stream[off..];
            match self.step::<F>(buf, true) {
                Step::Deliver(len) => {
                    self.deliver(on, buf, len);
                    off = off.saturating_add(len);
                }
                Step::Wait => {
                    if full {
                        // Cut by the window's end: the segments that carry the rest give it.
                        self.carry.extend_from_slice(buf);
                    }
                    break;
                }
                Step::Lost => {
                    self.lose();
                    return;
                }
            }
        }
        // (Lengths are below 2^32: they come from 2-octet prefixes or 28-bit integers.)
        self.sync = Sync::At(base.wrapping_add(off as u32));
    }

    /// Messages of this segment's own payload past what the stream gave.
    fn read_segment<F: Framing>(
        &mut self,
        window: usize,
        base: u32,
        data_seq: u32,
        seg: &Segment<'_>,
        on: &mut impl FnMut(Msg<'_>),
    ) {
        let (payload, stream_len) = (seg.payload, seg.stream.len());
        let wire = seg.wire_len as usize;
        let whole = payload.len() == wire;
        let n = match self.sync {
            Sync::At(n) => n,
            Sync::Start => return,
            Sync::Lost => {
                if whole {
                    self.resync::<F>(data_seq, payload, on);
                }
                return;
            }
        };
        // The first octet of the next message not yet known.
        let want = n.wrapping_add(self.carry.len() as u32);
        let rel = dist(want, base);
        // The stream will hold what the window holds.
        let growing = stream_len < window && (0..window as i64).contains(&rel);
        if growing && stream_len > 0 && rel < stream_len as i64 && self.carry.is_empty() {
            // The stream has the next message's start and will give the rest.
            return;
        }
        let off = dist(want, data_seq);
        if off < 0 {
            // Octets before this segment are missing. While the stream may still receive
            // them (a reordering), wait a few segments.
            if growing && self.stalled < MAX_STALL {
                self.stalled += 1;
                return;
            }
            self.lose();
            if whole {
                self.resync::<F>(data_seq, payload, on);
            }
            return;
        }
        self.stalled = 0;
        let Ok(mut pos) = usize::try_from(off) else {
            return;
        };
        if pos >= wire {
            // A retransmission of octets already read, or the middle of a long message.
            return;
        }
        if !self.carry.is_empty() {
            // The message that began before this segment.
            let mut buf = std::mem::take(&mut self.carry);
            let had = buf.len();
            let rest = payload.get(pos..).unwrap_or(&[]);
            let take = rest.len().min(KEEP - had);
            buf.extend_from_slice(&rest[..take]);
            let more = whole && take == rest.len();
            match self.step::<F>(&buf, more) {
                Step::Deliver(len) if len >= had => {
                    self.deliver(on, &buf, len);
                    buf.clear();
                    self.carry = buf;
                    pos = pos + len - had;
                }
                Step::Wait => {
                    self.carry = buf;
                    return;
                }
                // (A message shorter than what was kept of it cannot be.)
                _ => {
                    self.lose();
                    return;
                }
            }
        }
        loop {
            if pos >= wire {
                self.sync = Sync::At(data_seq.wrapping_add(pos as u32));
                return;
            }
            let Some(buf) = payload.get(pos..).filter(|r| !r.is_empty()) else {
                // The next message starts in octets the capture did not keep.
                self.lose();
                return;
            };
            match self.step::<F>(buf, whole) {
                Step::Deliver(len) => {
                    self.deliver(on, buf, len);
                    pos = pos.saturating_add(len);
                }
                Step::Wait => {
                    self.carry.extend_from_slice(buf);
                    self.sync = Sync::At(data_seq.wrapping_add(pos as u32));
                    return;
                }
                Step::Lost => {
                    self.lose();
                    return;
                }
            }
        }
    }

    /// Frame anew on a whole segment: only when it is, from its first octet to its last,
    /// messages that pass the strict check.
    fn resync<F: Framing>(&mut self, data_seq: u32, payload: &[u8], on: &mut impl FnMut(Msg<'_>)) {
        let mut pos = 0;
        while pos < payload.len() {
            match F::head(&payload[pos..], true) {
                Head::Msg(len) if len > 0 && len <= payload.len() - pos => pos += len,
                _ => return,
            }
        }
        let mut pos = 0;
        while pos < payload.len() {
            let Head::Msg(len) = F::head(&payload[pos..], true) else {
                return;
            };
            self.deliver(on, &payload[pos..], len);
            pos += len;
        }
        self.sync = Sync::At(data_seq.wrapping_add(payload.len() as u32));
        self.stalled = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy framing: one length octet (the message's whole length, at least 2), then a tag
    /// octet that must be b'm' when strict.
    struct Toy;

    impl Framing for Toy {
        fn head(b: &[u8], strict: bool) -> Head {
            match b {
                [] | [_] => Head::Need,
                [len, tag, ..] if *len >= 2 && (!strict || *tag == b'm') => {
                    Head::Msg(usize::from(*len))
                }
                _ => Head::Bad,
            }
        }
    }

    fn msg(len: u8, fill: u8) -> Vec<u8> {
        let mut m = vec![len, b'm'];
        m.resize(usize::from(len), fill);
        m
    }

    /// The stream as `meter::stream` keeps it (a model: base after the SYN or at the first
    /// payload, octets placed by sequence number up to `cap`, the in-order prefix shown).
    #[derive(Default)]
    struct Stream {
        base: Option<u32>,
        buf: Vec<Option<u8>>,
    }

    impl Stream {
        fn push(&mut self, cap: usize, seq: u32, syn: bool, data: &[u8]) -> Vec<u8> {
            if syn && self.base.is_none() {
                self.base = Some(seq.wrapping_add(1));
            }
            if !data.is_empty() {
                let start = if syn { seq.wrapping_add(1) } else { seq };
                let base = *self.base.get_or_insert(start);
                self.buf.resize(cap, None);
                for (i, &b) in data.iter().enumerate() {
                    let off = dist(start.wrapping_add(i as u32), base);
                    if (0..cap as i64).contains(&off) {
                        self.buf[off as usize] = Some(b);
                    }
                }
            }
            self.buf.iter().map_while(|b| *b).collect()
        }
    }

    /// Segments through a framer, with the stream beside it.
    struct Run {
        f: Framer,
        stream: Stream,
        cap: usize,
        window: usize,
        got: Vec<(Vec<u8>, usize)>,
    }

    impl Run {
        fn new(cap: usize, window: usize) -> Run {
            Run {
                f: Framer::default(),
                stream: Stream::default(),
                cap,
                window,
                got: Vec::new(),
            }
        }

        /// A segment at `seq` of `data`, of which `captured` octets were captured.
        fn seg(&mut self, seq: u32, syn: bool, data: &[u8], captured: usize) {
            let payload = &data[..captured.min(data.len())];
            let stream = if self.cap > 0 {
                self.stream.push(self.cap, seq, syn, payload)
            } else {
                Vec::new()
            };
            let got = &mut self.got;
            let seg = Segment {
                seq,
                syn,
                payload,
                wire_len: data.len() as u32,
                stream: &stream,
            };
            self.f.push::<Toy>(self.window, &seg, &mut |m| {
                got.push((m.bytes.to_vec(), m.len))
            });
        }

        fn lens(&self) -> Vec<usize> {
            self.got.iter().map(|g| g.1).collect()
        }
    }

    /// `msgs` back to back, cut into segments at `cuts` (offsets), starting at `isn + 1`.
    fn segments(msgs: &[Vec<u8>], cuts: &[usize], isn: u32) -> Vec<(u32, Vec<u8>)> {
        let all = msgs.concat();
        let mut bounds: Vec<usize> = cuts.iter().copied().filter(|&c| c < all.len()).collect();
        bounds.push(0);
        bounds.push(all.len());
        bounds.sort_unstable();
        bounds.dedup();
        bounds
            .windows(2)
            .map(|w| (isn.wrapping_add(1 + w[0] as u32), all[w[0]..w[1]].to_vec()))
            .collect()
    }

    fn many(n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| msg(2 + (i * 7 % 50) as u8, i as u8))
            .collect()
    }

    #[test]
    fn messages_in_and_past_the_window_each_once_whatever_the_segmenting() {
        let msgs = many(60);
        let want: Vec<usize> = msgs.iter().map(Vec::len).collect();
        // Cuts that put several messages in one segment, a message over several, and heads
        // (length and tag octets) across segment ends.
        let mut cuts = Vec::new();
        let mut at = 0;
        for (i, m) in msgs.iter().enumerate() {
            at += m.len();
            match i % 5 {
                0 => cuts.push(at + 1),
                1 => cuts.push(at - 3),
                3 => cuts.push(at),
                _ => {}
            }
        }
        for (cap, window) in [(0, 0), (64, 64), (4096, 64), (4096, 4096)] {
            let mut r = Run::new(cap, window);
            let isn = u32::MAX - 300; // the sequence numbers wrap
            r.seg(isn, true, &[], 0);
            for (seq, data) in segments(&msgs, &cuts, isn) {
                r.seg(seq, false, &data, data.len());
            }
            assert_eq!(r.lens(), want, "cap {cap} window {window}");
            // Each shorter than KEEP: given whole, however it was cut.
            for ((bytes, len), m) in r.got.iter().zip(&msgs) {
                assert_eq!((bytes, *len), (m, m.len()), "cap {cap} window {window}");
            }
            assert!(!r.f.lost());
        }
    }

    /// Two length octets (the whole length, at least 3), then the tag.
    struct Wide;

    impl Framing for Wide {
        fn head(b: &[u8], _: bool) -> Head {
            match b {
                [hi, lo, b'w', ..] if u16::from_be_bytes([*hi, *lo]) >= 3 => {
                    Head::Msg(usize::from(u16::from_be_bytes([*hi, *lo])))
                }
                [_, _, _, ..] => Head::Bad,
                _ => Head::Need,
            }
        }
    }

    #[test]
    fn long_messages_past_the_window_are_given_by_their_first_octets() {
        let msgs: Vec<Vec<u8>> = (0..30u16)
            .map(|i| {
                let len = 3 + i * 37;
                let mut m = len.to_be_bytes().to_vec();
                m.push(b'w');
                m.extend((3..len).map(|k| (k + i) as u8));
                m
            })
            .collect();
        let all = msgs.concat();
        for mss in [1, 2, 3, 100, 255, 256, 257, 1448] {
            let mut f = Framer::default();
            let mut got = Vec::new();
            for (i, chunk) in all.chunks(mss).enumerate() {
                let seg = Segment {
                    seq: 5_000 + (i * mss) as u32,
                    syn: false,
                    payload: chunk,
                    wire_len: chunk.len() as u32,
                    stream: &[],
                };
                f.push::<Wide>(0, &seg, &mut |m| got.push((m.bytes.to_vec(), m.len)));
            }
            assert_eq!(got.len(), msgs.len(), "mss {mss}");
            for ((bytes, len), m) in got.iter().zip(&msgs) {
                assert_eq!(*len, m.len());
                assert!(m.starts_with(bytes), "mss {mss}");
                assert!(bytes.len() >= m.len().min(KEEP), "mss {mss}");
            }
        }
    }

    #[test]
    fn a_reordering_inside_the_window_waits_for_the_stream() {
        let msgs = many(6);
        let segs = segments(&msgs, &[10, 30, 50], 99);
        let mut r = Run::new(4096, 4096);
        r.seg(99, true, &[], 0);
        r.seg(segs[0].0, false, &segs[0].1, segs[0].1.len());
        // The third segment before the second: nothing past the gap until it is filled.
        r.seg(segs[2].0, false, &segs[2].1, segs[2].1.len());
        let before = r.got.len();
        r.seg(segs[1].0, false, &segs[1].1, segs[1].1.len());
        for s in &segs[3..] {
            r.seg(s.0, false, &s.1, s.1.len());
        }
        assert!(r.got.len() > before);
        assert_eq!(r.lens(), msgs.iter().map(Vec::len).collect::<Vec<_>>());
        // A retransmission changes nothing.
        r.seg(segs[1].0, false, &segs[1].1, segs[1].1.len());
        assert_eq!(r.got.len(), msgs.len());
    }

    #[test]
    fn a_gap_past_the_window_is_found_again_on_a_segment_of_whole_messages() {
        let msgs = many(12);
        // One message per segment, but messages 7 and 8 share one, so that framing can be
        // found again at any segment.
        let ends: Vec<usize> = msgs
            .iter()
            .scan(0, |a, m| {
                *a += m.len();
                Some(*a)
            })
            .enumerate()
            .filter(|&(i, _)| i != 7)
            .map(|(_, e)| e)
            .collect();
        let segs = segments(&msgs, &ends, 0);
        let mut r = Run::new(16, 16);
        for (i, s) in segs.iter().enumerate() {
            if i == 4 {
                continue; // missed by the capture
            }
            // Segment 7 (messages 7 and 8) cut by the snap length one octet into message 8:
            // message 7 is read, 8 is out of reach, and framing is lost until segment 8.
            let captured = if i == 7 { msgs[7].len() + 1 } else { s.1.len() };
            r.seg(s.0, false, &s.1, captured);
        }
        let want: Vec<usize> = msgs
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 4 && *i != 8)
            .map(|(_, m)| m.len())
            .collect();
        assert_eq!(r.lens(), want);
        assert!(!r.f.lost());
    }

    #[test]
    fn a_stream_that_starts_with_junk_is_not_framed_until_a_whole_segment_frames() {
        let mut r = Run::new(64, 64);
        r.seg(1000, false, &[5, b'x', 0, 0, 0, 9, 9], 7);
        assert!(r.f.lost() && r.got.is_empty());
        assert!(!r.f.wants_stream(64));
        // A segment that is not whole messages to its end: still lost.
        r.seg(1007, false, &[3, b'm', 0, 4], 4);
        assert!(r.f.lost());
        r.seg(1011, false, &[3, b'm', 0, 2, b'm'], 5);
        assert_eq!(r.lens(), [3, 2]);
        assert!(!r.f.lost());
        r.seg(1016, false, &[2, b'q'], 2);
        assert_eq!(r.lens(), [3, 2, 2], "framed: no longer strict");
    }

    #[test]
    fn hostile_sequence_numbers_and_lengths_never_panic() {
        let mut rand = crate::testrand::xorshift(0x1234_5678_9abc_def0);
        for round in 0..200 {
            let mut r = Run::new([0, 8, 64][round % 3], [0, 8, 64][(round / 3) % 3]);
            for _ in 0..50 {
                let len = (rand() % 40) as usize;
                let data: Vec<u8> = (0..len).map(|_| rand() as u8).collect();
                let seq = match rand() % 4 {
                    0 => rand() as u32,
                    _ => 7 + (rand() % 200) as u32,
                };
                let captured = (rand() % 41) as usize;
                r.seg(seq, rand() % 9 == 0, &data, captured);
            }
            for (bytes, len) in &r.got {
                assert!(bytes.len() <= *len);
            }
        }
    }
}
