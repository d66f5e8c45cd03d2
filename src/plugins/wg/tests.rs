use super::wire::tests::message;
use super::wire::{self, kind, Message};
use super::*;
use crate::meter::FlowRecord;
use crate::plugins::sim::{self, Conn, Rng};

const INIT: usize = wire::INITIATION_LEN;
const RESP: usize = wire::RESPONSE_LEN;

fn init(sender: u32) -> Vec<u8> {
    message(kind::INITIATION, INIT, sender, 0)
}

fn resp(sender: u32, receiver: u32) -> Vec<u8> {
    message(kind::RESPONSE, RESP, sender, receiver)
}

fn data(receiver: u32, len: usize) -> Vec<u8> {
    message(kind::TRANSPORT_DATA, len, receiver, 0)
}

fn peers(r: &FlowRecord) -> (Option<u64>, Option<u64>, Option<u64>) {
    (
        sim::uint(r, "WGConfLevel"),
        sim::uint(r, "WGSrcPeer"),
        sim::uint(r, "WGDstPeer"),
    )
}

/// A handshake between the client (index `i`) and the server (index `r`), then data.
fn session(c: &Conn, i: u32, r: u32) -> Vec<Vec<u8>> {
    vec![
        c.udp(false, &init(i)),
        c.udp(true, &resp(r, i)),
        c.udp(false, &data(r, 96)),
        c.udp(true, &data(i, 1440)),
        c.udp(false, &data(r, 32)), // a keepalive
    ]
}

#[test]
fn a_session_gives_each_side_its_index() {
    let c = Conn::new(51_820, 51_820);
    let records = sim::run(&["wg"], &session(&c, 0x1d2c_3b4a, 0x0000_beef));
    assert_eq!(records.len(), 1);
    assert_eq!(
        peers(&records[0]),
        (Some(100), Some(0x1d2c_3b4a), Some(0xbeef))
    );
}

#[test]
fn a_new_handshake_with_another_index_starts_a_new_record() {
    let c = Conn::new(40_000, 51_820);
    let mut pkts = session(&c, 1, 2);
    // The initiation sent again (same index): the same session.
    pkts.push(c.udp(false, &init(1)));
    // A rekey by the client, then one by the server.
    pkts.extend(session(&c, 3, 4));
    pkts.push(c.udp(true, &init(5)));
    pkts.push(c.udp(false, &resp(6, 5)));
    pkts.push(c.udp(true, &data(6, 64)));
    let records = sim::run(&["wg"], &pkts);
    assert_eq!(records.len(), 3);
    assert_eq!(
        records.iter().map(sim::packets).collect::<Vec<_>>(),
        [6, 5, 3]
    );
    assert_eq!(peers(&records[0]), (Some(100), Some(1), Some(2)));
    assert_eq!(peers(&records[1]), (Some(100), Some(3), Some(4)));
    // The third starts with the server's initiation: it is that record's forward side.
    assert_eq!(peers(&records[2]), (Some(100), Some(5), Some(6)));
    assert_eq!(records[2].key.src_port, 51_820);
    // One conversation: the continuations keep its flowId.
    assert!(records.iter().all(|r| r.flow_id == records[0].flow_id));
}

#[test]
fn a_session_picked_up_in_the_middle_and_a_cookie_reply() {
    let c = Conn::new(40_001, 51_820);
    let pkts = vec![
        c.udp(false, &data(0xaa, 48)),
        c.udp(true, &data(0xbb, 48)),
        c.udp(true, &message(kind::COOKIE_REPLY, 64, 0xcc, 0)),
    ];
    let records = sim::run(&["wg"], &pkts);
    // Data to 0xaa names the server's index; the cookie reply to the client names its own.
    assert_eq!(peers(&records[0]), (Some(100), Some(0xcc), Some(0xaa)));
}

#[test]
fn dns_look_alikes_and_other_traffic() {
    let c = Conn::new(40_002, 53);
    // A DNS query with id 0x0100 and no flags set: type 1, zero reserved octets, and
    // 148 octets long: read as an initiation, at confidence 1.
    let mut q = vec![1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    q.resize(148, 0x61);
    let records = sim::run(&["wg"], &[c.udp(false, &q)]);
    assert_eq!(peers(&records[0]), (Some(1), Some(0x100), Some(0)));
    // Not WireGuard from the first datagram: nothing; TCP: nothing.
    let d = Conn::new(40_003, 51_820);
    let mut e = Conn::new(40_004, 51_820);
    let mut pkts = vec![
        d.udp(false, &[4, 0, 0, 0, 1, 2, 3, 4]),
        d.udp(false, &init(1)),
    ];
    pkts.extend(e.open());
    pkts.push(e.tcp(false, sim::PSH_ACK, &init(1)));
    let records = sim::run(&["wg"], &pkts);
    assert!(records.iter().all(|r| peers(r) == (None, None, None)));
}

#[test]
fn a_datagram_that_is_not_wireguard_ends_the_reading() {
    let c = Conn::new(40_005, 51_820);
    let mut pkts = session(&c, 7, 8);
    pkts.push(c.udp(false, b"not wireguard at all, thirty-two octets"));
    // Not read any more: neither this index nor a new session.
    pkts.push(c.udp(true, &data(99, 64)));
    pkts.push(c.udp(false, &init(100)));
    let records = sim::run(&["wg"], &pkts);
    assert_eq!(records.len(), 1);
    assert_eq!(peers(&records[0]), (Some(0), Some(7), Some(8)));
}

#[test]
fn lengths_count_on_the_wire_when_the_capture_is_cut() {
    let c = Conn::new(40_006, 51_820);
    let pkts = session(&c, 0x1234, 0x5678);
    // IP 20 + UDP 8 + 12 octets of message: type, reserved, both indexes.
    let records = sim::run_snap(&["wg"], &pkts, Some(40));
    assert_eq!(peers(&records[0]), (Some(100), Some(0x1234), Some(0x5678)));
    // Cut before the index: the first datagram tells nothing, so nothing is attached.
    let records = sim::run_snap(&["wg"], &pkts, Some(30));
    assert_eq!(peers(&records[0]), (None, None, None));
}

#[test]
fn state_follows_wiresharks_reading_of_each_message() {
    let mut s = State::default();
    s.message(
        Message::Response {
            sender: 5,
            receiver: 6,
        },
        true,
    );
    assert_eq!((s.src, s.dst), (6, 5));
    s.message(Message::Initiation { sender: 9 }, false);
    s.message(Message::TransportData { receiver: 10 }, true);
    assert_eq!((s.src, s.dst), (10, 5));
}

/// Real-shaped messages of every type, cut at every length and damaged thousands of times
/// over, through the parser and the plugin's state.
#[test]
fn thousands_of_damaged_messages_through_the_parser() {
    let real = [
        init(0x0102_0304),
        resp(5, 6),
        message(kind::COOKIE_REPLY, 64, 7, 0),
        data(8, 32),
        data(9, 1420),
    ];
    let mut rng = Rng(0x7767);
    let mut inputs: Vec<(Vec<u8>, usize)> = Vec::new();
    for p in &real {
        inputs.extend((0..=p.len()).map(|n| (p[..n].to_vec(), p.len())));
        inputs.extend((0..=p.len()).map(|n| (p[..n].to_vec(), n)));
        inputs.extend((0..1000).map(|_| {
            let m = rng.mutate(p);
            let wire = if rng.below(2) == 0 {
                m.len()
            } else {
                rng.below(2000)
            };
            (m, wire)
        }));
    }
    assert!(inputs.len() > 5_000);
    let mut s = State::default();
    let mut parsed = 0;
    for (b, wire) in &inputs {
        match Message::parse(b, *wire) {
            Ok(m) => {
                parsed += 1;
                assert!(b.len() >= 8 && *wire >= wire::MIN_DATA_LEN);
                s.message(m, parsed % 2 == 0);
            }
            Err(_) => {
                // Refused: the type, reserved octets or length on the wire were wrong, or
                // the indexes were not captured.
                let head = matches!(b.get(..4), Some([1..=4, 0, 0, 0]));
                let fits = matches!(
                    (b.first(), *wire),
                    (Some(1), INIT) | (Some(2), RESP) | (Some(3), 64) | (Some(4), 32..)
                );
                assert!(!(head && fits && b.len() >= 12), "{b:02x?} {wire}");
            }
        }
        let _ = wire::looks_like_dns(b);
    }
    assert!(parsed > 1000);
}
