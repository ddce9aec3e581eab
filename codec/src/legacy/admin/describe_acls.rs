//! DescribeAcls v0 (Kafka 0.11), removed in Kafka 4.0, translated to and from the crate's
//! `DescribeAclsRequest` / `DescribeAclsResponse` at v1, its minimum.
//!
//! v1 (KIP-290, prefixed ACLs) added a pattern type to the request filter (after
//! resource_name_filter) and to each resource of the response (after resource_name); v0 is
//! otherwise identical (Kafka 3.9's message JSON). Every ACL v0 can name is literal (the wildcard
//! `*` included), and a v0 filter matched literal ACLs only, so the upgraded filter is LITERAL,
//! the spec's default for v0. Downgrading an answer drops bindings of any other pattern type
//! (prefixed ones, which a LITERAL filter does not return anyway): a v0 client has no way to tell
//! them from literal ones, and Kafka's own v0 encoder refused them.

use super::check_version;
use super::pattern_type::{ANY, LITERAL};
use crate::legacy::errors::downgrade_error;
use crate::legacy::wire::{array, nullable_string, string, whole, Res, Writer};
use crate::legacy::LegacyError;
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{ApiKey, DescribeAclsRequest, DescribeAclsResponse};
use nom::number::complete::{be_i16, be_i32, be_i8};
use std::ops::RangeInclusive;

/// The DescribeAcls versions Kafka 4.0 removed and this module translates.
pub const OLD_VERSIONS: RangeInclusive<i16> = 0..=0;

/// A v0 DescribeAcls body → the crate's request, `pattern_type_filter` LITERAL (what v0 matched).
pub fn decode_request(version: i16, body: &[u8]) -> Result<DescribeAclsRequest, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    whole(body, "DescribeAcls request", |input| {
        let (input, resource_type_filter) = be_i8(input)?;
        let (input, resource_name_filter) = nullable_string(input)?;
        let (input, principal_filter) = nullable_string(input)?;
        let (input, host_filter) = nullable_string(input)?;
        let (input, operation) = be_i8(input)?;
        let (input, permission_type) = be_i8(input)?;
        let request = DescribeAclsRequest::default()
            .with_resource_type_filter(resource_type_filter)
            .with_resource_name_filter(resource_name_filter)
            .with_pattern_type_filter(LITERAL)
            .with_principal_filter(principal_filter)
            .with_host_filter(host_filter)
            .with_operation(operation)
            .with_permission_type(permission_type);
        Ok((input, request))
    })
}

/// The crate's request → a v0 DescribeAcls body (for tests and fuzzing). As Kafka's client did for
/// v0, a filter for LITERAL or ANY patterns is written (to a v0 broker both meant the literal
/// ACLs, all there were); any other pattern type is refused.
pub fn encode_request(version: i16, request: &DescribeAclsRequest) -> Result<Vec<u8>, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    if request.pattern_type_filter != LITERAL && request.pattern_type_filter != ANY {
        return Err(LegacyError::Unrepresentable("DescribeAcls pattern type other than LITERAL or ANY"));
    }
    let mut w = Writer::new();
    w.i8(request.resource_type_filter).nullable_string(request.resource_name_filter.as_deref())?;
    w.nullable_string(request.principal_filter.as_deref())?.nullable_string(request.host_filter.as_deref())?;
    w.i8(request.operation).i8(request.permission_type);
    Ok(w.finish())
}

/// A v0 DescribeAcls response body → the crate's response (for tests): every resource LITERAL.
pub fn decode_response(version: i16, body: &[u8]) -> Result<DescribeAclsResponse, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    whole(body, "DescribeAcls response", |input| {
        let (input, throttle_time_ms) = be_i32(input)?;
        let (input, error_code) = be_i16(input)?;
        let (input, error_message) = nullable_string(input)?;
        let (input, resources) = array(resource)(input)?;
        let response = DescribeAclsResponse::default()
            .with_throttle_time_ms(throttle_time_ms)
            .with_error_code(error_code)
            .with_error_message(error_message)
            .with_resources(resources);
        Ok((input, response))
    })
}

/// The broker's response (decoded by the crate at the version the request was sent with) → the v0
/// layout, error codes mapped to ones the client knows. Resources whose pattern type is not
/// LITERAL are left out (module documentation).
pub fn encode_response(version: i16, response: &DescribeAclsResponse) -> Result<Vec<u8>, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    let literal: Vec<&DescribeAclsResource> = response.resources.iter().filter(|resource| resource.pattern_type == LITERAL).collect();
    let mut w = Writer::new();
    w.i32(response.throttle_time_ms).i16(downgrade_error(ApiKey::DescribeAcls, version, response.error_code));
    w.nullable_string(response.error_message.as_deref())?;
    w.array(&literal, |w, resource| {
        w.i8(resource.resource_type).string(&resource.resource_name)?;
        w.array(&resource.acls, |w, acl| {
            w.string(&acl.principal)?.string(&acl.host)?.i8(acl.operation).i8(acl.permission_type);
            Ok(())
        })?;
        Ok(())
    })?;
    Ok(w.finish())
}

fn resource(input: &[u8]) -> Res<'_, DescribeAclsResource> {
    let (input, resource_type) = be_i8(input)?;
    let (input, resource_name) = string(input)?;
    let (input, acls) = array(|input| {
        let (input, principal) = string(input)?;
        let (input, host) = string(input)?;
        let (input, operation) = be_i8(input)?;
        let (input, permission_type) = be_i8(input)?;
        let acl = AclDescription::default()
            .with_principal(principal)
            .with_host(host)
            .with_operation(operation)
            .with_permission_type(permission_type);
        Ok((input, acl))
    })(input)?;
    let resource = DescribeAclsResource::default()
        .with_resource_type(resource_type)
        .with_resource_name(resource_name)
        .with_pattern_type(LITERAL)
        .with_acls(acls);
    Ok((input, resource))
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

    const PREFIXED: i8 = 4;

    #[test]
    fn hand_assembled_request_decodes_field_by_field() {
        let body = cat(&[&[2], &s("orders"), &s("User:alice"), &(-1i16).to_be_bytes(), &[3], &[3]]);
        let request = decode_request(0, &body).unwrap();
        assert_eq!((request.resource_type_filter, request.resource_name_filter.clone()), (2, Some(text("orders"))));
        assert_eq!(request.pattern_type_filter, LITERAL);
        assert_eq!((request.principal_filter.clone(), request.host_filter.clone()), (Some(text("User:alice")), None));
        assert_eq!((request.operation, request.permission_type), (3, 3));
        assert_eq!(encode_request(0, &request).unwrap(), body);
    }

    #[test]
    fn hand_assembled_response_decodes_field_by_field() {
        let body = cat(&[
            &5i32.to_be_bytes(), &0i16.to_be_bytes(), &(-1i16).to_be_bytes(), // throttle_time_ms, error_code, error_message
            &1i32.to_be_bytes(),                                        // resources count
            &[2], &s("orders"), &2i32.to_be_bytes(),                    // resource_type, resource_name, acls count
            &s("User:alice"), &s("*"), &[3], &[3],                      // principal, host, operation READ, ALLOW
            &s("User:bob"), &s("10.0.0.1"), &[4], &[2],                 // WRITE, DENY
        ]);
        let response = decode_response(0, &body).unwrap();
        assert_eq!((response.throttle_time_ms, response.error_code, response.error_message.clone()), (5, 0, None));
        let resource = &response.resources[0];
        assert_eq!((resource.resource_type, resource.resource_name.clone(), resource.pattern_type), (2, text("orders"), LITERAL));
        assert_eq!(
            (resource.acls[0].principal.clone(), resource.acls[0].host.clone(), resource.acls[0].operation, resource.acls[0].permission_type),
            (text("User:alice"), text("*"), 3, 3)
        );
        assert_eq!(
            (resource.acls[1].principal.clone(), resource.acls[1].host.clone(), resource.acls[1].operation, resource.acls[1].permission_type),
            (text("User:bob"), text("10.0.0.1"), 4, 2)
        );
        assert_eq!(encode_response(0, &response).unwrap(), body);
    }

    #[test]
    fn pattern_types_v0_cannot_express() {
        let any = DescribeAclsRequest::default().with_pattern_type_filter(ANY);
        assert_eq!(decode_request(0, &encode_request(0, &any).unwrap()).unwrap().pattern_type_filter, LITERAL);
        let prefixed = DescribeAclsRequest::default().with_pattern_type_filter(PREFIXED);
        assert!(matches!(encode_request(0, &prefixed), Err(LegacyError::Unrepresentable(_))));
        let resource = |name: &str, pattern| {
            DescribeAclsResource::default().with_resource_type(2).with_resource_name(text(name)).with_pattern_type(pattern)
        };
        let resources = vec![resource("a", LITERAL), resource("b", PREFIXED), resource("c", LITERAL)];
        let response = DescribeAclsResponse::default().with_resources(resources);
        let old = decode_response(0, &encode_response(0, &through_crate(&response, 1)).unwrap()).unwrap();
        let names: Vec<&str> = old.resources.iter().map(|r| r.resource_name.as_str()).collect();
        assert_eq!(names, vec!["a", "c"]);
    }

    #[test]
    fn versions_outside_the_old_range_are_refused() {
        for version in [-1, 1, 3] {
            let refused = LegacyError::Unrepresentable("version");
            assert_eq!(decode_request(version, &[]).unwrap_err(), refused);
            assert_eq!(encode_request(version, &DescribeAclsRequest::default()).unwrap_err(), refused);
            assert_eq!(decode_response(version, &[]).unwrap_err(), refused);
            assert_eq!(encode_response(version, &DescribeAclsResponse::default()).unwrap_err(), refused);
        }
    }

    /// ACL enums: v0–1 know no USER resource (v3+), so keep to codes below it.
    fn code() -> impl Strategy<Value = i8> {
        0i8..8
    }

    fn old_request() -> impl Strategy<Value = DescribeAclsRequest> {
        (code(), nullable_str_bytes(), nullable_str_bytes(), nullable_str_bytes(), code(), code())
            .prop_map(|(kind, name, principal, host, op, perm)| {
                DescribeAclsRequest::default()
                    .with_resource_type_filter(kind)
                    .with_resource_name_filter(name)
                    .with_pattern_type_filter(LITERAL)
                    .with_principal_filter(principal)
                    .with_host_filter(host)
                    .with_operation(op)
                    .with_permission_type(perm)
            })
    }

    fn old_response() -> impl Strategy<Value = DescribeAclsResponse> {
        let acl = (str_bytes(), str_bytes(), code(), code())
            .prop_map(|(principal, host, op, perm)| {
                AclDescription::default().with_principal(principal).with_host(host).with_operation(op).with_permission_type(perm)
            });
        let resource = (code(), str_bytes(), vec(acl, 0..3)).prop_map(|(kind, name, acls)| {
            DescribeAclsResource::default().with_resource_type(kind).with_resource_name(name).with_pattern_type(LITERAL).with_acls(acls)
        });
        (any::<i32>(), old_error(ApiKey::DescribeAcls, 0), nullable_str_bytes(), vec(resource, 0..3))
            .prop_map(|(throttle, error, message, resources)| {
                DescribeAclsResponse::default()
                    .with_throttle_time_ms(throttle)
                    .with_error_code(error)
                    .with_error_message(message)
                    .with_resources(resources)
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
