//! The IPFIX message encoder: flow and statistics records in, complete RFC 7011 messages out.
//!
//! Transport-neutral: finished messages go to a [`MessageSink`] (a file today; TCP, UDP and
//! SCTP collectors later). A template is written into the stream before its first record and
//! again after [`Encoder::forget_templates`] (a new file, a reconnection). The sequence number
//! of each message counts the data records sent before it in this stream. Encoding a record
//! allocates nothing: the message buffer is reused.

use super::template::{Dims, Field, TemplateSpec};
use crate::ie::{self, IeType, InfoElement, Value};
use crate::meter::{FlowRecord, ProcessStats};
use std::io;

/// Largest message in a file (RFC 5655 allows the full 16-bit length).
pub const MAX_FILE_MESSAGE: usize = 65_535;

const VERSION: u16 = 10;
const HEADER_LEN: usize = 16;
const TEMPLATE_SET: u16 = 2;
const OPTIONS_TEMPLATE_SET: u16 = 3;
/// Template ID of the statistics options template.
pub const STATS_TEMPLATE_ID: u16 = 0xD000;

/// Where finished messages go.
pub trait MessageSink {
    fn send(&mut self, message: &[u8]) -> io::Result<()>;
}

impl<W: io::Write> MessageSink for W {
    fn send(&mut self, message: &[u8]) -> io::Result<()> {
        self.write_all(message)
    }
}

/// A template ready for encoding: its fields with their lengths.
struct Compiled {
    id: u16,
    fields: Vec<FieldOp>,
    record_len: usize,
    /// The template set announcing it, ready to copy into a message.
    set: Vec<u8>,
}

/// One field of a compiled template: its getter, direction, type and on-wire length, read
/// straight from the record without a trip through the element table.
struct FieldOp {
    get: ie::Getter,
    reverse: bool,
    ty: IeType,
    len: u16,
}

impl FieldOp {
    /// Write the field's value for `rec` into `out` (exactly its length). A value that does
    /// not fit, which the template logic rules out, is written as zeros so the record stays
    /// aligned.
    #[inline(always)]
    fn put(&self, rec: &FlowRecord, out: &mut [u8]) {
        let dir = if self.reverse { &rec.rev } else { &rec.fwd };
        if !(self.get)(rec, dir).encode(self.ty, out.len(), out) {
            out.fill(0);
        }
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
];

/// The values of [`STATS_FIELDS`], in order.
pub fn stats_values(s: &ProcessStats) -> [Value<'static>; 14] {
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
    compiled: Vec<Option<Compiled>>,
    /// Bit per template (dims), plus bit [`Dims::COUNT`] for the statistics template: sent in
    /// this stream.
    sent: u128,
    msg: Vec<u8>,
    /// The data set being filled: (template id, offset of its header in `msg`).
    open_set: Option<(u16, usize)>,
    /// Data records sent in this stream before the current message.
    sequence: u32,
    records_in_msg: u32,
    stats_set: Vec<u8>,
    stats_len: usize,
}

const STATS_SENT: u128 = 1 << Dims::COUNT;

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
            compiled: (0..Dims::COUNT).map(|_| None).collect(),
            sent: 0,
            msg: Vec::with_capacity(max_message),
            open_set: None,
            sequence: 0,
            records_in_msg: 0,
            stats_set,
            stats_len,
        }
    }

    pub fn spec(&self) -> &TemplateSpec {
        &self.spec
    }

    /// Data records handed out in complete messages so far in this stream.
    pub fn sequence(&self) -> u32 {
        self.sequence
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
        self.sent = 0;
        self.sequence = 0;
    }

    /// Send every template again before its next record, as after
    /// [`Encoder::forget_templates`], but in the same stream: the sequence number goes on. For
    /// the periodic template refresh of `--template-refresh` (RFC 7011 §8.4).
    pub fn resend_templates(&mut self) {
        self.sent = 0;
    }

    /// The template set (or options template set) announcing template `id`, if this encoder
    /// has built it. A stream transport puts it in front of data that a new connection has not
    /// seen the template for.
    pub fn template_set(&self, id: u16) -> Option<&[u8]> {
        if id == STATS_TEMPLATE_ID {
            return Some(&self.stats_set);
        }
        self.compiled
            .iter()
            .flatten()
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
        let dims = self.spec.dims(rec, self.force_biflow, true);
        let idx = usize::from(dims.0);
        if self.compiled[idx].is_none() {
            self.compiled[idx] = Some(compile(&self.spec, dims));
        }
        let Some(t) = self.compiled[idx].as_ref() else {
            return Ok(());
        };
        let (id, record_len) = (t.id, t.record_len);
        let template_bit = 1u128 << idx;
        self.reserve(id, record_len, template_bit, export_time, out, |enc| {
            enc.compiled[idx]
                .as_ref()
                .map(|t| t.set.clone())
                .unwrap_or_default()
        })?;
        let Some(t) = self.compiled[idx].as_ref() else {
            return Ok(());
        };
        let start = self.msg.len();
        self.msg.resize(start + record_len, 0);
        let mut rest = &mut self.msg[start..];
        for op in &t.fields {
            let (out, tail) = rest.split_at_mut(usize::from(op.len));
            op.put(rec, out);
            rest = tail;
        }
        self.records_in_msg += 1;
        Ok(())
    }

    /// Add a statistics options record.
    pub fn encode_stats(
        &mut self,
        stats: &ProcessStats,
        export_time: u32,
        out: &mut dyn MessageSink,
    ) -> io::Result<()> {
        let len = self.stats_len;
        self.reserve(
            STATS_TEMPLATE_ID,
            len,
            STATS_SENT,
            export_time,
            out,
            |enc| enc.stats_set.clone(),
        )?;
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

    /// Make room for one record of template `id`: flush a full message, announce the
    /// template if this stream has not seen it, open a data set for it.
    fn reserve(
        &mut self,
        id: u16,
        record_len: usize,
        template_bit: u128,
        export_time: u32,
        out: &mut dyn MessageSink,
        template_set: impl Fn(&Encoder) -> Vec<u8>,
    ) -> io::Result<()> {
        let needs_template = self.sent & template_bit == 0;
        let set_len = if needs_template {
            template_set(self).len()
        } else {
            0
        };
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
            let set = template_set(self);
            self.msg.extend_from_slice(&set);
            self.sent |= template_bit;
        }
        if !matches!(self.open_set, Some((open, _)) if open == id) {
            self.close_set();
            self.open_set = Some((id, self.msg.len()));
            self.msg.extend_from_slice(&id.to_be_bytes());
            self.msg.extend_from_slice(&[0, 0]);
        }
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
        self.sequence = self.sequence.wrapping_add(self.records_in_msg);
        self.msg.clear();
        self.records_in_msg = 0;
        result
    }

    /// Make sure the statistics template is in the stream (a stream that carries nothing else
    /// still starts with a template, so no output file is ever empty).
    pub fn announce(&mut self) {
        if self.sent & STATS_SENT != 0 {
            return;
        }
        if self.msg.is_empty() {
            self.start_message();
        }
        self.close_set();
        let set = self.stats_set.clone();
        self.msg.extend_from_slice(&set);
        self.sent |= STATS_SENT;
    }
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

fn compile(spec: &TemplateSpec, dims: Dims) -> Compiled {
    let fields: Vec<(Field, u16)> = spec
        .fields_for(dims)
        .map(|f| (*f, TemplateSpec::field_len(f, dims)))
        .collect();
    let record_len = fields.iter().map(|(_, l)| usize::from(*l)).sum();
    // Elements without a getter are refused when the template is built; zero regardless.
    let zero: ie::Getter = |_, _| Value::Unsigned(0);
    let ops = fields
        .iter()
        .map(|(f, len)| FieldOp {
            get: f.ie.value.unwrap_or(zero),
            reverse: f.reverse,
            ty: f.ie.ty,
            len: *len,
        })
        .collect();
    let id = dims.template_id();
    let mut set = Vec::new();
    set.extend_from_slice(&TEMPLATE_SET.to_be_bytes());
    set.extend_from_slice(&[0, 0]);
    set.extend_from_slice(&id.to_be_bytes());
    set.extend_from_slice(&(fields.len() as u16).to_be_bytes());
    for (f, len) in &fields {
        push_field_spec(&mut set, f.ie, f.reverse, *len);
    }
    let n = set.len() as u16;
    set[2..4].copy_from_slice(&n.to_be_bytes());
    Compiled {
        id,
        fields: ops,
        record_len,
        set,
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
