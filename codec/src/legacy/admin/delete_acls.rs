//! DeleteAcls v0 (Kafka 0.11), removed in Kafka 4.0, translated to and from the crate's
//! `DeleteAclsRequest` / `DeleteAclsResponse` at v1, its minimum.
//!
//! v1 (KIP-290, prefixed ACLs) added a pattern type to each filter (after resource_name_filter)
//! and to each matching ACL of the response (after resource_name); v0 is otherwise identical
//! (Kafka 3.9's message JSON). A v0 filter matched literal ACLs only (all there were), so the
//! upgraded filter is LITERAL, the spec's default. A LITERAL filter matches only literal bindings,
//! so a downgraded answer has only literal ones; any other would have been deleted without the
//! client being able to tell which, and is refused as Kafka's v0 encoder refused it.

use super::check_version;
use super::pattern_type::{ANY, LITERAL};
use crate::legacy::errors::downgrade_error;
use crate::legacy::wire::{array, nullable_string, string, whole, Res, Writer};
use crate::legacy::LegacyError;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::delete_acls_response::{DeleteAclsFilterResult, DeleteAclsMatchingAcl};
use kafka_protocol::messages::{ApiKey, DeleteAclsRequest, DeleteAclsResponse};
use nom::number::complete::{be_i16, be_i32, be_i8};
use std::ops::RangeInclusive;

/// The DeleteAcls versions Kafka 4.0 removed and this module translates.
pub const OLD_VERSIONS: RangeInclusive<i16> = 0..=0;

/// A v0 DeleteAcls body → the crate's request, each filter's pattern type LITERAL.
pub fn decode_request(version: i16, body: &[u8]) -> Result<DeleteAclsRequest, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    whole(body, "DeleteAcls request", |input| {
        let (input, filters) = array(filter)(input)?;
        Ok((input, DeleteAclsRequest::default().with_filters(filters)))
    })
}

/// The crate's request → a v0 DeleteAcls body (for tests and fuzzing). As Kafka's client did for
/// v0, filters for LITERAL or ANY patterns are written (to a v0 broker both meant the literal ACLs,
/// all there were); any other pattern type is refused.
pub fn encode_request(version: i16, request: &DeleteAclsRequest) -> Result<Vec<u8>, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    let mut w = Writer::new();
    w.array(&request.filters, |w, filter| {
        if filter.pattern_type_filter != LITERAL && filter.pattern_type_filter != ANY {
            return Err(LegacyError::Unrepresentable("DeleteAcls pattern type other than LITERAL or ANY"));
        }
        w.i8(filter.resource_type_filter).nullable_string(filter.resource_name_filter.as_deref())?;
        w.nullable_string(filter.principal_filter.as_deref())?.nullable_string(filter.host_filter.as_deref())?;
        w.i8(filter.operation).i8(filter.permission_type);
        Ok(())
    })?;
    Ok(w.finish())
}

/// A v0 DeleteAcls response body → the crate's response (for tests): every matching ACL LITERAL.
pub fn decode_response(version: i16, body: &[u8]) -> Result<DeleteAclsResponse, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    whole(body, "DeleteAcls response", |input| {
        let (input, throttle_time_ms) = be_i32(input)?;
        let (input, filter_results) = array(filter_result)(input)?;
        Ok((input, DeleteAclsResponse::default().with_throttle_time_ms(throttle_time_ms).with_filter_results(filter_results)))
    })
}

/// The broker's response (decoded by the crate at the version the request was sent with) → the v0
/// layout, error codes mapped to ones the client knows; a matching ACL that is not LITERAL is
/// refused (module documentation).
pub fn encode_response(version: i16, response: &DeleteAclsResponse) -> Result<Vec<u8>, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    let code = |error_code| downgrade_error(ApiKey::DeleteAcls, version, error_code);
    let mut w = Writer::new();
    w.i32(response.throttle_time_ms);
    w.array(&response.filter_results, |w, result| {
        w.i16(code(result.error_code)).nullable_string(result.error_message.as_deref())?;
        w.array(&result.matching_acls, |w, acl| {
            if acl.pattern_type != LITERAL {
                return Err(LegacyError::Unrepresentable("DeleteAcls matching ACL pattern type other than LITERAL"));
            }
            w.i16(code(acl.error_code)).nullable_string(acl.error_message.as_deref())?;
            w.i8(acl.resource_type).string(&acl.resource_name)?.string(&acl.principal)?.string(&acl.host)?;
            w.i8(acl.operation).i8(acl.permission_type);
            Ok(())
        })?;
        Ok(())
    })?;
    Ok(w.finish())
}

fn filter(input: &[u8]) -> Res<'_, DeleteAclsFilter> {
    let (input, resource_type_filter) = be_i8(input)?;
    let (input, resource_name_filter) = nullable_string(input)?;
    let (input, principal_filter) = nullable_string(input)?;
    let (input, host_filter) = nullable_string(input)?;
    let (input, operation) = be_i8(input)?;
    let (input, permission_type) = be_i8(input)?;
    let filter = DeleteAclsFilter::default()
        .with_resource_type_filter(resource_type_filter)
        .with_resource_name_filter(resource_name_filter)
        .with_pattern_type_filter(LITERAL)
        .with_principal_filter(principal_filter)
        .with_host_filter(host_filter)
        .with_operation(operation)
        .with_permission_type(permission_type);
    Ok((input, filter))
}

fn filter_result(input: &[u8]) -> Res<'_, DeleteAclsFilterResult> {
    let (input, error_code) = be_i16(input)?;
    let (input, error_message) = nullable_string(input)?;
    let (input, matching_acls) = array(matching_acl)(input)?;
    let result = DeleteAclsFilterResult::default()
        .with_error_code(error_code)
        .with_error_message(error_message)
        .with_matching_acls(matching_acls);
    Ok((input, result))
}

fn matching_acl(input: &[u8]) -> Res<'_, DeleteAclsMatchingAcl> {
    let (input, error_code) = be_i16(input)?;
    let (input, error_message) = nullable_string(input)?;
    let (input, resource_type) = be_i8(input)?;
    let (input, resource_name) = string(input)?;
    let (input, principal) = string(input)?;
    let (input, host) = string(input)?;
    let (input, operation) = be_i8(input)?;
    let (input, permission_type) = be_i8(input)?;
    let acl = DeleteAclsMatchingAcl::default()
        .with_error_code(error_code)
        .with_error_message(error_message)
        .with_resource_type(resource_type)
        .with_resource_name(resource_name)
        .with_pattern_type(LITERAL)
        .with_principal(principal)
        .with_host(host)
        .with_operation(operation)
        .with_permission_type(permission_type);
    Ok((input, acl))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::legacy::testing::{
        arbitrary_bytes, biased_bytes, cat, nullable_str_bytes, old_error, round_trip, s, str_bytes, text, through_crate
    };
    use proptest::collection::vec;
    use proptest::prelude::*;

    /// Crate versions checked: the minimum, the first flexible one, the one with user resources.
    const CRATE_VERSIONS: [i16; 3] = [1, 2, 3];

    #[test]
    fn hand_assembled_request_decodes_field_by_field() {
        let body = cat(&[
            &1i32.to_be_bytes(),                                        // filters count
            &[2], &(-1i16).to_be_bytes(), &s("User:alice"), &s("*"), &[1], &[1], // TOPIC, any name, principal, host, ANY, ANY
        ]);
        let request = decode_request(0, &body).unwrap();
        let filter = &request.filters[0];
        assert_eq!((filter.resource_type_filter, filter.resource_name_filter.clone(), filter.pattern_type_filter), (2, None, LITERAL));
        assert_eq!((filter.principal_filter.clone(), filter.host_filter.clone()), (Some(text("User:alice")), Some(text("*"))));
        assert_eq!((filter.operation, filter.permission_type), (1, 1));
        assert_eq!(encode_request(0, &request).unwrap(), body);
    }

    #[test]
    fn hand_assembled_response_decodes_field_by_field() {
        let body = cat(&[
            &3i32.to_be_bytes(),                                        // throttle_time_ms
            &1i32.to_be_bytes(), &0i16.to_be_bytes(), &(-1i16).to_be_bytes(), // filter_results count, error_code, error_message
            &1i32.to_be_bytes(),                                        // matching_acls count
            &0i16.to_be_bytes(), &(-1i16).to_be_bytes(), &[2], &s("orders"), &s("User:alice"), &s("*"), &[3], &[3],
        ]);
        let response = decode_response(0, &body).unwrap();
        assert_eq!(response.throttle_time_ms, 3);
        let result = &response.filter_results[0];
        assert_eq!((result.error_code, result.error_message.clone()), (0, None));
        let acl = &result.matching_acls[0];
        assert_eq!(
            (acl.error_code, acl.error_message.clone(), acl.resource_type, acl.resource_name.clone(), acl.pattern_type),
            (0, None, 2, text("orders"), LITERAL)
        );
        assert_eq!((acl.principal.clone(), acl.host.clone(), acl.operation, acl.permission_type), (text("User:alice"), text("*"), 3, 3));
        assert_eq!(encode_response(0, &response).unwrap(), body);
    }

    #[test]
    fn pattern_types_v0_cannot_express() {
        let filter = |pattern| DeleteAclsRequest::default().with_filters(vec![DeleteAclsFilter::default().with_pattern_type_filter(pattern)]);
        assert_eq!(decode_request(0, &encode_request(0, &filter(ANY)).unwrap()).unwrap(), filter(LITERAL));
        assert!(matches!(encode_request(0, &filter(4)), Err(LegacyError::Unrepresentable(_))));
        let prefixed = DeleteAclsMatchingAcl::default().with_pattern_type(4);
        let result = DeleteAclsFilterResult::default().with_matching_acls(vec![prefixed]);
        let response = DeleteAclsResponse::default().with_filter_results(vec![result]);
        assert!(matches!(encode_response(0, &through_crate(&response, 1)), Err(LegacyError::Unrepresentable(_))));
    }

    #[test]
    fn versions_outside_the_old_range_are_refused() {
        for version in [-1, 1, 3] {
            let refused = LegacyError::Unrepresentable("version");
            assert_eq!(decode_request(version, &[]).unwrap_err(), refused);
            assert_eq!(encode_request(version, &DeleteAclsRequest::default()).unwrap_err(), refused);
            assert_eq!(decode_response(version, &[]).unwrap_err(), refused);
            assert_eq!(encode_response(version, &DeleteAclsResponse::default()).unwrap_err(), refused);
        }
    }

    fn old_request() -> impl Strategy<Value = DeleteAclsRequest> {
        let filter = (0i8..8, nullable_str_bytes(), nullable_str_bytes(), nullable_str_bytes(), 0i8..15, 0i8..4)
            .prop_map(|(kind, name, principal, host, op, perm)| {
                DeleteAclsFilter::default()
                    .with_resource_type_filter(kind)
                    .with_resource_name_filter(name)
                    .with_principal_filter(principal)
                    .with_host_filter(host)
                    .with_operation(op)
                    .with_permission_type(perm)
            });
        vec(filter, 0..4).prop_map(|filters| DeleteAclsRequest::default().with_filters(filters))
    }

    fn old_response() -> impl Strategy<Value = DeleteAclsResponse> {
        let error = || old_error(ApiKey::DeleteAcls, 0);
        let acl = (error(), nullable_str_bytes(), 0i8..8, str_bytes(), str_bytes(), str_bytes(), 0i8..15, 0i8..4).prop_map(
            |(error, message, kind, name, principal, host, op, perm)| {
                DeleteAclsMatchingAcl::default()
                    .with_error_code(error)
                    .with_error_message(message)
                    .with_resource_type(kind)
                    .with_resource_name(name)
                    .with_principal(principal)
                    .with_host(host)
                    .with_operation(op)
                    .with_permission_type(perm)
            },
        );
        let result = (error(), nullable_str_bytes(), vec(acl, 0..3))
            .prop_map(|(error, message, acls)| {
                DeleteAclsFilterResult::default().with_error_code(error).with_error_message(message).with_matching_acls(acls)
            });
        (any::<i32>(), vec(result, 0..3))
            .prop_map(|(throttle, results)| DeleteAclsResponse::default().with_throttle_time_ms(throttle).with_filter_results(results))
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
