//! Decoder tests on literal frames; etherparse (a decoder we did not write) is the oracle for
//! the fields both report.

use super::*;
use crate::capture::linktype as lt;
use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};

fn cfg() -> DecodeConfig {
    DecodeConfig {
        tcp_options: true,
        ..DecodeConfig::default()
    }
}

fn dec(linktype: u32, f: &[u8]) -> Result<Packet, Ignore> {
    let mut p = Packet::default();
    decode(linktype, f, &cfg(), &mut p).map(|()| p)
}

/// [`dec`] with the details, which must not change the packet.
fn dec_details(linktype: u32, f: &[u8]) -> Result<(Packet, Details), Ignore> {
    let (mut p, mut d) = (Packet::default(), Details::default());
    let r = decode_with_details(linktype, f, &cfg(), &mut p, &mut d).map(|()| (p, d));
    if let (Ok((p, _)), Ok(lean)) = (&r, dec(linktype, f)) {
        assert_eq!(
            format!("{p:?}"),
            format!("{lean:?}"),
            "details changed the packet"
        );
    }
    r
}

/// Frames built with etherparse's own builder, of many shapes.
fn built_frames() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    let payloads: [&[u8]; 3] = [&[], &[1, 2, 3, 4, 5], &[7; 1400]];
    for payload in payloads {
        let b = PacketBuilder::ethernet2([1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12])
            .ipv4([192, 168, 1, 1], [10, 0, 0, 9], 33)
            .tcp(40000, 443, 0x1234_5678, 4096)
            .syn()
            .ack(99)
            .options(&[
                etherparse::TcpOptionElement::MaximumSegmentSize(1460),
                etherparse::TcpOptionElement::WindowScale(7),
            ])
            .unwrap();
        let mut f = Vec::new();
        b.write(&mut f, payload).unwrap();
        v.push(f);
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .single_vlan(0x123.try_into().unwrap())
            .ipv6([0x20; 16], [0xfe; 16], 7)
            .udp(5353, 53);
        let mut f = Vec::new();
        b.write(&mut f, payload).unwrap();
        v.push(f);
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([1, 1, 1, 1], [2, 2, 2, 2], 64)
            .icmpv4_echo_request(7, 9);
        let mut f = Vec::new();
        b.write(&mut f, payload).unwrap();
        v.push(f);
    }
    v
}

#[test]
fn agrees_with_etherparse_on_built_frames() {
    for f in built_frames() {
        let (ours, details) = dec_details(lt::ETHERNET, &f).unwrap();
        let theirs = SlicedPacket::from_ethernet(&f).unwrap();
        match theirs.net.clone().unwrap() {
            NetSlice::Ipv4(ip) => {
                let h = ip.header();
                assert_eq!(ours.key.src_addr().to_string(), h.source_addr().to_string());
                assert_eq!(
                    ours.key.dst_addr().to_string(),
                    h.destination_addr().to_string()
                );
                assert_eq!(ours.ip_len, u32::from(h.total_len()));
                assert_eq!(ours.ttl, h.ttl());
                assert_eq!(ours.key.proto, h.protocol().0);
            }
            NetSlice::Ipv6(ip) => {
                let h = ip.header();
                assert_eq!(ours.key.src_addr().to_string(), h.source_addr().to_string());
                assert_eq!(ours.ip_len, u32::from(h.payload_length()) + 40);
                assert_eq!(ours.ttl, h.hop_limit());
            }
            _ => panic!("not IP"),
        }
        if let Some(vlan) = theirs.vlan() {
            let inner = match vlan.to_header() {
                etherparse::VlanHeader::Single(h) => h.vlan_id.value(),
                etherparse::VlanHeader::Double(d) => d.inner.vlan_id.value(),
            };
            assert_eq!(ours.key.vlan, inner);
        }
        match theirs.transport.unwrap() {
            TransportSlice::Tcp(t) => {
                let tcp = ours.tcp.unwrap();
                assert_eq!(
                    (ours.key.src_port, ours.key.dst_port),
                    (t.source_port(), t.destination_port())
                );
                assert_eq!(
                    (tcp.seq, tcp.ack, tcp.window),
                    (
                        t.sequence_number(),
                        t.acknowledgment_number(),
                        t.window_size()
                    )
                );
                assert_eq!(tcp.flags & 0x12, 0x12);
                assert_eq!(tcp.options.mss, Some(1460));
                assert_eq!(tcp.options.window_scale, Some(7));
                assert_eq!(ours.payload_len as usize, t.payload().len());
                assert_eq!(details.payload_off as usize, offset_in(&f, t.payload()));
                // MSS (2), window scale (3) and the end-of-list padding (0), as the
                // tcpOptions bitmap lays them out.
                assert_eq!(details.tcp_option_kinds, 1 << 63 | 1 << 61 | 1 << 60);
                assert_eq!(details.ethertype, 0x0800);
            }
            TransportSlice::Udp(u) => {
                assert_eq!(
                    (ours.key.src_port, ours.key.dst_port),
                    (u.source_port(), u.destination_port())
                );
                assert_eq!(ours.payload_len as usize, u.payload().len());
                assert_eq!(details.payload_off as usize, offset_in(&f, u.payload()));
                assert_eq!(details.vlan_tags, 1);
                assert_eq!(details.vlan_tci[0] & 0x0fff, ours.key.vlan);
                assert_eq!(details.ethertype, 0x86dd);
                assert_eq!(details.tos, 0);
            }
            TransportSlice::Icmpv4(i) => {
                assert_eq!(
                    ours.key.dst_port,
                    u16::from(i.type_u8()) << 8 | u16::from(i.code_u8())
                );
                assert_eq!(ours.key.src_port, 0);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Where `part`, a slice of `frame`, starts in it.
fn offset_in(frame: &[u8], part: &[u8]) -> usize {
    part.as_ptr() as usize - frame.as_ptr() as usize
}

/// An IP packet inside GRE is decoded in the outer one's place, its payload offset counted
/// from the start of the whole frame; the outer link layer's facts stay.
#[test]
fn gre_inner_packet_replaces_the_outer_one_with_frame_offsets() {
    let mut inner = Vec::new();
    PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 9)
        .udp(1000, 53)
        .write(&mut inner, &[0xab; 12])
        .unwrap();
    let mut gre = vec![0, 0, 0x08, 0x00];
    gre.extend_from_slice(&inner);
    let outer = PacketBuilder::ethernet2([1; 6], [2; 6])
        .single_vlan(0x42.try_into().unwrap())
        .ip(etherparse::IpHeaders::Ipv4(
            etherparse::Ipv4Header::new(
                gre.len() as u16,
                64,
                etherparse::IpNumber(47),
                [192, 0, 2, 1],
                [192, 0, 2, 2],
            )
            .unwrap(),
            Default::default(),
        ));
    let mut f = Vec::new();
    outer.write(&mut f, etherparse::IpNumber(47), &gre).unwrap();
    let cfg = DecodeConfig {
        gre_decap: true,
        ..cfg()
    };
    let (mut p, mut d) = (Packet::default(), Details::default());
    decode_with_details(lt::ETHERNET, &f, &cfg, &mut p, &mut d).unwrap();
    assert_eq!(p.key.src_addr().to_string(), "10.0.0.1");
    assert_eq!((p.key.dst_port, p.key.vlan, p.ttl), (53, 0x42, 9));
    assert_eq!(p.payload_len, 12);
    assert_eq!(&f[d.payload_off as usize..], &[0xab; 12]);
    assert_eq!((d.vlan_tags, p.src_mac, p.dst_mac), (1, [1; 6], [2; 6]));
}

/// IPv4 options, IPv6 extension headers and the flags octet are read into the summary.
#[test]
fn header_facts_ipv4_options_ipv6_extensions_flags_tos() {
    // IPv4 with DF, ToS 0xb8 (EF, not ECT), and options NOP, RR (7), EOOL.
    let mut ip = vec![
        0x48, 0xb8, 0, 40, 0, 1, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    ip.extend_from_slice(&[1, 7, 7, 4, 0, 0, 0, 0, 0, 0, 0, 0]);
    ip.extend_from_slice(&[0, 1, 0, 2, 0, 8, 0, 0]);
    let cfg = DecodeConfig {
        headers: true,
        ..cfg()
    };
    let (mut p, mut d) = (Packet::default(), Details::default());
    decode_with_details(lt::RAW, &ip, &cfg, &mut p, &mut d).unwrap();
    assert_eq!((d.tos, p.ecn, d.ip_flags), (0xb8, 0, 0x2));
    assert_eq!(d.ip_options, 1 << 1 | 1 << 7 | 1 << 0);
    assert_eq!(d.payload_off, 40);
    // IPv6: hop-by-hop, then destination options, then UDP; traffic class 0x2e.
    let mut v6 = vec![0x62, 0xe0, 0, 0, 0, 24, 0, 64];
    v6.extend_from_slice(&[0x20; 16]);
    v6.extend_from_slice(&[0xfe; 16]);
    v6.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]);
    v6.extend_from_slice(&[17, 0, 1, 4, 0, 0, 0, 0]);
    v6.extend_from_slice(&[0, 1, 0, 2, 0, 8, 0, 0]);
    decode_with_details(lt::RAW, &v6, &cfg, &mut p, &mut d).unwrap();
    assert_eq!((d.tos, p.ecn, d.ip_flags), (0x2e, 2, 0));
    assert_eq!(d.ip_options, ip6_ext::HOP_BY_HOP | ip6_ext::DEST_OPTS);
    assert_eq!((p.key.proto, d.payload_off), (17, 64));
}

/// An IPv4 option counts only when its whole type is one IANA registers: 0x87 has RR's
/// number (7) with the copied bit set, which no option has.
#[test]
fn unregistered_ipv4_option_types_set_no_bit() {
    // Options: 0x87 (len 3), TS (68, len 4, pointer 5, overflow/flags 0), EOOL; 8 octets.
    let mut ip = vec![
        0x47, 0, 0, 36, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    ip.extend_from_slice(&[0x87, 3, 4, 68, 4, 5, 0, 0]);
    ip.extend_from_slice(&[0, 1, 0, 2, 0, 8, 0, 0]);
    let cfg = DecodeConfig {
        headers: true,
        ..cfg()
    };
    let (mut p, mut d) = (Packet::default(), Details::default());
    decode_with_details(lt::RAW, &ip, &cfg, &mut p, &mut d).unwrap();
    assert_eq!(d.ip_options, 1 << 4 | 1 << 0);
}

#[test]
fn every_truncation_is_an_ignore_or_a_partial_decode_never_a_panic() {
    for f in built_frames() {
        for cut in 0..f.len() {
            let r = dec_details(lt::ETHERNET, &f[..cut]);
            if let Ok((p, d)) = r {
                // Whatever was decoded comes from bytes that exist.
                assert!(p.ip_header_len as usize <= cut);
                assert!(d.payload_off as usize <= f.len());
            }
        }
    }
}

#[test]
fn ipv4_fragments_and_padding() {
    // IPv4 UDP first fragment (MF set), 28-byte IP packet padded to a 60-byte Ethernet frame.
    let mut f = vec![0u8; 12];
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&[
        0x45, 0x02, 0x00, 28, 0x12, 0x34, 0x20, 0x00, 9, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ]);
    f.extend_from_slice(&[0x13, 0x88, 0x00, 0x35, 0x00, 0x08, 0, 0]);
    f.resize(60, 0xee);
    let p = dec(lt::ETHERNET, &f).unwrap();
    assert_eq!(p.ip_len, 28, "Ethernet padding is not counted");
    assert_eq!(p.ecn, 2);
    assert_eq!(
        p.frag,
        Some(FragInfo {
            id: 0x1234,
            offset: 0,
            more: true
        })
    );
    assert_eq!((p.key.src_port, p.key.dst_port), (5000, 53));
    // A later fragment: offset 185*8, no ports.
    f[14 + 6] = 0x00;
    f[14 + 7] = 185;
    let p = dec(lt::ETHERNET, &f).unwrap();
    assert_eq!(
        p.frag,
        Some(FragInfo {
            id: 0x1234,
            offset: 1480,
            more: false
        })
    );
    assert!(!p.has_l4);
    assert_eq!((p.key.src_port, p.key.dst_port), (0, 0));
}

#[test]
fn ipv6_fragment_flag_is_read_as_sent() {
    // QoF read the IPv6 M flag with a bitwise OR, so every fragment looked like "more".
    let mut f = vec![0x60, 0, 0, 0, 0, 16, 44, 64];
    f.extend_from_slice(&[0x20; 16]);
    f.extend_from_slice(&[0xfe; 16]);
    // Fragment header: next header UDP; offset field 0x05c8 (the 13-bit count of 8-octet units
    // sits above 3 flag bits, so the field masked with 0xfff8 is the offset in octets); M = 0.
    f.extend_from_slice(&[17, 0, 0x05, 0xc8, 0, 0, 0, 42]);
    f.extend_from_slice(&[0; 8]);
    let p = dec(lt::RAW, &f).unwrap();
    assert_eq!(
        p.frag,
        Some(FragInfo {
            id: 42,
            offset: 0x5c8,
            more: false
        })
    );
    assert_eq!(p.key.proto, 17);
    assert_eq!(p.ip_header_len, 48);
    f[40 + 3] |= 1; // M = 1
    assert!(dec(lt::RAW, &f).unwrap().frag.unwrap().more);
}

#[test]
fn qinq_keeps_the_inner_tag_and_mpls_and_pppoe_reach_ip() {
    let ip = [
        0x45, 0, 0, 20, 0, 0, 0, 0, 64, 47, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8,
    ];
    let mut f = vec![0u8; 12];
    f.extend_from_slice(&[0x88, 0xa8, 0x00, 0x64, 0x81, 0x00, 0x00, 0xc8, 0x08, 0x00]);
    f.extend_from_slice(&ip);
    assert_eq!(dec(lt::ETHERNET, &f).unwrap().key.vlan, 200);

    let mut f = vec![0u8; 12];
    f.extend_from_slice(&[0x88, 0x47, 0x00, 0x01, 0x00, 0x40, 0x00, 0x02, 0x01, 0x40]);
    f.extend_from_slice(&ip);
    assert_eq!(dec(lt::ETHERNET, &f).unwrap().key.proto, 47);

    let mut f = vec![0u8; 12];
    f.extend_from_slice(&[0x88, 0x64, 0x11, 0x00, 0x00, 0x01, 0x00, 22, 0x00, 0x21]);
    f.extend_from_slice(&ip);
    assert_eq!(dec(lt::ETHERNET, &f).unwrap().ip_len, 20);

    let mut f = vec![0u8; 12];
    f.extend_from_slice(&[0x08, 0x06]);
    f.extend_from_slice(&[0; 28]);
    assert_eq!(dec(lt::ETHERNET, &f).unwrap_err(), Ignore::NotIp);
}

#[test]
fn link_types_without_ethernet() {
    let ip = [
        0x45, 0, 0, 20, 0, 0, 0, 0, 64, 1, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8,
    ];
    let with = |head: &[u8]| {
        let mut f = head.to_vec();
        f.extend_from_slice(&ip);
        f
    };
    assert!(
        dec(lt::NULL, &with(&[2, 0, 0, 0])).is_ok(),
        "little-endian AF_INET"
    );
    assert!(
        dec(lt::NULL, &with(&[0, 0, 0, 2])).is_ok(),
        "big-endian AF_INET"
    );
    assert!(dec(lt::LOOP, &with(&[0, 0, 0, 2])).is_ok());
    assert!(dec(lt::PPP, &with(&[0xff, 0x03, 0x00, 0x21])).is_ok());
    assert!(dec(lt::PPP, &with(&[0x00, 0x21])).is_ok());
    assert!(
        dec(lt::PPP, &with(&[0x21])).is_ok(),
        "protocol-field compression"
    );
    assert!(dec(lt::C_HDLC, &with(&[0x0f, 0x00, 0x08, 0x00])).is_ok());
    let mut sll = vec![0u8; 14];
    sll.extend_from_slice(&[0x08, 0x00]);
    assert!(dec(lt::LINUX_SLL, &with(&sll)).is_ok());
    let mut sll2 = vec![0x08, 0x00];
    sll2.resize(20, 0);
    assert!(dec(lt::LINUX_SLL2, &with(&sll2)).is_ok());
    assert!(dec(lt::RAW, &ip).is_ok());
    assert!(dec(lt::IPV4, &ip).is_ok());
    assert_eq!(dec(lt::IPV6, &ip).unwrap_err(), Ignore::MalformedIp);
    assert_eq!(dec(147, &ip).unwrap_err(), Ignore::UnsupportedLinkType);
}

#[test]
fn malformed_tcp_options_keep_the_packet() {
    let mut f = vec![
        0x45, 0, 0, 44, 0, 0, 0, 0, 64, 6, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8,
    ];
    // TCP with data offset 6 (4 option bytes): MSS option claiming length 9.
    f.extend_from_slice(&[
        0, 80, 1, 187, 0, 0, 0, 1, 0, 0, 0, 0, 0x60, 0x02, 0xff, 0xff, 0, 0, 0, 0,
    ]);
    f.extend_from_slice(&[2, 9, 5, 0xb4]);
    let p = dec(lt::RAW, &f).unwrap();
    let tcp = p.tcp.unwrap();
    assert!(tcp.options.malformed);
    assert_eq!(tcp.flags, 0x02);
    assert_eq!((p.key.src_port, p.key.dst_port), (80, 443));
}

#[test]
fn gre_is_decapsulated_only_when_asked() {
    let inner = [
        0x45, 0, 0, 28, 0, 0, 0, 0, 9, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 0, 1, 0, 2, 0, 8, 0, 0,
    ];
    let mut f = vec![
        0x45, 0, 0, 0, 0, 0, 0, 0, 64, 47, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2,
    ];
    f.extend_from_slice(&[0x20, 0x00, 0x08, 0x00, 0, 0, 0, 7]); // key present
    f.extend_from_slice(&inner);
    let total = f.len() as u16;
    f[2..4].copy_from_slice(&total.to_be_bytes());
    let p = dec(lt::RAW, &f).unwrap();
    assert_eq!((p.key.proto, p.ip_len), (47, u32::from(total)));
    let mut p = Packet::default();
    decode(
        lt::RAW,
        &f,
        &DecodeConfig {
            gre_decap: true,
            ..cfg()
        },
        &mut p,
    )
    .unwrap();
    assert_eq!((p.key.proto, p.ip_len, p.key.dst_port), (17, 28, 2));
    assert_eq!(p.key.src_addr().to_string(), "10.0.0.1");
    f[20 + 1] = 1; // version 1
    let mut p = Packet::default();
    assert_eq!(
        decode(
            lt::RAW,
            &f,
            &DecodeConfig {
                gre_decap: true,
                ..cfg()
            },
            &mut p
        ),
        Err(Ignore::BadGre)
    );
}

#[test]
fn family_filter() {
    let ip = [
        0x45, 0, 0, 20, 0, 0, 0, 0, 64, 1, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8,
    ];
    let mut p = Packet::default();
    let v6_only = DecodeConfig {
        ipv4: false,
        ..cfg()
    };
    assert_eq!(
        decode(lt::RAW, &ip, &v6_only, &mut p),
        Err(Ignore::FilteredFamily)
    );
}
