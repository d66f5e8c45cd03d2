//! Values that flow plugins add to a record (ipfixprobe's "extensions").
//!
//! The meter does not know what the values mean: each is filed under its element's wire
//! identity ([`ExtKey`]: PEN and id), and the exporters look them up by the template's fields.
//! Lists (RFC 6313 basicList) and octet strings are kept encoded, big-endian, in one buffer
//! per record, so a record with extensions costs one allocation however many values it has.

/// An element's identity on the wire: its Private Enterprise Number (0 for IANA) and id
/// (the reverse form's id for a reverse element, as RFC 5103 numbers them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExtKey {
    pub pen: u32,
    pub id: u16,
}

/// One value as a plugin filed it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Stored {
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    /// Octets at `data[start..start + len]` (an octetArray or string).
    Bytes {
        start: u32,
        len: u32,
    },
    /// A basicList of `count` items of element `item`, `item_len` octets each, big-endian,
    /// from `data[start..]`.
    List {
        item: ExtKey,
        item_len: u16,
        count: u32,
        start: u32,
    },
}

/// A value as the exporters read it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ExtValue<'a> {
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Bytes(&'a [u8]),
    /// `items` holds the encoded items, `item_len` octets each.
    List {
        item: ExtKey,
        item_len: u16,
        items: &'a [u8],
    },
}

/// The values plugins added to one record, and which plugins' elements the record carries.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Extensions {
    /// Bit *n* set: plugin number *n* had something for this flow, so the record's template
    /// carries that plugin's elements (each valued, or zero/empty where the plugin wrote none).
    pub present: u64,
    fields: Vec<(ExtKey, Stored)>,
    data: Vec<u8>,
}

impl Extensions {
    /// The value filed under `key`, if a plugin wrote one.
    pub fn get(&self, key: ExtKey) -> Option<ExtValue<'_>> {
        let (_, v) = self.fields.iter().find(|(k, _)| *k == key)?;
        let slice = |start: u32, len: usize| {
            let start = start as usize;
            self.data
                .get(start..start.saturating_add(len))
                .unwrap_or(&[])
        };
        Some(match *v {
            Stored::Unsigned(x) => ExtValue::Unsigned(x),
            Stored::Signed(x) => ExtValue::Signed(x),
            Stored::Float(x) => ExtValue::Float(x),
            Stored::Bytes { start, len } => ExtValue::Bytes(slice(start, len as usize)),
            Stored::List {
                item,
                item_len,
                count,
                start,
            } => ExtValue::List {
                item,
                item_len,
                items: slice(start, count as usize * usize::from(item_len)),
            },
        })
    }

    /// Number of values filed.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.present == 0
    }

    /// Octets held (values and their buffer), for memory accounting.
    pub fn bytes(&self) -> usize {
        self.fields.capacity() * std::mem::size_of::<(ExtKey, Stored)>() + self.data.capacity()
    }

    fn put(&mut self, key: ExtKey, v: Stored) {
        match self.fields.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = v,
            None => self.fields.push((key, v)),
        }
    }
}

/// Where a plugin writes its values when its flow ends. Values of elements the template does
/// not list are not kept (a plugin may ask [`ExtWriter::wants`] to skip computing them).
pub struct ExtWriter<'a> {
    ext: &'a mut Extensions,
    /// Every element key the template lists, sorted.
    wanted: &'a [ExtKey],
}

impl<'a> ExtWriter<'a> {
    pub fn new(ext: &'a mut Extensions, wanted: &'a [ExtKey]) -> Self {
        ExtWriter { ext, wanted }
    }

    /// The template lists this element.
    pub fn wants(&self, key: ExtKey) -> bool {
        self.wanted.binary_search(&key).is_ok()
    }

    pub fn unsigned(&mut self, key: ExtKey, v: u64) {
        if self.wants(key) {
            self.ext.put(key, Stored::Unsigned(v));
        }
    }

    pub fn signed(&mut self, key: ExtKey, v: i64) {
        if self.wants(key) {
            self.ext.put(key, Stored::Signed(v));
        }
    }

    pub fn float(&mut self, key: ExtKey, v: f64) {
        if self.wants(key) {
            self.ext.put(key, Stored::Float(v));
        }
    }

    /// An octetArray or string value (a string must be UTF-8: plugins pass text they checked
    /// or made).
    pub fn bytes(&mut self, key: ExtKey, b: &[u8]) {
        if !self.wants(key) {
            return;
        }
        let start = self.ext.data.len() as u32;
        self.ext.data.extend_from_slice(b);
        self.ext.put(
            key,
            Stored::Bytes {
                start,
                len: b.len() as u32,
            },
        );
    }

    /// A basicList (RFC 6313) of element `key`, each item `item_len` octets (1, 2, 4 or 8),
    /// written big-endian from its low-order octets.
    pub fn list(&mut self, key: ExtKey, item_len: u16, items: impl IntoIterator<Item = u64>) {
        if !self.wants(key) {
            return;
        }
        let n = usize::from(item_len).clamp(1, 8);
        let start = self.ext.data.len() as u32;
        let mut count = 0u32;
        for v in items {
            self.ext.data.extend_from_slice(&v.to_be_bytes()[8 - n..]);
            count += 1;
        }
        self.ext.put(
            key,
            Stored::List {
                item: key,
                item_len: n as u16,
                count,
                start,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: ExtKey = ExtKey {
        pen: 8057,
        id: 1013,
    };
    const B: ExtKey = ExtKey { pen: 8057, id: 850 };
    const C: ExtKey = ExtKey { pen: 0, id: 5 };

    #[test]
    fn written_values_read_back_and_unwanted_ones_are_dropped() {
        let mut ext = Extensions::default();
        let wanted = [C, B, A];
        let mut sorted = wanted;
        sorted.sort();
        let mut w = ExtWriter::new(&mut ext, &sorted);
        w.list(A, 2, [1, 0xffff, 0x1_0002]);
        w.bytes(B, b"GET /");
        w.unsigned(ExtKey { pen: 1, id: 1 }, 9);
        w.unsigned(C, 0x2e);
        w.unsigned(C, 0x2f);
        assert_eq!(ext.len(), 3);
        assert_eq!(
            ext.get(A),
            Some(ExtValue::List {
                item: A,
                item_len: 2,
                items: &[0, 1, 0xff, 0xff, 0, 2]
            })
        );
        assert_eq!(ext.get(B), Some(ExtValue::Bytes(b"GET /")));
        assert_eq!(
            ext.get(C),
            Some(ExtValue::Unsigned(0x2f)),
            "the last write wins"
        );
        assert_eq!(ext.get(ExtKey { pen: 1, id: 1 }), None);
    }
}
