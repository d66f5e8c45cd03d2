//! Flow plugins: per-flow extensions in ipfixprobe's manner, on the meter's plugin seam
//! ([`crate::meter::plugin`]).
//!
//! Each plugin is a module with a [`Spec`]: its name and options (ipfixprobe's spelling,
//! `--plugin 'pstats;includezeroes;skipdup'`), what it needs from the decoder, and how to
//! build it. Its elements are in the one element table ([`crate::ie::TABLE`], `Applies::Plugin`);
//! naming one of them in a template enables the plugin with default options.

mod basicplus;
mod bstats;
#[cfg(test)]
mod corpus_payloads;
pub mod dns;
mod dns_source;
pub mod dns_wire;
pub mod dnssd;
pub mod flowhash;
pub mod framer;
mod headers;
pub mod http;
mod icmp;
mod idpcontent;
mod mpls;
pub mod mqtt;
pub mod netbios;
mod nettisa;
pub mod ntp;
mod options;
pub mod ovpn;
pub mod passivedns;
mod phists;
mod pstats;
pub mod quic;
pub mod rtsp;
#[cfg(test)]
mod sim;
pub mod sip;
pub mod smtp;
mod ssadetector;
pub mod ssdp;
#[cfg(test)]
mod testdata;
#[cfg(test)]
mod testing;
pub mod text_flow;
#[cfg(test)]
mod text_harness;
mod text_plugin;
pub mod text_wire;
pub mod tls;
mod vlan;
pub mod wg;

pub use options::{Options, PluginSpec};

use crate::ie::PluginKind;
use crate::ipfix::TemplateSpec;
use crate::meter::{Hosted, PluginSet};

#[cfg(doc)]
use crate::ie::TABLE;
use std::fmt;

/// A packet's payload length as ipfixprobe's plugins count it (`payload_len_wire`): after the
/// TCP or UDP header, or the whole IP payload for other protocols and IP fragments after the
/// first.
pub fn wire_payload(pkt: &crate::decode::Packet) -> u32 {
    use crate::key::proto;
    match pkt.key.proto {
        proto::TCP if pkt.tcp.is_some() => pkt.payload_len,
        proto::UDP if pkt.has_l4 => pkt.payload_len,
        _ => pkt.ip_len.saturating_sub(pkt.ip_header_len),
    }
}

/// What a plugin needs the decoder and the look-ahead queue to provide.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// Octets of transport payload it reads at most (0: none).
    pub payload: usize,
    /// Octets of each TCP direction's byte stream, in sequence order, it reads at most (0:
    /// none): one buffer per flow direction, shared by the plugins (`meter::stream`).
    pub stream: usize,
    /// TCP options decoded (kinds, MSS, ...).
    pub tcp_options: bool,
    /// Header details (IPv4 options walked).
    pub headers: bool,
}

impl Needs {
    fn join(self, o: Needs) -> Needs {
        Needs {
            payload: self.payload.max(o.payload),
            stream: self.stream.max(o.stream),
            tcp_options: self.tcp_options || o.tcp_options,
            headers: self.headers || o.headers,
        }
    }
}

/// An option a plugin takes: its long and short names (ipfixprobe's), whether it takes a
/// value, and what it does (for `--help` and errors).
pub struct OptionSpec {
    pub name: &'static str,
    pub short: &'static str,
    pub takes_value: bool,
    pub help: &'static str,
}

/// A plugin's entry in the registry.
pub struct Spec {
    pub kind: PluginKind,
    /// One line for `--help`.
    pub about: &'static str,
    pub options: &'static [OptionSpec],
    /// Build the plugin from its options (checked against `options` already).
    pub build: fn(&Options) -> Result<Built, PluginError>,
}

/// A plugin ready for a meter, and what it needs.
pub type Built = (Box<dyn Hosted>, Needs);

/// Every plugin this version has.
pub static REGISTRY: &[&Spec] = &[
    &pstats::SPEC,
    &phists::SPEC,
    &bstats::SPEC,
    &nettisa::SPEC,
    &ssadetector::SPEC,
    &basicplus::SPEC,
    &idpcontent::SPEC,
    &flowhash::SPEC,
    &icmp::SPEC,
    &vlan::SPEC,
    &mpls::SPEC,
    &headers::SPEC,
    &dns::SPEC,
    &passivedns::SPEC,
    &ntp::SPEC,
    &dnssd::SPEC,
    &netbios::SPEC,
    &mqtt::SPEC,
    &ovpn::SPEC,
    &wg::SPEC,
    &tls::SPEC,
    &quic::SPEC,
    &http::SPEC,
    &rtsp::SPEC,
    &sip::SPEC,
    &smtp::SPEC,
    &ssdp::SPEC,
];

/// The registry entry of a plugin.
pub fn spec(kind: PluginKind) -> Option<&'static Spec> {
    REGISTRY.iter().copied().find(|s| s.kind == kind)
}

/// `--plugin help`: every plugin, what it measures, its options and its elements.
pub fn help() -> String {
    use std::fmt::Write;
    let mut out = String::from("Plugins (--plugin NAME[;OPTION[=VALUE]...], repeatable):\n");
    for s in REGISTRY {
        let _ = writeln!(out, "\n  {:<12} {}", s.kind.name(), s.about);
        for o in s.options {
            let name = if o.takes_value {
                format!("{}=VALUE", o.name)
            } else {
                o.name.to_string()
            };
            let _ = writeln!(out, "    {:<22} ({}) {}", name, o.short, o.help);
        }
        let names: Vec<&str> = s.kind.elements().map(|ie| ie.name).collect();
        let _ = writeln!(out, "    elements: {}", names.join(", "));
    }
    out
}

/// A bad `--plugin` argument or YAML `plugins:` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginError(pub String);

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PluginError {}

/// The plugins to run: those named (with their options), and those whose elements the
/// template names (with default options). Returns the template with every enabled plugin's
/// elements, the plugin set for a meter, and what the decoder must provide.
pub fn build(
    named: &[PluginSpec],
    template: &TemplateSpec,
) -> Result<(TemplateSpec, PluginSet, Needs), PluginError> {
    let mut enabled: Vec<PluginSpec> = Vec::new();
    for p in named {
        if enabled.iter().any(|e| e.kind == p.kind) {
            return Err(PluginError(format!(
                "plugin `{}` is given twice",
                p.kind.name()
            )));
        }
        enabled.push(p.clone());
    }
    for &k in template.plugins() {
        if !enabled.iter().any(|e| e.kind == k) {
            enabled.push(PluginSpec::defaults(k));
        }
    }
    let kinds: Vec<PluginKind> = enabled.iter().map(|p| p.kind).collect();
    let template = template.with_plugins(&kinds);
    // Plugins in the order of their elements in the template.
    let mut hosted = Vec::new();
    let mut needs = Needs::default();
    for &k in template.plugins() {
        let Some(p) = enabled.iter().find(|p| p.kind == k) else {
            continue;
        };
        let spec = spec(k).ok_or_else(|| {
            PluginError(format!(
                "plugin `{}` is not implemented by this version of qof",
                k.name()
            ))
        })?;
        let (h, n) = (spec.build)(&p.options)?;
        hosted.push(h);
        needs = needs.join(n);
    }
    let reads = crate::meter::Reads {
        payload: needs.payload,
        stream: needs.stream,
    };
    let set = PluginSet::new(hosted, template.ext_keys(), reads);
    Ok((template, set, needs))
}
