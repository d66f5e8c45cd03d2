//! The plugin seam, driven by a scripted plugin on the virtual clock of `tests.rs`: every
//! verdict, where records split, what a record carries, and that plugins never change what
//! the meter counts.

use super::tests::{random_round, udp, v4, xorshift, A, B};
use super::*;
use crate::key::proto;

/// Element keys the test plugin writes: its packet count and the first packet's length.
const COUNT: ExtKey = ExtKey { pen: 1, id: 1 };
const FIRST: ExtKey = ExtKey { pen: 1, id: 2 };
/// 1 when the plugin stopped counting (Done).
const STOPPED: ExtKey = ExtKey { pen: 1, id: 3 };

/// Counts each flow's packets; acts on payload lengths it is told to: `drop` frees its
/// state, `done` stops it, `end` ends the flow after the packet, `split` before it.
#[derive(Clone, Default)]
struct Script {
    drop: u32,
    done: u32,
    end: u32,
    split: u32,
    /// Attach only to flows whose first packet has this many payload octets or more.
    attach_min: u32,
}

#[derive(Debug)]
struct Counted {
    packets: u64,
    first_len: u32,
    stopped: bool,
}

impl FlowPlugin for Script {
    type State = Counted;
    const SPLITS: bool = true;

    fn number(&self) -> u8 {
        3
    }

    fn attach(&mut self, p: &PacketView<'_>) -> Option<Counted> {
        (p.pkt.payload_len >= self.attach_min).then_some(Counted {
            packets: 0,
            first_len: p.pkt.payload_len,
            stopped: false,
        })
    }

    fn split_before(&mut self, _: &mut Counted, p: &PacketView<'_>) -> bool {
        p.pkt.payload_len == self.split
    }

    fn packet(&mut self, s: &mut Counted, p: &PacketView<'_>) -> Verdict {
        s.packets += 1;
        match p.pkt.payload_len {
            n if n == self.drop => Verdict::Drop,
            n if n == self.done => {
                s.stopped = true;
                Verdict::Done
            }
            n if n == self.end => Verdict::EndAfter,
            _ => Verdict::Continue,
        }
    }

    fn export(&mut self, s: Counted, _: &FlowSummary, out: &mut ExtWriter<'_>) -> bool {
        out.unsigned(COUNT, s.packets);
        out.unsigned(FIRST, s.first_len.into());
        out.unsigned(STOPPED, s.stopped.into());
        true
    }
}

const KEYS: [ExtKey; 3] = [COUNT, FIRST, STOPPED];

fn meter(script: Script) -> Meter {
    let set = PluginSet::new(
        vec![Box::new(Host::new(script))],
        KEYS.to_vec(),
        Reads::default(),
    );
    Meter::with_plugins(MeterConfig::default(), set)
}

fn feed(m: &mut Meter, packets: &[(u64, Packet)]) -> Vec<FlowRecord> {
    let mut out = Vec::new();
    for (t, p) in packets {
        m.handle_packet(Timestamp::from_millis(1_000_000 + t), p);
        out.extend(std::iter::from_fn(|| m.poll_record()));
    }
    m.flush();
    out.extend(std::iter::from_fn(|| m.poll_record()));
    out
}

fn ext(r: &FlowRecord, key: ExtKey) -> Option<u64> {
    match r.ext.as_ref()?.get(key)? {
        ExtValue::Unsigned(v) => Some(v),
        _ => None,
    }
}

fn present(r: &FlowRecord) -> bool {
    r.ext.as_ref().is_some_and(|e| e.present & 1 << 3 != 0)
}

const NEVER: u32 = u32::MAX;

fn script() -> Script {
    Script {
        drop: NEVER,
        done: NEVER,
        end: NEVER,
        split: NEVER,
        attach_min: 0,
    }
}

#[test]
fn end_after_ends_the_flow_and_the_next_packet_starts_another() {
    let k = v4(A, 5000, B, 53, proto::UDP);
    let recs = feed(
        &mut meter(Script {
            end: 99,
            ..script()
        }),
        &[(0, udp(k, 30)), (5, udp(k.reversed(), 99)), (9, udp(k, 30))],
    );
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].end_reason, end_reason::END_OF_FLOW);
    assert_eq!((recs[0].fwd.packets, recs[0].rev.packets), (1, 1));
    assert_eq!(ext(&recs[0], COUNT), Some(2));
    assert_eq!(recs[1].end_reason, end_reason::FORCED);
    assert_ne!(recs[0].flow_id, recs[1].flow_id, "a new flow");
    assert_eq!(ext(&recs[1], COUNT), Some(1));
}

#[test]
fn split_before_ends_the_flow_and_the_packet_continues_it_under_its_flow_id() {
    let k = v4(A, 40000, B, 80, proto::UDP);
    let recs = feed(
        &mut meter(Script {
            split: 77,
            ..script()
        }),
        &[
            (0, udp(k, 10)),
            (1, udp(k.reversed(), 20)),
            // The reverse side sends the packet that splits: the continuation is oriented by it.
            (2, udp(k.reversed(), 77)),
            (3, udp(k, 10)),
        ],
    );
    assert_eq!(recs.len(), 2);
    let (a, b) = (&recs[0], &recs[1]);
    assert_eq!(a.end_reason, end_reason::END_OF_FLOW);
    assert_eq!((a.fwd.packets, a.rev.packets), (1, 1));
    assert_eq!((ext(a, COUNT), ext(a, FIRST)), (Some(2), Some(10)));
    assert_eq!(b.flow_id, a.flow_id, "the same flowId");
    assert_eq!(b.key, k.reversed(), "oriented by the packet that split");
    assert_eq!((b.fwd.packets, b.rev.packets), (1, 1));
    assert_eq!((ext(b, COUNT), ext(b, FIRST)), (Some(2), Some(77)));
}

#[test]
fn drop_frees_the_state_and_the_record_carries_no_plugin_elements() {
    let k = v4(A, 1, B, 2, proto::UDP);
    let mut m = meter(Script {
        drop: 5,
        ..script()
    });
    let recs = feed(&mut m, &[(0, udp(k, 1)), (1, udp(k, 5)), (2, udp(k, 1))]);
    assert_eq!(recs.len(), 1);
    assert!(!present(&recs[0]) && recs[0].ext.is_none());
    assert_eq!(recs[0].fwd.packets, 3, "the flow itself is counted as ever");
    assert_eq!(m.plugins().memory().0, 0, "no state left");
}

#[test]
fn done_keeps_the_state_but_stops_the_calls() {
    let k = v4(A, 1, B, 2, proto::UDP);
    let recs = feed(
        &mut meter(Script {
            done: 5,
            ..script()
        }),
        &[
            (0, udp(k, 1)),
            (1, udp(k, 5)),
            (2, udp(k, 1)),
            (3, udp(k, 9)),
        ],
    );
    assert_eq!(ext(&recs[0], COUNT), Some(2), "counted up to Done");
    assert_eq!(recs[0].fwd.packets, 4);
}

#[test]
fn flows_a_plugin_does_not_attach_to_cost_it_nothing() {
    let (small, big) = (v4(A, 1, B, 2, proto::UDP), v4(A, 3, B, 4, proto::UDP));
    let mut m = meter(Script {
        attach_min: 100,
        ..script()
    });
    let recs = feed(&mut m, &[(0, udp(small, 10)), (1, udp(big, 100))]);
    assert!(!present(&recs[0]));
    assert!(present(&recs[1]));
    assert_eq!(m.plugins().memory().1, 1, "one state at most");
}

/// Random sequences (TCP with FIN/RST, UDP, fragments, idle gaps, active timeouts, a full
/// table) with random verdicts: every packet is in exactly one record, the plugin's count of
/// each record's packets equals the record's own count unless the plugin stopped counting
/// (or fragments that came before their first were added unseen), and no plugin state
/// outlives its flow.
#[test]
fn random_verdicts_never_lose_or_double_a_packet() {
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
    for round in 0..40 {
        let (cfg, packets) = random_round(&mut next, round);
        let script = Script {
            drop: (next() % 1500) as u32,
            done: (next() % 1500) as u32,
            end: (next() % 1500) as u32,
            split: (next() % 1500) as u32,
            attach_min: 0,
        };
        let set = PluginSet::new(
            vec![Box::new(Host::new(script))],
            KEYS.to_vec(),
            Reads::default(),
        );
        let mut m = Meter::with_plugins(cfg, set);
        let recs = feed(&mut m, &packets);
        let expired = m.stats().expired_fragments;
        let got: u64 = recs.iter().map(|r| r.fwd.packets + r.rev.packets).sum();
        assert_eq!(got + expired, packets.len() as u64, "round {round}");
        assert_eq!(m.plugins().memory().0, 0, "round {round}: states left");
        let fragments = packets.iter().any(|(_, p)| p.frag.is_some());
        let mut exact = 0;
        for r in &recs {
            let total = r.fwd.packets + r.rev.packets;
            if let (Some(n), Some(stopped)) = (ext(r, COUNT), ext(r, STOPPED)) {
                if stopped == 0 && !fragments {
                    assert_eq!(n, total, "round {round}: {r:?}");
                    exact += 1;
                } else {
                    assert!(n <= total, "round {round}: {r:?}");
                }
            }
            assert!(r.fwd.packets > 0, "round {round}: an empty record");
        }
        assert!(
            fragments || exact > 0,
            "round {round}: nothing checked exactly"
        );
        // Without plugins the same packets give the same flows but for the splits and ends
        // plugins asked for: the packet totals agree.
        let mut plain = Meter::new(cfg);
        let plain_total: u64 = feed(&mut plain, &packets)
            .iter()
            .map(|r| r.fwd.packets + r.rev.packets)
            .sum();
        assert_eq!(plain_total + plain.stats().expired_fragments, got + expired);
    }
}

/// Keeps the longest stream prefix it saw in each direction.
struct Reader;

impl FlowPlugin for Reader {
    type State = [Vec<u8>; 2];
    const READS_STREAM: bool = true;

    fn number(&self) -> u8 {
        4
    }

    fn attach(&mut self, _: &PacketView<'_>) -> Option<Self::State> {
        Some(Default::default())
    }

    fn packet(&mut self, s: &mut Self::State, p: &PacketView<'_>) -> Verdict {
        let seen = &mut s[usize::from(p.reverse)];
        if p.stream.len() > seen.len() {
            *seen = p.stream.to_vec();
        }
        // Done once the forward stream is full: its buffer is freed then.
        if s[0].len() == 12 {
            Verdict::Done
        } else {
            Verdict::Continue
        }
    }

    fn export(&mut self, s: Self::State, _: &FlowSummary, out: &mut ExtWriter<'_>) -> bool {
        out.bytes(ExtKey { pen: 2, id: 1 }, &s[0]);
        out.bytes(ExtKey { pen: 2, id: 2 }, &s[1]);
        true
    }
}

/// A TCP segment of `key` over IPv4 (20-octet headers), and its payload.
fn seg(
    key: crate::key::FlowKey,
    seq: u32,
    flags: u8,
    data: &'static [u8],
) -> (Packet, &'static [u8]) {
    let p = Packet {
        key,
        ip_len: 40 + data.len() as u32,
        payload_len: data.len() as u32,
        ip_header_len: 20,
        has_l4: true,
        tcp: Some(crate::decode::TcpInfo {
            seq,
            flags,
            ..crate::decode::TcpInfo::default()
        }),
        ..Packet::default()
    };
    (p, data)
}

/// A plugin that reads streams gets each direction's bytes in sequence order, segments that
/// came out of order and retransmitted included, cut at the cap; the stream's buffer is freed
/// with its flow.
#[test]
fn streams_reach_plugins_in_sequence_order() {
    let keys = vec![ExtKey { pen: 2, id: 1 }, ExtKey { pen: 2, id: 2 }];
    let reads = Reads {
        payload: 0,
        stream: 12,
    };
    let mut m = Meter::with_plugins(
        MeterConfig::default(),
        PluginSet::new(vec![Box::new(Host::new(Reader))], keys.clone(), reads),
    );
    assert_eq!(
        m.plugins().payload(),
        12,
        "segments' payload is kept for the stream"
    );
    let k = v4(A, 40000, B, 443, proto::TCP);
    let packets = [
        seg(k, 100, 0x02, b""),
        seg(k.reversed(), 500, 0x12, b""),
        seg(k, 107, 0x18, b"world"),
        seg(k, 101, 0x18, b"hello "),
        seg(k, 101, 0x18, b"hello "),
        seg(k.reversed(), 501, 0x18, b"ok"),
        seg(k, 112, 0x18, b"!!! and more"),
    ];
    let details = crate::decode::Details::default();
    let mut recs = Vec::new();
    for (i, (p, data)) in packets.iter().enumerate() {
        m.handle_packet_with_details(Timestamp::from_millis(1_000 + i as u64), p, &details, data);
        recs.extend(std::iter::from_fn(|| m.poll_record()));
        // (The buffer is taken with the first payload, the third packet.)
        if (2..packets.len() - 1).contains(&i) {
            assert!(
                m.plugins().stream_buffers() > 0,
                "packet {i}: the stream is kept"
            );
        }
    }
    assert_eq!(
        m.plugins().stream_buffers(),
        0,
        "freed when its reader was done"
    );
    m.flush();
    recs.extend(std::iter::from_fn(|| m.poll_record()));
    let ext = recs[0].ext.as_ref().unwrap();
    assert_eq!(ext.get(keys[0]), Some(ExtValue::Bytes(b"hello world!")));
    assert_eq!(ext.get(keys[1]), Some(ExtValue::Bytes(b"ok")));
    assert_eq!(m.plugins().stream_buffers(), 0, "freed with the flow");
}

/// Reads streams until it has seen two payload packets, then wants them no more while still
/// counting packets (and what stream each showed it).
struct Skimmer;

#[derive(Default)]
struct Skimmed {
    payloads: u32,
    packets: u64,
    streams_after: usize,
}

impl FlowPlugin for Skimmer {
    type State = Skimmed;
    const READS_STREAM: bool = true;

    fn number(&self) -> u8 {
        5
    }

    fn attach(&mut self, _: &PacketView<'_>) -> Option<Skimmed> {
        Some(Skimmed::default())
    }

    fn packet(&mut self, s: &mut Skimmed, p: &PacketView<'_>) -> Verdict {
        s.packets += 1;
        if s.payloads >= 2 {
            s.streams_after += p.stream.len();
        }
        if !p.payload.is_empty() {
            s.payloads += 1;
        }
        Verdict::Continue
    }

    fn wants_stream(&self, s: &Skimmed) -> bool {
        s.payloads < 2
    }

    fn export(&mut self, s: Skimmed, _: &FlowSummary, out: &mut ExtWriter<'_>) -> bool {
        out.unsigned(ExtKey { pen: 2, id: 3 }, s.packets);
        out.unsigned(ExtKey { pen: 2, id: 4 }, s.streams_after as u64);
        true
    }
}

/// A plugin still called for a flow frees its stream once it says it wants it no more: the
/// buffer goes, later packets show no stream, and the plugin keeps counting.
#[test]
fn a_plugin_that_wants_no_more_stream_frees_it_and_goes_on() {
    use crate::decode::TcpInfo;
    let keys = vec![ExtKey { pen: 2, id: 3 }, ExtKey { pen: 2, id: 4 }];
    let reads = Reads {
        payload: 0,
        stream: 64,
    };
    let mut m = Meter::with_plugins(
        MeterConfig::default(),
        PluginSet::new(vec![Box::new(Host::new(Skimmer))], keys.clone(), reads),
    );
    let k = v4(A, 40000, B, 1883, proto::TCP);
    let details = crate::decode::Details::default();
    for i in 0..6u32 {
        let data: &[u8] = b"0123456789";
        let p = Packet {
            key: k,
            ip_len: 50,
            payload_len: 10,
            ip_header_len: 20,
            has_l4: true,
            tcp: Some(TcpInfo {
                seq: 1 + 10 * i,
                flags: 0x18,
                ..TcpInfo::default()
            }),
            ..Packet::default()
        };
        m.handle_packet_with_details(
            Timestamp::from_millis(1_000 + u64::from(i)),
            &p,
            &details,
            data,
        );
        let held = m.plugins().stream_buffers();
        assert_eq!(held > 0, i == 0, "packet {i}: {held} octets held");
    }
    m.flush();
    let rec = m.poll_record().unwrap();
    let ext = rec.ext.as_ref().unwrap();
    assert_eq!(ext.get(keys[0]), Some(ExtValue::Unsigned(6)));
    assert_eq!(ext.get(keys[1]), Some(ExtValue::Unsigned(0)));
}

/// Attaches at a TCP flow's first payload: what it was told of the packets before, the
/// packets it saw, and the forward and reverse streams as they stood at the flow's end.
struct Latecomer;

#[derive(Default)]
struct Late {
    before: Opening,
    seen: u64,
    streams: [Vec<u8>; 2],
}

const LATE_BEFORE: ExtKey = ExtKey { pen: 2, id: 5 };
const LATE_SYNS: ExtKey = ExtKey { pen: 2, id: 6 };
const LATE_SEEN: ExtKey = ExtKey { pen: 2, id: 7 };
const LATE_FWD: ExtKey = ExtKey { pen: 2, id: 8 };
const LATE_REV: ExtKey = ExtKey { pen: 2, id: 9 };
const LATE_NEVER: ExtKey = ExtKey { pen: 2, id: 10 };

impl FlowPlugin for Latecomer {
    type State = Late;
    const READS_STREAM: bool = true;
    const FROM_PAYLOAD: bool = true;

    fn number(&self) -> u8 {
        6
    }

    fn attach(&mut self, _: &PacketView<'_>) -> Option<Late> {
        Some(Late::default())
    }

    fn attach_late(&mut self, _: &PacketView<'_>, before: &Opening) -> Option<Late> {
        Some(Late {
            before: *before,
            ..Late::default()
        })
    }

    fn packet(&mut self, s: &mut Late, p: &PacketView<'_>) -> Verdict {
        s.seen += 1;
        s.streams[usize::from(p.reverse)] = p.stream.to_vec();
        Verdict::Continue
    }

    fn export_unattached(&mut self, flow: &FlowSummary, out: &mut ExtWriter<'_>) -> bool {
        out.unsigned(LATE_NEVER, flow.packets());
        true
    }

    fn export(&mut self, s: Late, _: &FlowSummary, out: &mut ExtWriter<'_>) -> bool {
        let [fwd, rev] = s.before.syn.map(|x| u64::from(x.unwrap_or(0)));
        out.unsigned(LATE_BEFORE, s.before.packets.into());
        out.unsigned(LATE_SYNS, fwd << 32 | rev);
        out.unsigned(LATE_SEEN, s.seen);
        out.bytes(LATE_FWD, &s.streams[0]);
        out.bytes(LATE_REV, &s.streams[1]);
        true
    }
}

/// A plugin that attaches late keeps nothing and is not called for a TCP flow until its first
/// payload; then it learns how many packets came before and each direction's SYN, and its
/// streams start after those SYNs (a reverse segment that came before the reverse stream's
/// first octets waits for them). A flow that never carries payload gets its
/// `export_unattached` values, and no state is held for it at any time.
#[test]
fn a_plugin_that_attaches_at_the_first_payload_learns_what_came_before() {
    let keys = vec![
        LATE_BEFORE,
        LATE_SYNS,
        LATE_SEEN,
        LATE_FWD,
        LATE_REV,
        LATE_NEVER,
    ];
    let reads = Reads {
        payload: 0,
        stream: 64,
    };
    let mut m = Meter::with_plugins(
        MeterConfig::default(),
        PluginSet::new(vec![Box::new(Host::new(Latecomer))], keys, reads),
    );
    let k = v4(A, 40000, B, 443, proto::TCP);
    let bare = v4(A, 40001, B, 443, proto::TCP);
    let packets = [
        seg(k, 100, 0x02, b""),
        seg(bare, 7000, 0x02, b""),
        seg(k.reversed(), 500, 0x12, b""),
        seg(k, 101, 0x10, b""),
        seg(bare.reversed(), 0, 0x14, b""),
        seg(k, 101, 0x18, b"hello"),
        seg(k.reversed(), 503, 0x18, b"later"),
        seg(k.reversed(), 501, 0x18, b"ok"),
    ];
    let details = crate::decode::Details::default();
    let mut recs = Vec::new();
    for (i, (p, data)) in packets.iter().enumerate() {
        m.handle_packet_with_details(Timestamp::from_millis(1_000 + i as u64), p, &details, data);
        recs.extend(std::iter::from_fn(|| m.poll_record()));
        let (live, _, _) = m.plugins().memory();
        assert_eq!(live, usize::from(i >= 5), "packet {i}: states held");
        assert_eq!(
            m.plugins().stream_buffers() > 0,
            i >= 5,
            "packet {i}: no stream buffer before the payload"
        );
    }
    m.flush();
    recs.extend(std::iter::from_fn(|| m.poll_record()));
    assert_eq!(recs.len(), 2);
    let by_port = |port: u16| {
        let r = recs.iter().find(|r| r.key.src_port == port).unwrap();
        r.ext.as_ref().unwrap().clone()
    };
    let late = by_port(40000);
    assert_eq!(late.get(LATE_BEFORE), Some(ExtValue::Unsigned(3)));
    assert_eq!(
        late.get(LATE_SYNS),
        Some(ExtValue::Unsigned(100 << 32 | 500))
    );
    assert_eq!(late.get(LATE_SEEN), Some(ExtValue::Unsigned(3)));
    assert_eq!(late.get(LATE_FWD), Some(ExtValue::Bytes(b"hello")));
    assert_eq!(late.get(LATE_REV), Some(ExtValue::Bytes(b"oklater")));
    assert_eq!(late.get(LATE_NEVER), None);
    let never = by_port(40001);
    assert_eq!(never.get(LATE_NEVER), Some(ExtValue::Unsigned(2)));
    assert_eq!(never.get(LATE_SEEN), None);
}
