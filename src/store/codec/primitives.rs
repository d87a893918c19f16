//! The compact form's pieces: LEB128 varints, length-prefixed bytes and text, presence flags and
//! embedded JSON, written by [`Writer`] and read back by [`Reader`], which errs, never panics.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{from_json, json_bytes, COMPACT, COMPACT_DIGEST};
use crate::store::StoreError;

pub(super) struct Writer(pub(super) Vec<u8>);

impl Writer {
    pub(super) fn new(capacity: usize) -> Writer {
        Writer::tagged(capacity, COMPACT)
    }

    /// A compact value whose first byte is `tag` (a later version of a layout).
    pub(super) fn tagged(capacity: usize, tag: u8) -> Writer {
        let mut out = Vec::with_capacity(capacity);
        out.push(tag);
        Writer(out)
    }

    pub(super) fn num(&mut self, mut n: u64) {
        while n >= 0x80 {
            self.0.push((n as u8) | 0x80);
            n >>= 7;
        }
        self.0.push(n as u8);
    }

    fn bytes(&mut self, b: &[u8]) {
        self.num(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    pub(super) fn text(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    pub(super) fn opt_text(&mut self, s: Option<&str>) {
        match s {
            None => self.0.push(0),
            Some(s) => {
                self.0.push(1);
                self.text(s);
            }
        }
    }

    pub(super) fn opt_num(&mut self, n: Option<u64>) {
        match n {
            None => self.0.push(0),
            Some(n) => {
                self.0.push(1);
                self.num(n);
            }
        }
    }

    /// A rare field as JSON, or nothing when it is absent.
    pub(super) fn opt_json<T: Serialize>(&mut self, value: Option<&T>) {
        match value {
            None => self.0.push(0),
            Some(v) => {
                self.0.push(1);
                self.bytes(&json_bytes(v));
            }
        }
    }
}

pub(super) struct Reader<'a> {
    rest: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(super) fn corrupt(&self, why: &str) -> StoreError {
        StoreError::Corrupt(format!("a stored {}: {why}", self.what))
    }

    pub(super) fn byte(&mut self) -> Result<u8, StoreError> {
        let (first, rest) = self
            .rest
            .split_first()
            .ok_or_else(|| self.corrupt("it ends early"))?;
        self.rest = rest;
        Ok(*first)
    }

    pub(super) fn num(&mut self) -> Result<u64, StoreError> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(self.corrupt("a number is too long"))
    }

    pub(super) fn small(&mut self) -> Result<u32, StoreError> {
        u32::try_from(self.num()?).map_err(|_| self.corrupt("a count is too big"))
    }

    fn bytes(&mut self) -> Result<&'a [u8], StoreError> {
        let len = usize::try_from(self.num()?).map_err(|_| self.corrupt("a length is too big"))?;
        if len > self.rest.len() {
            return Err(self.corrupt("a length runs past its end"));
        }
        let (b, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(b)
    }

    pub(super) fn text(&mut self) -> Result<String, StoreError> {
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| self.corrupt("text is not UTF-8"))
    }

    pub(super) fn flag(&mut self) -> Result<bool, StoreError> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.corrupt("a flag is neither 0 nor 1")),
        }
    }

    pub(super) fn opt_text(&mut self) -> Result<Option<String>, StoreError> {
        if self.flag()? {
            self.text().map(Some)
        } else {
            Ok(None)
        }
    }

    pub(super) fn opt_num(&mut self) -> Result<Option<u64>, StoreError> {
        if self.flag()? {
            self.num().map(Some)
        } else {
            Ok(None)
        }
    }

    pub(super) fn opt_json<T: DeserializeOwned>(&mut self) -> Result<Option<T>, StoreError> {
        if self.flag()? {
            from_json(self.bytes()?).map(Some)
        } else {
            Ok(None)
        }
    }

    /// A count of items that each take at least one byte: never more than what is left.
    pub(super) fn count(&mut self) -> Result<usize, StoreError> {
        let n = usize::try_from(self.num()?).map_err(|_| self.corrupt("a count is too big"))?;
        if n > self.rest.len() {
            return Err(self.corrupt("a count runs past its end"));
        }
        Ok(n)
    }

    pub(super) fn end(self) -> Result<(), StoreError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(self.corrupt("bytes are left over"))
        }
    }
}

/// The compact form's reader, or `None` for a JSON value.
pub(super) fn compact<'a>(bytes: &'a [u8], what: &'static str) -> Option<Reader<'a>> {
    match bytes.split_first() {
        Some((&COMPACT, rest)) => Some(Reader { rest, what }),
        _ => None,
    }
}

/// [`compact`] for a layout with a later version: the reader and the version's first byte.
pub(super) fn compact_tagged<'a>(bytes: &'a [u8], what: &'static str) -> Option<(u8, Reader<'a>)> {
    match bytes.split_first() {
        Some((&tag, rest)) if tag == COMPACT || tag == COMPACT_DIGEST => {
            Some((tag, Reader { rest, what }))
        }
        _ => None,
    }
}
