//! The IPFIX message encoder: flow and statistics records in, complete RFC 7011 messages out.
//!
//! Transport-neutral: finished messages go to a [`MessageSink`] (a file today; TCP, UDP and
//! SCTP collectors later). A template is written into the stream before its first record and
//! again after [`Encoder::forget_templates`] (a new file, a reconnection). The sequence number
//! of each message counts the data records sent before it in this stream. Encoding a record
//! allocates nothing: the message buffer is reused.

use super::template::{Dims, Field, TemplateSpec};
use crate::ie::{self, IeType, InfoElement, Value};
use crate::meter::sampling::{FlowSampler, Method, SamplerSpec};
use crate::meter::{FlowRecord, ProcessStats};
use std::collections::HashMap;
use std::io;

/// Largest message in a file (RFC 5655 allows the full 16-bit length).
pub const MAX_FILE_MESSAGE: usize = 65_535;

const VERSION: u16 = 10;
const HEADER_LEN: usize = 16;
const TEMPLATE_SET: u16 = 2;
const OPTIONS_TEMPLATE_SET: u16 = 3;
/// Template ID of the statistics options template.
pub const STATS_TEMPLATE_ID: u16 = 0xD000;
/// Template ID of the sampling (PSAMP selector) options template.
pub const SAMPLING_TEMPLATE_ID: u16 = 0xD001;

/// Where finished messages go.
pub trait MessageSink {
    fn send(&mut self, message: &[u8]) -> io::Result<()>;
}

impl<W: io::Write> MessageSink for W {
    fn send(&mut self, message: &[u8]) -> io::Result<()> {
        self.write_all(message)
    }
}

/// A template ready for encoding. Its fields are grouped by how they are written, each with its
/// offset in the record, so that most are written by a tight loop per store width with no
/// dispatch per field (the order of writing does not matter: every field has its own bytes).
struct Compiled {
    id: u16,
    /// Per-direction values (see [`ie::DirVal`]) stored in 1, 2, 4 and 8 octets.
    dir: [Vec<DirOp>; 4],
    /// Some of `dir` are TCP measurements (else the record's are not read), and of them
    /// causes.
    dir_tcp: bool,
    dir_causes: bool,
    /// Every other core field.
    other: Vec<FieldOp>,
    /// Octets of the core fields (all of fixed length).
    record_len: usize,
    /// Plugin fields, after the core ones, in template order: appended to the record one by
    /// one (they may have variable length).
    ext: Vec<(Field, u16)>,
    /// The template set announcing it, ready to copy into a message.
    set: Vec<u8>,
    /// Announced in this stream.
    sent: bool,
}

/// The template field id of a basicList (RFC 6313).
const BASIC_LIST: u16 = 291;
/// RFC 6313 list semantic "ordered": the items are in the order they were seen.
const ORDERED: u8 = 0x04;

/// A per-direction value: where it goes and where it comes from.
struct DirOp {
    off: usize,
    /// Index into the record's flattened [`DirValues`].
    idx: usize,
    /// A counter (its length depends on [`Dims::REDUCED`]).
    counter: bool,
}

/// One other field: its getter, direction, offset and on-wire length, read straight from the
/// record without a trip through the element table.
struct FieldOp {
    put: Put,
    reverse: bool,
    counter: bool,
    off: usize,
    len: u16,
}

/// How another field is written: an unsigned value from its getter at 1, 2, 4 or 8 octets by
/// a plain store, anything else through [`Value::encode`].
#[derive(Clone, Copy)]
enum Put {
    U8(ie::UnsignedGetter),
    U16(ie::UnsignedGetter),
    U32(ie::UnsignedGetter),
    U64(ie::UnsignedGetter),
    Value(ie::Getter, IeType),
}

impl Put {
    fn new(get: ie::Getter, ty: IeType, len: u16) -> Put {
        match (get, len) {
            (ie::Getter::Unsigned(g), 1) => Put::U8(g),
            (ie::Getter::Unsigned(g), 2) => Put::U16(g),
            (ie::Getter::Unsigned(g), 4) => Put::U32(g),
            (ie::Getter::Unsigned(g), 8) => Put::U64(g),
            _ => Put::Value(get, ty),
        }
    }
}

/// A record's per-direction values, forward then reverse.
type DirValues = [[u64; ie::DIR_VALS]; 2];

/// Where value `v` of the forward or reverse direction is in a flattened [`DirValues`].
fn dir_index(v: ie::DirVal, reverse: bool) -> usize {
    usize::from(reverse) * ie::DIR_VALS + v as usize
}

/// Write each of `ops` into `record` as `N` octets. A value that does not fit is written as
/// zeros so the record stays aligned; false if it was a counter.
#[inline(always)]
fn put_dir<const N: usize>(ops: &[DirOp], vals: &[u64], record: &mut [u8]) -> bool {
    let mut fits = true;
    for op in ops {
        let v = vals.get(op.idx).copied().unwrap_or(0);
        let Some(out) = record.get_mut(op.off..op.off + N) else {
            continue; // (offsets come from the template's own lengths)
        };
        if !ie::put_unsigned::<N>(v, out) {
            out.fill(0);
            fits &= !op.counter;
        }
    }
    fits
}

impl FieldOp {
    /// Write the field's value for `rec` into `out` (exactly its length). A value that does
    /// not fit is written as zeros so the record stays aligned; false if it was a counter
    /// (the template logic rules the rest out).
    #[inline(always)]
    fn put(&self, rec: &FlowRecord, out: &mut [u8]) -> bool {
        let dir = if self.reverse { &rec.rev } else { &rec.fwd };
        let fits = match self.put {
            Put::U8(get) => ie::put_unsigned::<1>(get(rec, dir), out),
            Put::U16(get) => ie::put_unsigned::<2>(get(rec, dir), out),
            Put::U32(get) => ie::put_unsigned::<4>(get(rec, dir), out),
            Put::U64(get) => ie::put_unsigned::<8>(get(rec, dir), out),
            Put::Value(get, ty) => get.value(rec, dir).encode(ty, out.len(), out),
        };
        if fits {
            return true;
        }
        out.fill(0);
        !self.counter
    }
}

/// The statistics options template's fields: (element name, on-wire length). The first is the
/// scope (RFC 7011 §3.4.2.2): the exporting process these statistics describe.
const STATS_FIELDS: &[(&str, u16)] = &[
    ("exportingProcessId", 4),
    ("systemInitTimeMilliseconds", 8),
    ("exportedFlowRecordTotalCount", 8),
    ("packetTotalCount", 8),
    ("droppedPacketTotalCount", 8),
    ("ignoredPacketTotalCount", 8),
    ("notSentPacketTotalCount", 8),
    ("notSentFlowTotalCount", 8),
    ("expiredFragmentCount", 4),
    ("assembledFragmentCount", 4),
    ("flowTableFlushEventCount", 4),
    ("flowTablePeakCount", 4),
    ("meanFlowRate", 4),
    ("meanPacketRate", 4),
    ("exporterIPv4Address", 4),
    ("exporterIPv6Address", 16),
    ("exportedMessageTotalCount", 8),
    ("exportedOctetTotalCount", 8),
];

/// The values of [`STATS_FIELDS`], in order.
pub fn stats_values(s: &ProcessStats) -> [Value<'static>; 18] {
    let u = Value::Unsigned;
    [
        u(s.observation_domain.into()),
        Value::Time(crate::time::Timestamp::from_millis(s.system_init_millis)),
        u(s.exported_flows),
        u(s.packets),
        u(s.dropped),
        u(s.ignored),
        u(s.not_sent),
        u(s.not_sent_flows),
        u(s.expired_fragments.min(u32::MAX.into())),
        u(s.assembled_fragments.min(u32::MAX.into())),
        u(s.flush_events.min(u32::MAX.into())),
        u(s.flow_table_peak.min(u32::MAX.into())),
        u(s.mean_flow_rate.into()),
        u(s.mean_packet_rate.into()),
        Value::Ipv4(s.exporter_ipv4),
        Value::Ipv6(s.exporter_ipv6),
        u(s.exported_messages),
        u(s.exported_octets),
    ]
}

/// The statistics elements, resolved in the element table.
pub fn stats_elements() -> impl Iterator<Item = (&'static InfoElement, u16)> {
    STATS_FIELDS
        .iter()
        .filter_map(|&(name, len)| ie::by_name(name).map(|(ie, _)| (ie, len)))
}

pub struct Encoder {
    spec: TemplateSpec,
    observation_domain: u32,
    max_message: usize,
    force_biflow: bool,
    /// Every template met so far.
    compiled: Vec<Compiled>,
    /// Index in `compiled` of each core dimensions' template ([`NOT_YET`] if not met yet).
    core: [u32; Dims::COUNT],
    /// Index in `compiled` of each template with plugin elements.
    with_plugins: HashMap<Dims, u32>,
    /// The id the next template with plugin elements gets.
    next_id: u16,
    /// The statistics template was announced in this stream.
    stats_sent: bool,
    /// `--sampler`: the selector options template set and its one record.
    sampling: Option<(Vec<u8>, Vec<u8>)>,
    /// The sampling template and record are in this stream.
    sampling_sent: bool,
    msg: Vec<u8>,
    /// The data set being filled: (template id, offset of its header in `msg`).
    open_set: Option<(u16, usize)>,
    /// Data records sent in this stream before the current message.
    sequence: u32,
    records_in_msg: u32,
    stats_set: Vec<u8>,
    stats_len: usize,
    /// Messages handed out so far (every stream), and their octets.
    messages: u64,
    octets: u64,
    /// One data record, encoded before its template is chosen for good.
    record: Vec<u8>,
    /// The record's per-direction values (see [`ie::DirVal`]).
    dir_values: DirValues,
}

const NOT_YET: u32 = u32::MAX;
/// Ids of templates with plugin elements: from here (core templates are 0xB000 | dims, the
/// statistics template 0xD000).
const FIRST_PLUGIN_TEMPLATE: u16 = 0xC000;

impl Encoder {
    pub fn new(
        spec: TemplateSpec,
        observation_domain: u32,
        max_message: usize,
        force_biflow: bool,
    ) -> Encoder {
        let (stats_set, stats_len) = stats_template_set();
        Encoder {
            spec,
            observation_domain,
            max_message: max_message.clamp(512, MAX_FILE_MESSAGE),
            force_biflow,
            compiled: Vec::new(),
            core: [NOT_YET; Dims::COUNT],
            with_plugins: HashMap::new(),
            next_id: FIRST_PLUGIN_TEMPLATE,
            stats_sent: false,
            sampling: None,
            sampling_sent: false,
            msg: Vec::with_capacity(max_message),
            open_set: None,
            sequence: 0,
            records_in_msg: 0,
            stats_set,
            stats_len,
            messages: 0,
            octets: 0,
            record: Vec::new(),
            dir_values: [[0; ie::DIR_VALS]; 2],
        }
    }

    pub fn spec(&self) -> &TemplateSpec {
        &self.spec
    }

    /// Describe `--sampler` in every stream: an options template (scope selectorId) and one
    /// record of it, sent before the stream's first record and again with the templates.
    pub fn set_sampling(&mut self, spec: &SamplerSpec) {
        self.sampling = Some(sampling_set(spec));
        self.sampling_sent = false;
        if !self.msg.is_empty() {
            // A message already begun (announced templates): the record joins it.
            let _ = self.put_sampling(0, &mut io::sink());
        }
    }

    /// Data records handed out in complete messages so far in this stream.
    pub fn sequence(&self) -> u32 {
        self.sequence
    }

    /// Messages handed out so far (over every stream), and their octets.
    pub fn exported(&self) -> (u64, u64) {
        (self.messages, self.octets)
    }

    /// Octets of one statistics options record.
    pub fn stats_record_len(&self) -> usize {
        self.stats_len
    }

    /// True while a message is being filled: [`Encoder::flush`] would hand one out.
    pub fn pending(&self) -> bool {
        self.msg.len() > HEADER_LEN
    }

    /// Start a new stream (new file, new connection): templates are sent again and the
    /// sequence number restarts. Any pending message must be flushed first.
    pub fn forget_templates(&mut self) {
        self.resend_templates();
        self.sequence = 0;
    }

    /// Send every template again before its next record, as after
    /// [`Encoder::forget_templates`], but in the same stream: the sequence number goes on. For
    /// the periodic template refresh of `--template-refresh` (RFC 7011 §8.4).
    pub fn resend_templates(&mut self) {
        for t in &mut self.compiled {
            t.sent = false;
        }
        self.stats_sent = false;
        self.sampling_sent = false;
    }

    /// The template set (or options template set) announcing template `id`, if this encoder
    /// has built it. A stream transport puts it in front of data that a new connection has not
    /// seen the template for.
    pub fn template_set(&self, id: u16) -> Option<&[u8]> {
        if id == STATS_TEMPLATE_ID {
            return Some(&self.stats_set);
        }
        if id == SAMPLING_TEMPLATE_ID {
            return self.sampling.as_ref().map(|(set, _)| set.as_slice());
        }
        self.compiled
            .iter()
            .find(|t| t.id == id)
            .map(|t| t.set.as_slice())
    }

    /// Add a flow record (split into uniflows when the template has no reverse element).
    pub fn encode_flow(
        &mut self,
        rec: &FlowRecord,
        export_time: u32,
        out: &mut dyn MessageSink,
    ) -> io::Result<()> {
        if self.spec.biflow() {
            return self.encode_one(rec, export_time, out);
        }
        let (first, second) = self.spec.export_records(rec);
        self.encode_one(&first, export_time, out)?;
        match second {
            Some(r) => self.encode_one(&r, export_time, out),
            None => Ok(()),
        }
    }

    fn encode_one(
        &mut self,
        rec: &FlowRecord,
        export_time: u32,
        out: &mut dyn MessageSink,
    ) -> io::Result<()> {
        // Counters go at their reduced size (RFC 7011 §6.2) when every one fits, as nearly
        // all do: the record is encoded that way, and again at full size only if a counter
        // did not fit. The encoding is the test; no separate pass reads the counters.
        let full = self.spec.dims(rec, self.force_biflow);
        let mut record = std::mem::take(&mut self.record);
        let reduced = self.template(full.with(Dims::REDUCED));
        let t = if self.encode_fields(rec, reduced, &mut record) {
            reduced
        } else {
            let full = self.template(full);
            self.encode_fields(rec, full, &mut record);
            full
        };
        let result = self.reserve(Some(t), record.len(), export_time, out);
        if result.is_ok() {
            self.msg.extend_from_slice(&record);
            self.records_in_msg += 1;
        }
        self.record = record;
        result
    }

    /// The index in `compiled` of the template of `dims`, compiled when first met.
    fn template(&mut self, dims: Dims) -> usize {
        let known = if dims.plugins == 0 {
            self.core[usize::from(dims.bits)]
        } else {
            self.with_plugins.get(&dims).copied().unwrap_or(NOT_YET)
        };
        if known != NOT_YET {
            return known as usize;
        }
        let id = if dims.plugins == 0 {
            dims.core_template_id()
        } else {
            let id = self.next_id;
            // 0xC000.. first; past 0xCFFF (4,096 combinations of plugins and dimensions),
            // on from 0x0100, skipping the core and statistics ids.
            self.next_id = match id {
                0xCFFF => 0x0100,
                0xAFFF => 0xE000,
                0xFFFF => 0x0100,
                n => n + 1,
            };
            id
        };
        let i = self.compiled.len() as u32;
        self.compiled.push(compile(&self.spec, dims, id));
        if dims.plugins == 0 {
            self.core[usize::from(dims.bits)] = i;
        } else {
            self.with_plugins.insert(dims, i);
        }
        i as usize
    }

    /// Encode `rec`'s fields under template `t` into `record` (replacing its contents); false
    /// if a counter did not fit its length.
    fn encode_fields(&mut self, rec: &FlowRecord, t: usize, record: &mut Vec<u8>) -> bool {
        let t = &self.compiled[t];
        record.clear();
        record.resize(t.record_len, 0);
        // (Filled in place: values a template does not read may be left from another record.)
        let [fwd, rev] = &mut self.dir_values;
        ie::dir_values(&rec.fwd, t.dir_tcp, t.dir_causes, fwd);
        ie::dir_values(&rec.rev, t.dir_tcp, t.dir_causes, rev);
        let vals = self.dir_values.as_flattened();
        let [d1, d2, d4, d8] = &t.dir;
        let mut fits = put_dir::<1>(d1, vals, record);
        fits &= put_dir::<2>(d2, vals, record);
        fits &= put_dir::<4>(d4, vals, record);
        fits &= put_dir::<8>(d8, vals, record);
        for op in &t.other {
            if let Some(out) = record.get_mut(op.off..op.off + usize::from(op.len)) {
                fits &= op.put(rec, out);
            }
        }
        let mut next = 0;
        for (f, len) in &t.ext {
            put_ext(f, *len, &f.value_next(rec, &mut next), record);
        }
        fits
    }

    /// Add a statistics options record.
    pub fn encode_stats(
        &mut self,
        stats: &ProcessStats,
        export_time: u32,
        out: &mut dyn MessageSink,
    ) -> io::Result<()> {
        let len = self.stats_len;
        self.reserve(None, len, export_time, out)?;
        let values = stats_values(stats);
        let start = self.msg.len();
        self.msg.resize(start + len, 0);
        let mut pos = start;
        for ((ie, flen), v) in stats_elements().zip(values.iter()) {
            let flen = usize::from(flen);
            if !v.encode(ie.ty, flen, &mut self.msg[pos..pos + flen]) {
                self.msg[pos..pos + flen].fill(0);
            }
            pos += flen;
        }
        self.records_in_msg += 1;
        Ok(())
    }

    /// Make room for one record of template `t` (an index in `compiled`; `None` for the
    /// statistics template): flush a full message, announce the template if this stream has
    /// not seen it, open a data set for it.
    fn reserve(
        &mut self,
        t: Option<usize>,
        record_len: usize,
        export_time: u32,
        out: &mut dyn MessageSink,
    ) -> io::Result<()> {
        if !self.sampling_sent && self.sampling.is_some() {
            self.put_sampling(export_time, out)?;
        }
        let (id, needs_template, set_len) = match t.and_then(|t| self.compiled.get(t)) {
            Some(c) => (c.id, !c.sent, c.set.len()),
            None => (STATS_TEMPLATE_ID, !self.stats_sent, self.stats_set.len()),
        };
        let set_len = if needs_template { set_len } else { 0 };
        let same_set = matches!(self.open_set, Some((open, _)) if open == id) && !needs_template;
        let needed = record_len + set_len + if same_set { 0 } else { 4 };
        if self.msg.is_empty() {
            self.start_message();
        } else if self.msg.len() + needed > self.max_message {
            self.flush(export_time, out)?;
            self.start_message();
        }
        if needs_template {
            self.close_set();
            match t.and_then(|t| self.compiled.get_mut(t)) {
                Some(c) => {
                    self.msg.extend_from_slice(&c.set);
                    c.sent = true;
                }
                None => {
                    self.msg.extend_from_slice(&self.stats_set);
                    self.stats_sent = true;
                }
            }
            // A template and its first record that do not fit one message together (plugin
            // elements make both large) go in two: a message over the limit would be cut or
            // lost on a datagram transport, its template with it.
            if self.msg.len() + 4 + record_len > self.max_message {
                self.flush(export_time, out)?;
                self.start_message();
            }
        }
        if !matches!(self.open_set, Some((open, _)) if open == id) {
            self.close_set();
            self.open_set = Some((id, self.msg.len()));
            self.msg.extend_from_slice(&id.to_be_bytes());
            self.msg.extend_from_slice(&[0, 0]);
        }
        Ok(())
    }

    /// The sampling options template and its record, in a message with room for them.
    fn put_sampling(&mut self, export_time: u32, out: &mut dyn MessageSink) -> io::Result<()> {
        let Some((set, rec)) = self.sampling.take() else {
            return Ok(());
        };
        let needed = set.len() + 4 + rec.len();
        if self.msg.is_empty() {
            self.start_message();
        } else if self.msg.len() + needed > self.max_message {
            self.flush(export_time, out)?;
            self.start_message();
        }
        self.close_set();
        self.msg.extend_from_slice(&set);
        self.msg
            .extend_from_slice(&SAMPLING_TEMPLATE_ID.to_be_bytes());
        self.msg
            .extend_from_slice(&((4 + rec.len()) as u16).to_be_bytes());
        self.msg.extend_from_slice(&rec);
        self.records_in_msg += 1;
        self.sampling_sent = true;
        self.sampling = Some((set, rec));
        Ok(())
    }

    fn start_message(&mut self) {
        self.msg.clear();
        self.msg.resize(HEADER_LEN, 0);
        self.open_set = None;
        self.records_in_msg = 0;
    }

    fn close_set(&mut self) {
        if let Some((_, at)) = self.open_set.take() {
            let len = (self.msg.len() - at) as u16;
            self.msg[at + 2..at + 4].copy_from_slice(&len.to_be_bytes());
        }
    }

    /// Finish the pending message, if any, and hand it to `out`.
    pub fn flush(&mut self, export_time: u32, out: &mut dyn MessageSink) -> io::Result<()> {
        if self.msg.len() <= HEADER_LEN {
            self.msg.clear();
            return Ok(());
        }
        self.close_set();
        let len = self.msg.len() as u16;
        let h = &mut self.msg[..HEADER_LEN];
        h[0..2].copy_from_slice(&VERSION.to_be_bytes());
        h[2..4].copy_from_slice(&len.to_be_bytes());
        h[4..8].copy_from_slice(&export_time.to_be_bytes());
        h[8..12].copy_from_slice(&self.sequence.to_be_bytes());
        h[12..16].copy_from_slice(&self.observation_domain.to_be_bytes());
        let result = out.send(&self.msg);
        self.messages += 1;
        self.octets += self.msg.len() as u64;
        self.sequence = self.sequence.wrapping_add(self.records_in_msg);
        self.msg.clear();
        self.records_in_msg = 0;
        result
    }

    /// Make sure the statistics template is in the stream (a stream that carries nothing else
    /// still starts with a template, so no output file is ever empty).
    pub fn announce(&mut self) {
        if self.stats_sent {
            return;
        }
        if self.msg.is_empty() {
            self.start_message();
        }
        self.close_set();
        self.msg.extend_from_slice(&self.stats_set);
        self.stats_sent = true;
        if !self.sampling_sent {
            // (A message just begun, with a template in it: room for a few dozen octets.)
            let mut none = io::sink();
            let _ = self.put_sampling(0, &mut none);
        }
    }
}

/// The sampling options template set (scope selectorId) and its record, by RFC 5477's
/// selector algorithms (RFC 5475 §6.1 numbers):
/// * `deterministic:N`: 1 Systematic count-based Sampling, samplingPacketInterval 1 and
///   samplingPacketSpace N − 1 (one packet selected, N − 1 passed over);
/// * `random:N`: 2 Random n-out-of-N Sampling, samplingSize 1 and samplingPopulation N;
/// * `hash:N`: 6 Hash-based Filtering, hash output range 0..2^32 − 1, selected range
///   0..⌊2^32 / N⌋ − 1, hashInitialiserValue (BOB over the flow key: see `sampling`).
fn sampling_set(spec: &SamplerSpec) -> (Vec<u8>, Vec<u8>) {
    let n = u64::from(spec.n);
    let mut fields: Vec<(u16, u16, u64)> = vec![(302, 8, 1)];
    match spec.method {
        Method::Deterministic => fields.extend([(304, 2, 1), (305, 4, 1), (306, 4, n - 1)]),
        Method::Random => fields.extend([(304, 2, 2), (309, 4, 1), (310, 4, n)]),
        Method::Hash => {
            let f = FlowSampler::new(spec.n, spec.key as u32);
            fields.extend([
                (304, 2, 6),
                (329, 8, 0),
                (330, 8, u64::from(u32::MAX)),
                (331, 8, 0),
                (332, 8, u64::from(f.selected_max())),
                (334, 8, u64::from(f.init())),
            ]);
        }
    }
    let mut set = Vec::new();
    set.extend_from_slice(&OPTIONS_TEMPLATE_SET.to_be_bytes());
    set.extend_from_slice(&[0, 0]);
    set.extend_from_slice(&SAMPLING_TEMPLATE_ID.to_be_bytes());
    set.extend_from_slice(&(fields.len() as u16).to_be_bytes());
    set.extend_from_slice(&1u16.to_be_bytes()); // scope field count: selectorId
    let mut rec = Vec::new();
    for (id, len, v) in fields {
        set.extend_from_slice(&id.to_be_bytes());
        set.extend_from_slice(&len.to_be_bytes());
        rec.extend_from_slice(&v.to_be_bytes()[8 - usize::from(len)..]);
    }
    let l = set.len() as u16;
    set[2..4].copy_from_slice(&l.to_be_bytes());
    (set, rec)
}

fn push_field_spec(set: &mut Vec<u8>, ie: &InfoElement, reverse: bool, len: u16) {
    let (pen, id) = ie.wire_id(reverse);
    if pen == 0 {
        set.extend_from_slice(&id.to_be_bytes());
        set.extend_from_slice(&len.to_be_bytes());
    } else {
        set.extend_from_slice(&(id | 0x8000).to_be_bytes());
        set.extend_from_slice(&len.to_be_bytes());
        set.extend_from_slice(&pen.to_be_bytes());
    }
}

/// Append a plugin field's value to `record`: `len` octets (zeros if it does not fit), or for
/// a variable-length field its length (RFC 7011 §7) and octets; a list as an RFC 6313
/// basicList of the field's element.
fn put_ext(f: &Field, len: u16, v: &Value<'_>, record: &mut Vec<u8>) {
    if len != VARLEN {
        let at = record.len();
        record.resize(at + usize::from(len), 0);
        if !v.encode(f.ie.ty, usize::from(len), &mut record[at..]) {
            record[at..].fill(0);
        }
        return;
    }
    let (pen, id) = f.ie.wire_id(f.reverse);
    match *v {
        Value::List(_, item_len, items) => {
            let head = if pen == 0 { 5 } else { 9 };
            // (A list longer than a field can be is cut to whole items.)
            let room = usize::from(u16::MAX) - head;
            let mut fit = 0;
            for item in crate::meter::list_items(item_len, items) {
                let prefix = match item_len {
                    crate::meter::VARIABLE_ITEMS if item.len() < 255 => 1,
                    crate::meter::VARIABLE_ITEMS => 3,
                    _ => 0,
                };
                if fit + prefix + item.len() > room {
                    break;
                }
                fit += prefix + item.len();
            }
            let items = &items[..fit];
            put_varlen_len(head + items.len(), record);
            record.push(ORDERED);
            if pen == 0 {
                record.extend_from_slice(&id.to_be_bytes());
                record.extend_from_slice(&item_len.to_be_bytes());
            } else {
                record.extend_from_slice(&(id | 0x8000).to_be_bytes());
                record.extend_from_slice(&item_len.to_be_bytes());
                record.extend_from_slice(&pen.to_be_bytes());
            }
            record.extend_from_slice(items);
        }
        Value::Str(text) => put_varlen(text.as_bytes(), record),
        Value::Bytes(b) => put_varlen(b, record),
        _ => put_varlen(&[], record),
    }
}

/// A variable-length field's length: one octet below 255, else 255 and two octets.
fn put_varlen_len(n: usize, record: &mut Vec<u8>) {
    if n < 255 {
        record.push(n as u8);
    } else {
        record.push(255);
        record.extend_from_slice(&(n.min(usize::from(u16::MAX)) as u16).to_be_bytes());
    }
}

/// A variable-length field: its length, then its octets (at most 65,535).
fn put_varlen(b: &[u8], record: &mut Vec<u8>) {
    let b = &b[..b.len().min(usize::from(u16::MAX))];
    put_varlen_len(b.len(), record);
    record.extend_from_slice(b);
}

/// The template length of a variable-length field.
const VARLEN: u16 = 0xffff;

fn compile(spec: &TemplateSpec, dims: Dims, id: u16) -> Compiled {
    let all: Vec<(Field, u16)> = spec
        .fields_for(dims)
        .map(|f| {
            let len = if f.ie.variable() {
                VARLEN
            } else {
                TemplateSpec::field_len(f, dims)
            };
            (*f, len)
        })
        .collect();
    // (Plugin fields follow the core ones: see `TemplateSpec`.)
    let (fields, ext): (Vec<_>, Vec<_>) = all.iter().partition(|(f, _)| f.ie.plugin().is_none());
    let record_len = fields.iter().map(|(_, l)| usize::from(*l)).sum();
    // Elements without a getter are refused when the template is built; zero regardless.
    let zero = ie::Getter::Unsigned(|_, _| 0);
    let mut dir: [Vec<DirOp>; 4] = Default::default();
    let (mut dir_tcp, mut dir_causes) = (false, false);
    let mut other = Vec::new();
    let mut off = 0;
    for (f, len) in &fields {
        let get = f.ie.value.unwrap_or(zero);
        let width = match len {
            1 => Some(0),
            2 => Some(1),
            4 => Some(2),
            8 => Some(3),
            _ => None,
        };
        match (get, width) {
            (ie::Getter::Dir(v), Some(w)) => {
                dir_tcp |= v.is_tcp();
                dir_causes |= v.is_cause();
                dir[w].push(DirOp {
                    off,
                    idx: dir_index(v, f.reverse),
                    counter: f.ie.counter,
                });
            }
            _ => other.push(FieldOp {
                put: Put::new(get, f.ie.ty, *len),
                reverse: f.reverse,
                counter: f.ie.counter,
                off,
                len: *len,
            }),
        }
        off += usize::from(*len);
    }
    let mut set = Vec::new();
    set.extend_from_slice(&TEMPLATE_SET.to_be_bytes());
    set.extend_from_slice(&[0, 0]);
    set.extend_from_slice(&id.to_be_bytes());
    set.extend_from_slice(&(all.len() as u16).to_be_bytes());
    for (f, len) in fields.iter().chain(&ext) {
        if f.ie.list {
            set.extend_from_slice(&BASIC_LIST.to_be_bytes());
            set.extend_from_slice(&VARLEN.to_be_bytes());
        } else {
            push_field_spec(&mut set, f.ie, f.reverse, *len);
        }
    }
    let n = set.len() as u16;
    set[2..4].copy_from_slice(&n.to_be_bytes());
    Compiled {
        id,
        dir,
        dir_tcp,
        dir_causes,
        other,
        record_len,
        ext,
        set,
        sent: false,
    }
}

/// The statistics options template set and its record length.
fn stats_template_set() -> (Vec<u8>, usize) {
    let mut set = Vec::new();
    set.extend_from_slice(&OPTIONS_TEMPLATE_SET.to_be_bytes());
    set.extend_from_slice(&[0, 0]);
    set.extend_from_slice(&STATS_TEMPLATE_ID.to_be_bytes());
    set.extend_from_slice(&(STATS_FIELDS.len() as u16).to_be_bytes());
    set.extend_from_slice(&1u16.to_be_bytes()); // scope field count
    let mut len = 0;
    for (ie, flen) in stats_elements() {
        debug_assert!(ie.ty != IeType::String);
        push_field_spec(&mut set, ie, false, flen);
        len += usize::from(flen);
    }
    let n = set.len() as u16;
    set[2..4].copy_from_slice(&n.to_be_bytes());
    (set, len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipfix::decode::{Event, Message, Session};
    use crate::key::{proto, FlowKey};

    fn udp(octets: u64) -> FlowRecord {
        let mut key = FlowKey {
            proto: proto::UDP,
            src_port: 1,
            dst_port: 2,
            ..Default::default()
        };
        key.set_ipv4([10, 0, 0, 1], [10, 0, 0, 2]);
        let mut r = FlowRecord {
            key,
            ..Default::default()
        };
        r.fwd.packets = 3;
        r.fwd.octets = octets;
        r
    }

    /// (template id, octetDeltaCount's length and value) of each record in `stream`.
    fn octet_fields(stream: &[u8]) -> Vec<(u16, usize, u64)> {
        let mut session = Session::new();
        let mut out = Vec::new();
        let mut at = 0;
        while at < stream.len() {
            let (msg, len) = Message::parse(&stream[at..], at as u64).unwrap();
            session
                .decode(&msg, |e| {
                    if let Event::Record(r) = e {
                        let f = r.fields.iter().find(|f| f.pen == 0 && f.id == 1).unwrap();
                        let v = f.bytes.iter().fold(0u64, |a, &b| a << 8 | u64::from(b));
                        out.push((r.template_id, f.bytes.len(), v));
                    }
                })
                .unwrap();
            at += len;
        }
        out
    }

    #[test]
    fn counters_are_reduced_only_when_every_one_fits() {
        let mut enc = Encoder::new(TemplateSpec::qof_default(), 1, 65_535, false);
        let mut stream = Vec::new();
        for octets in [
            1000,
            1 << 33,
            u64::from(u32::MAX),
            u64::from(u32::MAX) + 1,
            7,
        ] {
            enc.encode_flow(&udp(octets), 0, &mut stream).unwrap();
        }
        enc.flush(0, &mut stream).unwrap();
        let got = octet_fields(&stream);
        let lens: Vec<_> = got.iter().map(|&(_, l, v)| (l, v)).collect();
        assert_eq!(
            lens,
            [
                (4, 1000),
                (8, 1 << 33),
                (4, u64::from(u32::MAX)),
                (8, u64::from(u32::MAX) + 1),
                (4, 7)
            ]
        );
        // Two templates, each announced once and reused.
        assert_eq!(got[0].0, got[2].0);
        assert_eq!(got[1].0, got[3].0);
        assert_ne!(got[0].0, got[1].0);
    }
}

#[cfg(test)]
mod size_tests {
    use super::*;
    use crate::ie::PluginKind;
    use crate::ipfix::decode::{Event, Message, Session};
    use crate::meter::{ExtKey, ExtWriter, Extensions};

    /// A template and its first record too large for one message together go in two, each
    /// within the limit; the record still decodes with its template.
    #[test]
    fn a_large_template_and_record_are_split_over_two_messages() {
        let spec = TemplateSpec::qof_default().with_plugins(&[PluginKind::Pstats]);
        let keys = spec.ext_keys();
        let mut ext = Extensions::default();
        let mut w = ExtWriter::new(&mut ext, &keys);
        let key = |id| ExtKey { pen: 8057, id };
        w.list(key(1013), 2, (0..30).map(|i| 100 + i));
        w.list(key(1014), 8, (0..30).map(|i| 1_700_000_000_000 + i));
        w.list(key(1015), 1, (0..30).map(|_| 0x18));
        w.list(
            key(1016),
            1,
            (0..30).map(|i| if i % 2 == 0 { 1 } else { 0xff }),
        );
        ext.present = 1 << PluginKind::Pstats.number();
        let mut rec = FlowRecord {
            ext: Some(Box::new(ext)),
            ..FlowRecord::default()
        };
        rec.key.proto = 17;
        rec.key.set_ipv4([10, 0, 0, 1], [10, 0, 0, 2]);
        rec.fwd.packets = 30;
        rec.fwd.octets = 3000;
        let mut enc = Encoder::new(spec, 1, 512, false);
        let mut messages: Vec<Vec<u8>> = Vec::new();
        struct Each<'a>(&'a mut Vec<Vec<u8>>);
        impl MessageSink for Each<'_> {
            fn send(&mut self, m: &[u8]) -> io::Result<()> {
                self.0.push(m.to_vec());
                Ok(())
            }
        }
        enc.encode_flow(&rec, 0, &mut Each(&mut messages)).unwrap();
        enc.flush(0, &mut Each(&mut messages)).unwrap();
        assert_eq!(messages.len(), 2, "template, then record");
        assert!(
            messages.iter().all(|m| m.len() <= 512),
            "{:?}",
            messages.iter().map(Vec::len).collect::<Vec<_>>()
        );
        let mut session = Session::new();
        let mut records = 0;
        for m in &messages {
            let (msg, _) = Message::parse(m, 0).unwrap();
            session
                .decode(&msg, |e| match e {
                    Event::Record(r) => {
                        records += 1;
                        // A one-way IPv4 record's 10 core fields, and pstats' 4 lists.
                        assert_eq!(r.fields.len(), 10 + 4);
                    }
                    Event::Warning(w) => panic!("{w}"),
                    _ => {}
                })
                .unwrap();
        }
        assert_eq!(records, 1);
    }
}
