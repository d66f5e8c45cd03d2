//! `--filter` against tcpdump itself: for many expressions over captures of many link types,
//! qof's filter accepts exactly the frames tcpdump accepts.

mod common;
use common::*;
use qof::filter::Filter;
use std::path::Path;
use std::process::Command;

const EXPRESSIONS: &[&str] = &[
    "tcp",
    "udp",
    "icmp",
    "icmp6",
    "ip",
    "ip6",
    "arp",
    "not ip",
    "tcp port 80",
    "port 53",
    "udp port 53 or (tcp and port 80)",
    "src port 443",
    "dst port 443 or src port 443",
    "portrange 1-1023",
    "tcp portrange 8000-9000",
    "host 192.168.0.30",
    "src host 10.0.0.1 or dst host 10.0.0.2",
    "net 10.0.0.0/8",
    "src net 192.168.0.0/16 and not dst net 192.168.0.0/16",
    "ip6 and tcp port 443",
    "ip6 net 2001:db8::/32",
    "tcp[tcpflags] & tcp-syn != 0",
    "tcp[tcpflags] & (tcp-syn|tcp-fin) != 0 and not tcp[tcpflags] & tcp-ack != 0",
    "tcp[13] = 0x12",
    "ip[6:2] & 0x1fff != 0",
    "ip[6] & 0x20 != 0",
    "greater 1000",
    "less 100",
    "len > 200 and len < 600",
    "ip proto gre",
    "ip proto 47 or ip6 proto 47",
    "vlan",
    "vlan and host 10.1.1.1",
    "vlan 100",
    "mpls",
    "mpls and icmp",
    "pppoes",
    "pppoes and ip",
    "ether broadcast",
    "ether multicast",
    "ether host 00:11:22:33:44:55",
    "ether proto 0x86dd",
    "ip multicast",
    "udp and ip[8] < 64",
    "(tcp or udp) and not port 22",
    "ip and udp[8:2] = 0x0100",
    "ip6[6] = 58",
    "icmp[icmptype] = icmp-echo or icmp[icmptype] = icmp-echoreply",
    "sctp",
    "ip[0] & 0xf > 5",
];

/// A spread of link types and encapsulations from the shared corpus.
const FILES: &[&str] = &[
    "ipfixprobe__mixed.pcap",
    "ipfixprobe__http.pcap",
    "ipfixprobe__vlan.pcap",
    "ipfixprobe__dns.pcap",
    "ndpi__alexa-app.pcapng",
    "ndpi__reasm_crash_anon.pcapng",
    "pcapplusplus__sll2.pcap",
    "tcpdump__LINKTYPE_RAW_ipv4.pcap",
    "tcpdump__LINKTYPE_IPV4.pcap",
    "ndpi__dlt_ppp.pcap",
    "tcpdump__802.1ad_QinQ.pcap",
    "tcpdump__mpls-traceroute.pcap",
    "tcpdump__pppoes.pcap",
    "tcpdump__various_gre.pcap",
    "tcpdump__ip_ts_opts_asan.pcap",
    "ndpi__dns_fragmented.pcap",
    "tcpdump__icmpv6.pcap",
    "tcpdump__ipv6-routing-header.pcap",
    "slips__test7-malicious.pcap",
];

/// (timestamp ns, captured length) of every frame of a capture, or of those `filter` accepts.
fn frames(path: &Path, mut filter: Option<&mut Filter>) -> Vec<(u64, usize)> {
    let mut src = qof::capture::open(path.to_str().unwrap()).unwrap();
    let mut v = Vec::new();
    while let Ok(Some(f)) = src.next_frame() {
        if filter
            .as_mut()
            .is_none_or(|flt| flt.matches(f.linktype, f.orig_len, f.data))
        {
            v.push((f.ts.nanos(), f.data.len()));
        }
    }
    v
}

#[test]
fn verdicts_equal_tcpdump() {
    if !have_tool("tcpdump") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.pcap");
    let (mut pairs, mut refused, mut frames_checked) = (0, 0, 0);
    let mut disagreements = Vec::new();
    for file in FILES {
        let cap = shared().join("corpus/public").join(file);
        for expr in EXPRESSIONS {
            let mut filter = Filter::new(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
            let ours = frames(&cap, Some(&mut filter));
            let _ = std::fs::remove_file(&out);
            let r = run(Command::new("tcpdump")
                .arg("-r")
                .arg(&cap)
                .arg("-w")
                .arg(&out)
                .arg(expr));
            if !r.status.success() {
                // tcpdump refuses this expression for this link type; so must we, per frame.
                assert!(
                    ours.is_empty(),
                    "{file}: '{expr}': tcpdump refused it, we accepted {} frames",
                    ours.len()
                );
                refused += 1;
                continue;
            }
            let theirs = frames(&out, None);
            if ours != theirs {
                disagreements.push(format!(
                    "{file}: '{expr}': tcpdump {} frames, qof {}",
                    theirs.len(),
                    ours.len()
                ));
            }
            pairs += 1;
            frames_checked += theirs.len();
        }
    }
    eprintln!("{pairs} (file, expression) pairs agree on {frames_checked} accepted frames; {refused} refused by tcpdump");
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
    assert!(pairs > 800, "too few pairs compared: {pairs}");
}

#[test]
fn bad_expressions_and_missing_libpcap_are_one_clear_line() {
    let e = Filter::new("tcp port")
        .err()
        .expect("a syntax error")
        .to_string();
    assert!(e.starts_with("--filter 'tcp port': "), "{e}");
    let e = Filter::with_library_names("tcp", &["libpcap-not-installed.so.9"])
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("needs libpcap") && !e.contains('\n'), "{e}");
}
