//! Which old API versions translate, and the two directions of a translation: an old request
//! body up to the crate's type (encoded by the caller at the version the broker accepts), the
//! crate's response (decoded at that version) down to the old layout.
//!
//! Frames of old versions always use request header v1 and response header v0 (none of them is
//! flexible), so the header work is here too: the upgraded request may need header v2 if the
//! broker's lowest version is flexible, which [`crate::body::encode_request`] takes care of.

use bytes::{BufMut, Bytes};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseKind};
use kafka_protocol::protocol::Decodable;
use std::ops::RangeInclusive;

use super::message_set::DownConversion;
use crate::name_edit::LAST_VERSIONS_NAMING_TOPICS;
use super::{admin, fetch, list_offsets, offsets, produce, LegacyError};

/// The old versions of `key` this module translates, if any.
pub fn old_versions(key: ApiKey) -> Option<RangeInclusive<i16>> {
    Some(match key {
        ApiKey::Produce => produce::OLD_VERSIONS,
        ApiKey::Fetch => fetch::OLD_VERSIONS,
        ApiKey::ListOffsets => list_offsets::OLD_VERSIONS,
        ApiKey::OffsetCommit => offsets::offset_commit::OLD_VERSIONS,
        ApiKey::OffsetFetch => offsets::offset_fetch::OLD_VERSIONS,
        ApiKey::OffsetForLeaderEpoch => offsets::offset_for_leader_epoch::OLD_VERSIONS,
        ApiKey::CreateTopics => admin::create_topics::OLD_VERSIONS,
        ApiKey::DeleteTopics => admin::delete_topics::OLD_VERSIONS,
        ApiKey::DescribeConfigs => admin::describe_configs::OLD_VERSIONS,
        ApiKey::DescribeAcls => admin::describe_acls::OLD_VERSIONS,
        ApiKey::CreateAcls => admin::create_acls::OLD_VERSIONS,
        ApiKey::DeleteAcls => admin::delete_acls::OLD_VERSIONS,
        ApiKey::CreateDelegationToken => admin::create_delegation_token::OLD_VERSIONS,
        ApiKey::RenewDelegationToken => admin::renew_delegation_token::OLD_VERSIONS,
        ApiKey::ExpireDelegationToken => admin::expire_delegation_token::OLD_VERSIONS,
        ApiKey::DescribeDelegationToken => admin::describe_delegation_token::OLD_VERSIONS,
        ApiKey::DescribeLogDirs => admin::describe_log_dirs::OLD_VERSIONS,
        ApiKey::AlterReplicaLogDirs => admin::alter_replica_log_dirs::OLD_VERSIONS,
        _ => return None,
    })
}

/// Whether `version` of `key` is an old version this module translates.
pub fn is_old(key: ApiKey, version: i16) -> bool {
    old_versions(key).is_some_and(|range| range.contains(&version))
}

/// The highest version a translated request of `key` may go to the broker at: past
/// [`LAST_VERSIONS_NAMING_TOPICS`] topics are named by id only, which the old layouts have no room
/// for (the answer could not be translated back).
pub fn highest_target(key: ApiKey) -> i16 {
    LAST_VERSIONS_NAMING_TOPICS.iter().find(|(k, _)| *k == key).map_or(i16::MAX, |(_, last)| *last)
}

/// Every API with old versions, for advertising them in ApiVersions.
pub const TRANSLATED_APIS: [ApiKey; 18] = [
    ApiKey::Produce,
    ApiKey::Fetch,
    ApiKey::ListOffsets,
    ApiKey::OffsetCommit,
    ApiKey::OffsetFetch,
    ApiKey::OffsetForLeaderEpoch,
    ApiKey::CreateTopics,
    ApiKey::DeleteTopics,
    ApiKey::DescribeConfigs,
    ApiKey::DescribeAcls,
    ApiKey::CreateAcls,
    ApiKey::DeleteAcls,
    ApiKey::CreateDelegationToken,
    ApiKey::RenewDelegationToken,
    ApiKey::ExpireDelegationToken,
    ApiKey::DescribeDelegationToken,
    ApiKey::DescribeLogDirs,
    ApiKey::AlterReplicaLogDirs,
];

/// An old request's body (after its header) as the crate's request, ready to encode at any
/// version from the crate's minimum up.
pub fn upgrade(key: ApiKey, version: i16, body: &[u8]) -> Result<RequestKind, LegacyError> {
    Ok(match key {
        ApiKey::Produce => RequestKind::Produce(produce::decode_request(version, body)?),
        ApiKey::Fetch => RequestKind::Fetch(fetch::decode_request(version, body)?),
        ApiKey::ListOffsets => RequestKind::ListOffsets(list_offsets::decode_request(version, body)?),
        ApiKey::OffsetCommit => RequestKind::OffsetCommit(offsets::offset_commit::decode_request(version, body)?),
        ApiKey::OffsetFetch => RequestKind::OffsetFetch(offsets::offset_fetch::decode_request(version, body)?),
        ApiKey::OffsetForLeaderEpoch => RequestKind::OffsetForLeaderEpoch(offsets::offset_for_leader_epoch::decode_request(version, body)?),
        ApiKey::CreateTopics => RequestKind::CreateTopics(admin::create_topics::decode_request(version, body)?),
        ApiKey::DeleteTopics => RequestKind::DeleteTopics(admin::delete_topics::decode_request(version, body)?),
        ApiKey::DescribeConfigs => RequestKind::DescribeConfigs(admin::describe_configs::decode_request(version, body)?),
        ApiKey::DescribeAcls => RequestKind::DescribeAcls(admin::describe_acls::decode_request(version, body)?),
        ApiKey::CreateAcls => RequestKind::CreateAcls(admin::create_acls::decode_request(version, body)?),
        ApiKey::DeleteAcls => RequestKind::DeleteAcls(admin::delete_acls::decode_request(version, body)?),
        ApiKey::CreateDelegationToken => RequestKind::CreateDelegationToken(admin::create_delegation_token::decode_request(version, body)?),
        ApiKey::RenewDelegationToken => RequestKind::RenewDelegationToken(admin::renew_delegation_token::decode_request(version, body)?),
        ApiKey::ExpireDelegationToken => RequestKind::ExpireDelegationToken(admin::expire_delegation_token::decode_request(version, body)?),
        ApiKey::DescribeDelegationToken => {
            RequestKind::DescribeDelegationToken(admin::describe_delegation_token::decode_request(version, body)?)
        }
        ApiKey::DescribeLogDirs => RequestKind::DescribeLogDirs(admin::describe_log_dirs::decode_request(version, body)?),
        ApiKey::AlterReplicaLogDirs => RequestKind::AlterReplicaLogDirs(admin::alter_replica_log_dirs::decode_request(version, body)?),
        _ => return Err(LegacyError::Unrepresentable("api")),
    })
}

/// A response downgraded to an old version: its body (after the header) and what the records'
/// down-conversion did (Fetch only).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Downgraded {
    pub body: Vec<u8>,
    pub records: DownConversion,
    /// Partitions answered `UNSUPPORTED_COMPRESSION_TYPE` (zstd records for a magic 0/1 reader).
    pub unsupported_compression: u32,
}

impl Downgraded {
    fn plain(body: Vec<u8>) -> Self {
        Downgraded { body, ..Downgraded::default() }
    }
}

/// The crate's response (decoded at the version the request was sent at) in the old layout of
/// `version`.
pub fn downgrade(version: i16, response: &ResponseKind) -> Result<Downgraded, LegacyError> {
    Ok(match response {
        ResponseKind::Produce(r) => Downgraded::plain(produce::encode_response(version, r)?),
        ResponseKind::Fetch(r) => {
            let (body, conversion) = fetch::encode_response(version, r)?;
            Downgraded { body, records: conversion.stats, unsupported_compression: conversion.unsupported_compression }
        }
        ResponseKind::ListOffsets(r) => Downgraded::plain(list_offsets::encode_response(version, r)?),
        ResponseKind::OffsetCommit(r) => Downgraded::plain(offsets::offset_commit::encode_response(version, r)?),
        ResponseKind::OffsetFetch(r) => Downgraded::plain(offsets::offset_fetch::encode_response(version, r)?),
        ResponseKind::OffsetForLeaderEpoch(r) => Downgraded::plain(offsets::offset_for_leader_epoch::encode_response(version, r)?),
        ResponseKind::CreateTopics(r) => Downgraded::plain(admin::create_topics::encode_response(version, r)?),
        ResponseKind::DeleteTopics(r) => Downgraded::plain(admin::delete_topics::encode_response(version, r)?),
        ResponseKind::DescribeConfigs(r) => Downgraded::plain(admin::describe_configs::encode_response(version, r)?),
        ResponseKind::DescribeAcls(r) => Downgraded::plain(admin::describe_acls::encode_response(version, r)?),
        ResponseKind::CreateAcls(r) => Downgraded::plain(admin::create_acls::encode_response(version, r)?),
        ResponseKind::DeleteAcls(r) => Downgraded::plain(admin::delete_acls::encode_response(version, r)?),
        ResponseKind::CreateDelegationToken(r) => Downgraded::plain(admin::create_delegation_token::encode_response(version, r)?),
        ResponseKind::RenewDelegationToken(r) => Downgraded::plain(admin::renew_delegation_token::encode_response(version, r)?),
        ResponseKind::ExpireDelegationToken(r) => Downgraded::plain(admin::expire_delegation_token::encode_response(version, r)?),
        ResponseKind::DescribeDelegationToken(r) => Downgraded::plain(admin::describe_delegation_token::encode_response(version, r)?),
        ResponseKind::DescribeLogDirs(r) => Downgraded::plain(admin::describe_log_dirs::encode_response(version, r)?),
        ResponseKind::AlterReplicaLogDirs(r) => Downgraded::plain(admin::alter_replica_log_dirs::encode_response(version, r)?),
        _ => return Err(LegacyError::Unrepresentable("api")),
    })
}

/// Reads the request header (v1: api key, version, correlation id, nullable client id) of an
/// old-version frame body with the crate's header type (the header version does not depend on the
/// API version the codec knows); returns it and its length.
pub fn request_header(body: &[u8]) -> Result<(RequestHeader, usize), LegacyError> {
    let mut rest = body;
    let header = RequestHeader::decode(&mut rest, 1).map_err(|_| LegacyError::Malformed("request header"))?;
    Ok((header, body.len().saturating_sub(rest.len())))
}

/// A whole response frame (size prefix, header v0, body) for an old version.
pub fn response_frame(correlation_id: i32, body: &[u8]) -> Result<Bytes, LegacyError> {
    let size = body.len().checked_add(4).and_then(|n| i32::try_from(n).ok()).ok_or(LegacyError::Unrepresentable("response size"))?;
    let mut frame = Vec::with_capacity(body.len().saturating_add(8));
    frame.put_i32(size);
    frame.put_i32(correlation_id);
    frame.put_slice(body);
    Ok(Bytes::from(frame))
}
