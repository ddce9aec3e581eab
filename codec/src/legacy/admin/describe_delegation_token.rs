//! DescribeDelegationToken v0 (Kafka 1.1), removed in Kafka 4.0, translated to and from the
//! crate's `DescribeDelegationTokenRequest` / `DescribeDelegationTokenResponse` at v1, its minimum.
//!
//! Kafka 3.9's message JSON gives v0 exactly v1's layout (request: owners [principal_type,
//! principal_name], null for every token; response: error_code, tokens [principal_type,
//! principal_name, issue/expiry/max timestamps, token_id, hmac, renewers], throttle_time_ms): v1
//! changed only when the broker throttles. Both directions go through the crate at v1. Each
//! token's requester (v3+, KIP-373) is dropped on the way back.

use super::{check_version, decode_same, encode_same};
use crate::legacy::errors::downgrade_error;
use crate::legacy::LegacyError;
use kafka_protocol::messages::{ApiKey, DescribeDelegationTokenRequest, DescribeDelegationTokenResponse};
use kafka_protocol::protocol::StrBytes;
use std::ops::RangeInclusive;

/// The DescribeDelegationToken versions Kafka 4.0 removed and this module translates.
pub const OLD_VERSIONS: RangeInclusive<i16> = 0..=0;

/// The crate's (and Kafka 4.0's) lowest DescribeDelegationToken version, whose layout v0 shares.
const CRATE_MIN: i16 = 1;

/// A v0 DescribeDelegationToken body → the crate's request (same layout as v1).
pub fn decode_request(version: i16, body: &[u8]) -> Result<DescribeDelegationTokenRequest, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    decode_same(body, CRATE_MIN, "DescribeDelegationToken request")
}

/// The crate's request → a v0 DescribeDelegationToken body (for tests and fuzzing).
pub fn encode_request(version: i16, request: &DescribeDelegationTokenRequest) -> Result<Vec<u8>, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    encode_same(request, CRATE_MIN)
}

/// A v0 DescribeDelegationToken response body → the crate's response (for tests). Same layout as v1.
pub fn decode_response(version: i16, body: &[u8]) -> Result<DescribeDelegationTokenResponse, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    decode_same(body, CRATE_MIN, "DescribeDelegationToken response")
}

/// The broker's response (decoded by the crate at the version the request was sent with) → the v0
/// layout, the error code mapped to one the client knows and each token's requester dropped.
pub fn encode_response(version: i16, response: &DescribeDelegationTokenResponse) -> Result<Vec<u8>, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    let mut old = response.clone().with_error_code(downgrade_error(ApiKey::DescribeDelegationToken, version, response.error_code));
    for token in &mut old.tokens {
        token.token_requester_principal_type = StrBytes::default();
        token.token_requester_principal_name = StrBytes::default();
    }
    encode_same(&old, CRATE_MIN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::legacy::testing::{arbitrary_bytes, biased_bytes, cat, old_error, round_trip, s, str_bytes, text, through_crate};
    use bytes::Bytes;
    use kafka_protocol::messages::describe_delegation_token_request::DescribeDelegationTokenOwner;
    use kafka_protocol::messages::describe_delegation_token_response::{DescribedDelegationToken, DescribedDelegationTokenRenewer};
    use proptest::collection::vec;
    use proptest::prelude::*;

    /// Crate versions checked: the minimum and the first flexible one.
    const CRATE_VERSIONS: [i16; 2] = [1, 2];

    #[test]
    fn hand_assembled_requests_decode_field_by_field() {
        let body = cat(&[&1i32.to_be_bytes(), &s("User"), &s("alice")]);
        let request = decode_request(0, &body).unwrap();
        let owners = request.owners.as_ref().unwrap();
        assert_eq!((owners[0].principal_type.clone(), owners[0].principal_name.clone()), (text("User"), text("alice")));
        assert_eq!(encode_request(0, &request).unwrap(), body);
        let every = (-1i32).to_be_bytes();
        let request = decode_request(0, &every).unwrap();
        assert_eq!(request.owners, None);
        assert_eq!(encode_request(0, &request).unwrap(), every);
    }

    #[test]
    fn hand_assembled_response_decodes_field_by_field() {
        let body = cat(&[
            &0i16.to_be_bytes(), &1i32.to_be_bytes(),                   // error_code, tokens count
            &s("User"), &s("alice"),                                    // principal_type, principal_name
            &1i64.to_be_bytes(), &2i64.to_be_bytes(), &3i64.to_be_bytes(), // issue, expiry, max timestamps
            &s("token-1"), &3i32.to_be_bytes(), b"mac",                 // token_id, hmac
            &1i32.to_be_bytes(), &s("User"), &s("bob"),                 // renewers
            &9i32.to_be_bytes(),                                        // throttle_time_ms
        ]);
        let response = decode_response(0, &body).unwrap();
        assert_eq!((response.error_code, response.throttle_time_ms), (0, 9));
        let token = &response.tokens[0];
        assert_eq!((token.principal_type.clone(), token.principal_name.clone()), (text("User"), text("alice")));
        assert_eq!((token.issue_timestamp, token.expiry_timestamp, token.max_timestamp), (1, 2, 3));
        assert_eq!((token.token_id.clone(), token.hmac.clone()), (text("token-1"), Bytes::from_static(b"mac")));
        assert_eq!((token.renewers[0].principal_type.clone(), token.renewers[0].principal_name.clone()), (text("User"), text("bob")));
        assert_eq!(encode_response(0, &response).unwrap(), body);
    }

    #[test]
    fn requesters_are_dropped() {
        let token = DescribedDelegationToken::default()
            .with_token_id(text("t"))
            .with_token_requester_principal_type(text("User"))
            .with_token_requester_principal_name(text("x"));
        let response = DescribeDelegationTokenResponse::default().with_tokens(vec![token]);
        let old = decode_response(0, &encode_response(0, &through_crate(&response, 3)).unwrap()).unwrap();
        assert_eq!(old.tokens, vec![DescribedDelegationToken::default().with_token_id(text("t"))]);
    }

    #[test]
    fn versions_outside_the_old_range_are_refused() {
        for version in [-1, 1, 3] {
            let refused = LegacyError::Unrepresentable("version");
            assert_eq!(decode_request(version, &[]).unwrap_err(), refused);
            assert_eq!(encode_request(version, &DescribeDelegationTokenRequest::default()).unwrap_err(), refused);
            assert_eq!(decode_response(version, &[]).unwrap_err(), refused);
            assert_eq!(encode_response(version, &DescribeDelegationTokenResponse::default()).unwrap_err(), refused);
        }
    }

    fn old_request() -> impl Strategy<Value = DescribeDelegationTokenRequest> {
        let owner = (str_bytes(), str_bytes())
            .prop_map(|(kind, name)| DescribeDelegationTokenOwner::default().with_principal_type(kind).with_principal_name(name));
        prop::option::of(vec(owner, 0..4)).prop_map(|owners| DescribeDelegationTokenRequest::default().with_owners(owners))
    }

    fn old_response() -> impl Strategy<Value = DescribeDelegationTokenResponse> {
        let renewer = (str_bytes(), str_bytes())
            .prop_map(|(kind, name)| DescribedDelegationTokenRenewer::default().with_principal_type(kind).with_principal_name(name));
        let token = (str_bytes(), str_bytes(), any::<[i64; 3]>(), str_bytes(), vec(any::<u8>(), 0..16), vec(renewer, 0..3)).prop_map(
            |(kind, name, [issue, expiry, max], token_id, hmac, renewers)| {
                DescribedDelegationToken::default()
                    .with_principal_type(kind)
                    .with_principal_name(name)
                    .with_issue_timestamp(issue)
                    .with_expiry_timestamp(expiry)
                    .with_max_timestamp(max)
                    .with_token_id(token_id)
                    .with_hmac(Bytes::from(hmac))
                    .with_renewers(renewers)
            },
        );
        (old_error(ApiKey::DescribeDelegationToken, 0), vec(token, 0..3), any::<i32>())
            .prop_map(|(error, tokens, throttle)| {
                DescribeDelegationTokenResponse::default().with_error_code(error).with_tokens(tokens).with_throttle_time_ms(throttle)
            })
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
