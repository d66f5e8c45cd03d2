//! Arbitrary bytes as a capture of Ethernet frames through the meter with every plugin on,
//! then through the IPFIX encoder and the JSON printer. Each frame is a 3-byte header (time
//! step in ms, length) and that many bytes. Nothing may panic; every packet metered is in
//! exactly one record.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qof::capture::linktype;
use qof::decode::{decode_with_details, DecodeConfig};
use qof::export::{JsonSink, RecordSink};
use qof::ipfix::{Encoder, TemplateSpec, MAX_FILE_MESSAGE};
use qof::meter::{Lookahead, Meter, MeterConfig};
use qof::plugins::{build, PluginSpec, REGISTRY};
use qof::time::Timestamp;

fuzz_target!(|input: &[u8]| {
    let named: Vec<PluginSpec> = REGISTRY
        .iter()
        .map(|s| PluginSpec::defaults(s.kind))
        .collect();
    let Ok((spec, plugins, needs)) = build(&named, &TemplateSpec::qof_default()) else {
        return;
    };
    let cfg = DecodeConfig {
        gre_decap: true,
        tcp_options: true,
        headers: needs.headers,
        ..DecodeConfig::default()
    };
    let mcfg = MeterConfig {
        idle_timeout_ms: 2_000,
        active_timeout_ms: 5_000,
        max_flows: 64,
        ..MeterConfig::default()
    };
    let mut meter = Lookahead::new(Meter::with_plugins(mcfg, plugins));
    let mut enc = Encoder::new(spec.clone(), 1, MAX_FILE_MESSAGE, false);
    let mut json = JsonSink::new(spec, false, Vec::new());
    let mut ipfix = Vec::new();
    let (mut rest, mut ms, mut metered, mut counted) = (input, 1_000_000u64, 0u64, 0u64);
    let mut drain = |meter: &mut Lookahead, counted: &mut u64| {
        while let Some(rec) = meter.poll_record() {
            *counted += rec.fwd.packets + rec.rev.packets;
            enc.encode_flow(&rec, 0, &mut ipfix).unwrap();
            json.write_flow(&rec).unwrap();
        }
    };
    while let Some((head, tail)) = rest.split_first_chunk::<3>() {
        let len = usize::from(u16::from_le_bytes([head[1], head[2]])).min(tail.len());
        let (frame, next) = tail.split_at(len);
        rest = next;
        ms += u64::from(head[0]) * 37;
        let (pkt, details) = meter.next_packet_with_details();
        if decode_with_details(linktype::ETHERNET, frame, &cfg, pkt, details).is_ok() {
            metered += 1;
            meter.push(Timestamp::from_millis(ms), frame);
        }
        drain(&mut meter, &mut counted);
    }
    meter.flush();
    drain(&mut meter, &mut counted);
    let expired = meter.meter().stats().expired_fragments;
    assert_eq!(counted + expired, metered);
});
