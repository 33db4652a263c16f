//! The snapshot's binary encoding: little-endian integers, length-prefixed byte strings, tagged
//! sections, and KVM structures as their kernel (UAPI) bytes with their size checked.

use zerocopy::{FromBytes, Immutable, IntoBytes};

/// Why a state blob could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The data ends before a field.
    #[error("{what} runs past the end of its section")]
    Short {
        /// The field.
        what: &'static str,
    },
    /// A section has the wrong tag (sections come in a fixed order).
    #[error("expected section {expected}, found {found}")]
    WrongTag {
        /// The tag wanted.
        expected: String,
        /// The tag found.
        found: String,
    },
    /// A KVM structure has a size other than this build's.
    #[error("{what} is {got} bytes, expected {expected}")]
    WrongSize {
        /// The structure.
        what: &'static str,
        /// Its size in this build.
        expected: usize,
        /// Its size in the file.
        got: usize,
    },
    /// A field holds a value it may not hold.
    #[error("{0} holds an invalid value")]
    BadValue(&'static str),
    /// A section has bytes left over after its last field.
    #[error("section {0} has {1} unexpected trailing bytes")]
    Trailing(String, usize),
}

/// Builds an encoded blob.
#[derive(Debug, Default)]
pub struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    /// An empty blob.
    pub fn new() -> Self {
        Self::default()
    }

    /// The bytes so far.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// A byte.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// A boolean as one byte, 0 or 1.
    pub fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }

    /// A little-endian u16.
    pub fn u16(&mut self, v: u16) {
        self.buf.extend(v.to_le_bytes());
    }

    /// A little-endian u32.
    pub fn u32(&mut self, v: u32) {
        self.buf.extend(v.to_le_bytes());
    }

    /// A little-endian u64.
    pub fn u64(&mut self, v: u64) {
        self.buf.extend(v.to_le_bytes());
    }

    /// Bytes with no length (the reader knows how many).
    pub fn fixed(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }

    /// A u32 length, then the bytes.
    pub fn bytes(&mut self, v: &[u8]) {
        self.u32(v.len() as u32);
        self.buf.extend_from_slice(v);
    }

    /// A UTF-8 string, as `bytes`.
    pub fn str(&mut self, v: &str) {
        self.bytes(v.as_bytes());
    }

    /// A KVM structure, as `bytes` of its kernel layout.
    pub fn raw<T: IntoBytes + Immutable>(&mut self, v: &T) {
        self.bytes(v.as_bytes());
    }

    /// An optional u64: a presence byte, then the value.
    pub fn opt_u64(&mut self, v: Option<u64>) {
        self.bool(v.is_some());
        if let Some(v) = v {
            self.u64(v);
        }
    }

    /// A section: its 4-byte tag, a u64 length, then what `body` writes.
    pub fn section(&mut self, tag: &[u8; 4], body: impl FnOnce(&mut Encoder)) {
        let mut inner = Encoder::new();
        body(&mut inner);
        self.fixed(tag);
        self.u64(inner.buf.len() as u64);
        self.fixed(&inner.buf);
    }
}

/// Reads an encoded blob front to back.
#[derive(Debug)]
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
    name: String,
}

fn tag_name(tag: &[u8]) -> String {
    String::from_utf8_lossy(tag).into_owned()
}

impl<'a> Decoder<'a> {
    /// A reader over `buf`, called `name` in errors.
    pub fn new(buf: &'a [u8], name: &str) -> Self {
        Decoder {
            buf,
            pos: 0,
            name: name.to_owned(),
        }
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Takes `n` bytes.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.buf.len())
            .ok_or(DecodeError::Short { what })?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    /// A byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    /// A boolean byte (0 or 1).
    pub fn bool(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::BadValue(what)),
        }
    }

    /// A little-endian u16.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    /// A little-endian u32.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    /// A little-endian u64.
    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// Length-prefixed bytes.
    pub fn bytes(&mut self, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.u32(what)? as usize;
        self.take(len, what)
    }

    /// A length-prefixed UTF-8 string.
    pub fn string(&mut self, what: &'static str) -> Result<String, DecodeError> {
        let bytes = self.bytes(what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::BadValue(what))
    }

    /// A KVM structure; its recorded size must be this build's.
    pub fn raw<T: FromBytes>(&mut self, what: &'static str) -> Result<T, DecodeError> {
        let bytes = self.bytes(what)?;
        T::read_from_bytes(bytes).map_err(|_| DecodeError::WrongSize {
            what,
            expected: std::mem::size_of::<T>(),
            got: bytes.len(),
        })
    }

    /// An optional u64.
    pub fn opt_u64(&mut self, what: &'static str) -> Result<Option<u64>, DecodeError> {
        Ok(if self.bool(what)? {
            Some(self.u64(what)?)
        } else {
            None
        })
    }

    /// The next section, which must carry `tag`; returns a reader over its body.
    pub fn section(&mut self, tag: &[u8; 4]) -> Result<Decoder<'a>, DecodeError> {
        let found = self.take(4, "section tag")?;
        if found != tag {
            return Err(DecodeError::WrongTag {
                expected: tag_name(tag),
                found: tag_name(found),
            });
        }
        let len = self.u64("section length")?;
        let len = usize::try_from(len).map_err(|_| DecodeError::BadValue("section length"))?;
        let body = self.take(len, "section body")?;
        Ok(Decoder::new(body, &tag_name(tag)))
    }

    /// Checks that every byte was read.
    pub fn finish(self) -> Result<(), DecodeError> {
        match self.buf.len() - self.pos.min(self.buf.len()) {
            0 => Ok(()),
            n => Err(DecodeError::Trailing(self.name, n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kvm_bindings::{kvm_regs, kvm_segment};

    #[test]
    fn values_round_trip_in_order() {
        let mut e = Encoder::new();
        e.section(b"TEST", |e| {
            e.u8(7);
            e.bool(true);
            e.u16(0xbeef);
            e.u32(0xdead_beef);
            e.u64(u64::MAX - 1);
            e.str("vol-1");
            e.opt_u64(None);
            e.opt_u64(Some(42));
            e.raw(&kvm_regs {
                rip: 0x20_1000,
                rflags: 0x3002,
                ..Default::default()
            });
        });
        let bytes = e.into_bytes();
        assert_eq!(&bytes[..4], b"TEST");
        let mut d = Decoder::new(&bytes, "blob");
        let mut s = d.section(b"TEST").unwrap();
        assert_eq!(s.u8("a").unwrap(), 7);
        assert!(s.bool("b").unwrap());
        assert_eq!(s.u16("c").unwrap(), 0xbeef);
        assert_eq!(s.u32("d").unwrap(), 0xdead_beef);
        assert_eq!(s.u64("e").unwrap(), u64::MAX - 1);
        assert_eq!(s.string("f").unwrap(), "vol-1");
        assert_eq!(s.opt_u64("g").unwrap(), None);
        assert_eq!(s.opt_u64("h").unwrap(), Some(42));
        let regs: kvm_regs = s.raw("regs").unwrap();
        assert_eq!((regs.rip, regs.rflags), (0x20_1000, 0x3002));
        s.finish().unwrap();
        assert!(d.is_empty());
        d.finish().unwrap();
    }

    #[test]
    fn short_wrong_and_trailing_data_are_errors() {
        let mut d = Decoder::new(&[1, 2], "blob");
        assert_eq!(d.u32("count"), Err(DecodeError::Short { what: "count" }));
        let mut e = Encoder::new();
        e.section(b"AAAA", |e| e.u32(1));
        let bytes = e.into_bytes();
        let err = Decoder::new(&bytes, "blob").section(b"BBBB").unwrap_err();
        assert_eq!(err.to_string(), "expected section BBBB, found AAAA");
        let mut s = Decoder::new(&bytes, "blob").section(b"AAAA").unwrap();
        assert_eq!(s.u16("half").unwrap(), 1);
        assert_eq!(
            s.finish().unwrap_err().to_string(),
            "section AAAA has 2 unexpected trailing bytes"
        );
        assert_eq!(
            Decoder::new(&[2], "b").bool("flag"),
            Err(DecodeError::BadValue("flag"))
        );
    }

    #[test]
    fn a_kvm_structure_of_another_size_is_refused() {
        let mut e = Encoder::new();
        e.raw(&kvm_segment::default());
        let bytes = e.into_bytes();
        let err = Decoder::new(&bytes, "b")
            .raw::<kvm_regs>("regs")
            .unwrap_err();
        assert!(
            matches!(err, DecodeError::WrongSize { what: "regs", expected: 144, got } if got == std::mem::size_of::<kvm_segment>()),
            "{err}"
        );
    }
}
