//! CreateDelegationToken v0 (Kafka 1.1), removed in Kafka 4.0, translated to and from the crate's
//! `CreateDelegationTokenRequest` / `CreateDelegationTokenResponse` at v1, its minimum.
//!
//! Kafka 3.9's message JSON gives v0 exactly v1's layout (request: renewers [principal_type,
//! principal_name], max_lifetime_ms; response: error_code, principal_type, principal_name,
//! issue/expiry/max timestamps, token_id, hmac, throttle_time_ms): v1 changed only when the broker
//! throttles. Both directions go through the crate at v1.
//!
//! v3 (KIP-373) lets a request name an owner other than the requester, and the response name the
//! requester. A v0 request creates a token for its own principal: the owner fields are empty, which
//! brokers read as "the requester". The response's requester fields are dropped on the way back.

use super::{check_version, decode_same, encode_same};
use crate::legacy::errors::downgrade_error;
use crate::legacy::LegacyError;
use kafka_protocol::messages::{ApiKey, CreateDelegationTokenRequest, CreateDelegationTokenResponse};
use kafka_protocol::protocol::StrBytes;
use std::ops::RangeInclusive;

/// The CreateDelegationToken versions Kafka 4.0 removed and this module translates.
pub const OLD_VERSIONS: RangeInclusive<i16> = 0..=0;

/// The crate's (and Kafka 4.0's) lowest CreateDelegationToken version, whose layout v0 shares.
const CRATE_MIN: i16 = 1;

/// A v0 CreateDelegationToken body → the crate's request (same layout as v1; owner empty: the
/// requester).
pub fn decode_request(version: i16, body: &[u8]) -> Result<CreateDelegationTokenRequest, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    decode_same(body, CRATE_MIN, "CreateDelegationToken request")
}

/// The crate's request → a v0 CreateDelegationToken body (for tests and fuzzing). A token for
/// another owner (v3+, not ignorable) would be created for the requester instead: refused. A null
/// owner means the same as an empty one and is written as such.
pub fn encode_request(version: i16, request: &CreateDelegationTokenRequest) -> Result<Vec<u8>, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    let unset = |field: &Option<StrBytes>| field.as_ref().is_none_or(|value| value.is_empty());
    if !unset(&request.owner_principal_type) || !unset(&request.owner_principal_name) {
        return Err(LegacyError::Unrepresentable("CreateDelegationToken owner principal"));
    }
    let request = request.clone().with_owner_principal_type(Some(StrBytes::default())).with_owner_principal_name(Some(StrBytes::default()));
    encode_same(&request, CRATE_MIN)
}

/// A v0 CreateDelegationToken response body → the crate's response (for tests). Same layout as v1.
pub fn decode_response(version: i16, body: &[u8]) -> Result<CreateDelegationTokenResponse, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    decode_same(body, CRATE_MIN, "CreateDelegationToken response")
}

/// The broker's response (decoded by the crate at the version the request was sent with) → the v0
/// layout, the error code mapped to one the client knows and the requester (v3+) dropped.
pub fn encode_response(version: i16, response: &CreateDelegationTokenResponse) -> Result<Vec<u8>, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    let old = response
        .clone()
        .with_error_code(downgrade_error(ApiKey::CreateDelegationToken, version, response.error_code))
        .with_token_requester_principal_type(StrBytes::default())
        .with_token_requester_principal_name(StrBytes::default());
    encode_same(&old, CRATE_MIN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::legacy::testing::{arbitrary_bytes, biased_bytes, cat, old_error, round_trip, s, str_bytes, text, through_crate};
    use bytes::Bytes;
    use kafka_protocol::messages::create_delegation_token_request::CreatableRenewers;
    use proptest::collection::vec;
    use proptest::prelude::*;

    /// Crate versions checked: the minimum and the first flexible one.
    const CRATE_VERSIONS: [i16; 2] = [1, 2];

    #[test]
    fn hand_assembled_request_decodes_field_by_field() {
        let body = cat(&[&1i32.to_be_bytes(), &s("User"), &s("bob"), &86_400_000i64.to_be_bytes()]);
        let request = decode_request(0, &body).unwrap();
        assert_eq!(request.renewers.len(), 1);
        assert_eq!((request.renewers[0].principal_type.clone(), request.renewers[0].principal_name.clone()), (text("User"), text("bob")));
        assert_eq!(request.max_lifetime_ms, 86_400_000);
        assert_eq!((request.owner_principal_type.clone(), request.owner_principal_name.clone()), (Some(text("")), Some(text(""))));
        assert_eq!(encode_request(0, &request).unwrap(), body);
    }

    #[test]
    fn hand_assembled_response_decodes_field_by_field() {
        let body = cat(&[
            &0i16.to_be_bytes(), &s("User"), &s("alice"),               // error_code, principal_type, principal_name
            &1i64.to_be_bytes(), &2i64.to_be_bytes(), &3i64.to_be_bytes(), // issue, expiry, max timestamps
            &s("token-1"), &3i32.to_be_bytes(), b"mac", &50i32.to_be_bytes(), // token_id, hmac, throttle_time_ms
        ]);
        let response = decode_response(0, &body).unwrap();
        assert_eq!((response.error_code, response.principal_type.clone(), response.principal_name.clone()), (0, text("User"), text("alice")));
        assert_eq!((response.issue_timestamp_ms, response.expiry_timestamp_ms, response.max_timestamp_ms), (1, 2, 3));
        assert_eq!(
            (response.token_id.clone(), response.hmac.clone(), response.throttle_time_ms),
            (text("token-1"), Bytes::from_static(b"mac"), 50)
        );
        assert_eq!(encode_response(0, &response).unwrap(), body);
    }

    #[test]
    fn owners_and_requesters_have_no_place_in_v0() {
        let other = CreateDelegationTokenRequest::default()
            .with_owner_principal_type(Some(text("User")))
            .with_owner_principal_name(Some(text("carol")));
        assert_eq!(encode_request(0, &other), Err(LegacyError::Unrepresentable("CreateDelegationToken owner principal")));
        let null_owner = CreateDelegationTokenRequest::default().with_owner_principal_type(None).with_owner_principal_name(None);
        assert_eq!(decode_request(0, &encode_request(0, &null_owner).unwrap()).unwrap(), CreateDelegationTokenRequest::default());
        let response = CreateDelegationTokenResponse::default()
            .with_error_code(58)
            .with_token_requester_principal_type(text("User"))
            .with_token_requester_principal_name(text("dave"));
        let old = decode_response(0, &encode_response(0, &through_crate(&response, 3)).unwrap()).unwrap();
        assert_eq!(old, CreateDelegationTokenResponse::default().with_error_code(58));
    }

    #[test]
    fn versions_outside_the_old_range_are_refused() {
        for version in [-1, 1, 3] {
            let refused = LegacyError::Unrepresentable("version");
            assert_eq!(decode_request(version, &[]).unwrap_err(), refused);
            assert_eq!(encode_request(version, &CreateDelegationTokenRequest::default()).unwrap_err(), refused);
            assert_eq!(decode_response(version, &[]).unwrap_err(), refused);
            assert_eq!(encode_response(version, &CreateDelegationTokenResponse::default()).unwrap_err(), refused);
        }
    }

    fn old_request() -> impl Strategy<Value = CreateDelegationTokenRequest> {
        let renewer = (str_bytes(), str_bytes())
            .prop_map(|(kind, name)| CreatableRenewers::default().with_principal_type(kind).with_principal_name(name));
        (vec(renewer, 0..4), any::<i64>())
            .prop_map(|(renewers, lifetime)| CreateDelegationTokenRequest::default().with_renewers(renewers).with_max_lifetime_ms(lifetime))
    }

    fn old_response() -> impl Strategy<Value = CreateDelegationTokenResponse> {
        let hmac = vec(any::<u8>(), 0..16);
        (old_error(ApiKey::CreateDelegationToken, 0), str_bytes(), str_bytes(), any::<[i64; 3]>(), str_bytes(), hmac, any::<i32>())
            .prop_map(
            |(error, kind, name, [issue, expiry, max], token_id, hmac, throttle)| {
                CreateDelegationTokenResponse::default()
                    .with_error_code(error)
                    .with_principal_type(kind)
                    .with_principal_name(name)
                    .with_issue_timestamp_ms(issue)
                    .with_expiry_timestamp_ms(expiry)
                    .with_max_timestamp_ms(max)
                    .with_token_id(token_id)
                    .with_hmac(Bytes::from(hmac))
                    .with_throttle_time_ms(throttle)
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn old_requests_survive_upgrade_and_downgrade(request in old_request()) {
            round_trip(0, &request, encode_request, decode_request, &CRATE_VERSIONS)?;
        }

        #[test]
        fn old_responses_survive_upgrade_and_downgrade(response in old_response()) {
            round_trip(0, &response, encode_response, decode_response, &CRATE_VERSIONS)?;
        }

        #[test]
        fn arbitrary_bytes_never_panic(version in -1i16..2, body in biased_bytes()) {
            arbitrary_bytes(version, &body, encode_request, decode_request)?;
            arbitrary_bytes(version, &body, encode_response, decode_response)?;
        }
    }
}
