//! Primitives of the classic (non-flexible) Kafka encoding, shared by every old-version layout:
//! nom parsers for reading and a small writer for encoding.
//!
//! Counts and sizes come from untrusted bytes, so arrays never pre-allocate more elements than the
//! remaining input could hold, and every parser fails instead of panicking.

use super::LegacyError;
use bytes::{BufMut, Bytes};
use kafka_protocol::protocol::StrBytes;
use nom::bytes::complete::take;
use nom::number::complete::{be_i16, be_i32};
use nom::{IResult, Parser};

/// Parser result over a byte slice.
pub type Res<'a, T> = IResult<&'a [u8], T>;

/// A non-nullable `STRING` (int16 length, UTF-8).
pub fn string(input: &[u8]) -> Res<'_, StrBytes> {
    let (input, len) = be_i16(input)?;
    let len = usize::try_from(len).map_err(|_| fail(input))?;
    let (input, raw) = take(len).parse(input)?;
    let text = std::str::from_utf8(raw).map_err(|_| fail(input))?;
    Ok((input, StrBytes::from_string(text.to_owned())))
}

/// A `NULLABLE_STRING` (length -1 is null).
pub fn nullable_string(input: &[u8]) -> Res<'_, Option<StrBytes>> {
    let (rest, len) = be_i16(input)?;
    if len == -1 {
        return Ok((rest, None));
    }
    let (rest, text) = string(input)?;
    Ok((rest, Some(text)))
}

/// `BYTES` / `NULLABLE_BYTES` (int32 length, -1 is null).
pub fn nullable_bytes(input: &[u8]) -> Res<'_, Option<Bytes>> {
    let (input, len) = be_i32(input)?;
    if len == -1 {
        return Ok((input, None));
    }
    let len = usize::try_from(len).map_err(|_| fail(input))?;
    let (input, raw) = take(len).parse(input)?;
    Ok((input, Some(Bytes::copy_from_slice(raw))))
}

/// `BYTES` that may not be null.
pub fn bytes(input: &[u8]) -> Res<'_, Bytes> {
    let (rest, value) = nullable_bytes(input)?;
    value.map(|value| (rest, value)).ok_or_else(|| fail(input))
}

/// An `ARRAY` of `element` (int32 count); a null array (-1) reads as empty. At most as many
/// elements are reserved as the remaining input has bytes.
pub fn array<'a, T>(mut element: impl FnMut(&'a [u8]) -> Res<'a, T>) -> impl FnMut(&'a [u8]) -> Res<'a, Vec<T>> {
    move |input: &'a [u8]| {
        let (mut input, count) = be_i32(input)?;
        if count < -1 {
            return Err(fail(input));
        }
        let count = usize::try_from(count).unwrap_or(0);
        let mut items = Vec::with_capacity(count.min(input.len()));
        for _ in 0..count {
            let (rest, item) = element(input)?;
            input = rest;
            items.push(item);
        }
        Ok((input, items))
    }
}

/// Runs `parser` over a whole body: leftover bytes are an error, as in Kafka's own parser.
pub fn whole<'a, T>(input: &'a [u8], what: &'static str, mut parser: impl FnMut(&'a [u8]) -> Res<'a, T>) -> Result<T, LegacyError> {
    match parser(input) {
        Ok(([], value)) => Ok(value),
        _ => Err(LegacyError::Malformed(what)),
    }
}

fn fail(input: &[u8]) -> nom::Err<nom::error::Error<&[u8]>> {
    nom::Err::Error(nom::error::Error::new(input, nom::error::ErrorKind::Verify))
}

/// Writer of the classic encoding. Lengths that do not fit their field are reported, not wrapped.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Writer::default()
    }

    pub fn i8(&mut self, value: i8) -> &mut Self {
        self.buf.put_i8(value);
        self
    }

    pub fn i16(&mut self, value: i16) -> &mut Self {
        self.buf.put_i16(value);
        self
    }

    pub fn i32(&mut self, value: i32) -> &mut Self {
        self.buf.put_i32(value);
        self
    }

    pub fn i64(&mut self, value: i64) -> &mut Self {
        self.buf.put_i64(value);
        self
    }

    pub fn bool(&mut self, value: bool) -> &mut Self {
        self.buf.put_u8(u8::from(value));
        self
    }

    pub fn string(&mut self, value: &str) -> Result<&mut Self, LegacyError> {
        let len = i16::try_from(value.len()).map_err(|_| LegacyError::Unrepresentable("string longer than 32767 bytes"))?;
        self.buf.put_i16(len);
        self.buf.put_slice(value.as_bytes());
        Ok(self)
    }

    pub fn nullable_string(&mut self, value: Option<&str>) -> Result<&mut Self, LegacyError> {
        match value {
            Some(value) => self.string(value),
            None => Ok(self.i16(-1)),
        }
    }

    pub fn nullable_bytes(&mut self, value: Option<&[u8]>) -> Result<&mut Self, LegacyError> {
        match value {
            Some(value) => {
                let len = i32::try_from(value.len()).map_err(|_| LegacyError::Unrepresentable("bytes longer than 2 GiB"))?;
                self.buf.put_i32(len);
                self.buf.put_slice(value);
                Ok(self)
            }
            None => Ok(self.i32(-1)),
        }
    }

    /// An `ARRAY` count; the elements follow, written by the caller.
    pub fn count(&mut self, len: usize) -> Result<&mut Self, LegacyError> {
        let len = i32::try_from(len).map_err(|_| LegacyError::Unrepresentable("array longer than 2^31 elements"))?;
        self.buf.put_i32(len);
        Ok(self)
    }

    /// `ARRAY` of `items`, each written by `element`.
    pub fn array<T>(&mut self, items: &[T], mut element: impl FnMut(&mut Self, &T) -> Result<(), LegacyError>) -> Result<&mut Self, LegacyError> {
        self.count(items.len())?;
        for item in items {
            element(self, item)?;
        }
        Ok(self)
    }

    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_bytes_and_arrays_round_trip() {
        let mut w = Writer::new();
        w.string("orders").unwrap().nullable_string(None).unwrap().nullable_bytes(Some(b"abc")).unwrap();
        w.array(&[1i32, 2, 3], |w, v| {
            w.i32(*v);
            Ok(())
        })
        .unwrap();
        let buf = w.finish();
        let (rest, s) = string(&buf).unwrap();
        assert_eq!(s.as_str(), "orders");
        let (rest, n) = nullable_string(rest).unwrap();
        assert!(n.is_none());
        let (rest, b) = bytes(rest).unwrap();
        assert_eq!(&b[..], b"abc");
        let v = whole(rest, "test", array(be_i32)).unwrap();
        assert_eq!(v, vec![1, 2, 3]);
    }

    #[test]
    fn huge_counts_and_negative_lengths_fail_without_allocating() {
        assert!(array(be_i32)(&[0x7f, 0xff, 0xff, 0xff]).is_err());
        assert!(array(be_i32)(&[0xff, 0xff, 0xff, 0xfe]).is_err());
        assert!(string(&[0xff, 0xfe]).is_err());
        assert!(bytes(&[0xff, 0xff, 0xff, 0xff]).is_err());
        assert_eq!(whole(&[0, 0, 0, 0, 9], "x", array(be_i32)), Err(LegacyError::Malformed("x")));
    }
}
