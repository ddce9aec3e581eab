//! Administrative APIs whose oldest versions Kafka 4.0 removed: topics (CreateTopics v0–1,
//! DeleteTopics v0), configs (DescribeConfigs v0), ACLs (DescribeAcls, CreateAcls, DeleteAcls v0),
//! delegation tokens (Create, Renew, Expire, Describe v0) and log directories (DescribeLogDirs v0,
//! AlterReplicaLogDirs v0), translated to and from the crate's types at its minimum version.
//!
//! Many of these old versions differ from the next one only in the broker's behaviour (throttling
//! before or after answering), not in their bytes. Where the spec (Kafka 3.9's message JSON) gives
//! the old version exactly the layout of the crate's minimum, the translation goes through the
//! crate at that version (`decode_same`, `encode_same`) rather than through hand-written code:
//! the only work left is mapping error codes and clearing fields the old client has no room for.
//!
//! The helpers here are shared with [`super::offsets`], which has the same needs.

pub mod alter_replica_log_dirs;
pub mod create_acls;
pub mod create_delegation_token;
pub mod create_topics;
pub mod delete_acls;
pub mod delete_topics;
pub mod describe_acls;
pub mod describe_configs;
pub mod describe_delegation_token;
pub mod describe_log_dirs;
pub mod expire_delegation_token;
pub mod renew_delegation_token;

use super::wire::{array, Res, Writer};
use super::LegacyError;
use kafka_protocol::protocol::{Decodable, Encodable};
use nom::number::complete::{be_i32, be_u8};
use std::ops::RangeInclusive;

/// Refuses a version outside `versions`: each translator knows only the old layouts it was written
/// for, and a newer version is the crate's (the filter must not route it here).
pub(super) fn check_version(version: i16, versions: &RangeInclusive<i16>) -> Result<(), LegacyError> {
    if versions.contains(&version) {
        Ok(())
    } else {
        Err(LegacyError::Unrepresentable("version"))
    }
}

/// Decodes an old body whose layout is byte for byte the crate's at `crate_version`. Failures and
/// leftover bytes are the client's (the bytes do not follow the layout), hence `Malformed`.
pub(super) fn decode_same<T: Decodable>(body: &[u8], crate_version: i16, what: &'static str) -> Result<T, LegacyError> {
    let mut input = body;
    let value = T::decode(&mut input, crate_version).map_err(|_| LegacyError::Malformed(what))?;
    if input.is_empty() {
        Ok(value)
    } else {
        Err(LegacyError::Malformed(what))
    }
}

/// Encodes `value` with the crate at `crate_version`, the layout of the old version that shares it.
/// The crate refuses a non-default field the version does not have; callers clear (responses) or
/// refuse (requests) such fields first, so a refusal here is the crate's.
pub(super) fn encode_same<T: Encodable>(value: &T, crate_version: i16) -> Result<Vec<u8>, LegacyError> {
    let mut buf = Vec::new();
    value.encode(&mut buf, crate_version).map_err(|_| LegacyError::Crate)?;
    Ok(buf)
}

/// A nullable `ARRAY` (count -1 is null), for fields where null and empty mean different things
/// (DescribeConfigs: null lists every key). [`array`] reads null as empty.
pub(super) fn nullable_array<'a, T>(element: impl FnMut(&'a [u8]) -> Res<'a, T>) -> impl FnMut(&'a [u8]) -> Res<'a, Option<Vec<T>>> {
    let mut items = array(element);
    move |input: &'a [u8]| {
        let (rest, count) = be_i32(input)?;
        if count == -1 {
            return Ok((rest, None));
        }
        let (rest, values) = items(input)?;
        Ok((rest, Some(values)))
    }
}

/// A `BOOLEAN`: any byte but 0 is true, as in Kafka's parser.
pub(super) fn boolean(input: &[u8]) -> Res<'_, bool> {
    let (rest, byte) = be_u8(input)?;
    Ok((rest, byte != 0))
}

/// Writes a nullable `ARRAY`: -1 for `None`, else the count and each element.
pub(super) fn write_nullable_array<T>(
    w: &mut Writer,
    items: Option<&[T]>,
    element: impl FnMut(&mut Writer, &T) -> Result<(), LegacyError>,
) -> Result<(), LegacyError> {
    match items {
        Some(items) => w.array(items, element).map(|_| ()),
        None => {
            w.i32(-1);
            Ok(())
        }
    }
}

/// ACL resource pattern types (`PatternType` in Kafka): version 0 of the ACL APIs predates prefixed
/// patterns (KIP-290), and everything it names is a literal resource (the wildcard `*` included).
pub(super) mod pattern_type {
    /// Matches any pattern type (filters only).
    pub const ANY: i8 = 1;
    /// A literal resource name, or the wildcard `*`: the only pattern version 0 knows.
    pub const LITERAL: i8 = 3;
}

/// Test helpers shared by the translators of this module and of [`super::offsets`].
#[cfg(test)]
pub(super) mod testing {
    use bytes::BytesMut;
    use kafka_protocol::messages::{ApiKey, TopicName};
    use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
    use proptest::prelude::*;
    use std::fmt::Debug;

    use super::super::errors::downgrade_error;
    use super::super::LegacyError;

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
}
