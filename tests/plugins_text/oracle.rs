//! tshark's side: each packet's flow and application fields, and what each qof element is
//! compared with.

use super::common::run;
use qof::plugins::{http, rtsp, sip, smtp, ssdp};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;

/// A flow: protocol and its two endpoints, in order.
pub type Flow = (u8, (IpAddr, u16), (IpAddr, u16));

pub fn flow(proto: u8, a: (IpAddr, u16), b: (IpAddr, u16)) -> Flow {
    (proto, a.min(b), a.max(b))
}

/// One packet as tshark dissects it.
pub struct Frame {
    pub number: u64,
    pub ms: u64,
    pub flow: Option<Flow>,
    fields: BTreeMap<String, Vec<String>>,
}

impl Frame {
    fn all(&self, name: &str) -> &[String] {
        self.fields.get(name).map_or(&[], Vec::as_slice)
    }

    fn tcp(&self) -> bool {
        self.flow.is_some_and(|f| f.0 == 6)
    }

    fn udp(&self) -> bool {
        self.flow.is_some_and(|f| f.0 == 17)
    }
}

/// The fields asked of tshark beside those that place a packet.
const APP_FIELDS: &[&str] = &[
    "http.host",
    "http.user_agent",
    "http.request.method",
    "http.request.uri",
    "http.referer",
    "http.response.code",
    "http.content_type",
    "http.server",
    "http.set_cookie",
    "http.location",
    "http.request.line",
    "http.response.line",
    "http.unknown_header",
    "rtsp.method",
    "rtsp.url",
    "rtsp.status",
    "rtsp.content-type",
    "sip.Method",
    "sip.Status-Code",
    "sip.Call-ID",
    "sip.CSeq",
    "sip.from.addr",
    "sip.to.addr",
    "sip.User-Agent",
    "sip.r-uri",
    "sip.Via",
    "smtp.req.command",
    "smtp.command_line",
    "smtp.response.code",
    "smtp.response",
    "smtp.rsp.parameter",
];

pub fn tshark_frames(cap: &Path) -> Vec<Frame> {
    let mut cmd = std::process::Command::new("tshark");
    cmd.arg("-r").arg(cap).args(["-n", "-T", "json"]);
    for f in [
        "frame.number",
        "frame.time_epoch",
        "frame.protocols",
        "ip.src",
        "ip.dst",
        "ipv6.src",
        "ipv6.dst",
        "tcp.srcport",
        "tcp.dstport",
        "udp.srcport",
        "udp.dstport",
    ]
    .iter()
    .chain(APP_FIELDS)
    {
        cmd.args(["-e", f]);
    }
    let out = run(&mut cmd);
    let text = String::from_utf8_lossy(&out.stdout);
    let Ok(Value::Array(packets)) = serde_json::from_str::<Value>(&text) else {
        // tshark prints nothing for a file it cannot read at all.
        return Vec::new();
    };
    packets
        .iter()
        .filter_map(|p| {
            let layers = p.pointer("/_source/layers")?.as_object()?;
            let fields: BTreeMap<String, Vec<String>> = layers
                .iter()
                .map(|(k, v)| {
                    let vals = v.as_array().map_or(Vec::new(), |a| {
                        a.iter()
                            .map(|x| x.as_str().unwrap_or("").to_string())
                            .collect()
                    });
                    (k.clone(), vals)
                })
                .collect();
            let one = |k: &str| fields.get(k).and_then(|v| v.first()).cloned();
            let number = one("frame.number")?.parse().ok()?;
            let epoch: f64 = one("frame.time_epoch")?.parse().ok()?;
            let ms = (epoch * 1000.0).floor() as u64;
            let protocols = one("frame.protocols").unwrap_or_default();
            let flow = frame_flow(&protocols, &fields);
            Some(Frame {
                number,
                ms,
                flow,
                fields,
            })
        })
        .collect()
}

/// The flow of a frame: its innermost IP header's addresses and its transport ports. ICMP
/// errors quote a packet of another flow: theirs is an ICMP flow, of no interest here.
fn frame_flow(protocols: &str, f: &BTreeMap<String, Vec<String>>) -> Option<Flow> {
    let layers: Vec<&str> = protocols.split(':').collect();
    if layers.iter().any(|l| l.starts_with("icmp")) {
        return None;
    }
    let l4 = layers.iter().rposition(|l| *l == "tcp" || *l == "udp")?;
    let family = layers[..l4]
        .iter()
        .rposition(|l| *l == "ip" || *l == "ipv6")?;
    let last = |k: &str| f.get(k).and_then(|v| v.last()).cloned();
    let (src, dst) = match layers[family] {
        "ip" => (last("ip.src")?, last("ip.dst")?),
        _ => (last("ipv6.src")?, last("ipv6.dst")?),
    };
    let (proto, t) = if layers[l4] == "tcp" {
        (6, "tcp")
    } else {
        (17, "udp")
    };
    let sp = last(&format!("{t}.srcport"))?.parse().ok()?;
    let dp = last(&format!("{t}.dstport"))?.parse().ok()?;
    Some(flow(
        proto,
        (src.parse().ok()?, sp),
        (dst.parse().ok()?, dp),
    ))
}

/// tshark's values of a field in a record's frames.
pub type Oracle = Box<dyn Fn(&[&Frame]) -> BTreeSet<String>>;

pub struct Check {
    /// tshark's field(s), as the table shows them.
    pub label: &'static str,
    /// qof's element.
    pub element: &'static str,
    /// Octets qof keeps of the value (a longer one is found when it starts with qof's).
    pub bound: usize,
    /// qof's value that means none.
    pub none: &'static str,
    pub oracle: Oracle,
}

/// A field value as tshark shows it with its line folding (CRLF and whitespace) as the one
/// space it stands for (RFC 9112 §5.2, RFC 3261 §7.3.1).
fn unfold(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut rest = v;
    while let Some(at) = rest.find(['\r', '\n']) {
        out.push_str(rest[..at].trim_end_matches([' ', '\t']));
        rest = rest[at..].trim_start_matches(['\r', '\n', ' ', '\t']);
        out.push(' ');
    }
    out.push_str(rest);
    out
}

/// The distinct values of a tshark field in the frames `pick` takes.
fn field(name: &'static str, pick: fn(&Frame) -> bool) -> Oracle {
    Box::new(move |frames| {
        frames
            .iter()
            .filter(|f| pick(f))
            .flat_map(|f| f.all(name).iter().map(|v| unfold(v)))
            .collect()
    })
}

/// One value derived from a record's frames (`None`: tshark shows nothing to derive it from).
fn derived(f: impl Fn(&[&Frame]) -> Option<String> + 'static) -> Oracle {
    Box::new(move |frames| f(frames).into_iter().collect())
}

/// A `;` list of whole values within `max` octets, each once if `distinct` (as the plugins
/// make them).
fn join(values: impl IntoIterator<Item = String>, max: usize, distinct: bool) -> String {
    let mut out = String::new();
    for v in values {
        if v.is_empty() || distinct && out.split(';').any(|x| x == v) {
            continue;
        }
        let sep = usize::from(!out.is_empty());
        if out.len() + sep + v.len() <= max {
            if sep == 1 {
                out.push(';');
            }
            out.push_str(&v);
        }
    }
    out
}

/// "NAME: value" header lines tshark lists.
fn header_lines<'a>(f: &'a Frame, name: &'a str) -> impl Iterator<Item = String> + 'a {
    [
        "http.request.line",
        "http.response.line",
        "http.unknown_header",
    ]
    .into_iter()
    .flat_map(move |k| f.all(k).iter())
    .filter_map(move |l| {
        // (tshark writes the line end of headers it does not know as the text "\r\n".)
        let l = l.trim_end_matches(['\r', '\n']).trim_end_matches("\\r\\n");
        let (n, v) = l.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

fn sip_type(method: &str) -> String {
    let codes = [
        "INVITE",
        "ACK",
        "CANCEL",
        "BYE",
        "REGISTER",
        "OPTIONS",
        "PUBLISH",
        "NOTIFY",
        "INFO",
        "SUBSCRIBE",
    ];
    codes
        .iter()
        .position(|m| *m == method)
        .map_or(0, |i| i + 1)
        .to_string()
}

/// An SMTP command line's verb (upper case) and parameter.
fn smtp_commands(frames: &[&Frame]) -> Vec<(String, String)> {
    frames
        .iter()
        .flat_map(|f| f.all("smtp.command_line").iter())
        .map(|l| {
            let l = l.trim_end_matches(['\r', '\n']);
            let (verb, param) = l.split_once(' ').unwrap_or((l, ""));
            (verb.to_ascii_uppercase(), param.trim().to_string())
        })
        .collect()
}

fn smtp_codes(frames: &[&Frame]) -> Vec<u32> {
    frames
        .iter()
        .flat_map(|f| f.all("smtp.response.code").iter())
        .filter_map(|c| c.parse().ok())
        .collect()
}

fn is_smtp(frames: &[&Frame]) -> bool {
    frames
        .iter()
        .any(|f| !f.all("smtp.command_line").is_empty() || !f.all("smtp.response.code").is_empty())
}

/// The address of a MAIL or RCPT parameter (`FROM:<a@b> SIZE=1`).
fn smtp_address(param: &str) -> String {
    let rest = param.split_once(':').map_or("", |(_, r)| r).trim();
    match rest.strip_prefix('<') {
        Some(r) => {
            let path = r.split('>').next().unwrap_or("");
            match path.split_once(':') {
                Some((route, addr)) if route.starts_with('@') => addr.to_string(),
                _ => path.to_string(),
            }
        }
        None => rest.split(' ').next().unwrap_or("").to_string(),
    }
}

fn first_param(frames: &[&Frame], verbs: &[&str]) -> Option<String> {
    smtp_commands(frames)
        .into_iter()
        .find(|(v, _)| verbs.contains(&v.as_str()))
        .map(|(_, p)| p)
}

fn ssdp_frames<'a>(frames: &'a [&'a Frame]) -> impl Iterator<Item = (&'a Frame, &'a str)> {
    frames.iter().filter(|f| f.udp()).filter_map(|f| {
        let kind = match (
            f.all("http.request.method").first(),
            f.all("http.response.code").first(),
        ) {
            (Some(m), _) if m == "NOTIFY" || m == "M-SEARCH" => m.as_str(),
            (None, Some(_)) => "response",
            _ => return None,
        };
        Some((*f, kind))
    })
}

fn urn(v: String) -> Option<String> {
    v.get(..4)
        .filter(|p| p.eq_ignore_ascii_case("urn:"))
        .map(|_| v[4..].to_string())
}

fn url_port(url: &str) -> Option<u16> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit('@').next()?;
    let after = host.rsplit(']').next()?;
    match after.rsplit_once(':') {
        Some((_, port)) => port.parse().ok(),
        None if scheme.eq_ignore_ascii_case("http") => Some(80),
        None if scheme.eq_ignore_ascii_case("https") => Some(443),
        None => None,
    }
}

pub fn checks() -> Vec<Check> {
    let tcp = |f: &Frame| f.tcp();
    let any = |_: &Frame| true;
    let s = |label, element, bound, oracle| Check {
        label,
        element,
        bound,
        none: "",
        oracle,
    };
    let n = |label, element, oracle| Check {
        label,
        element,
        bound: usize::MAX,
        none: "0",
        oracle,
    };
    // Derived values that are a record's whole (counts, bitmaps, lists): compared as they are.
    let whole = |label, element, oracle| Check {
        label,
        element,
        bound: usize::MAX,
        none: "\u{0}",
        oracle,
    };
    let smtp_bits = |frames: &[&Frame]| {
        is_smtp(frames).then(|| {
            let bits = smtp_commands(frames).iter().fold(0u32, |acc, (v, _)| {
                let known = [
                    "EHLO", "HELO", "MAIL", "RCPT", "DATA", "RSET", "VRFY", "EXPN", "HELP", "NOOP",
                    "QUIT",
                ];
                let other = [
                    "STARTTLS", "AUTH", "BDAT", "ETRN", "ATRN", "TURN", "XCLIENT", "XFORWARD",
                    "SEND", "SOML", "SAML",
                ];
                acc | match known.iter().position(|k| k == v) {
                    Some(i) => 1 << i,
                    None if other.contains(&v.as_str()) => 0,
                    None => 0x8000,
                }
            });
            bits.to_string()
        })
    };
    let codes_bits = |frames: &[&Frame]| {
        is_smtp(frames).then(|| {
            let table = [
                211, 214, 220, 221, 250, 251, 252, 354, 421, 450, 451, 452, 455, 500, 501, 502,
                503, 504, 550, 551, 552, 553, 554, 555,
            ];
            let mut bits = smtp_codes(frames).iter().fold(0u32, |acc, c| {
                acc | table
                    .iter()
                    .position(|t| t == c)
                    .map_or(0x8000_0000, |i| 1 << i)
            });
            let spam = frames.iter().any(|f| {
                ["smtp.response", "smtp.rsp.parameter"]
                    .iter()
                    .flat_map(|k| f.all(k))
                    .any(|l| l.to_ascii_lowercase().contains("spam"))
            });
            if spam {
                bits |= 0x4000_0000;
            }
            bits.to_string()
        })
    };
    let class = |c: u32| {
        move |frames: &[&Frame]| {
            is_smtp(frames).then(|| {
                let n = smtp_codes(frames).iter().filter(|&&x| x / 100 == c).count();
                n.to_string()
            })
        }
    };
    let count = |verb: &'static str| {
        move |frames: &[&Frame]| {
            is_smtp(frames).then(|| {
                let n = smtp_commands(frames)
                    .iter()
                    .filter(|(v, _)| v == verb)
                    .count();
                n.to_string()
            })
        }
    };
    let ssdp_list = |name: &'static str, kinds: &'static [&'static str], max: usize, urns: bool| {
        move |frames: &[&Frame]| {
            let vals: Vec<String> = ssdp_frames(frames)
                .filter(|(_, k)| kinds.contains(k))
                .flat_map(|(f, _)| {
                    let mut v: Vec<String> = header_lines(f, name).collect();
                    // tshark lists the headers it knows under their own fields.
                    let own = match name {
                        "SERVER" => f.all("http.server"),
                        "USER-AGENT" => f.all("http.user_agent"),
                        _ => &[],
                    };
                    if v.is_empty() {
                        v.extend(own.iter().cloned());
                    }
                    v
                })
                .filter_map(|v| if urns { urn(v) } else { Some(v) })
                .collect();
            let list = join(vals, max, true);
            (!list.is_empty()).then_some(list)
        }
    };
    vec![
        s(
            "http.host",
            "httpHost",
            http::max::HOST,
            field("http.host", tcp),
        ),
        s(
            "http.user_agent",
            "httpUserAgent",
            http::max::USER_AGENT,
            field("http.user_agent", tcp),
        ),
        s(
            "http.request.method",
            "httpMethod",
            http::max::METHOD,
            field("http.request.method", tcp),
        ),
        s(
            "http.request.uri",
            "httpUrl",
            http::max::URL,
            field("http.request.uri", tcp),
        ),
        s(
            "http.referer",
            "httpReferer",
            http::max::REFERER,
            field("http.referer", tcp),
        ),
        n(
            "http.response.code",
            "httpStatusCode",
            field("http.response.code", tcp),
        ),
        s(
            "http.content_type (responses)",
            "httpContentType",
            http::max::CONTENT_TYPE,
            field("http.content_type", |f| {
                f.tcp() && !f.all("http.response.code").is_empty()
            }),
        ),
        s(
            "http.server",
            "httpServer",
            http::max::SERVER,
            field("http.server", tcp),
        ),
        s(
            "http.set_cookie names",
            "httpCookieNames",
            usize::MAX,
            Box::new(|frames: &[&Frame]| {
                frames
                    .iter()
                    .filter(|f| f.tcp())
                    .map(|f| {
                        let names = f
                            .all("http.set_cookie")
                            .iter()
                            .filter_map(|c| c.split_once('=').map(|(n, _)| n.trim().to_string()));
                        join(names, http::max::COOKIE_NAMES, true)
                    })
                    .filter(|l| !l.is_empty())
                    .collect()
            }),
        ),
        s(
            "rtsp.method",
            "rtspMethod",
            rtsp::max::METHOD,
            field("rtsp.method", tcp),
        ),
        s(
            "rtsp.url",
            "rtspURI",
            rtsp::max::URI,
            field("rtsp.url", tcp),
        ),
        n("rtsp.status", "rtspStatus", field("rtsp.status", tcp)),
        s(
            "rtsp.content-type (responses)",
            "rtspContentType",
            rtsp::max::CONTENT_TYPE,
            field("rtsp.content-type", |f| {
                f.tcp() && !f.all("rtsp.status").is_empty()
            }),
        ),
        whole(
            "sip.Method, sip.Status-Code",
            "SIPMsgType",
            Box::new(|frames: &[&Frame]| {
                frames
                    .iter()
                    .flat_map(|f| {
                        let req = f.all("sip.Method").iter().map(|m| sip_type(m));
                        let resp = f.all("sip.Status-Code").iter().map(|_| "99".to_string());
                        req.chain(resp)
                    })
                    .collect()
            }),
        ),
        n(
            "sip.Status-Code",
            "SIPStatusCode",
            field("sip.Status-Code", any),
        ),
        s(
            "sip.Call-ID",
            "SIPCallID",
            sip::max::CALL_ID,
            field("sip.Call-ID", any),
        ),
        s(
            "sip.CSeq",
            "SIPCseq",
            sip::max::CSEQ,
            field("sip.CSeq", any),
        ),
        s(
            "sip.from.addr",
            "SIPCallingParty",
            sip::max::FROM,
            field("sip.from.addr", any),
        ),
        s(
            "sip.to.addr",
            "SIPCalledParty",
            sip::max::TO,
            field("sip.to.addr", any),
        ),
        s(
            "sip.User-Agent",
            "SIPUserAgent",
            sip::max::USER_AGENT,
            field("sip.User-Agent", any),
        ),
        s(
            "sip.r-uri",
            "SIPRequestURI",
            sip::max::REQUEST_URI,
            field("sip.r-uri", any),
        ),
        s(
            "sip.Via (sent-by)",
            "SIPVia",
            usize::MAX,
            Box::new(|frames: &[&Frame]| {
                frames
                    .iter()
                    .map(|f| {
                        let items = f.all("sip.Via").iter().flat_map(|v| {
                            v.split(',')
                                .map(|p| p.split(';').next().unwrap_or("").trim().to_string())
                                .collect::<Vec<_>>()
                        });
                        join(items, sip::max::VIA, false)
                    })
                    .filter(|l| !l.is_empty())
                    .collect()
            }),
        ),
        whole("smtp.req.command", "SMTPCommands", derived(smtp_bits)),
        whole(
            "smtp.req.command MAIL",
            "SMTPMailCount",
            derived(count("MAIL")),
        ),
        whole(
            "smtp.req.command RCPT",
            "SMTPRcptCount",
            derived(count("RCPT")),
        ),
        whole("smtp.response.code", "SMTPStatusCodes", derived(codes_bits)),
        whole(
            "smtp.response.code 2xx",
            "SMTPCode2XXCount",
            derived(class(2)),
        ),
        whole(
            "smtp.response.code 3xx",
            "SMTPCode3XXCount",
            derived(class(3)),
        ),
        whole(
            "smtp.response.code 4xx",
            "SMTPCode4XXCount",
            derived(class(4)),
        ),
        whole(
            "smtp.response.code 5xx",
            "SMTPCode5XXCount",
            derived(class(5)),
        ),
        s(
            "smtp.req.parameter HELO/EHLO",
            "SMTPDomain",
            smtp::MAX_STRING,
            derived(|frames: &[&Frame]| first_param(frames, &["HELO", "EHLO"])),
        ),
        s(
            "smtp.req.parameter MAIL",
            "SMTPSender",
            smtp::MAX_STRING,
            derived(|frames: &[&Frame]| {
                first_param(frames, &["MAIL"])
                    .map(|p| smtp_address(&p))
                    .filter(|a| !a.is_empty())
            }),
        ),
        s(
            "smtp.req.parameter RCPT",
            "SMTPRecipient",
            smtp::MAX_STRING,
            derived(|frames: &[&Frame]| first_param(frames, &["RCPT"]).map(|p| smtp_address(&p))),
        ),
        whole(
            "ssdp NT (urn)",
            "SSDPNT",
            derived(ssdp_list("NT", &["NOTIFY"], ssdp::max::NT, true)),
        ),
        whole(
            "ssdp ST (urn)",
            "SSDPST",
            derived(ssdp_list(
                "ST",
                &["M-SEARCH", "response"],
                ssdp::max::ST,
                true,
            )),
        ),
        whole(
            "ssdp SERVER",
            "SSDPServer",
            derived(ssdp_list(
                "SERVER",
                &["NOTIFY", "response"],
                ssdp::max::SERVER,
                false,
            )),
        ),
        whole(
            "ssdp USER-AGENT",
            "SSDPUserAgent",
            derived(ssdp_list(
                "USER-AGENT",
                &["M-SEARCH"],
                ssdp::max::USER_AGENT,
                false,
            )),
        ),
        whole(
            "ssdp LOCATION port",
            "SSDPLocationPort",
            derived(|frames: &[&Frame]| {
                ssdp_frames(frames)
                    .filter(|(_, k)| *k != "M-SEARCH")
                    .flat_map(|(f, _)| f.all("http.location").iter())
                    .filter_map(|u| url_port(u))
                    .last()
                    .map(|p| p.to_string())
            }),
        ),
    ]
}
