//! The plugins of header-line protocols read message by message (http, rtsp, sip): one
//! [`FlowPlugin`] over [`Messages`], each protocol giving its syntax, when a record splits,
//! what it takes from a head and what it exports.

use super::text_flow::{Handoff, Messages, Split, MAX_HEAD};
use super::text_wire::{Head, Syntax};
use super::Needs;
use crate::ie::PluginKind;
use crate::key::proto;
use crate::meter::{ExtWriter, FlowPlugin, FlowSummary, Opening, PacketView, Verdict};
use std::marker::PhantomData;

/// A header-line protocol as a plugin reads it.
pub trait Protocol: 'static {
    const KIND: PluginKind;
    const SYNTAX: &'static Syntax;
    const SPLIT: Split;
    /// UDP flows are read too (else TCP flows only).
    const UDP: bool;
    /// What one record keeps.
    type Values: Default + Send + 'static;
    /// Take a head's values (a head not whole yet is given again when more has come).
    fn take(values: &mut Self::Values, head: &Head<'_>);
    fn export(values: &Self::Values, out: &mut ExtWriter<'_>);
}

/// What the plugins read: each direction's stream and packets' payload, [`MAX_HEAD`] octets.
pub const NEEDS: Needs = Needs {
    payload: MAX_HEAD,
    stream: MAX_HEAD,
    tcp_options: false,
    headers: false,
};

/// The plugin of protocol `P`.
pub struct Reader<P> {
    /// From the record that ended before the packet being attached to.
    handoff: Option<Handoff>,
    _protocol: PhantomData<fn() -> P>,
}

impl<P> Default for Reader<P> {
    fn default() -> Self {
        Reader {
            handoff: None,
            _protocol: PhantomData,
        }
    }
}

/// One record's messages and values.
pub struct State<V> {
    messages: Messages,
    /// Taken with the first head.
    values: Option<Box<V>>,
}

impl<P: Protocol> FlowPlugin for Reader<P> {
    type State = State<P::Values>;
    const SPLITS: bool = true;
    const READS_STREAM: bool = true;
    // (A TCP connection's messages are its payload.)
    const FROM_PAYLOAD: bool = true;

    fn number(&self) -> u8 {
        P::KIND.number()
    }

    fn attach(&mut self, p: &PacketView<'_>) -> Option<Self::State> {
        let handoff = self.handoff.take();
        let ours = match p.pkt.key.proto {
            proto::TCP => p.pkt.tcp.is_some(),
            proto::UDP => P::UDP && p.pkt.has_l4,
            _ => false,
        };
        ours.then(|| State {
            messages: Messages::new(p, handoff),
            values: None,
        })
    }

    fn attach_late(&mut self, p: &PacketView<'_>, before: &Opening) -> Option<Self::State> {
        let mut s = self.attach(p)?;
        s.messages.opened(before);
        Some(s)
    }

    fn split_before(&mut self, s: &mut Self::State, p: &PacketView<'_>) -> bool {
        let split = s.messages.starts_next(p, P::SYNTAX, P::SPLIT);
        if split {
            self.handoff = Some(s.messages.handoff(p));
        }
        split
    }

    fn packet(&mut self, s: &mut Self::State, p: &PacketView<'_>) -> Verdict {
        let values = &mut s.values;
        s.messages.packet(p, P::SYNTAX, &mut |h| {
            P::take(values.get_or_insert_with(Default::default), h);
        });
        if s.messages.foreign() {
            // Not this protocol's flow: it costs nothing more.
            return Verdict::Drop;
        }
        Verdict::Continue
    }

    fn wants_stream(&self, s: &Self::State) -> bool {
        s.messages.wants_stream()
    }

    fn export(&mut self, s: Self::State, _: &FlowSummary, out: &mut ExtWriter<'_>) -> bool {
        match s.values {
            Some(v) => {
                P::export(&v, out);
                true
            }
            None => false,
        }
    }
}
