//! RenewDelegationToken v0 (Kafka 1.1), removed in Kafka 4.0, translated to and from the crate's
//! `RenewDelegationTokenRequest` / `RenewDelegationTokenResponse` at v1, its minimum.
//!
//! Kafka 3.9's message JSON gives v0 exactly v1's layout (request: hmac, renew_period_ms;
//! response: error_code, expiry_timestamp_ms, throttle_time_ms): v1 changed only when the broker
//! throttles. Both directions go through the crate at v1; only error codes are mapped.

use super::{check_version, decode_same, encode_same};
use crate::legacy::errors::downgrade_error;
use crate::legacy::LegacyError;
use kafka_protocol::messages::{ApiKey, RenewDelegationTokenRequest, RenewDelegationTokenResponse};
use std::ops::RangeInclusive;

/// The RenewDelegationToken versions Kafka 4.0 removed and this module translates.
pub const OLD_VERSIONS: RangeInclusive<i16> = 0..=0;

/// The crate's (and Kafka 4.0's) lowest RenewDelegationToken version, whose layout v0 shares.
const CRATE_MIN: i16 = 1;

/// A v0 RenewDelegationToken body → the crate's request (same layout as v1).
pub fn decode_request(version: i16, body: &[u8]) -> Result<RenewDelegationTokenRequest, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    decode_same(body, CRATE_MIN, "RenewDelegationToken request")
}

/// The crate's request → a v0 RenewDelegationToken body (for tests and fuzzing).
pub fn encode_request(version: i16, request: &RenewDelegationTokenRequest) -> Result<Vec<u8>, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    encode_same(request, CRATE_MIN)
}

/// A v0 RenewDelegationToken response body → the crate's response (for tests). Same layout as v1.
pub fn decode_response(version: i16, body: &[u8]) -> Result<RenewDelegationTokenResponse, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    decode_same(body, CRATE_MIN, "RenewDelegationToken response")
}

/// The broker's response (decoded by the crate at the version the request was sent with) → the v0
/// layout, the error code mapped to one the client knows.
pub fn encode_response(version: i16, response: &RenewDelegationTokenResponse) -> Result<Vec<u8>, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    let old = response.clone().with_error_code(downgrade_error(ApiKey::RenewDelegationToken, version, response.error_code));
    encode_same(&old, CRATE_MIN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::legacy::testing::{arbitrary_bytes, biased_bytes, cat, old_error, round_trip};
    use bytes::Bytes;
    use proptest::collection::vec;
    use proptest::prelude::*;

    /// Crate versions checked: the minimum and the first flexible one.
    const CRATE_VERSIONS: [i16; 2] = [1, 2];

    #[test]
    fn hand_assembled_request_decodes_field_by_field() {
        let body = cat(&[&3i32.to_be_bytes(), b"mac", &3_600_000i64.to_be_bytes()]);
        let request = decode_request(0, &body).unwrap();
        assert_eq!((request.hmac.clone(), request.renew_period_ms), (Bytes::from_static(b"mac"), 3_600_000));
        assert_eq!(encode_request(0, &request).unwrap(), body);
    }

    #[test]
    fn hand_assembled_response_decodes_field_by_field() {
        let body = cat(&[&62i16.to_be_bytes(), &1_700_000_000_000i64.to_be_bytes(), &0i32.to_be_bytes()]);
        let response = decode_response(0, &body).unwrap();
        assert_eq!((response.error_code, response.expiry_timestamp_ms, response.throttle_time_ms), (62, 1_700_000_000_000, 0));
        assert_eq!(encode_response(0, &response).unwrap(), body);
    }

    #[test]
    fn versions_outside_the_old_range_are_refused() {
        for version in [-1, 1, 2] {
            let refused = LegacyError::Unrepresentable("version");
            assert_eq!(decode_request(version, &[]).unwrap_err(), refused);
            assert_eq!(encode_request(version, &RenewDelegationTokenRequest::default()).unwrap_err(), refused);
            assert_eq!(decode_response(version, &[]).unwrap_err(), refused);
            assert_eq!(encode_response(version, &RenewDelegationTokenResponse::default()).unwrap_err(), refused);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn old_requests_survive_upgrade_and_downgrade(hmac in vec(any::<u8>(), 0..16), period in any::<i64>()) {
            let request = RenewDelegationTokenRequest::default().with_hmac(Bytes::from(hmac)).with_renew_period_ms(period);
            round_trip(0, &request, encode_request, decode_request, &CRATE_VERSIONS)?;
        }

        #[test]
        fn old_responses_survive_upgrade_and_downgrade(
            error in old_error(ApiKey::RenewDelegationToken, 0),
            expiry in any::<i64>(),
            throttle in any::<i32>(),
        ) {
            let response = RenewDelegationTokenResponse::default()
                .with_error_code(error)
                .with_expiry_timestamp_ms(expiry)
                .with_throttle_time_ms(throttle);
            round_trip(0, &response, encode_response, decode_response, &CRATE_VERSIONS)?;
        }

        #[test]
        fn arbitrary_bytes_never_panic(version in -1i16..2, body in biased_bytes()) {
            arbitrary_bytes(version, &body, encode_request, decode_request)?;
            arbitrary_bytes(version, &body, encode_response, decode_response)?;
        }
    }
}
