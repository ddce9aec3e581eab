//! Test helpers shared by the old-version translators: wire bytes by hand, the trip through the
//! crate the filter's broker leg makes, proptest strategies and the round-trip properties.

use bytes::BytesMut;
use kafka_protocol::messages::{ApiKey, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use proptest::prelude::*;
use std::fmt::Debug;

use super::errors::downgrade_error;
use super::LegacyError;

pub fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// A `STRING` on the wire: int16 length, then the bytes.
pub fn s(text: &str) -> Vec<u8> {
    cat(&[&i16::try_from(text.len()).unwrap().to_be_bytes(), text.as_bytes()])
}

pub fn text(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_owned())
}

pub fn name(text: &str) -> TopicName {
    TopicName(StrBytes::from_string(text.to_owned()))
}

/// What the broker-facing leg of the filter does: encode with the crate at `version`, decode back.
pub fn through_crate<T: Encodable + Decodable>(value: &T, version: i16) -> T {
    let mut buf = BytesMut::new();
    value.encode(&mut buf, version).unwrap();
    let mut bytes = buf.freeze();
    let decoded = T::decode(&mut bytes, version).unwrap();
    assert!(bytes.is_empty(), "v{version}: bytes left over");
    decoded
}

pub fn str_bytes() -> impl Strategy<Value = StrBytes> {
    "\\PC{0,10}".prop_map(StrBytes::from_string)
}

pub fn nullable_str_bytes() -> impl Strategy<Value = Option<StrBytes>> {
    prop::option::of(str_bytes())
}

pub fn topic_name() -> impl Strategy<Value = TopicName> {
    str_bytes().prop_map(TopicName)
}

/// Error codes an old client of `api` at `version` receives unchanged: what an old broker sent.
pub fn old_error(api: ApiKey, version: i16) -> impl Strategy<Value = i16> {
    any::<i16>().prop_filter("code an old version knows", move |code| downgrade_error(api, version, *code) == *code)
}

/// Mostly small values (empty arrays, short strings), some random bytes.
pub fn biased_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop_oneof![4 => Just(0u8), 1 => Just(1u8), 1 => Just(0xffu8), 3 => any::<u8>()], 0..128)
}

type Encode<T> = fn(i16, &T) -> Result<Vec<u8>, LegacyError>;
type Decode<T> = fn(i16, &[u8]) -> Result<T, LegacyError>;

/// The upgrade∘downgrade round trip: `value` (restricted to what the old version expresses) in
/// the old layout decodes to itself, and after a trip through the crate at each of
/// `crate_versions` encodes to the same old bytes. Every truncation of those bytes is malformed.
pub fn round_trip<T: Encodable + Decodable + PartialEq + Debug>(
    version: i16,
    value: &T,
    encode: Encode<T>,
    decode: Decode<T>,
    crate_versions: &[i16],
) -> Result<(), TestCaseError> {
    let bytes = encode(version, value).unwrap();
    let decoded = decode(version, &bytes).unwrap();
    prop_assert_eq!(&decoded, value, "v{}", version);
    for end in 0..bytes.len() {
        prop_assert!(matches!(decode(version, bytes.get(..end).unwrap()), Err(LegacyError::Malformed(_))), "v{} cut at {}", version, end);
    }
    for &crate_version in crate_versions {
        prop_assert_eq!(
            &encode(version, &through_crate(&decoded, crate_version)).unwrap(),
            &bytes,
            "v{} via crate v{}",
            version,
            crate_version
        );
    }
    Ok(())
}

/// Decoding arbitrary bytes never panics, and whatever decodes re-encodes to a fixed point: one
/// trip normalises (error codes mapped, a null array read as empty), a second changes nothing.
pub fn arbitrary_bytes<T: PartialEq + Debug>(version: i16, body: &[u8], encode: Encode<T>, decode: Decode<T>) -> Result<(), TestCaseError> {
    if let Ok(value) = decode(version, body) {
        let once = encode(version, &value).unwrap();
        let again = decode(version, &once).unwrap();
        prop_assert_eq!(encode(version, &again).unwrap(), once, "v{}", version);
    }
    Ok(())
}

pub fn int16(value: i16) -> Vec<u8> {
    value.to_be_bytes().to_vec()
}

pub fn int32(value: i32) -> Vec<u8> {
    value.to_be_bytes().to_vec()
}

pub fn int64(value: i64) -> Vec<u8> {
    value.to_be_bytes().to_vec()
}
