//! Element values and their one JSON spelling, shared by `qof --format json` and `qofdump`.

use super::IeType;
use crate::time::Timestamp;
use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

/// A decoded or measured element value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    /// A float32 element's value: printed as the shortest decimal that reads back as the
    /// same float32, not as the float64 it widens to (`188.72467`, not `188.72467041015625`).
    Float32(f32),
    Bool(bool),
    Mac([u8; 6]),
    Ipv4([u8; 4]),
    Ipv6([u8; 16]),
    /// Any dateTime type, to nanosecond precision.
    Time(Timestamp),
    Bytes(&'a [u8]),
    Str(&'a str),
    /// A basicList (RFC 6313) of items of type `IeType`, each `u16` octets (or
    /// `meter::VARIABLE_ITEMS`: each with its own length), encoded.
    List(IeType, u16, &'a [u8]),
}

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

impl<'a> Value<'a> {
    /// Decode `bytes` as an element of type `ty`, honouring reduced-size encoding of integers
    /// (RFC 7011 §6.2). Malformed lengths decode as raw bytes, never panic.
    pub fn from_bytes(ty: IeType, bytes: &'a [u8]) -> Value<'a> {
        use IeType::*;
        let uint = |b: &[u8]| b.iter().fold(0u64, |a, &x| (a << 8) | u64::from(x));
        let n = bytes.len();
        match ty {
            Unsigned8 | Unsigned16 | Unsigned32 | Unsigned64 if (1..=8).contains(&n) => {
                Value::Unsigned(uint(bytes))
            }
            Signed8 | Signed16 | Signed32 | Signed64 if (1..=8).contains(&n) => {
                let shift = 64 - 8 * n as u32;
                Value::Signed(((uint(bytes) << shift) as i64) >> shift)
            }
            Float32 if n == 4 => Value::Float32(f32::from_bits(uint(bytes) as u32)),
            Float64 if n == 8 => Value::Float(f64::from_bits(uint(bytes))),
            Boolean if n == 1 => Value::Bool(bytes[0] == 1),
            MacAddress if n == 6 => Value::Mac(bytes.try_into().unwrap_or_default()),
            Ipv4Address if n == 4 => Value::Ipv4(bytes.try_into().unwrap_or_default()),
            Ipv6Address if n == 16 => Value::Ipv6(bytes.try_into().unwrap_or_default()),
            DateTimeSeconds if n == 4 => Value::Time(Timestamp::from_secs(uint(bytes))),
            DateTimeMilliseconds if n == 8 => Value::Time(Timestamp::from_millis(uint(bytes))),
            DateTimeMicroseconds | DateTimeNanoseconds if n == 8 => {
                // NTP format: seconds since 1900, then a 32-bit binary fraction. RFC 7011 §6.1.9:
                // for microseconds the low 11 bits of the fraction are to be ignored.
                let secs = uint(&bytes[..4]).saturating_sub(NTP_UNIX_OFFSET);
                let mut frac = uint(&bytes[4..]);
                if ty == DateTimeMicroseconds {
                    frac &= !0x7ff;
                }
                let nanos = (frac * 1_000_000_000) >> 32;
                Value::Time(Timestamp(secs * 1_000_000_000 + nanos))
            }
            String => Value::Str(std::str::from_utf8(bytes).unwrap_or("")),
            _ => Value::Bytes(bytes),
        }
    }

    /// Encode into exactly `len` octets for type `ty` (big-endian; integers reduced to `len`).
    /// Returns false when the value does not fit, which the template logic rules out.
    ///
    /// Inlined into the encoder's per-field loop: the common shapes (integers of 1, 2, 4 or 8
    /// octets, addresses, millisecond times) are plain stores here, the rest go to
    /// [`Value::encode_other`].
    #[inline(always)]
    pub fn encode(&self, ty: IeType, len: usize, out: &mut [u8]) -> bool {
        let Some(out) = out.get_mut(..len) else {
            return false;
        };
        match (*self, len) {
            (Value::Unsigned(v), 1) => put_unsigned::<1>(v, out),
            (Value::Unsigned(v), 2) => put_unsigned::<2>(v, out),
            (Value::Unsigned(v), 4) => put_unsigned::<4>(v, out),
            (Value::Unsigned(v), 8) => put_unsigned::<8>(v, out),
            (Value::Signed(v), 1) => store(out, (v as i8).to_be_bytes()) && i64::from(v as i8) == v,
            (Value::Signed(v), 2) => {
                store(out, (v as i16).to_be_bytes()) && i64::from(v as i16) == v
            }
            (Value::Signed(v), 4) => {
                store(out, (v as i32).to_be_bytes()) && i64::from(v as i32) == v
            }
            (Value::Signed(v), 8) => store(out, v.to_be_bytes()),
            (Value::Ipv4(a), 4) if ty == IeType::Ipv4Address => store(out, a),
            (Value::Ipv6(a), 16) => store(out, a),
            (Value::Time(t), 8) if ty == IeType::DateTimeMilliseconds => {
                store(out, t.millis().to_be_bytes())
            }
            _ => self.encode_other(ty, len, out),
        }
    }

    /// [`Value::encode`] for every other shape.
    #[inline(never)]
    fn encode_other(&self, ty: IeType, len: usize, out: &mut [u8]) -> bool {
        let int_len_ok = (1..=8).contains(&len);
        if matches!(
            self,
            Value::Unsigned(_)
                | Value::Signed(_)
                | Value::Float(_)
                | Value::Float32(_)
                | Value::Time(_)
        ) && !int_len_ok
        {
            return false;
        }
        let put_uint = |v: u64, out: &mut [u8]| {
            // The common widths as fixed-size stores; a length-generic copy would cost a
            // memcpy call per field.
            match len {
                1 => out[0] = v as u8,
                2 => out[..2].copy_from_slice(&(v as u16).to_be_bytes()),
                4 => out[..4].copy_from_slice(&(v as u32).to_be_bytes()),
                8 => out[..8].copy_from_slice(&v.to_be_bytes()),
                _ => out[..len].copy_from_slice(&v.to_be_bytes()[8 - len..]),
            }
            len >= 8 || v >> (8 * len) == 0
        };
        match (*self, ty) {
            (Value::Unsigned(v), _) => put_uint(v, out),
            (Value::Signed(v), _) => {
                put_uint(v as u64, out);
                let shift = 64 - 8 * len as u32;
                len >= 8 || ((v << shift) >> shift) == v
            }
            (Value::Float(f), IeType::Float32) => put_uint(u64::from((f as f32).to_bits()), out),
            (Value::Float32(f), IeType::Float64) => put_uint(f64::from(f).to_bits(), out),
            (Value::Float32(f), _) => put_uint(u64::from(f.to_bits()), out),
            (Value::Float(f), _) => put_uint(f.to_bits(), out),
            (Value::Bool(b), _) => {
                out[0] = if b { 1 } else { 2 };
                true
            }
            (Value::Mac(m), _) => copy_exact(&m, len, out),
            (Value::Ipv4(a), IeType::Ipv6Address) => {
                // IPv4 flow under an IPv6-only template: ::ffff:a.b.c.d (RFC 4291).
                let mapped = Ipv4Addr::from(a).to_ipv6_mapped().octets();
                copy_exact(&mapped, len, out)
            }
            (Value::Ipv4(a), _) => copy_exact(&a, len, out),
            (Value::Ipv6(a), _) => copy_exact(&a, len, out),
            (Value::Time(t), IeType::DateTimeSeconds) => put_uint(t.secs(), out),
            (Value::Time(t), IeType::DateTimeMilliseconds) => put_uint(t.millis(), out),
            (Value::Time(t), _) => {
                let secs = t.secs() + NTP_UNIX_OFFSET;
                let frac = ((t.nanos() % 1_000_000_000) << 32) / 1_000_000_000;
                put_uint((secs << 32) | frac, out)
            }
            (Value::Bytes(b), _) => copy_exact(b, len, out),
            (Value::Str(s), _) => copy_exact(s.as_bytes(), len, out),
            // (Lists have variable length: the encoder writes them itself.)
            (Value::List(..), _) => false,
        }
    }
}

/// `v` in exactly `N` (1 to 8) big-endian octets, by a plain store; false if it does not fit
/// or `out` is not `N` long. (The encoder picks `N` per field when it compiles a template.)
#[inline(always)]
pub fn put_unsigned<const N: usize>(v: u64, out: &mut [u8]) -> bool {
    let be = v.to_be_bytes();
    match be.get(8usize.saturating_sub(N)..).map(<[u8; N]>::try_from) {
        Some(Ok(bytes)) => store(out, bytes) && (N >= 8 || v >> (8 * N) == 0),
        _ => false,
    }
}

/// Store `bytes` as a fixed-size array (a plain store, where a slice copy of a length known
/// only at run time would call memcpy); false if `out` is not exactly that long.
#[inline(always)]
fn store<const N: usize>(out: &mut [u8], bytes: [u8; N]) -> bool {
    match <&mut [u8; N]>::try_from(out) {
        Ok(a) => {
            *a = bytes;
            true
        }
        Err(_) => false,
    }
}

fn copy_exact(src: &[u8], len: usize, out: &mut [u8]) -> bool {
    if src.len() != len {
        return false;
    }
    match len {
        4 => out[..4].copy_from_slice(&src[..4]),
        6 => out[..6].copy_from_slice(&src[..6]),
        16 => out[..16].copy_from_slice(&src[..16]),
        _ => out[..len].copy_from_slice(src),
    }
    true
}

/// Append `v` as JSON: integers as numbers, addresses and times as strings (RFC 5952 IPv6,
/// RFC 3339 UTC with milliseconds; finer times keep their digits), octets as lowercase hex.
pub fn write_json_value(v: &Value, out: &mut String) {
    let _ = match *v {
        Value::Unsigned(n) => write!(out, "{n}"),
        Value::Signed(n) => write!(out, "{n}"),
        Value::Float(f) if f.is_finite() => write!(out, "{f}"),
        Value::Float(_) => write!(out, "null"),
        Value::Float32(f) if f.is_finite() => write!(out, "{f}"),
        Value::Float32(_) => write!(out, "null"),
        Value::Bool(b) => write!(out, "{b}"),
        Value::Mac(m) => write!(
            out,
            "\"{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}\"",
            m[0], m[1], m[2], m[3], m[4], m[5]
        ),
        Value::Ipv4(a) => write!(out, "\"{}\"", Ipv4Addr::from(a)),
        Value::Ipv6(a) => write!(out, "\"{}\"", Ipv6Addr::from(a)),
        Value::Time(t) => {
            let sub_ms = t.nanos() % 1_000_000;
            if sub_ms == 0 {
                write!(out, "\"{t}\"")
            } else {
                // 2013-11-07T12:34:56.789Z -> 2013-11-07T12:34:56.789123456Z
                let s = t.to_string();
                write!(out, "\"{}{:06}Z\"", &s[..s.len() - 1], sub_ms)
            }
        }
        Value::Bytes(b) => {
            out.push('"');
            for x in b {
                let _ = write!(out, "{x:02x}");
            }
            out.push('"');
            Ok(())
        }
        Value::Str(s) => {
            write_json_str(s, out);
            Ok(())
        }
        Value::List(ty, item_len, items) => {
            out.push('[');
            for (i, item) in crate::meter::list_items(item_len, items).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_value(&Value::from_bytes(ty, item), out);
            }
            out.push(']');
            Ok(())
        }
    };
}

/// Append `s` as a JSON string literal.
pub fn write_json_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Append the JSON key of an element: its name when known (with `reverse` prefix), otherwise
/// `"PEN/ID"` (e.g. `"0/999"`, `"6871/500"`).
pub fn write_json_key(
    known: Option<(&super::InfoElement, bool)>,
    pen: u32,
    id: u16,
    out: &mut String,
) {
    out.push('"');
    match known {
        Some((ie, reverse)) => super::write_name(ie, reverse, out),
        None => {
            let _ = write!(out, "{pen}/{id}");
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(v: Value) -> String {
        let mut s = String::new();
        write_json_value(&v, &mut s);
        s
    }

    #[test]
    fn reduced_size_and_signed_decoding() {
        assert_eq!(
            Value::from_bytes(IeType::Unsigned64, &[0, 0, 1, 0]),
            Value::Unsigned(256)
        );
        assert_eq!(
            Value::from_bytes(IeType::Signed32, &[0xff, 0xfe]),
            Value::Signed(-2)
        );
        assert_eq!(
            Value::from_bytes(IeType::Signed16, &[0x7f, 0xff]),
            Value::Signed(32767)
        );
        assert_eq!(
            Value::from_bytes(IeType::Unsigned32, &[]),
            Value::Bytes(&[])
        );
        assert_eq!(
            Value::from_bytes(IeType::Ipv4Address, &[1, 2, 3]),
            Value::Bytes(&[1, 2, 3])
        );
    }

    #[test]
    fn encode_decode_round_trip() {
        let mut buf = [0u8; 16];
        for (v, ty, len) in [
            (Value::Unsigned(0x1234_5678_9abc), IeType::Unsigned64, 8),
            (Value::Unsigned(70_000), IeType::Unsigned64, 4),
            (Value::Signed(-5), IeType::Signed32, 4),
            (
                Value::Time(Timestamp::from_millis(1_383_827_696_789)),
                IeType::DateTimeMilliseconds,
                8,
            ),
            (
                Value::Time(Timestamp::from_secs(1_383_827_696)),
                IeType::DateTimeSeconds,
                4,
            ),
            (
                Value::Ipv6([0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
                IeType::Ipv6Address,
                16,
            ),
            (Value::Mac([1, 2, 3, 4, 5, 6]), IeType::MacAddress, 6),
        ] {
            assert!(v.encode(ty, len, &mut buf), "{v:?}");
            assert_eq!(Value::from_bytes(ty, &buf[..len]), v);
        }
        assert!(
            !Value::Unsigned(1 << 40).encode(IeType::Unsigned64, 4, &mut buf),
            "does not fit"
        );
        assert!(!Value::Signed(-70_000).encode(IeType::Signed32, 2, &mut buf));
    }

    #[test]
    fn ntp_times_round_trip_to_the_microsecond() {
        let t = Timestamp(1_383_827_696_123_456_000);
        let mut buf = [0u8; 8];
        assert!(Value::Time(t).encode(IeType::DateTimeMicroseconds, 8, &mut buf));
        let Value::Time(back) = Value::from_bytes(IeType::DateTimeMicroseconds, &buf) else {
            panic!()
        };
        assert!(
            back.nanos().abs_diff(t.nanos()) < 1_000,
            "{back:?} vs {t:?}"
        );
    }

    #[test]
    fn json_spellings() {
        assert_eq!(json(Value::Unsigned(42)), "42");
        assert_eq!(json(Value::Ipv4([10, 0, 0, 1])), "\"10.0.0.1\"");
        assert_eq!(
            json(Value::Ipv6([
                0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1
            ])),
            "\"2001:db8::1\""
        );
        assert_eq!(
            json(Value::Mac([0xaa, 0xbb, 0xcc, 0, 1, 2])),
            "\"aa:bb:cc:00:01:02\""
        );
        assert_eq!(
            json(Value::Time(Timestamp::from_millis(1_383_827_696_789))),
            "\"2013-11-07T12:34:56.789Z\""
        );
        assert_eq!(
            json(Value::Time(Timestamp(1_383_827_696_789_123_456))),
            "\"2013-11-07T12:34:56.789123456Z\""
        );
        assert_eq!(json(Value::Bytes(&[0, 0xff])), "\"00ff\"");
        assert_eq!(json(Value::Str("a\"b\n")), "\"a\\\"b\\n\"");
    }
}
