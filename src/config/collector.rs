//! Collector addresses as `--out` names them for `--ipfix` and `--netflow`: one or several,
//! comma-separated (ipt-netflow's `destination=a,b`), each `HOST`, `HOST:PORT` (softflowd's
//! `-n host:port`), `[IPV6]:PORT` or a bare IPv6 address, with an optional transport in front
//! (`tcp://`, `udp://`, `sctp://`: this collector's own, IPFIX only) and an optional local
//! address to send from after it (`@ADDRESS`, ipt-netflow's).

use super::IpfixTransport;
use anyhow::{anyhow, bail, Result};
use std::net::{IpAddr, Ipv6Addr};

/// One collector of `--out`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectorSpec {
    /// `tcp://` and the like in front: this collector's transport, whatever `--ipfix` says.
    pub transport: Option<IpfixTransport>,
    /// A host name or an IP address, without brackets.
    pub host: String,
    /// The port given after the host, if any (else `--ipfix-port` or the default).
    pub port: Option<u16>,
    /// `@ADDRESS` after it: the local address its socket is bound to.
    pub source: Option<IpAddr>,
}

/// The collectors of `text` (`--out`), in order; an error names the entry and what is wrong
/// with it, in one line.
pub fn parse_collectors(text: &str) -> Result<Vec<CollectorSpec>> {
    if text.trim().is_empty() {
        bail!("--out: give the collector's host (HOST, HOST:PORT or [IPV6]:PORT)");
    }
    let entries: Vec<&str> = text.split(',').collect();
    entries
        .iter()
        .map(|e| {
            parse_one(e.trim()).map_err(|why| {
                if entries.len() == 1 {
                    anyhow!("--out {text}: {why}")
                } else {
                    anyhow!("--out {text}: collector `{}`: {why}", e.trim())
                }
            })
        })
        .collect()
}

fn parse_one(entry: &str) -> Result<CollectorSpec, String> {
    if entry.is_empty() {
        return Err("an empty collector (two commas, or one at an end)".into());
    }
    let (transport, rest) = match entry.split_once("://") {
        Some((scheme, rest)) => {
            let t = match scheme {
                "tcp" => IpfixTransport::Tcp,
                "udp" => IpfixTransport::Udp,
                "sctp" => IpfixTransport::Sctp,
                other => return Err(format!("unknown transport `{other}://` (tcp, udp or sctp)")),
            };
            (Some(t), rest)
        }
        None => (None, entry),
    };
    let (address, source) = match rest.rsplit_once('@') {
        Some((a, s)) => (
            a,
            Some(parse_ip(s).ok_or_else(|| format!("`@{s}` is not an IP address to send from"))?),
        ),
        None => (rest, None),
    };
    let (host, port) = split_host_port(address)?;
    if host.is_empty() {
        return Err("no host before the port".into());
    }
    if host.contains(['/', ' ', '[', ']']) {
        return Err(format!("`{host}` is not a host name or IP address"));
    }
    Ok(CollectorSpec {
        transport,
        host: host.to_string(),
        port,
        source,
    })
}

/// An IP address, IPv6 with or without brackets.
pub fn parse_ip(text: &str) -> Option<IpAddr> {
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    bare.parse().ok()
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`, or a bare IPv6 address (two colons or more,
/// no brackets: all of it is the address, as softflowd reads it).
fn split_host_port(text: &str) -> Result<(&str, Option<u16>), String> {
    if let Some(inner) = text.strip_prefix('[') {
        let Some((addr, after)) = inner.split_once(']') else {
            return Err(format!("`{text}`: a `[` without its `]`"));
        };
        if addr.parse::<Ipv6Addr>().is_err() {
            return Err(format!("`[{addr}]` is not an IPv6 address"));
        }
        return match after {
            "" => Ok((addr, None)),
            p => match p.strip_prefix(':') {
                Some(p) => Ok((addr, Some(parse_port(p)?))),
                None => Err(format!("`{text}`: expected `:PORT` after `]`")),
            },
        };
    }
    match text.matches(':').count() {
        0 => Ok((text, None)),
        1 => {
            let (h, p) = text.split_once(':').unwrap_or((text, ""));
            Ok((h, Some(parse_port(p)?)))
        }
        _ => match text.parse::<Ipv6Addr>() {
            Ok(_) => Ok((text, None)),
            Err(_) => Err(format!(
                "`{text}` is not an IPv6 address (with a port, write [ADDRESS]:PORT)"
            )),
        },
    }
}

/// A port number, 1-65535.
pub fn parse_port(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("port `{text}` is not a number from 1 to 65535")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> CollectorSpec {
        let mut v = parse_collectors(text).unwrap();
        assert_eq!(v.len(), 1, "{text}");
        v.remove(0)
    }

    #[test]
    fn hosts_ports_and_addresses() {
        let c = one("collector.example");
        assert_eq!((c.host.as_str(), c.port), ("collector.example", None));
        let c = one("10.0.0.1:2055");
        assert_eq!((c.host.as_str(), c.port), ("10.0.0.1", Some(2055)));
        let c = one("::1");
        assert_eq!((c.host.as_str(), c.port), ("::1", None));
        let c = one("[2001:db8::1]:9995");
        assert_eq!((c.host.as_str(), c.port), ("2001:db8::1", Some(9995)));
        let c = one("[::1]");
        assert_eq!((c.host.as_str(), c.port), ("::1", None));
        let c = one("tcp://h:1@127.0.0.2");
        assert_eq!(c.transport, Some(IpfixTransport::Tcp));
        assert_eq!(c.source, Some("127.0.0.2".parse().unwrap()));
        let c = one("udp://[::1]:5@[::1]");
        assert_eq!(c.transport, Some(IpfixTransport::Udp));
        assert_eq!(c.source, Some("::1".parse().unwrap()));
        let v = parse_collectors("127.0.0.1:1, [::1]:2,sctp://c").unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[2].transport, Some(IpfixTransport::Sctp));
    }

    #[test]
    fn mistakes_are_one_line_naming_the_entry() {
        for (text, what) in [
            ("", "give the collector's host"),
            ("a,,b", "an empty collector"),
            ("h:0", "port `0`"),
            ("h:99999", "port `99999`"),
            ("h:x", "port `x`"),
            (":80", "no host"),
            ("[::1", "without its `]`"),
            ("[h]:1", "not an IPv6 address"),
            ("[::1]x", "expected `:PORT`"),
            ("1:2:3:x", "not an IPv6 address"),
            ("quic://h", "unknown transport `quic://`"),
            ("h@nowhere", "not an IP address to send from"),
            ("a b", "not a host name"),
        ] {
            let e = parse_collectors(text).unwrap_err().to_string();
            assert!(e.contains(what), "{text}: {e}");
            assert!(e.starts_with("--out"), "{e}");
            assert!(!e.contains('\n'), "{e}");
        }
        let e = parse_collectors("a:1,b:0").unwrap_err().to_string();
        assert!(e.contains("collector `b:0`"), "{e}");
    }
}
