//! CreateAcls v0 (Kafka 0.11), removed in Kafka 4.0, translated to and from the crate's
//! `CreateAclsRequest` / `CreateAclsResponse` at v1, its minimum.
//!
//! v1 (KIP-290, prefixed ACLs) added `resource_pattern_type` to each creation, after
//! resource_name; v0's ACLs are all literal (the wildcard `*` included), so the upgrade creates
//! LITERAL bindings, the spec's default. The response did not change: Kafka 3.9's message JSON
//! gives v0 exactly v1's layout (throttle_time_ms, results [error_code, error_message]), so
//! responses go through the crate at v1.

use super::pattern_type::LITERAL;
use super::{check_version, decode_same, encode_same};
use crate::legacy::errors::downgrade_error;
use crate::legacy::wire::{array, string, whole, Res, Writer};
use crate::legacy::LegacyError;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::{ApiKey, CreateAclsRequest, CreateAclsResponse};
use nom::number::complete::be_i8;
use std::ops::RangeInclusive;

/// The CreateAcls versions Kafka 4.0 removed and this module translates.
pub const OLD_VERSIONS: RangeInclusive<i16> = 0..=0;

/// The crate's (and Kafka 4.0's) lowest CreateAcls version, whose response layout v0 shares.
const CRATE_MIN: i16 = 1;

/// A v0 CreateAcls body → the crate's request, each creation's pattern type LITERAL.
pub fn decode_request(version: i16, body: &[u8]) -> Result<CreateAclsRequest, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    whole(body, "CreateAcls request", |input| {
        let (input, creations) = array(creation)(input)?;
        Ok((input, CreateAclsRequest::default().with_creations(creations)))
    })
}

/// The crate's request → a v0 CreateAcls body (for tests and fuzzing). A binding of another pattern
/// type (prefixed) would be created as a literal one, granting something else: refused, as Kafka's
/// client refused it for v0.
pub fn encode_request(version: i16, request: &CreateAclsRequest) -> Result<Vec<u8>, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    let mut w = Writer::new();
    w.array(&request.creations, |w, creation| {
        if creation.resource_pattern_type != LITERAL {
            return Err(LegacyError::Unrepresentable("CreateAcls pattern type other than LITERAL"));
        }
        w.i8(creation.resource_type).string(&creation.resource_name)?.string(&creation.principal)?.string(&creation.host)?;
        w.i8(creation.operation).i8(creation.permission_type);
        Ok(())
    })?;
    Ok(w.finish())
}

/// A v0 CreateAcls response body → the crate's response (for tests). Same layout as v1.
pub fn decode_response(version: i16, body: &[u8]) -> Result<CreateAclsResponse, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    decode_same(body, CRATE_MIN, "CreateAcls response")
}

/// The broker's response (decoded by the crate at the version the request was sent with) → the v0
/// layout (v1's), error codes mapped to ones the client knows.
pub fn encode_response(version: i16, response: &CreateAclsResponse) -> Result<Vec<u8>, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    let mut old = response.clone();
    for result in &mut old.results {
        result.error_code = downgrade_error(ApiKey::CreateAcls, version, result.error_code);
    }
    encode_same(&old, CRATE_MIN)
}

fn creation(input: &[u8]) -> Res<'_, AclCreation> {
    let (input, resource_type) = be_i8(input)?;
    let (input, resource_name) = string(input)?;
    let (input, principal) = string(input)?;
    let (input, host) = string(input)?;
    let (input, operation) = be_i8(input)?;
    let (input, permission_type) = be_i8(input)?;
    let creation = AclCreation::default()
        .with_resource_type(resource_type)
        .with_resource_name(resource_name)
        .with_resource_pattern_type(LITERAL)
        .with_principal(principal)
        .with_host(host)
        .with_operation(operation)
        .with_permission_type(permission_type);
    Ok((input, creation))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::legacy::testing::{
        arbitrary_bytes, biased_bytes, cat, nullable_str_bytes, old_error, round_trip, s, str_bytes, text, through_crate
    };
    use kafka_protocol::messages::create_acls_response::AclCreationResult;
    use proptest::collection::vec;
    use proptest::prelude::*;

    /// Crate versions checked: the minimum, the first flexible one, the one with user resources.
    const CRATE_VERSIONS: [i16; 3] = [1, 2, 3];

    #[test]
    fn hand_assembled_request_decodes_field_by_field() {
        let body = cat(&[
            &1i32.to_be_bytes(),                                        // creations count
            &[2], &s("orders"), &s("User:alice"), &s("*"), &[3], &[3],  // TOPIC, name, principal, host, READ, ALLOW
        ]);
        let request = decode_request(0, &body).unwrap();
        let creation = &request.creations[0];
        assert_eq!((creation.resource_type, creation.resource_name.clone(), creation.resource_pattern_type), (2, text("orders"), LITERAL));
        assert_eq!(
            (creation.principal.clone(), creation.host.clone(), creation.operation, creation.permission_type),
            (text("User:alice"), text("*"), 3, 3)
        );
        assert_eq!(encode_request(0, &request).unwrap(), body);
    }

    #[test]
    fn hand_assembled_response_decodes_field_by_field() {
        let body = cat(&[&7i32.to_be_bytes(), &2i32.to_be_bytes(), &0i16.to_be_bytes(), &(-1i16).to_be_bytes(), &31i16.to_be_bytes(), &s("no")]);
        let response = decode_response(0, &body).unwrap();
        assert_eq!(response.throttle_time_ms, 7);
        assert_eq!((response.results[0].error_code, response.results[0].error_message.clone()), (0, None));
        assert_eq!((response.results[1].error_code, response.results[1].error_message.clone()), (31, Some(text("no"))));
        assert_eq!(encode_response(0, &response).unwrap(), body);
    }

    #[test]
    fn only_literal_bindings_can_be_created_in_v0() {
        let prefixed = CreateAclsRequest::default().with_creations(vec![AclCreation::default().with_resource_pattern_type(4)]);
        assert_eq!(encode_request(0, &prefixed), Err(LegacyError::Unrepresentable("CreateAcls pattern type other than LITERAL")));
        let response = CreateAclsResponse::default().with_results(vec![AclCreationResult::default().with_error_code(56)]);
        assert_eq!(decode_response(0, &encode_response(0, &through_crate(&response, 2)).unwrap()).unwrap().results[0].error_code, 6);
    }

    #[test]
    fn versions_outside_the_old_range_are_refused() {
        for version in [-1, 1, 3] {
            let refused = LegacyError::Unrepresentable("version");
            assert_eq!(decode_request(version, &[]).unwrap_err(), refused);
            assert_eq!(encode_request(version, &CreateAclsRequest::default()).unwrap_err(), refused);
            assert_eq!(decode_response(version, &[]).unwrap_err(), refused);
            assert_eq!(encode_response(version, &CreateAclsResponse::default()).unwrap_err(), refused);
        }
    }

    fn old_request() -> impl Strategy<Value = CreateAclsRequest> {
        let creation = (0i8..8, str_bytes(), str_bytes(), str_bytes(), 0i8..15, 0i8..4).prop_map(|(kind, name, principal, host, op, perm)| {
            AclCreation::default()
                .with_resource_type(kind)
                .with_resource_name(name)
                .with_principal(principal)
                .with_host(host)
                .with_operation(op)
                .with_permission_type(perm)
        });
        vec(creation, 0..4).prop_map(|creations| CreateAclsRequest::default().with_creations(creations))
    }

    fn old_response() -> impl Strategy<Value = CreateAclsResponse> {
        let result = (old_error(ApiKey::CreateAcls, 0), nullable_str_bytes())
            .prop_map(|(error, message)| AclCreationResult::default().with_error_code(error).with_error_message(message));
        (any::<i32>(), vec(result, 0..4))
            .prop_map(|(throttle, results)| CreateAclsResponse::default().with_throttle_time_ms(throttle).with_results(results))
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
