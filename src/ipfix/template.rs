//! Templates: the user's element list, and the concrete field lists each record uses.
//!
//! As in QoF, one configured list yields several templates: a record carries only the
//! elements that apply to it. The choice is a small set of dimensions per record:
//! biflow (reverse elements present), TCP (TCP-only elements), IPv6 (which address elements)
//! and reduced-size counters (RFC 7011 §6.2: 4-octet counters when every value fits), and
//! which plugins had something for the flow (their elements, after the core ones).

use crate::ie::{self, Applies, Direction, Features, InfoElement, PluginKind, Value};
use crate::meter::{DirStats, ExtKey, FlowRecord};
use std::fmt;

/// One element of the configured template, forward or reverse.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    pub ie: &'static InfoElement,
    pub reverse: bool,
}

impl Field {
    pub fn direction(&self) -> Direction {
        if self.reverse {
            Direction::Reverse
        } else {
            Direction::Forward
        }
    }

    /// The field's value for `rec` (elements without a getter are rejected when the
    /// template is built, so they never reach here). A plugin element the plugin left
    /// unwritten is zero, or empty if it has variable length.
    pub fn value<'r>(&self, rec: &'r FlowRecord) -> Value<'r> {
        let dir: &DirStats = if self.reverse { &rec.rev } else { &rec.fwd };
        match self.ie.value {
            Some(ie::Getter::Ext) => {
                ie::ext_value(self.ie, self.reverse, rec).unwrap_or_else(|| self.empty())
            }
            Some(get) => get.value(rec, dir),
            None => Value::Unsigned(0),
        }
    }

    /// [`Field::value`] for fields read in template order, as encoders and printers read
    /// them: `next` carries where the last plugin value was found (start at 0), so that each
    /// is found with one look.
    #[inline]
    pub fn value_next<'r>(&self, rec: &'r FlowRecord, next: &mut usize) -> Value<'r> {
        match (self.ie.value, &rec.ext) {
            (Some(ie::Getter::Ext), Some(ext)) => {
                ie::ext_value_next(self.ie, self.reverse, ext, next).unwrap_or_else(|| self.empty())
            }
            _ => self.value(rec),
        }
    }

    /// The value of a plugin element nobody wrote.
    fn empty(&self) -> Value<'static> {
        use crate::ie::IeType;
        match self.ie.ty {
            _ if self.ie.list && self.ie.len == 0 => {
                Value::List(self.ie.ty, crate::meter::VARIABLE_ITEMS, &[])
            }
            _ if self.ie.list => Value::List(self.ie.ty, self.ie.len, &[]),
            IeType::String => Value::Str(""),
            IeType::Float32 | IeType::Float64 => Value::Float(0.0),
            IeType::Signed8 | IeType::Signed16 | IeType::Signed32 | IeType::Signed64 => {
                Value::Signed(0)
            }
            _ if self.ie.len == 0 => Value::Bytes(&[]),
            _ => Value::Unsigned(0),
        }
    }

    /// The field's key in a record's extensions.
    pub fn ext_key(&self) -> ExtKey {
        self.ie.ext_key(self.reverse)
    }
}

/// The configured list of elements (YAML `template:`), validated.
#[derive(Clone, Debug)]
pub struct TemplateSpec {
    /// Core elements first (in the configured order), then plugin elements.
    fields: Vec<Field>,
    biflow: bool,
    features: Features,
    has_v4: bool,
    /// The plugins whose elements are listed, in the order their elements first appear.
    plugins: Vec<PluginKind>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateError {
    Empty,
    Unknown(String),
    NotMeasured(String),
    NotAFlowElement(String),
    Duplicate(String),
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateError::Empty => write!(f, "the template list is empty"),
            TemplateError::Unknown(n) => write!(f, "unknown information element `{n}`"),
            TemplateError::NotMeasured(n) => {
                write!(
                    f,
                    "information element `{n}` is known but not measured by this version of qof"
                )
            }
            TemplateError::NotAFlowElement(n) => {
                write!(
                    f,
                    "`{n}` is a process statistic (exported with --stats), not a flow element"
                )
            }
            TemplateError::Duplicate(n) => write!(f, "information element `{n}` is listed twice"),
        }
    }
}

impl std::error::Error for TemplateError {}

/// QoF's default template (its manual page).
pub const QOF_DEFAULT: &[&str] = &[
    "flowStartMilliseconds",
    "flowEndMilliseconds",
    "octetDeltaCount",
    "reverseOctetDeltaCount",
    "packetDeltaCount",
    "reversePacketDeltaCount",
    "sourceIPv4Address",
    "destinationIPv4Address",
    "sourceIPv6Address",
    "destinationIPv6Address",
    "sourceTransportPort",
    "destinationTransportPort",
    "protocolIdentifier",
    "flowEndReason",
];

impl TemplateSpec {
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Result<TemplateSpec, TemplateError> {
        if names.is_empty() {
            return Err(TemplateError::Empty);
        }
        let mut fields: Vec<Field> = Vec::with_capacity(names.len());
        for name in names {
            let name = name.as_ref();
            let (ie, reverse) =
                ie::by_name(name).ok_or_else(|| TemplateError::Unknown(name.to_string()))?;
            if ie.applies == Applies::Stats {
                return Err(TemplateError::NotAFlowElement(name.to_string()));
            }
            if ie.value.is_none() {
                return Err(TemplateError::NotMeasured(name.to_string()));
            }
            if fields
                .iter()
                .any(|f| std::ptr::eq(f.ie, ie) && f.reverse == reverse)
            {
                return Err(TemplateError::Duplicate(name.to_string()));
            }
            fields.push(Field { ie, reverse });
        }
        Ok(Self::from_fields(fields))
    }

    fn from_fields(mut fields: Vec<Field>) -> TemplateSpec {
        // Plugin elements after the core ones, so that every record's fixed-length core part
        // comes first (the order within each group is kept).
        fields.sort_by_key(|f| f.ie.plugin().is_some());
        let features = fields
            .iter()
            .fold(Features::NONE, |acc, f| acc.with(f.ie.enables));
        let mut plugins = Vec::new();
        for k in fields.iter().filter_map(|f| f.ie.plugin()) {
            if !plugins.contains(&k) {
                plugins.push(k);
            }
        }
        TemplateSpec {
            biflow: fields.iter().any(|f| f.reverse),
            has_v4: fields.iter().any(|f| f.ie.applies == Applies::Ipv4),
            fields,
            features,
            plugins,
        }
    }

    /// This template with every element of `kinds` added (those not listed yet, in table
    /// order; reverse forms too when the template is a biflow one).
    pub fn with_plugins(&self, kinds: &[PluginKind]) -> TemplateSpec {
        let mut fields = self.fields.clone();
        for &k in kinds {
            for ie in k.elements() {
                for reverse in [false, true] {
                    if reverse && !(ie.reversible && self.biflow) {
                        continue;
                    }
                    if !fields
                        .iter()
                        .any(|f| std::ptr::eq(f.ie, ie) && f.reverse == reverse)
                    {
                        fields.push(Field { ie, reverse });
                    }
                }
            }
        }
        Self::from_fields(fields)
    }

    /// The plugins whose elements the template lists, in template order.
    pub fn plugins(&self) -> &[PluginKind] {
        &self.plugins
    }

    /// The extension keys of the plugin elements listed.
    pub fn ext_keys(&self) -> Vec<ExtKey> {
        self.fields
            .iter()
            .filter(|f| f.ie.plugin().is_some())
            .map(Field::ext_key)
            .collect()
    }

    pub fn qof_default() -> TemplateSpec {
        match Self::from_names(QOF_DEFAULT) {
            Ok(t) => t,
            Err(e) => unreachable!("the default template is valid: {e}"),
        }
    }

    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// What the listed elements switch on in the decoder and meter.
    pub fn features(&self) -> Features {
        self.features
    }

    /// RFC 5103 biflow export: some reverse element is listed. Otherwise each biflow is
    /// written as two uniflow records.
    pub fn biflow(&self) -> bool {
        self.biflow
    }

    /// The records to export for `rec`: the biflow itself, or its forward uniflow and (when
    /// the reverse direction saw packets) its reverse uniflow.
    pub fn export_records(&self, rec: &FlowRecord) -> (FlowRecord, Option<FlowRecord>) {
        if self.biflow {
            (rec.clone(), None)
        } else {
            (rec.forward_uniflow(), rec.reverse_uniflow())
        }
    }

    /// The dimensions of `rec` (an exported record: see `for_each_export`).
    /// Which elements `rec` carries. Never [`Dims::REDUCED`]: the encoder tries that itself
    /// (encoding is the test of whether every counter fits).
    pub fn dims(&self, rec: &FlowRecord, force_biflow: bool) -> Dims {
        let plugins = match &rec.ext {
            Some(ext) if !self.plugins.is_empty() => ext.present,
            _ => 0,
        };
        let mut d = 0;
        if self.biflow && (force_biflow || rec.has_reverse()) {
            d |= Dims::BIFLOW;
        }
        if rec.key.proto == crate::key::proto::TCP {
            d |= Dims::TCP;
            if rec.rtt.samples > 0 {
                d |= Dims::RTT;
            }
            // A uniflow record's reverse direction is empty, so only its own clock counts.
            if rec.fwd.tcp.ts_hz != 0 || (d & Dims::BIFLOW != 0 && rec.rev.tcp.ts_hz != 0) {
                d |= Dims::TSV;
            }
        }
        if !rec.key.is_ipv4() || !self.has_v4 {
            d |= Dims::IPV6;
        }
        if plugins != 0 && rec.key.is_ipv4() {
            // (IPV6 above is about address elements: an IPv4 flow under an IPv6-only template
            // has it too.)
            d |= Dims::IPV4_FLOW;
        }
        Dims { bits: d, plugins }
    }

    /// The fields a record of dimensions `dims` carries, in configured order.
    pub fn fields_for(&self, dims: Dims) -> impl Iterator<Item = &Field> {
        self.fields.iter().filter(move |f| {
            (!f.reverse || dims.has(Dims::BIFLOW))
                && match f.ie.applies {
                    Applies::All => true,
                    Applies::Tcp => dims.has(Dims::TCP),
                    Applies::TcpRtt => dims.has(Dims::RTT),
                    Applies::TcpTs => dims.has(Dims::TSV),
                    Applies::Ipv4 => !dims.has(Dims::IPV6),
                    Applies::Ipv6 => dims.has(Dims::IPV6),
                    Applies::Stats => false,
                    Applies::Plugin(k) => {
                        dims.plugins & (1 << k.number()) != 0
                            && f.ie.fits_ip_version(dims.has(Dims::IPV4_FLOW))
                    }
                }
        })
    }

    /// Encoded length of a field under `dims`.
    pub fn field_len(f: &Field, dims: Dims) -> u16 {
        if f.ie.counter && dims.has(Dims::REDUCED) {
            4
        } else {
            f.ie.len
        }
    }
}

/// Which elements a record carries (see the module doc): `bits` of the core dimensions below,
/// and the plugins (bit = plugin number) whose elements it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Dims {
    pub bits: u8,
    pub plugins: u64,
}

impl Dims {
    /// Core dimensions only.
    pub const fn core(bits: u8) -> Dims {
        Dims { bits, plugins: 0 }
    }

    /// The same with `bit` set.
    pub fn with(self, bit: u8) -> Dims {
        Dims {
            bits: self.bits | bit,
            ..self
        }
    }

    pub const BIFLOW: u8 = 1;
    pub const TCP: u8 = 2;
    pub const IPV6: u8 = 4;
    pub const REDUCED: u8 = 8;
    /// TCP with an RTT sample (QoF's RTT dimension).
    pub const RTT: u8 = 16;
    /// TCP with a known timestamp clock rate (QoF's TSV dimension).
    pub const TSV: u8 = 32;
    /// The flow is IPv4: for plugin elements of one IP version ([`InfoElement::ip_version`]).
    /// Set only on records with plugin values, so core templates (indexed by `bits`, below
    /// `COUNT`) never have it.
    pub const IPV4_FLOW: u8 = 64;
    pub const COUNT: usize = 64;

    pub fn has(self, bit: u8) -> bool {
        self.bits & bit != 0
    }

    /// The IPFIX template id of core dimensions (QoF used 0xB000 | flags likewise); templates
    /// with plugin elements get theirs as the encoder meets them.
    pub fn core_template_id(self) -> u16 {
        0xB000 | u16::from(self.bits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{proto, FlowKey};

    fn rec(p: u8, v6: bool, rev: bool) -> FlowRecord {
        let mut key = FlowKey {
            proto: p,
            src_port: 1,
            dst_port: 2,
            ..Default::default()
        };
        if v6 {
            key.set_ipv6([1; 16], [2; 16]);
        } else {
            key.set_ipv4([10, 0, 0, 1], [10, 0, 0, 2]);
        }
        let mut r = FlowRecord {
            key,
            ..Default::default()
        };
        r.fwd.packets = 1;
        r.fwd.octets = 40;
        if rev {
            r.rev.packets = 1;
            r.rev.octets = 40;
            r.rev_start = Some(r.start);
        }
        r
    }

    fn names(spec: &TemplateSpec, dims: Dims) -> Vec<String> {
        spec.fields_for(dims)
            .map(|f| {
                let mut s = String::new();
                ie::write_name(f.ie, f.reverse, &mut s);
                s
            })
            .collect()
    }

    #[test]
    fn default_template_dimensions() {
        let spec = TemplateSpec::qof_default();
        assert!(spec.biflow());
        assert!(spec.features().ipv4() && spec.features().ipv6());
        let d = spec.dims(&rec(proto::TCP, false, true), false);
        assert_eq!(d, Dims::core(Dims::BIFLOW | Dims::TCP));
        let n = names(&spec, d);
        assert!(n.contains(&"reverseOctetDeltaCount".to_string()));
        assert!(n.contains(&"sourceIPv4Address".to_string()));
        assert!(!n.contains(&"sourceIPv6Address".to_string()));
        // One-way flow: no reverse elements unless force-biflow.
        let d = spec.dims(&rec(proto::UDP, true, false), false);
        assert_eq!(d, Dims::core(Dims::IPV6));
        assert!(!names(&spec, d).iter().any(|n| n.starts_with("reverse")));
        assert!(spec
            .dims(&rec(proto::UDP, true, false), true)
            .has(Dims::BIFLOW));
    }

    #[test]
    fn ipv6_only_template_carries_ipv4_flows_mapped() {
        let spec = TemplateSpec::from_names(&[
            "sourceIPv6Address",
            "destinationIPv6Address",
            "packetDeltaCount",
        ])
        .unwrap();
        let r = rec(proto::UDP, false, false);
        let d = spec.dims(&r, false);
        assert!(d.has(Dims::IPV6));
        let f = spec.fields_for(d).next().unwrap();
        assert_eq!(
            f.value(&r),
            Value::Ipv6(
                std::net::Ipv4Addr::new(10, 0, 0, 1)
                    .to_ipv6_mapped()
                    .octets()
            )
        );
    }

    #[test]
    fn uniflow_mode_splits_biflows() {
        let spec = TemplateSpec::from_names(&["sourceIPv4Address", "packetDeltaCount"]).unwrap();
        assert!(!spec.biflow());
        let (fwd, rev) = spec.export_records(&rec(proto::TCP, false, true));
        assert_eq!(fwd.key.src_addr().to_string(), "10.0.0.1");
        assert_eq!(fwd.rev.packets, 0);
        assert_eq!(rev.unwrap().key.src_addr().to_string(), "10.0.0.2");
        assert!(spec
            .export_records(&rec(proto::TCP, false, false))
            .1
            .is_none());
    }

    /// Plugin elements of one IP version are carried by records of flows of that version
    /// only, whatever address elements the template has; core templates are unchanged.
    #[test]
    fn plugin_elements_of_one_ip_version() {
        let present = |r: &mut FlowRecord| {
            let mut ext = crate::meter::Extensions::default();
            ext.present = 1 << PluginKind::Icmp.number();
            r.ext = Some(Box::new(ext));
        };
        for addresses in [
            &["sourceIPv4Address", "sourceIPv6Address"][..],
            &["sourceIPv6Address"],
        ] {
            let spec = TemplateSpec::from_names(addresses)
                .unwrap()
                .with_plugins(&[PluginKind::Icmp]);
            for (v6, want) in [(false, "icmpTypeCodeIPv4"), (true, "icmpTypeCodeIPv6")] {
                let mut r = rec(proto::ICMP, v6, false);
                assert!(
                    !spec.dims(&r, false).has(Dims::IPV4_FLOW),
                    "no plugin values"
                );
                present(&mut r);
                let n = names(&spec, spec.dims(&r, false));
                let icmp: Vec<&String> = n.iter().filter(|n| n.starts_with("icmp")).collect();
                assert_eq!(icmp, [want], "{addresses:?}");
            }
        }
    }

    #[test]
    fn template_errors_name_the_element() {
        let e = TemplateSpec::from_names(&["octetDeltaCounter"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown information element `octetDeltaCounter`"
        );
        let e = TemplateSpec::from_names(&["tcpUrgentPointer"]).unwrap_err();
        assert!(e.to_string().contains("not measured"), "{e}");
        let e = TemplateSpec::from_names(&["packetTotalCount"]).unwrap_err();
        assert!(e.to_string().contains("process statistic"), "{e}");
        let e = TemplateSpec::from_names(&["flowId", "flowId"]).unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
        assert_eq!(
            TemplateSpec::from_names::<&str>(&[]).unwrap_err(),
            TemplateError::Empty
        );
        assert!(
            TemplateSpec::from_names(&["reverseFlowId"]).is_err(),
            "flowId is not reversible"
        );
    }
}
