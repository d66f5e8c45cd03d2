//! `--timeout NAME=TIME` and the YAML `timeouts:` map: softflowd's `-t` names and time format.
//!
//! | name | qof |
//! |---|---|
//! | `general` | the idle timeout of every flow no other name covers (YAML `idle-timeout`) |
//! | `tcp`, `udp`, `icmp` | the idle timeout of TCP, UDP, ICMP and ICMPv6 flows |
//! | `tcp.rst` | a TCP flow stays this long after a RST (0: ends at once, the default) |
//! | `tcp.fin` | ... after both FINs are acknowledged (0: ends at once, the default) |
//! | `maxlife` | the active timeout (YAML `active-timeout`); 0 = off |
//! | `expint` | idle flows are looked for every this many seconds (0 or 1: every second) |
//!
//! TIME is seconds (`300`) or a sum of numbers with units `s`, `m`, `h`, `d`, `w`
//! (`90s`, `5m`, `1h30m`, `2d`).

use crate::meter::MeterConfig;
use anyhow::{anyhow, bail, Result};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The names `--timeout` takes.
pub const NAMES: &str = "general, tcp, tcp.rst, tcp.fin, udp, icmp, maxlife or expint";

/// The longest time any timeout may be: a year.
const MAX_SECS: u64 = 86_400 * 365;

/// A YAML time: a number of seconds or a text with units.
#[derive(Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(untagged)]
pub enum YamlTime {
    Secs(u64),
    Text(String),
}

impl YamlTime {
    fn text(&self) -> String {
        match self {
            YamlTime::Secs(s) => s.to_string(),
            YamlTime::Text(t) => t.clone(),
        }
    }
}

/// Seconds in softflowd's time format: `300`, `90s`, `5m`, `1h30m`, `2d`, `1w`.
pub fn parse_time(text: &str) -> Result<u64, String> {
    let bad = |why: &str| {
        Err(format!(
            "{text:?} is not a time ({why}; e.g. 300, 90s, 5m, 1h30m, 2d)"
        ))
    };
    let t = text.trim();
    if t.is_empty() {
        return bad("empty");
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' | 'S' => 1,
            'm' | 'M' => 60,
            'h' | 'H' => 3_600,
            'd' | 'D' => 86_400,
            'w' | 'W' => 7 * 86_400,
            _ => return bad(&format!("unknown unit {c:?}: use s, m, h, d or w")),
        };
        if digits.is_empty() {
            return bad("a unit needs a number before it");
        }
        let n: u64 = digits
            .parse()
            .map_err(|_| format!("{text:?}: number too large"))?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("{text:?} is more than a year"))?;
        digits.clear();
    }
    if !digits.is_empty() {
        let n: u64 = digits
            .parse()
            .map_err(|_| format!("{text:?}: number too large"))?;
        total = total
            .checked_add(n)
            .ok_or_else(|| format!("{text:?} is more than a year"))?;
    }
    if total > MAX_SECS {
        return Err(format!("{text:?} is more than a year"));
    }
    Ok(total)
}

/// Set one timeout of `cfg`; `whence` names where it was given, for the error.
fn set(cfg: &mut MeterConfig, name: &str, secs: u64, whence: &str) -> Result<()> {
    let ms = secs * 1000;
    let idle = |v: &mut u64| -> Result<()> {
        if secs == 0 {
            bail!("{whence}: 0 seconds: an idle timeout is at least 1 s (a flow would end at every packet)");
        }
        *v = ms;
        Ok(())
    };
    let t = &mut cfg.timeouts;
    match name {
        "general" => idle(&mut cfg.idle_timeout_ms)?,
        "tcp" => idle(t.tcp_ms.insert(0))?,
        "udp" => idle(t.udp_ms.insert(0))?,
        "icmp" => idle(t.icmp_ms.insert(0))?,
        "tcp.rst" => t.tcp_rst_ms = Some(ms),
        "tcp.fin" => t.tcp_fin_ms = Some(ms),
        "maxlife" => cfg.active_timeout_ms = if secs == 0 { u64::MAX } else { ms },
        "expint" => t.expint_secs = secs,
        other => bail!("{whence}: unknown timeout name {other:?} (expected {NAMES})"),
    }
    Ok(())
}

/// Apply the YAML `timeouts:` map, then each `--timeout NAME=TIME` (the command line wins).
/// `idle_given`/`active_given`: the YAML file set `idle-timeout`/`active-timeout`, which
/// `general`/`maxlife` in the same file would contradict.
pub fn apply(
    mut cfg: MeterConfig,
    yaml: Option<&BTreeMap<String, YamlTime>>,
    idle_given: bool,
    active_given: bool,
    cli: &[String],
) -> Result<MeterConfig> {
    for (name, time) in yaml.into_iter().flatten() {
        let whence = format!("timeouts: {name}: {}", time.text());
        if (name == "general" && idle_given) || (name == "maxlife" && active_given) {
            let other = if name == "general" {
                "idle-timeout"
            } else {
                "active-timeout"
            };
            bail!("timeouts: {name} and {other} set the same timeout: give one");
        }
        let secs = parse_time(&time.text()).map_err(|e| anyhow!("timeouts: {name}: {e}"))?;
        set(&mut cfg, name, secs, &whence)?;
    }
    for arg in cli {
        let whence = format!("--timeout {arg}");
        let Some((name, time)) = arg.split_once('=') else {
            bail!("{whence}: expected NAME=TIME, NAME one of {NAMES}");
        };
        let secs = parse_time(time).map_err(|e| anyhow!("{whence}: {e}"))?;
        set(&mut cfg, name.trim(), secs, &whence)?;
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softflowd_time_formats() {
        for (t, s) in [
            ("300", 300),
            ("90s", 90),
            ("5m", 300),
            ("1h30m", 5_400),
            ("2d", 172_800),
            ("1w", 604_800),
            ("1m30", 90),
            ("0", 0),
        ] {
            assert_eq!(parse_time(t), Ok(s), "{t}");
        }
        for t in ["", "5x", "m", "1h-5m", "-3", "99999999999999999999", "53w"] {
            assert!(parse_time(t).is_err(), "{t}");
        }
    }

    #[test]
    fn names_map_onto_the_meter() {
        let args: Vec<String> = [
            "tcp=1h",
            "udp=90s",
            "icmp=5",
            "tcp.rst=10",
            "tcp.fin=0",
            "maxlife=0",
            "expint=5",
            "general=2m",
        ]
        .map(String::from)
        .to_vec();
        let c = apply(MeterConfig::default(), None, false, false, &args).unwrap();
        assert_eq!(c.idle_timeout_ms, 120_000);
        assert_eq!(c.timeouts.tcp_ms, Some(3_600_000));
        assert_eq!(c.timeouts.udp_ms, Some(90_000));
        assert_eq!(c.timeouts.icmp_ms, Some(5_000));
        assert_eq!(c.timeouts.tcp_rst_ms, Some(10_000));
        assert_eq!(c.timeouts.tcp_fin_ms, Some(0));
        assert_eq!(c.active_timeout_ms, u64::MAX);
        assert_eq!(c.timeouts.expint_secs, 5);
    }

    #[test]
    fn mistakes_are_named() {
        let one = |a: &str| {
            apply(MeterConfig::default(), None, false, false, &[a.to_string()])
                .unwrap_err()
                .to_string()
        };
        assert!(one("tcpp=5").contains("unknown timeout name \"tcpp\""));
        assert!(one("tcp").contains("expected NAME=TIME"));
        assert!(one("udp=5q").contains("unknown unit"));
        assert!(one("udp=0").contains("at least 1 s"));
        let mut y = BTreeMap::new();
        y.insert("general".to_string(), YamlTime::Secs(5));
        let e = apply(MeterConfig::default(), Some(&y), true, false, &[]).unwrap_err();
        assert!(e.to_string().contains("idle-timeout"), "{e}");
    }
}
