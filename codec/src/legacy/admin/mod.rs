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
