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
    /// A basicList of items of element `item`, `item_len` octets each, big-endian (or
    /// [`VARIABLE_ITEMS`]: each with its own length), encoded in `data[start..start + len]`.
    List {
        item: ExtKey,
        item_len: u16,
        start: u32,
        len: u32,
    },
}

/// A value as the exporters read it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ExtValue<'a> {
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Bytes(&'a [u8]),
    /// `items` holds the encoded items, `item_len` octets each (or [`VARIABLE_ITEMS`]).
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
    /// `fields` is in key order (see [`Extensions::seal`]).
    sealed: bool,
}

impl Extensions {
    /// No values, no plugin present; the room stays, to be written again.
    pub fn clear(&mut self) {
        self.present = 0;
        self.fields.clear();
        self.data.clear();
        self.sealed = false;
    }

    /// Done writing: a key written twice keeps only its last value. The values stay in the
    /// order written, which is the template's (plugins write their elements in order, in the
    /// template's order of plugins), so that exporters find each with one look
    /// ([`Extensions::get_next`]).
    pub fn seal(&mut self) {
        let mut keys: Vec<ExtKey> = self.fields.iter().map(|(k, _)| *k).collect();
        keys.sort_unstable();
        if keys.windows(2).any(|w| w[0] == w[1]) {
            // (Rare: a plugin that wrote a value twice.)
            let mut i = self.fields.len();
            while i > 0 {
                i -= 1;
                let k = self.fields[i].0;
                if self.fields[i + 1..].iter().any(|(later, _)| *later == k) {
                    self.fields.remove(i);
                }
            }
        }
        self.sealed = true;
    }

    /// [`Extensions::get`] for values read in the order they were written: `next` is where
    /// the last value read was, plus one (start at 0). A value found there costs one compare.
    pub fn get_next(&self, key: ExtKey, next: &mut usize) -> Option<ExtValue<'_>> {
        if let Some((k, v)) = self.fields.get(*next) {
            if *k == key && self.sealed {
                *next += 1;
                return Some(self.value(v));
            }
        }
        let at = self.fields.iter().rposition(|(k, _)| *k == key)?;
        *next = at + 1;
        Some(self.value(&self.fields[at].1))
    }

    /// The value filed under `key`, if a plugin wrote one (the last one written).
    pub fn get(&self, key: ExtKey) -> Option<ExtValue<'_>> {
        let (_, v) = self.fields.iter().rfind(|(k, _)| *k == key)?;
        Some(self.value(v))
    }

    fn value(&self, v: &Stored) -> ExtValue<'_> {
        let slice = |start: u32, len: usize| {
            let start = start as usize;
            self.data
                .get(start..start.saturating_add(len))
                .unwrap_or(&[])
        };
        match *v {
            Stored::Unsigned(x) => ExtValue::Unsigned(x),
            Stored::Signed(x) => ExtValue::Signed(x),
            Stored::Float(x) => ExtValue::Float(x),
            Stored::Bytes { start, len } => ExtValue::Bytes(slice(start, len as usize)),
            Stored::List {
                item,
                item_len,
                start,
                len,
            } => ExtValue::List {
                item,
                item_len,
                items: slice(start, len as usize),
            },
        }
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

    /// File a value.
    fn put(&mut self, key: ExtKey, v: Stored) {
        self.fields.push((key, v));
        self.sealed = false;
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
        let start = self.ext.data.len();
        let data = &mut self.ext.data;
        // Fixed-size stores for the usual widths (a slice of a length known only at run time
        // would cost a memcpy call per item).
        match n {
            1 => data.extend(items.into_iter().map(|v| v as u8)),
            2 => items
                .into_iter()
                .for_each(|v| data.extend_from_slice(&(v as u16).to_be_bytes())),
            4 => items
                .into_iter()
                .for_each(|v| data.extend_from_slice(&(v as u32).to_be_bytes())),
            8 => items
                .into_iter()
                .for_each(|v| data.extend_from_slice(&v.to_be_bytes())),
            _ => items
                .into_iter()
                .for_each(|v| data.extend_from_slice(&v.to_be_bytes()[8 - n..])),
        }
        self.put_list(key, n as u16, start);
    }

    /// A basicList of variable-length items (strings or octet arrays) of element `key`:
    /// RFC 6313 §4.5.1's element length [`VARIABLE_ITEMS`], each item preceded by its length
    /// as RFC 7011 §7 encodes a variable-length field (an item is cut at 65,535 octets).
    pub fn list_var<'b>(&mut self, key: ExtKey, items: impl IntoIterator<Item = &'b [u8]>) {
        if !self.wants(key) {
            return;
        }
        let start = self.ext.data.len();
        for item in items {
            let item = &item[..item.len().min(usize::from(u16::MAX))];
            if item.len() < 255 {
                self.ext.data.push(item.len() as u8);
            } else {
                self.ext.data.push(255);
                self.ext
                    .data
                    .extend_from_slice(&(item.len() as u16).to_be_bytes());
            }
            self.ext.data.extend_from_slice(item);
        }
        self.put_list(key, VARIABLE_ITEMS, start);
    }

    fn put_list(&mut self, key: ExtKey, item_len: u16, start: usize) {
        let len = self.ext.data.len() - start;
        self.ext.put(
            key,
            Stored::List {
                item: key,
                item_len,
                start: start as u32,
                len: len as u32,
            },
        );
    }
}

/// The item length of a basicList whose items each carry their own length (RFC 6313 §4.5.1).
pub const VARIABLE_ITEMS: u16 = u16::MAX;

/// The items of a basicList's content: `item_len` octets each, or for [`VARIABLE_ITEMS`] each
/// with its RFC 7011 §7 length. An item cut short by the end of `items` ends the list.
pub fn list_items(item_len: u16, items: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = items;
    std::iter::from_fn(move || {
        let (item, next) = if item_len == VARIABLE_ITEMS {
            let (&first, tail) = rest.split_first()?;
            let (len, tail) = match first {
                255 => {
                    let (l, t) = tail.split_first_chunk::<2>()?;
                    (usize::from(u16::from_be_bytes(*l)), t)
                }
                n => (usize::from(n), tail),
            };
            (tail.get(..len)?, tail.get(len..)?)
        } else {
            let n = usize::from(item_len.max(1));
            (rest.get(..n)?, rest.get(n..)?)
        };
        rest = next;
        Some(item)
    })
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
        assert_eq!(
            ext.get(C),
            Some(ExtValue::Unsigned(0x2f)),
            "before sealing too"
        );
        ext.seal();
        assert_eq!(ext.len(), 3, "one value per key once sealed");
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

    #[test]
    fn variable_length_items_carry_their_own_lengths() {
        let mut ext = Extensions::default();
        let wanted = [A];
        let mut w = ExtWriter::new(&mut ext, &wanted);
        let long = vec![b'x'; 300];
        w.list_var(A, [&b"ab"[..], b"", &long]);
        let Some(ExtValue::List {
            item_len, items, ..
        }) = ext.get(A)
        else {
            panic!("no list");
        };
        assert_eq!(item_len, VARIABLE_ITEMS);
        assert_eq!(&items[..4], &[2, b'a', b'b', 0]);
        assert_eq!(&items[4..7], &[255, 1, 44]);
        let back: Vec<&[u8]> = list_items(item_len, items).collect();
        assert_eq!(back, [&b"ab"[..], b"", &long[..]]);
        // A list cut inside an item ends before it; fixed-length items split evenly.
        assert_eq!(list_items(item_len, &items[..8]).count(), 2);
        assert_eq!(list_items(2, &[0, 1, 0, 2, 9]).count(), 2);
        assert_eq!(list_items(VARIABLE_ITEMS, &[255, 1]).count(), 0);
    }
}
