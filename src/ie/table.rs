//! The element table. Sources: the IANA IPFIX registry, QoF's manual page and its
//! `qof.iespec`/`yafcore.c` (lengths as QoF encodes them), YAF's CERT elements.

use super::Value as V;
use super::{pen, Applies, Features as F, Getter, IeType, IeType::*, InfoElement, PluginKind};
use crate::meter::{DirStats, FlowRecord};
use crate::time::Timestamp;

const fn ie(name: &'static str, pen: u32, id: u16, ty: IeType, len: u16) -> InfoElement {
    InfoElement {
        name,
        pen,
        id,
        ty,
        len,
        reversible: false,
        counter: false,
        applies: Applies::All,
        enables: F::NONE,
        value: None,
        list: false,
        ip_version: 0,
    }
}

const fn iana(name: &'static str, id: u16, ty: IeType, len: u16) -> InfoElement {
    ie(name, pen::IANA, id, ty, len)
}

/// A CESNET element (ipfixprobe's plugins), named as CESNET's collector registry names it.
const fn cesnet(name: &'static str, id: u16, ty: IeType, len: u16) -> InfoElement {
    ie(name, pen::CESNET, id, ty, len)
}

impl InfoElement {
    const fn rev(self) -> Self {
        InfoElement {
            reversible: true,
            ..self
        }
    }
    const fn ctr(self) -> Self {
        InfoElement {
            counter: true,
            ..self
        }
    }
    const fn on(self, applies: Applies) -> Self {
        InfoElement { applies, ..self }
    }
    const fn en(self, f: F) -> Self {
        InfoElement {
            enables: self.enables.with(f),
            ..self
        }
    }
    const fn get(self, f: fn(&FlowRecord, &DirStats) -> V<'static>) -> Self {
        InfoElement {
            value: Some(Getter::Other(f)),
            ..self
        }
    }
    /// A per-direction unsigned value (see [`DirVal`]).
    const fn dir(self, v: DirVal) -> Self {
        InfoElement {
            value: Some(Getter::Dir(v)),
            ..self
        }
    }
    /// Measured by plugin `k` (its value is read from the record's extensions).
    const fn by(self, k: PluginKind) -> Self {
        InfoElement {
            applies: Applies::Plugin(k),
            value: Some(Getter::Ext),
            ..self
        }
    }
    /// Exported as a basicList of this element, by plugin `k`.
    const fn list_by(self, k: PluginKind) -> Self {
        InfoElement {
            list: true,
            ..self.by(k)
        }
    }
    /// Carried only by records of IPv4 (`4`) or IPv6 (`6`) flows (plugin elements).
    const fn only_ip(self, version: u8) -> Self {
        InfoElement {
            ip_version: version,
            ..self
        }
    }
    /// An unsigned integer value (read without building a [`V`]: the encoder's fast path).
    const fn uint(self, f: fn(&FlowRecord, &DirStats) -> u64) -> Self {
        InfoElement {
            value: Some(Getter::Unsigned(f)),
            ..self
        }
    }
}

fn v4(a: &[u8; 16]) -> V<'static> {
    V::Ipv4([a[0], a[1], a[2], a[3]])
}

/// IPv6 address elements carry IPv4 flows as ::ffff:a.b.c.d when the template has no IPv4
/// address elements (QoF's behaviour).
fn v6(r: &FlowRecord, a: &[u8; 16]) -> V<'static> {
    if r.key.is_ipv4() {
        V::Ipv6(
            std::net::Ipv4Addr::new(a[0], a[1], a[2], a[3])
                .to_ipv6_mapped()
                .octets(),
        )
    } else {
        V::Ipv6(*a)
    }
}

/// Defines [`DirVal`] and its readers from one list (of values every flow has, then of TCP
/// measurements, then of the TCP causes), so the value of each per-direction element is
/// written once.
macro_rules! dir_values {
    (
        basic { $($bname:ident: |$bd:ident| $be:expr,)* }
        tcp { $($tname:ident: |$td:ident| $te:expr,)* }
        causes { $($cname:ident: |$cd:ident| $ce:expr,)* }
    ) => {
        /// A per-direction unsigned element value. The encoder reads all of a record's at once,
        /// in straight-line code ([`dir_values`]), and then takes each field's with a load
        /// instead of a call; everything else reads one ([`DirVal::of`]).
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum DirVal {
            $($bname,)*
            $($tname,)*
            $($cname,)*
        }

        /// How many [`DirVal`]s there are.
        pub const DIR_VALS: usize = DirVal::ALL.len();

        /// Every [`DirVal`] of `d` into `all`, indexed by `DirVal as usize`; the TCP
        /// measurements only when `tcp`, and of them the causes only when `causes` too (left
        /// as they were otherwise: a template without them pays nothing for them).
        #[inline]
        pub fn dir_values(d: &DirStats, tcp: bool, causes: bool, all: &mut [u64; DIR_VALS]) {
            $(all[DirVal::$bname as usize] = {
                let $bd = d;
                $be
            };)*
            if tcp {
                $(all[DirVal::$tname as usize] = {
                    let $td = d;
                    $te
                };)*
                if causes {
                    $(all[DirVal::$cname as usize] = {
                        let $cd = d;
                        $ce
                    };)*
                }
            }
        }

        impl DirVal {
            /// Every value, in index order.
            pub const ALL: &[DirVal] = &[
                $(DirVal::$bname,)* $(DirVal::$tname,)* $(DirVal::$cname,)*
            ];

            /// A TCP measurement, causes included (zero in a record that has none).
            pub fn is_tcp(self) -> bool {
                matches!(self, $(DirVal::$tname)|* | $(DirVal::$cname)|*)
            }

            /// One of the causes (why segments were sent again, reordering).
            pub fn is_cause(self) -> bool {
                matches!(self, $(DirVal::$cname)|*)
            }

            /// This value of `d`.
            pub fn of(self, d: &DirStats) -> u64 {
                match self {
                    $(DirVal::$bname => {
                        let $bd = d;
                        $be
                    })*
                    $(DirVal::$tname => {
                        let $td = d;
                        $te
                    })*
                    $(DirVal::$cname => {
                        let $cd = d;
                        $ce
                    })*
                }
            }
        }
    };
}

dir_values! {
    basic {
        OctetDeltaCount: |d| d.octets,
        PacketDeltaCount: |d| d.packets,
        TcpControlBits: |d| (d.initial_tcp_flags | d.union_tcp_flags).into(),
        MinimumTTL: |d| d.min_ttl.into(),
        MaximumTTL: |d| d.max_ttl.into(),
        TransportOctetDeltaCount: |d| d.transport_octets,
        TransportPacketDeltaCount: |d| d.transport_packets,
        InitialTCPFlags: |d| d.initial_tcp_flags.into(),
        UnionTCPFlags: |d| d.union_tcp_flags.into(),
    }
    tcp {
        TcpSequenceNumber: |d| d.tcp.seq.isn.into(),
        TcpSequenceCount: |d| d.tcp.seq.octets,
        TcpRetransmitCount: |d| d.tcp.seq.retransmits,
        MaxTcpSequenceJump: |d| d.tcp.seq.max_jump.into(),
        DeclaredTcpMss: |d| d.tcp.declared_mss.into(),
        ObservedTcpMss: |d| d.tcp.observed_mss.into(),
        TcpSequenceLossCount: |d| d.tcp.seq.lost,
        TcpSequenceJumpCount: |d| d.tcp.seq.jumps,
        TcpLossEventCount: |d| d.tcp.seq.loss_events,
        QofTcpCharacteristics: |d| d.tcp.characteristics.into(),
        TcpDupAckCount: |d| d.tcp.dup_acks,
        TcpSelAckCount: |d| d.tcp.sel_acks,
        MinTcpRwin: |d| d.tcp.rwin_min.into(),
        MeanTcpRwin: |d| d.tcp.rwin_mean.into(),
        MaxTcpRwin: |d| d.tcp.rwin_max.into(),
        TcpReceiverStallCount: |d| d.tcp.stalls.into(),
        TcpTimestampFrequency: |d| d.tcp.ts_hz.into(),
        MinTcpIOTMilliseconds: |d| rtt_ms(d.tcp.iat_min_us),
        MaxTcpIOTMilliseconds: |d| rtt_ms(d.tcp.iat_max_us),
    }
    causes {
        TcpFastRetransmitCount: |d| d.tcp.fast_retransmits.into(),
        TcpTimeoutRetransmitCount: |d| d.tcp.timeout_retransmits.into(),
        TcpSpuriousRetransmitCount: |d| d.tcp.spurious_retransmits.into(),
        TcpReorderCount: |d| d.tcp.reorders.into(),
    }
}

use Applies::{Ipv4 as A4, Ipv6 as A6, Stats as AS, Tcp as AT, TcpRtt as ATR, TcpTs as ATS};

/// Chirp needs inter-segment times and the timestamp clock.
const CHIRP: F = F::SEQ.with(F::IAT).with(F::TS).with(F::TCPOPT);

/// Causes need sequence tracking, the flow's RTT, and TSvals and SACK blocks.
const CAUSES: F = F::SEQ.with(F::RTT).with(F::TCPOPT).with(F::CAUSE);

/// RTT under load: every RTT sample (timestamp echoes included).
const RTT_LOAD: F = F::RTT.with(F::TCPOPT).with(F::RTTLOAD);

/// Microseconds to whole milliseconds, rounded to nearest.
fn rtt_ms(us: u32) -> u64 {
    (u64::from(us) + 500) / 1000
}

/// Every element qof can name. Those with a getter can be exported; the others are decoded
/// and printed by name (by `qofdump`) but not measured by this version.
pub static TABLE: &[InfoElement] = &[
    // --- IANA: counters and keys qof measures ---
    iana("octetDeltaCount", 1, Unsigned64, 8)
        .rev()
        .ctr()
        .dir(DirVal::OctetDeltaCount),
    iana("packetDeltaCount", 2, Unsigned64, 8)
        .rev()
        .ctr()
        .dir(DirVal::PacketDeltaCount),
    iana("deltaFlowCount", 3, Unsigned64, 8),
    iana("protocolIdentifier", 4, Unsigned8, 1).uint(|r, _| r.key.proto.into()),
    iana("tcpControlBits", 6, Unsigned16, 1)
        .rev()
        .on(AT)
        .dir(DirVal::TcpControlBits),
    iana("sourceTransportPort", 7, Unsigned16, 2).uint(|r, _| r.key.src_port.into()),
    iana("sourceIPv4Address", 8, Ipv4Address, 4)
        .on(A4)
        .en(F::IPV4)
        .get(|r, _| v4(&r.key.src)),
    iana("sourceIPv4PrefixLength", 9, Unsigned8, 1),
    iana("ingressInterface", 10, Unsigned32, 4).uint(|r, _| r.key.ingress.into()),
    iana("destinationTransportPort", 11, Unsigned16, 2).uint(|r, _| r.key.dst_port.into()),
    iana("destinationIPv4Address", 12, Ipv4Address, 4)
        .on(A4)
        .en(F::IPV4)
        .get(|r, _| v4(&r.key.dst)),
    iana("destinationIPv4PrefixLength", 13, Unsigned8, 1),
    iana("egressInterface", 14, Unsigned32, 4),
    iana("ipNextHopIPv4Address", 15, Ipv4Address, 4),
    iana("bgpSourceAsNumber", 16, Unsigned32, 4),
    iana("bgpDestinationAsNumber", 17, Unsigned32, 4),
    iana("bgpNextHopIPv4Address", 18, Ipv4Address, 4),
    iana("postMCastPacketDeltaCount", 19, Unsigned64, 8),
    iana("postMCastOctetDeltaCount", 20, Unsigned64, 8),
    iana("flowEndSysUpTime", 21, Unsigned32, 4),
    iana("flowStartSysUpTime", 22, Unsigned32, 4),
    iana("postOctetDeltaCount", 23, Unsigned64, 8),
    iana("postPacketDeltaCount", 24, Unsigned64, 8),
    iana("minimumIpTotalLength", 25, Unsigned64, 8),
    iana("maximumIpTotalLength", 26, Unsigned64, 8),
    iana("sourceIPv6Address", 27, Ipv6Address, 16)
        .on(A6)
        .en(F::IPV6)
        .get(|r, _| v6(r, &r.key.src)),
    iana("destinationIPv6Address", 28, Ipv6Address, 16)
        .on(A6)
        .en(F::IPV6)
        .get(|r, _| v6(r, &r.key.dst)),
    iana("sourceIPv6PrefixLength", 29, Unsigned8, 1),
    iana("destinationIPv6PrefixLength", 30, Unsigned8, 1),
    iana("flowLabelIPv6", 31, Unsigned32, 4),
    iana("igmpType", 33, Unsigned8, 1),
    iana("samplingInterval", 34, Unsigned32, 4),
    iana("samplingAlgorithm", 35, Unsigned8, 1),
    iana("flowActiveTimeout", 36, Unsigned16, 2),
    iana("flowIdleTimeout", 37, Unsigned16, 2),
    iana("engineType", 38, Unsigned8, 1),
    iana("engineId", 39, Unsigned8, 1),
    iana("exportedOctetTotalCount", 40, Unsigned64, 8),
    iana("exportedMessageTotalCount", 41, Unsigned64, 8),
    iana("exportedFlowRecordTotalCount", 42, Unsigned64, 8).on(AS),
    iana("sourceIPv4Prefix", 44, Ipv4Address, 4),
    iana("destinationIPv4Prefix", 45, Ipv4Address, 4),
    iana("mplsTopLabelType", 46, Unsigned8, 1),
    iana("mplsTopLabelIPv4Address", 47, Ipv4Address, 4),
    iana("samplerId", 48, Unsigned8, 1),
    iana("samplerMode", 49, Unsigned8, 1),
    iana("samplerRandomInterval", 50, Unsigned32, 4),
    iana("minimumTTL", 52, Unsigned8, 1)
        .rev()
        .dir(DirVal::MinimumTTL),
    iana("maximumTTL", 53, Unsigned8, 1)
        .rev()
        .dir(DirVal::MaximumTTL),
    iana("fragmentIdentification", 54, Unsigned32, 4),
    iana("postIpClassOfService", 55, Unsigned8, 1),
    iana("sourceMacAddress", 56, MacAddress, 6)
        .en(F::MAC)
        .get(|r, _| V::Mac(r.src_mac)),
    iana("postDestinationMacAddress", 57, MacAddress, 6),
    iana("vlanId", 58, Unsigned16, 2).uint(|r, _| r.key.vlan.into()),
    iana("postVlanId", 59, Unsigned16, 2),
    iana("ipVersion", 60, Unsigned8, 1).uint(|r, _| r.key.ip_version.into()),
    iana("flowDirection", 61, Unsigned8, 1),
    iana("ipNextHopIPv6Address", 62, Ipv6Address, 16),
    iana("bgpNextHopIPv6Address", 63, Ipv6Address, 16),
    iana("mplsLabelStackSection2", 71, OctetArray, 3),
    iana("mplsLabelStackSection3", 72, OctetArray, 3),
    iana("destinationMacAddress", 80, MacAddress, 6)
        .en(F::MAC)
        .get(|r, _| V::Mac(r.dst_mac)),
    iana("postSourceMacAddress", 81, MacAddress, 6),
    iana("interfaceName", 82, String, 0),
    iana("interfaceDescription", 83, String, 0),
    iana("samplerName", 84, String, 0),
    iana("octetTotalCount", 85, Unsigned64, 8),
    iana("packetTotalCount", 86, Unsigned64, 8).on(AS),
    iana("fragmentOffset", 88, Unsigned16, 2),
    iana("forwardingStatus", 89, Unsigned32, 4),
    iana("mplsVpnRouteDistinguisher", 90, OctetArray, 8),
    iana("applicationDescription", 94, String, 0),
    iana("applicationId", 95, OctetArray, 0),
    iana("applicationName", 96, String, 0),
    iana("postIpDiffServCodePoint", 98, Unsigned8, 1),
    iana("multicastReplicationFactor", 99, Unsigned32, 4),
    iana("exporterIPv4Address", 130, Ipv4Address, 4),
    iana("exporterIPv6Address", 131, Ipv6Address, 16),
    iana("droppedOctetDeltaCount", 132, Unsigned64, 8),
    iana("droppedPacketDeltaCount", 133, Unsigned64, 8),
    iana("droppedOctetTotalCount", 134, Unsigned64, 8),
    iana("droppedPacketTotalCount", 135, Unsigned64, 8).on(AS),
    iana("flowEndReason", 136, Unsigned8, 1).uint(|r, _| r.end_reason.into()),
    iana("commonPropertiesId", 137, Unsigned64, 8),
    iana("observationPointId", 138, Unsigned64, 8),
    iana("mplsTopLabelIPv6Address", 140, Ipv6Address, 16),
    iana("lineCardId", 141, Unsigned32, 4),
    iana("portId", 142, Unsigned32, 4),
    iana("meteringProcessId", 143, Unsigned32, 4),
    iana("exportingProcessId", 144, Unsigned32, 4).on(AS),
    iana("templateId", 145, Unsigned16, 2),
    iana("wlanChannelId", 146, Unsigned8, 1),
    iana("wlanSSID", 147, String, 0),
    iana("flowId", 148, Unsigned64, 8).uint(|r, _| r.flow_id),
    iana("observationDomainId", 149, Unsigned32, 4),
    iana("flowStartSeconds", 150, DateTimeSeconds, 4)
        .get(|r, _| V::Time(Timestamp::from_secs(r.start.secs()))),
    iana("flowEndSeconds", 151, DateTimeSeconds, 4)
        .get(|r, _| V::Time(Timestamp::from_secs(r.end.secs()))),
    iana("flowStartMilliseconds", 152, DateTimeMilliseconds, 8)
        .get(|r, _| V::Time(Timestamp::from_millis(r.start.millis()))),
    iana("flowEndMilliseconds", 153, DateTimeMilliseconds, 8)
        .get(|r, _| V::Time(Timestamp::from_millis(r.end.millis()))),
    iana("flowStartMicroseconds", 154, DateTimeMicroseconds, 8),
    iana("flowEndMicroseconds", 155, DateTimeMicroseconds, 8),
    iana("flowStartNanoseconds", 156, DateTimeNanoseconds, 8),
    iana("flowEndNanoseconds", 157, DateTimeNanoseconds, 8),
    iana("flowStartDeltaMicroseconds", 158, Unsigned32, 4),
    iana("flowEndDeltaMicroseconds", 159, Unsigned32, 4),
    iana("systemInitTimeMilliseconds", 160, DateTimeMilliseconds, 8).on(AS),
    iana("flowDurationMilliseconds", 161, Unsigned32, 4).uint(|r, _| {
        r.end
            .saturating_since(r.start)
            .millis()
            .min(u32::MAX.into())
    }),
    iana("flowDurationMicroseconds", 162, Unsigned32, 4),
    iana("observedFlowTotalCount", 163, Unsigned64, 8),
    iana("ignoredPacketTotalCount", 164, Unsigned64, 8).on(AS),
    iana("ignoredOctetTotalCount", 165, Unsigned64, 8),
    iana("notSentFlowTotalCount", 166, Unsigned64, 8),
    iana("notSentPacketTotalCount", 167, Unsigned64, 8).on(AS),
    iana("notSentOctetTotalCount", 168, Unsigned64, 8),
    iana("destinationIPv6Prefix", 169, Ipv6Address, 16),
    iana("sourceIPv6Prefix", 170, Ipv6Address, 16),
    iana("postOctetTotalCount", 171, Unsigned64, 8),
    iana("postPacketTotalCount", 172, Unsigned64, 8),
    iana("flowKeyIndicator", 173, Unsigned64, 8),
    iana("postMCastPacketTotalCount", 174, Unsigned64, 8),
    iana("postMCastOctetTotalCount", 175, Unsigned64, 8),
    iana("icmpTypeIPv4", 176, Unsigned8, 1),
    iana("icmpCodeIPv4", 177, Unsigned8, 1),
    iana("icmpTypeIPv6", 178, Unsigned8, 1),
    iana("icmpCodeIPv6", 179, Unsigned8, 1),
    iana("udpSourcePort", 180, Unsigned16, 2),
    iana("udpDestinationPort", 181, Unsigned16, 2),
    iana("tcpSourcePort", 182, Unsigned16, 2),
    iana("tcpDestinationPort", 183, Unsigned16, 2),
    iana("tcpSequenceNumber", 184, Unsigned32, 4)
        .rev()
        .on(AT)
        .en(F::SEQ)
        .dir(DirVal::TcpSequenceNumber),
    iana("tcpAcknowledgementNumber", 185, Unsigned32, 4),
    iana("tcpUrgentPointer", 187, Unsigned16, 2),
    iana("tcpHeaderLength", 188, Unsigned8, 1),
    iana("ipHeaderLength", 189, Unsigned8, 1),
    iana("totalLengthIPv4", 190, Unsigned16, 2),
    iana("payloadLengthIPv6", 191, Unsigned16, 2),
    iana("nextHeaderIPv6", 193, Unsigned8, 1),
    iana("mplsPayloadLength", 194, Unsigned32, 4),
    iana("ipDiffServCodePoint", 195, Unsigned8, 1),
    iana("ipPrecedence", 196, Unsigned8, 1),
    iana("octetDeltaSumOfSquares", 198, Unsigned64, 8),
    iana("octetTotalSumOfSquares", 199, Unsigned64, 8),
    iana("mplsLabelStackLength", 201, Unsigned32, 4),
    iana("mplsLabelStackDepth", 202, Unsigned32, 4),
    iana("mplsTopLabelExp", 203, Unsigned8, 1),
    iana("ipPayloadLength", 204, Unsigned32, 4),
    iana("udpMessageLength", 205, Unsigned16, 2),
    iana("isMulticast", 206, Unsigned8, 1),
    iana("ipv4IHL", 207, Unsigned8, 1),
    iana("paddingOctets", 210, OctetArray, 0),
    iana("collectorIPv4Address", 211, Ipv4Address, 4),
    iana("collectorIPv6Address", 212, Ipv6Address, 16),
    iana("exportInterface", 213, Unsigned32, 4),
    iana("exportProtocolVersion", 214, Unsigned8, 1),
    iana("exportTransportProtocol", 215, Unsigned8, 1),
    iana("collectorTransportPort", 216, Unsigned16, 2),
    iana("exporterTransportPort", 217, Unsigned16, 2),
    iana("tcpSynTotalCount", 218, Unsigned64, 8),
    iana("tcpFinTotalCount", 219, Unsigned64, 8),
    iana("tcpRstTotalCount", 220, Unsigned64, 8),
    iana("tcpPshTotalCount", 221, Unsigned64, 8),
    iana("tcpAckTotalCount", 222, Unsigned64, 8),
    iana("tcpUrgTotalCount", 223, Unsigned64, 8),
    iana("ipTotalLength", 224, Unsigned64, 8),
    iana("postNATSourceIPv4Address", 225, Ipv4Address, 4),
    iana("postNATDestinationIPv4Address", 226, Ipv4Address, 4),
    iana("postNAPTSourceTransportPort", 227, Unsigned16, 2),
    iana("postNAPTDestinationTransportPort", 228, Unsigned16, 2),
    iana("natOriginatingAddressRealm", 229, Unsigned8, 1),
    iana("natEvent", 230, Unsigned8, 1),
    iana("initiatorOctets", 231, Unsigned64, 8),
    iana("responderOctets", 232, Unsigned64, 8),
    iana("firewallEvent", 233, Unsigned8, 1),
    iana("ingressVRFID", 234, Unsigned32, 4),
    iana("egressVRFID", 235, Unsigned32, 4),
    iana("VRFname", 236, String, 0),
    iana("postMplsTopLabelExp", 237, Unsigned8, 1),
    iana("tcpWindowScale", 238, Unsigned16, 2),
    iana("biflowDirection", 239, Unsigned8, 1),
    iana("ethernetHeaderLength", 240, Unsigned8, 1),
    iana("ethernetPayloadLength", 241, Unsigned16, 2),
    iana("ethernetTotalLength", 242, Unsigned16, 2),
    iana("ingressPhysicalInterface", 252, Unsigned32, 4),
    iana("egressPhysicalInterface", 253, Unsigned32, 4),
    iana("postDot1qVlanId", 254, Unsigned16, 2),
    iana("postDot1qCustomerVlanId", 255, Unsigned16, 2),
    iana("postIpPrecedence", 257, Unsigned8, 1),
    iana("collectionTimeMilliseconds", 258, DateTimeMilliseconds, 8),
    iana("exportSctpStreamId", 259, Unsigned16, 2),
    iana("maxExportSeconds", 260, DateTimeSeconds, 4),
    iana("maxFlowEndSeconds", 261, DateTimeSeconds, 4),
    iana("messageMD5Checksum", 262, OctetArray, 16),
    iana("messageScope", 263, Unsigned8, 1),
    iana("minExportSeconds", 264, DateTimeSeconds, 4),
    iana("minFlowStartSeconds", 265, DateTimeSeconds, 4),
    iana("opaqueOctets", 266, OctetArray, 0),
    iana("sessionScope", 267, Unsigned8, 1),
    iana("maxFlowEndMicroseconds", 268, DateTimeMicroseconds, 8),
    iana("maxFlowEndMilliseconds", 269, DateTimeMilliseconds, 8),
    iana("maxFlowEndNanoseconds", 270, DateTimeNanoseconds, 8),
    iana("minFlowStartMicroseconds", 271, DateTimeMicroseconds, 8),
    iana("minFlowStartMilliseconds", 272, DateTimeMilliseconds, 8),
    iana("minFlowStartNanoseconds", 273, DateTimeNanoseconds, 8),
    iana("collectorCertificate", 274, OctetArray, 0),
    iana("exporterCertificate", 275, OctetArray, 0),
    iana("dataRecordsReliability", 276, Boolean, 1),
    iana("observationPointType", 277, Unsigned8, 1),
    iana("newConnectionDeltaCount", 278, Unsigned32, 4),
    iana("connectionSumDurationSeconds", 279, Unsigned64, 8),
    iana("connectionTransactionId", 280, Unsigned64, 8),
    iana("postNATSourceIPv6Address", 281, Ipv6Address, 16),
    iana("postNATDestinationIPv6Address", 282, Ipv6Address, 16),
    iana("natPoolId", 283, Unsigned32, 4),
    iana("natPoolName", 284, String, 0),
    iana("anonymizationFlags", 285, Unsigned16, 2),
    iana("anonymizationTechnique", 286, Unsigned16, 2),
    iana("informationElementIndex", 287, Unsigned16, 2),
    iana("p2pTechnology", 288, String, 0),
    iana("tunnelTechnology", 289, String, 0),
    iana("encryptedTechnology", 290, String, 0),
    iana("basicList", 291, BasicList, 0),
    iana("subTemplateList", 292, SubTemplateList, 0),
    iana("subTemplateMultiList", 293, SubTemplateMultiList, 0),
    iana("bgpValidityState", 294, Unsigned8, 1),
    iana("IPSecSPI", 295, Unsigned32, 4),
    iana("greKey", 296, Unsigned32, 4),
    iana("natType", 297, Unsigned8, 1),
    iana("initiatorPackets", 298, Unsigned64, 8),
    iana("responderPackets", 299, Unsigned64, 8),
    iana("observationDomainName", 300, String, 0),
    iana("selectionSequenceId", 301, Unsigned64, 8),
    iana("selectorId", 302, Unsigned64, 8),
    iana("informationElementId", 303, Unsigned16, 2),
    iana("selectorAlgorithm", 304, Unsigned16, 2),
    iana("samplingPacketInterval", 305, Unsigned32, 4),
    iana("samplingPacketSpace", 306, Unsigned32, 4),
    iana("samplingTimeInterval", 307, Unsigned32, 4),
    iana("samplingTimeSpace", 308, Unsigned32, 4),
    iana("samplingSize", 309, Unsigned32, 4),
    iana("samplingPopulation", 310, Unsigned32, 4),
    iana("samplingProbability", 311, Float64, 8),
    iana("dataLinkFrameSize", 312, Unsigned16, 2),
    iana("ipHeaderPacketSection", 313, OctetArray, 0),
    iana("ipPayloadPacketSection", 314, OctetArray, 0),
    iana("dataLinkFrameSection", 315, OctetArray, 0),
    iana("mplsLabelStackSection", 316, OctetArray, 0),
    iana("mplsPayloadPacketSection", 317, OctetArray, 0),
    iana("selectorIdTotalPktsObserved", 318, Unsigned64, 8),
    iana("selectorIdTotalPktsSelected", 319, Unsigned64, 8),
    iana("absoluteError", 320, Float64, 8),
    iana("relativeError", 321, Float64, 8),
    iana("observationTimeSeconds", 322, DateTimeSeconds, 4),
    iana("observationTimeMilliseconds", 323, DateTimeMilliseconds, 8),
    iana("observationTimeMicroseconds", 324, DateTimeMicroseconds, 8),
    iana("observationTimeNanoseconds", 325, DateTimeNanoseconds, 8),
    iana("digestHashValue", 326, Unsigned64, 8),
    iana("hashIPPayloadOffset", 327, Unsigned64, 8),
    iana("hashIPPayloadSize", 328, Unsigned64, 8),
    iana("hashOutputRangeMin", 329, Unsigned64, 8),
    iana("hashOutputRangeMax", 330, Unsigned64, 8),
    iana("hashSelectedRangeMin", 331, Unsigned64, 8),
    iana("hashSelectedRangeMax", 332, Unsigned64, 8),
    iana("hashDigestOutput", 333, Boolean, 1),
    iana("hashInitialiserValue", 334, Unsigned64, 8),
    iana("selectorName", 335, String, 0),
    iana("upperCILimit", 336, Float64, 8),
    iana("lowerCILimit", 337, Float64, 8),
    iana("confidenceLevel", 338, Float64, 8),
    iana("informationElementDataType", 339, Unsigned8, 1),
    iana("informationElementDescription", 340, String, 0),
    iana("informationElementName", 341, String, 0),
    iana("informationElementRangeBegin", 342, Unsigned64, 8),
    iana("informationElementRangeEnd", 343, Unsigned64, 8),
    iana("informationElementSemantics", 344, Unsigned8, 1),
    iana("informationElementUnits", 345, Unsigned16, 2),
    iana("privateEnterpriseNumber", 346, Unsigned32, 4),
    iana("virtualStationInterfaceId", 347, OctetArray, 0),
    iana("virtualStationInterfaceName", 348, String, 0),
    iana("virtualStationUUID", 349, OctetArray, 0),
    iana("virtualStationName", 350, String, 0),
    iana("layer2SegmentId", 351, Unsigned64, 8),
    iana("layer2OctetDeltaCount", 352, Unsigned64, 8),
    iana("layer2OctetTotalCount", 353, Unsigned64, 8),
    iana("ingressUnicastPacketTotalCount", 354, Unsigned64, 8),
    iana("ingressMulticastPacketTotalCount", 355, Unsigned64, 8),
    iana("ingressBroadcastPacketTotalCount", 356, Unsigned64, 8),
    iana("egressUnicastPacketTotalCount", 357, Unsigned64, 8),
    iana("egressBroadcastPacketTotalCount", 358, Unsigned64, 8),
    iana(
        "monitoringIntervalStartMilliSeconds",
        359,
        DateTimeMilliseconds,
        8,
    ),
    iana(
        "monitoringIntervalEndMilliSeconds",
        360,
        DateTimeMilliseconds,
        8,
    ),
    iana("portRangeStart", 361, Unsigned16, 2),
    iana("portRangeEnd", 362, Unsigned16, 2),
    iana("portRangeStepSize", 363, Unsigned16, 2),
    iana("portRangeNumPorts", 364, Unsigned16, 2),
    iana("staMacAddress", 365, MacAddress, 6),
    iana("staIPv4Address", 366, Ipv4Address, 4),
    iana("wtpMacAddress", 367, MacAddress, 6),
    iana("ingressInterfaceType", 368, Unsigned32, 4),
    iana("egressInterfaceType", 369, Unsigned32, 4),
    iana("rtpSequenceNumber", 370, Unsigned16, 2),
    iana("userName", 371, String, 0),
    iana("applicationCategoryName", 372, String, 0),
    iana("applicationSubCategoryName", 373, String, 0),
    iana("applicationGroupName", 374, String, 0),
    iana("originalFlowsPresent", 375, Unsigned64, 8),
    iana("originalFlowsInitiated", 376, Unsigned64, 8),
    iana("originalFlowsCompleted", 377, Unsigned64, 8),
    iana("distinctCountOfSourceIPAddress", 378, Unsigned64, 8),
    iana("distinctCountOfDestinationIPAddress", 379, Unsigned64, 8),
    iana("distinctCountOfSourceIPv4Address", 380, Unsigned32, 4),
    iana("distinctCountOfDestinationIPv4Address", 381, Unsigned32, 4),
    iana("distinctCountOfSourceIPv6Address", 382, Unsigned64, 8),
    iana("distinctCountOfDestinationIPv6Address", 383, Unsigned64, 8),
    iana("valueDistributionMethod", 384, Unsigned8, 1),
    iana("rfc3550JitterMilliseconds", 385, Unsigned32, 4),
    iana("rfc3550JitterMicroseconds", 386, Unsigned32, 4),
    iana("rfc3550JitterNanoseconds", 387, Unsigned32, 4),
    iana("dot1qDEI", 388, Boolean, 1),
    iana("dot1qCustomerDEI", 389, Boolean, 1),
    iana("flowSelectorAlgorithm", 390, Unsigned16, 2),
    iana("flowSelectedOctetDeltaCount", 391, Unsigned64, 8),
    iana("flowSelectedPacketDeltaCount", 392, Unsigned64, 8),
    iana("flowSelectedFlowDeltaCount", 393, Unsigned64, 8),
    iana("selectorIDTotalFlowsObserved", 394, Unsigned64, 8),
    iana("selectorIDTotalFlowsSelected", 395, Unsigned64, 8),
    iana("samplingFlowInterval", 396, Unsigned64, 8),
    iana("samplingFlowSpacing", 397, Unsigned64, 8),
    iana("flowSamplingTimeInterval", 398, Unsigned64, 8),
    iana("flowSamplingTimeSpacing", 399, Unsigned64, 8),
    iana("hashFlowDomain", 400, Unsigned16, 2),
    // 401/402: QoF defines these locally (IANA_IE.h); IANA has them as transport counters too.
    iana("transportOctetDeltaCount", 401, Unsigned64, 8)
        .rev()
        .ctr()
        .en(F::TRANSPORT)
        .dir(DirVal::TransportOctetDeltaCount),
    iana("transportPacketDeltaCount", 402, Unsigned64, 8)
        .rev()
        .ctr()
        .en(F::TRANSPORT)
        .dir(DirVal::TransportPacketDeltaCount),
    // --- CERT (YAF) ---
    ie("initialTCPFlags", pen::CERT, 14, Unsigned8, 1)
        .rev()
        .on(AT)
        .dir(DirVal::InitialTCPFlags),
    ie("unionTCPFlags", pen::CERT, 15, Unsigned8, 1)
        .rev()
        .on(AT)
        .dir(DirVal::UnionTCPFlags),
    ie("reverseFlowDeltaMilliseconds", pen::CERT, 21, Signed32, 4)
        .get(|r, _| V::Signed(r.reverse_delta_millis().into())),
    ie("expiredFragmentCount", pen::CERT, 100, Unsigned32, 4).on(AS),
    ie("assembledFragmentCount", pen::CERT, 101, Unsigned32, 4).on(AS),
    ie("meanFlowRate", pen::CERT, 102, Unsigned32, 4).on(AS),
    ie("meanPacketRate", pen::CERT, 103, Unsigned32, 4).on(AS),
    ie("flowTableFlushEventCount", pen::CERT, 104, Unsigned32, 4).on(AS),
    ie("flowTablePeakCount", pen::CERT, 105, Unsigned32, 4).on(AS),
    // --- trammell.ch (QoF TCP performance) ---
    ie("tcpSequenceCount", pen::QOF, 1024, Unsigned64, 8)
        .rev()
        .ctr()
        .on(AT)
        .en(F::SEQ)
        .dir(DirVal::TcpSequenceCount),
    ie("tcpRetransmitCount", pen::QOF, 1025, Unsigned64, 8)
        .rev()
        .ctr()
        .on(AT)
        .en(F::SEQ)
        .dir(DirVal::TcpRetransmitCount),
    ie("maxTcpSequenceJump", pen::QOF, 1026, Unsigned32, 4)
        .rev()
        .on(AT)
        .en(F::SEQ)
        .dir(DirVal::MaxTcpSequenceJump),
    ie("minTcpRttMilliseconds", pen::QOF, 1029, Unsigned32, 2)
        .on(ATR)
        .en(F::RTT.with(F::TCPOPT))
        .uint(|r, _| rtt_ms(r.rtt.min_us)),
    ie("lastTcpRttMilliseconds", pen::QOF, 1030, Unsigned32, 2)
        .on(ATR)
        .en(F::RTT.with(F::TCPOPT))
        .uint(|r, _| rtt_ms(r.rtt.smoothed_us)),
    ie("declaredTcpMss", pen::QOF, 1033, Unsigned16, 2)
        .rev()
        .on(AT)
        .en(F::TCPOPT)
        .dir(DirVal::DeclaredTcpMss),
    ie("observedTcpMss", pen::QOF, 1034, Unsigned16, 2)
        .rev()
        .on(AT)
        .en(F::SEQ)
        .dir(DirVal::ObservedTcpMss),
    ie("tcpSequenceLossCount", pen::QOF, 1035, Unsigned64, 8)
        .rev()
        .ctr()
        .on(AT)
        .en(F::SEQ)
        .dir(DirVal::TcpSequenceLossCount),
    ie("tcpSequenceJumpCount", pen::QOF, 1036, Unsigned64, 8)
        .rev()
        .ctr()
        .on(AT)
        .en(F::SEQ)
        .dir(DirVal::TcpSequenceJumpCount),
    ie("tcpLossEventCount", pen::QOF, 1038, Unsigned64, 8)
        .rev()
        .ctr()
        .on(AT)
        .en(F::SEQ.with(F::RTT).with(F::TCPOPT))
        .dir(DirVal::TcpLossEventCount),
    ie("qofTcpCharacteristics", pen::QOF, 1039, Unsigned32, 4)
        .rev()
        .on(AT)
        .en(F::TCPOPT)
        .dir(DirVal::QofTcpCharacteristics),
    ie("tcpDupAckCount", pen::QOF, 1040, Unsigned64, 8)
        .rev()
        .ctr()
        .on(AT)
        .en(F::ACK.with(F::RWIN))
        .dir(DirVal::TcpDupAckCount),
    ie("tcpSelAckCount", pen::QOF, 1041, Unsigned64, 8)
        .rev()
        .ctr()
        .on(AT)
        .en(F::ACK.with(F::TCPOPT))
        .dir(DirVal::TcpSelAckCount),
    ie("minTcpRwin", pen::QOF, 1042, Unsigned32, 4)
        .rev()
        .on(AT)
        .en(F::RWIN.with(F::TCPOPT))
        .dir(DirVal::MinTcpRwin),
    ie("meanTcpRwin", pen::QOF, 1043, Unsigned32, 4)
        .rev()
        .on(AT)
        .en(F::RWIN.with(F::TCPOPT))
        .dir(DirVal::MeanTcpRwin),
    ie("maxTcpRwin", pen::QOF, 1044, Unsigned32, 4)
        .rev()
        .on(AT)
        .en(F::RWIN.with(F::TCPOPT))
        .dir(DirVal::MaxTcpRwin),
    ie("tcpReceiverStallCount", pen::QOF, 1045, Unsigned32, 4)
        .rev()
        .on(AT)
        .en(F::RWIN.with(F::TCPOPT))
        .dir(DirVal::TcpReceiverStallCount),
    ie("tcpRttSampleCount", pen::QOF, 1046, Unsigned32, 4)
        .on(ATR)
        .en(F::RTT.with(F::TCPOPT))
        .uint(|r, _| r.rtt.samples.into()),
    ie("tcpTimestampFrequency", pen::QOF, 1047, Unsigned32, 4)
        .rev()
        .on(ATS)
        .en(F::SEQ.with(F::TS).with(F::TCPOPT))
        .dir(DirVal::TcpTimestampFrequency),
    ie("minTcpChirpMilliseconds", pen::QOF, 1048, Signed16, 2)
        .rev()
        .on(ATS)
        .en(CHIRP)
        .get(|_, d| V::Signed(d.tcp.chirp_min_ms.into())),
    ie("maxTcpChirpMilliseconds", pen::QOF, 1049, Signed16, 2)
        .rev()
        .on(ATS)
        .en(CHIRP)
        .get(|_, d| V::Signed(d.tcp.chirp_max_ms.into())),
    ie("minTcpIOTMilliseconds", pen::QOF, 1050, Unsigned32, 4)
        .rev()
        .on(AT)
        .en(F::SEQ.with(F::IAT))
        .dir(DirVal::MinTcpIOTMilliseconds),
    ie("maxTcpIOTMilliseconds", pen::QOF, 1051, Unsigned32, 4)
        .rev()
        .on(AT)
        .en(F::SEQ.with(F::IAT))
        .dir(DirVal::MaxTcpIOTMilliseconds),
    ie("meanTcpChirpMilliseconds", pen::QOF, 1052, Signed16, 2)
        .rev()
        .on(ATS)
        .en(CHIRP)
        .get(|_, d| V::Signed(d.tcp.chirp_mean_ms.into())),
    // QoF's last: known (qofdump names it), not measured by this version.
    ie("lastSynTcpFlags", pen::QOF, 1053, Unsigned8, 1).rev(),
    // qof's own, in QoF's family after QoF's last (lastSynTcpFlags, 1053).
    ie("tcpFastRetransmitCount", pen::QOF, 1054, Unsigned64, 8)
        .rev()
        .ctr()
        .on(AT)
        .en(CAUSES)
        .dir(DirVal::TcpFastRetransmitCount),
    ie("tcpTimeoutRetransmitCount", pen::QOF, 1055, Unsigned64, 8)
        .rev()
        .ctr()
        .on(AT)
        .en(CAUSES)
        .dir(DirVal::TcpTimeoutRetransmitCount),
    ie("tcpSpuriousRetransmitCount", pen::QOF, 1056, Unsigned64, 8)
        .rev()
        .ctr()
        .on(AT)
        .en(CAUSES)
        .dir(DirVal::TcpSpuriousRetransmitCount),
    ie("tcpReorderCount", pen::QOF, 1057, Unsigned64, 8)
        .rev()
        .ctr()
        .on(AT)
        .en(CAUSES)
        .dir(DirVal::TcpReorderCount),
    ie("meanTcpRttMicroseconds", pen::QOF, 1058, Unsigned32, 4)
        .on(ATR)
        .en(RTT_LOAD)
        .uint(|r, _| r.rtt.mean_us.into()),
    ie("maxTcpRttMicroseconds", pen::QOF, 1059, Unsigned32, 4)
        .on(ATR)
        .en(RTT_LOAD)
        .uint(|r, _| r.rtt.max_us.into()),
    // --- CESNET (PEN 8057): ipfixprobe's plugins. List elements travel as basicLists. ---
    // pstats. packetLength is signed16 in CESNET's registry, but lengths are never negative
    // and reach 65,535: qof declares (and ipfixprobe sends) unsigned16.
    cesnet("packetLength", 1013, Unsigned16, 2).list_by(PluginKind::Pstats),
    cesnet("packetTime", 1014, DateTimeMilliseconds, 8).list_by(PluginKind::Pstats),
    cesnet("packetFlag", 1015, Unsigned8, 1).list_by(PluginKind::Pstats),
    cesnet("packetDirection", 1016, Signed8, 1).list_by(PluginKind::Pstats),
    // phists: 8-bin log2 histograms (counts), forward then reverse; this order is the
    // template's and the wire's (ipfixprobe writes 1060, 1062, 1061, 1063).
    cesnet("phistSrcSizes", 1060, Unsigned32, 4).list_by(PluginKind::Phists),
    cesnet("phistSrcInterPacketTime", 1061, Unsigned32, 4).list_by(PluginKind::Phists),
    cesnet("phistDstSizes", 1062, Unsigned32, 4).list_by(PluginKind::Phists),
    cesnet("phistDstInterPacketTime", 1063, Unsigned32, 4).list_by(PluginKind::Phists),
    // bstats: per burst. Packets and octets are unsigned16 in CESNET's registry, but a burst
    // carries more than 65,535 octets: qof declares (and ipfixprobe sends) unsigned32.
    cesnet("burstSrcPackets", 1050, Unsigned32, 4).list_by(PluginKind::Bstats),
    cesnet("burstSrcBytes", 1051, Unsigned32, 4).list_by(PluginKind::Bstats),
    cesnet("burstSrcTimeStart", 1052, DateTimeMilliseconds, 8).list_by(PluginKind::Bstats),
    cesnet("burstSrcTimeStop", 1053, DateTimeMilliseconds, 8).list_by(PluginKind::Bstats),
    cesnet("burstDstPackets", 1054, Unsigned32, 4).list_by(PluginKind::Bstats),
    cesnet("burstDstBytes", 1055, Unsigned32, 4).list_by(PluginKind::Bstats),
    cesnet("burstDstTimeStart", 1056, DateTimeMilliseconds, 8).list_by(PluginKind::Bstats),
    cesnet("burstDstTimeStop", 1057, DateTimeMilliseconds, 8).list_by(PluginKind::Bstats),
    // nettisa: statistics of payload sizes and of times in microseconds.
    cesnet("ntsMeanPacketPayload", 1020, Float32, 4).by(PluginKind::Nettisa),
    cesnet("ntsMinPacketPayload", 1021, Unsigned16, 2).by(PluginKind::Nettisa),
    cesnet("ntsMaxPacketPayload", 1022, Unsigned16, 2).by(PluginKind::Nettisa),
    cesnet("ntsStdevPacketPayload", 1023, Float32, 4).by(PluginKind::Nettisa),
    cesnet("ntsKurtosisPacketPayload", 1024, Float32, 4).by(PluginKind::Nettisa),
    cesnet("ntsRootMeanSquarePacketPayload", 1025, Float32, 4).by(PluginKind::Nettisa),
    cesnet("ntsAverageDispersionPacketPayload", 1026, Float32, 4).by(PluginKind::Nettisa),
    cesnet("ntsMeanScaledTime", 1027, Float32, 4).by(PluginKind::Nettisa),
    cesnet("ntsMeanDifftimes", 1028, Float32, 4).by(PluginKind::Nettisa),
    cesnet("ntsMinDifftimes", 1029, Float32, 4).by(PluginKind::Nettisa),
    cesnet("ntsMaxDifftimes", 1030, Float32, 4).by(PluginKind::Nettisa),
    cesnet("ntsTimeDistribution", 1031, Float32, 4).by(PluginKind::Nettisa),
    cesnet("ntsSwitchingRatio", 1032, Float32, 4).by(PluginKind::Nettisa),
    // ssadetector: 1 when the flow carries other flows' TCP handshakes (a tunnel), else 0.
    cesnet("ssaConfLevel", 903, Unsigned8, 1).by(PluginKind::Ssadetector),
    // basicplus (ipfixprobe's order). ipTTL, fragmentFlags and tcpWindowSize are the
    // direction's first packet's; tcpOptions ORs the option kinds of all its packets.
    iana("ipTTL", 192, Unsigned8, 1)
        .rev()
        .by(PluginKind::Basicplus),
    iana("fragmentFlags", 197, Unsigned8, 1)
        .rev()
        .by(PluginKind::Basicplus),
    iana("tcpWindowSize", 186, Unsigned16, 2)
        .rev()
        .by(PluginKind::Basicplus),
    iana("tcpOptions", 209, Unsigned64, 8)
        .rev()
        .by(PluginKind::Basicplus),
    cesnet("tcpMss", 900, Unsigned32, 4).by(PluginKind::Basicplus),
    cesnet("tcpMssRev", 901, Unsigned32, 4).by(PluginKind::Basicplus),
    cesnet("tcpSynSize", 902, Unsigned16, 2).by(PluginKind::Basicplus),
    // idpcontent: the first payload octets of each direction (two elements, not RFC 5103
    // reverse forms, as CESNET defines them).
    cesnet("IDPContent", 850, OctetArray, 0).by(PluginKind::Idpcontent),
    cesnet("IDPContentRev", 851, OctetArray, 0).by(PluginKind::Idpcontent),
    // flowhash: qof's own element; ipfixprobe sends its hash as flowId (148), which IANA
    // defines as unique per flow, and qof's flowId is.
    ie("flowKeyHash", pen::QOF, 1060, Unsigned64, 8).by(PluginKind::Flowhash),
    // icmp: each IP version's own element (ipfixprobe sends 32 for ICMPv6 too).
    iana("icmpTypeCodeIPv4", 32, Unsigned16, 2)
        .only_ip(4)
        .by(PluginKind::Icmp),
    iana("icmpTypeCodeIPv6", 139, Unsigned16, 2)
        .only_ip(6)
        .by(PluginKind::Icmp),
    // vlan: the first packet's outer tag and, in Q-in-Q, the customer tag (vlanId, a core
    // element, is the innermost tag: the flow key's).
    iana("dot1qVlanId", 243, Unsigned16, 2).by(PluginKind::Vlan),
    iana("dot1qPriority", 244, Unsigned8, 1).by(PluginKind::Vlan),
    iana("dot1qCustomerVlanId", 245, Unsigned16, 2).by(PluginKind::Vlan),
    iana("dot1qCustomerPriority", 246, Unsigned8, 1).by(PluginKind::Vlan),
    // mpls: the first packet's top label stack entry (label, TC and S; its TTL apart).
    iana("mplsTopLabelStackSection", 70, OctetArray, 3).by(PluginKind::Mpls),
    iana("mplsTopLabelTTL", 200, Unsigned8, 1).by(PluginKind::Mpls),
    // headers: IANA header fields of ipt-netflow's (tcpOptions is basicplus's).
    iana("ipClassOfService", 5, Unsigned8, 1)
        .rev()
        .by(PluginKind::Headers),
    iana("ethernetType", 256, Unsigned16, 2).by(PluginKind::Headers),
    iana("ipv4Options", 208, Unsigned32, 4)
        .rev()
        .only_ip(4)
        .by(PluginKind::Headers),
    iana("ipv6ExtensionHeaders", 64, Unsigned32, 4)
        .rev()
        .only_ip(6)
        .by(PluginKind::Headers),
    // dns (ipfixprobe's order): one DNS message per record. DNSRDataLength is the first
    // answer's RDLENGTH on the wire (ipfixprobe sends the length of its own text); DNSName
    // and DNSRData are text (see plugins::dns).
    cesnet("DNSAnswers", 14, Unsigned16, 2).by(PluginKind::Dns),
    cesnet("DNSRCode", 1, Unsigned8, 1).by(PluginKind::Dns),
    cesnet("DNSQType", 3, Unsigned16, 2).by(PluginKind::Dns),
    cesnet("DNSClass", 4, Unsigned16, 2).by(PluginKind::Dns),
    cesnet("DNSRRTTL", 5, Unsigned32, 4).by(PluginKind::Dns),
    cesnet("DNSRDataLength", 6, Unsigned16, 2).by(PluginKind::Dns),
    cesnet("DNSPSize", 8, Unsigned16, 2).by(PluginKind::Dns),
    cesnet("DNSRDO", 9, Unsigned8, 1).by(PluginKind::Dns),
    cesnet("DNSTransactionID", 10, Unsigned16, 2).by(PluginKind::Dns),
    cesnet("DNSName", 2, String, 0).by(PluginKind::Dns),
    cesnet("DNSRData", 7, String, 0).by(PluginKind::Dns),
    // passivedns: every A, AAAA and PTR answer of a response, one item each in four parallel
    // basicLists of Flowmon's DNS resource-record elements (ipfixprobe exports only the last
    // answer, in the elements dns uses, which a record cannot carry twice): the name (an A or
    // AAAA record's owner, a PTR record's target), the type, the TTL and the address (4 or
    // 16 octets, network order; a PTR record's decoded from its in-addr.arpa/ip6.arpa owner).
    ie("dnsId", pen::FLOWMON, 110, Unsigned16, 2).by(PluginKind::Passivedns),
    ie("dnsCrrName", pen::FLOWMON, 116, String, 0).list_by(PluginKind::Passivedns),
    ie("dnsCrrType", pen::FLOWMON, 117, Unsigned16, 2).list_by(PluginKind::Passivedns),
    ie("dnsCrrTtl", pen::FLOWMON, 119, Unsigned32, 4).list_by(PluginKind::Passivedns),
    ie("dnsCrrRdata", pen::FLOWMON, 120, OctetArray, 0).list_by(PluginKind::Passivedns),
    // dnssd (mDNS, port 5353): the flow's service names and what its responses say of them.
    cesnet("DNSSDQueries", 826, String, 0).by(PluginKind::Dnssd),
    cesnet("DNSSDResponses", 827, String, 0).by(PluginKind::Dnssd),
    // netbios (NBNS, port 137), ipfixprobe's order.
    cesnet("NBSuffix", 832, Unsigned8, 1).by(PluginKind::Netbios),
    cesnet("NBName", 831, String, 0).by(PluginKind::Netbios),
    // ntp: one NTP packet per record. Delay and dispersion are the NTP short format (16.16
    // seconds) as sent (ipfixprobe always sends 9); timestamps as text.
    cesnet("NTPLeap", 18, Unsigned8, 1).by(PluginKind::Ntp),
    cesnet("NTPVersion", 19, Unsigned8, 1).by(PluginKind::Ntp),
    cesnet("NTPMode", 20, Unsigned8, 1).by(PluginKind::Ntp),
    cesnet("NTPStratum", 21, Unsigned8, 1).by(PluginKind::Ntp),
    cesnet("NTPPoll", 22, Unsigned8, 1).by(PluginKind::Ntp),
    cesnet("NTPPrecision", 23, Unsigned8, 1).by(PluginKind::Ntp),
    cesnet("NTPDelay", 24, Unsigned32, 4).by(PluginKind::Ntp),
    cesnet("NTPDispersion", 25, Unsigned32, 4).by(PluginKind::Ntp),
    cesnet("NTPRefID", 26, String, 0).by(PluginKind::Ntp),
    cesnet("NTPRef", 27, String, 0).by(PluginKind::Ntp),
    cesnet("NTPOrig", 28, String, 0).by(PluginKind::Ntp),
    cesnet("NTPRecv", 29, String, 0).by(PluginKind::Ntp),
    cesnet("NTPSent", 30, String, 0).by(PluginKind::Ntp),
    // --- mqtt (ipfixprobe's mqtt plugin). CESNET's registry lacks 1033-1039: names and
    // types as ipfixprobe's code writes them (the topics string carries its length, RFC
    // 7011 §7, as ipfixprobe's variable2ipfix_buffer does).
    cesnet("mqttTypeCumulative", 1033, Unsigned16, 2).by(PluginKind::Mqtt),
    cesnet("mqttVersion", 1034, Unsigned8, 1).by(PluginKind::Mqtt),
    cesnet("mqttConnectionFlags", 1035, Unsigned8, 1).by(PluginKind::Mqtt),
    cesnet("mqttKeepAlive", 1036, Unsigned16, 2).by(PluginKind::Mqtt),
    cesnet("mqttLastReturnCode", 1037, Unsigned8, 1).by(PluginKind::Mqtt),
    cesnet("mqttPublishFlags", 1038, Unsigned8, 1).by(PluginKind::Mqtt),
    cesnet("mqttTopics", 1039, String, 0).by(PluginKind::Mqtt),
    // --- ovpn (ipfixprobe's OpenVPN detector) ---
    cesnet("OVPNConfLevel", 828, Unsigned8, 1).by(PluginKind::Ovpn),
    // --- wg (ipfixprobe's WireGuard plugin) ---
    cesnet("WGConfLevel", 1100, Unsigned8, 1).by(PluginKind::Wg),
    cesnet("WGSrcPeer", 1101, Unsigned32, 4).by(PluginKind::Wg),
    cesnet("WGDstPeer", 1102, Unsigned32, 4).by(PluginKind::Wg),
    // --- tls: ipfixprobe's TLS plugin (ServerHello version and ALPN; the ClientHello's SNI,
    // JA3, JA4 and extensions), in ipfixprobe's order. tlsJa3Fingerprint is 16 octets, sent
    // with a variable length as ipfixprobe sends it; TLSJA4 (not in CESNET's registry) is
    // 36 characters.
    ie("tlsServerVersion", pen::FLOWMON, 333, Unsigned16, 2).by(PluginKind::Tls),
    cesnet("TLSSNI", 808, String, 0).by(PluginKind::Tls),
    ie("tlsAlpn", pen::FLOWMON, 337, String, 0).by(PluginKind::Tls),
    ie("tlsJa3Fingerprint", pen::FLOWMON, 357, OctetArray, 0).by(PluginKind::Tls),
    cesnet("TLSJA4", 809, String, 0).by(PluginKind::Tls),
    cesnet("tlsExtTypeField", 802, Unsigned16, 2).list_by(PluginKind::Tls),
    cesnet("tlsExtLenField", 803, Unsigned16, 2).list_by(PluginKind::Tls),
    // --- quic: ipfixprobe's QUIC plugin (decrypted client Initials), in ipfixprobe's order.
    // Connection IDs are octetArrays of up to 20 octets; quicTokenLength is 2^64-1 when
    // unknown; quicPackets has one item per packet of the flow, its first 30.
    cesnet("quicSNI", 890, String, 0).by(PluginKind::Quic),
    cesnet("quicUserAgent", 891, String, 0).by(PluginKind::Quic),
    cesnet("quicVersion", 892, Unsigned32, 4).by(PluginKind::Quic),
    cesnet("quicClientVersion", 893, Unsigned32, 4).by(PluginKind::Quic),
    cesnet("quicTokenLength", 894, Unsigned64, 8).by(PluginKind::Quic),
    cesnet("quicOCCID", 895, OctetArray, 0).by(PluginKind::Quic),
    cesnet("quicOSCID", 896, OctetArray, 0).by(PluginKind::Quic),
    cesnet("quicSCID", 897, OctetArray, 0).by(PluginKind::Quic),
    cesnet("quicRetrySCID", 898, OctetArray, 0).by(PluginKind::Quic),
    cesnet("quicMultiplexed", 899, Unsigned8, 1).by(PluginKind::Quic),
    cesnet("quicZeroRTT", 889, Unsigned8, 1).by(PluginKind::Quic),
    cesnet("quicServerPort", 887, Unsigned16, 2).by(PluginKind::Quic),
    cesnet("quicPackets", 888, Unsigned8, 1).list_by(PluginKind::Quic),
    cesnet("quicCHParsed", 886, Unsigned8, 1).by(PluginKind::Quic),
    cesnet("quicTlsExtType", 885, Unsigned16, 2).list_by(PluginKind::Quic),
    cesnet("quicTlsExtLen", 884, Unsigned16, 2).list_by(PluginKind::Quic),
    cesnet("quicTlsExt", 883, OctetArray, 0).by(PluginKind::Quic),
    // http (plugins::http): Flowmon's elements (PEN 39499) and CESNET's, in ipfixprobe's
    // template order; strings of bounded length (plugins::http::max).
    ie("httpUserAgent", pen::FLOWMON, 20, String, 0).by(PluginKind::Http),
    cesnet("httpMethod", 200, String, 0).by(PluginKind::Http),
    ie("httpHost", pen::FLOWMON, 1, String, 0).by(PluginKind::Http),
    ie("httpReferer", pen::FLOWMON, 3, String, 0).by(PluginKind::Http),
    ie("httpUrl", pen::FLOWMON, 2, String, 0).by(PluginKind::Http),
    ie("httpContentType", pen::FLOWMON, 10, String, 0).by(PluginKind::Http),
    cesnet("httpServer", 201, String, 0).by(PluginKind::Http),
    cesnet("httpCookieNames", 202, String, 0).by(PluginKind::Http),
    ie("httpStatusCode", pen::FLOWMON, 12, Unsigned16, 2).by(PluginKind::Http),
    // rtsp (plugins::rtsp), in ipfixprobe's template order (Server before Content-Type).
    cesnet("rtspMethod", 1040, String, 0).by(PluginKind::Rtsp),
    cesnet("rtspUserAgent", 1041, String, 0).by(PluginKind::Rtsp),
    cesnet("rtspURI", 1042, String, 0).by(PluginKind::Rtsp),
    cesnet("rtspStatus", 1043, Unsigned16, 2).by(PluginKind::Rtsp),
    cesnet("rtspServer", 1045, String, 0).by(PluginKind::Rtsp),
    cesnet("rtspContentType", 1044, String, 0).by(PluginKind::Rtsp),
    // sip (plugins::sip), in ipfixprobe's template order.
    cesnet("SIPMsgType", 100, Unsigned16, 2).by(PluginKind::Sip),
    cesnet("SIPStatusCode", 101, Unsigned16, 2).by(PluginKind::Sip),
    cesnet("SIPCseq", 108, String, 0).by(PluginKind::Sip),
    cesnet("SIPCallingParty", 103, String, 0).by(PluginKind::Sip),
    cesnet("SIPCalledParty", 104, String, 0).by(PluginKind::Sip),
    cesnet("SIPCallID", 102, String, 0).by(PluginKind::Sip),
    cesnet("SIPUserAgent", 106, String, 0).by(PluginKind::Sip),
    cesnet("SIPRequestURI", 107, String, 0).by(PluginKind::Sip),
    cesnet("SIPVia", 105, String, 0).by(PluginKind::Sip),
    // smtp (plugins::smtp), in ipfixprobe's template order.
    cesnet("SMTPCommands", 810, Unsigned32, 4).by(PluginKind::Smtp),
    cesnet("SMTPMailCount", 811, Unsigned32, 4).by(PluginKind::Smtp),
    cesnet("SMTPRcptCount", 812, Unsigned32, 4).by(PluginKind::Smtp),
    cesnet("SMTPStatusCodes", 815, Unsigned32, 4).by(PluginKind::Smtp),
    cesnet("SMTPCode2XXCount", 816, Unsigned32, 4).by(PluginKind::Smtp),
    cesnet("SMTPCode3XXCount", 817, Unsigned32, 4).by(PluginKind::Smtp),
    cesnet("SMTPCode4XXCount", 818, Unsigned32, 4).by(PluginKind::Smtp),
    cesnet("SMTPCode5XXCount", 819, Unsigned32, 4).by(PluginKind::Smtp),
    cesnet("SMTPDomain", 820, String, 0).by(PluginKind::Smtp),
    cesnet("SMTPSender", 813, String, 0).by(PluginKind::Smtp),
    cesnet("SMTPRecipient", 814, String, 0).by(PluginKind::Smtp),
    // ssdp (plugins::ssdp), in ipfixprobe's template order. Each element carries what its
    // name says (ipfixprobe 5.7.0 sends the Server values as SSDPUserAgent and the reverse).
    cesnet("SSDPLocationPort", 821, Unsigned16, 2).by(PluginKind::Ssdp),
    cesnet("SSDPNT", 824, String, 0).by(PluginKind::Ssdp),
    cesnet("SSDPUserAgent", 823, String, 0).by(PluginKind::Ssdp),
    cesnet("SSDPST", 825, String, 0).by(PluginKind::Ssdp),
    cesnet("SSDPServer", 822, String, 0).by(PluginKind::Ssdp),
];
