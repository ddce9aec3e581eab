//! DescribeConfigs v0 (Kafka 0.11), removed in Kafka 4.0, translated to and from the crate's
//! `DescribeConfigsRequest` / `DescribeConfigsResponse` at v1, its minimum.
//!
//! Layouts (Kafka 3.9's message JSON):
//! - request v0: resources [resource_type, resource_name, configuration_keys (nullable: null lists
//!   every key)]; v1 adds `include_synonyms` (false: v0 has no synonyms).
//! - response v0: throttle_time_ms, results [error_code, error_message, resource_type,
//!   resource_name, configs [name, value, read_only, is_default, is_sensitive]]; v1 replaces
//!   `is_default` by `config_source` (after read_only) and adds `synonyms` after is_sensitive.
//!
//! `is_default` and `config_source`: downgrading writes is_default = (config_source ==
//! DEFAULT_CONFIG), which is what brokers of v0's time sent. Reading a v0 answer (tests) picks the
//! source the way Kafka's Java client did for v0: DEFAULT_CONFIG if default, else
//! STATIC_BROKER_CONFIG for a broker, TOPIC_CONFIG for a topic, UNKNOWN otherwise. Both directions
//! agree, so a v0 answer survives the round trip.

use super::{boolean, check_version, nullable_array, write_nullable_array};
use crate::legacy::errors::downgrade_error;
use crate::legacy::wire::{array, nullable_string, string, whole, Res, Writer};
use crate::legacy::LegacyError;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{DescribeConfigsResourceResult, DescribeConfigsResult};
use kafka_protocol::messages::{ApiKey, DescribeConfigsRequest, DescribeConfigsResponse};
use nom::number::complete::{be_i16, be_i32, be_i8};
use std::ops::RangeInclusive;

/// The DescribeConfigs versions Kafka 4.0 removed and this module translates.
pub const OLD_VERSIONS: RangeInclusive<i16> = 0..=0;

/// `ConfigResource.Type` codes that decide a v0 entry's source.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;

/// `DescribeConfigsResponse.ConfigSource` codes.
const SOURCE_UNKNOWN: i8 = 0;
const SOURCE_TOPIC_CONFIG: i8 = 1;
const SOURCE_STATIC_BROKER_CONFIG: i8 = 4;
const SOURCE_DEFAULT_CONFIG: i8 = 5;

/// A v0 DescribeConfigs body → the crate's request (`include_synonyms` and `include_documentation`
/// false: v0 answers have neither).
pub fn decode_request(version: i16, body: &[u8]) -> Result<DescribeConfigsRequest, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    whole(body, "DescribeConfigs request", |input| {
        let (input, resources) = array(resource)(input)?;
        Ok((input, DescribeConfigsRequest::default().with_resources(resources).with_include_synonyms(false).with_include_documentation(false)))
    })
}

/// The crate's request → a v0 DescribeConfigs body (for tests and fuzzing). Synonyms and
/// documentation are not ignorable in the spec (the answer would lack what was asked): refused.
pub fn encode_request(version: i16, request: &DescribeConfigsRequest) -> Result<Vec<u8>, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    if request.include_synonyms {
        return Err(LegacyError::Unrepresentable("DescribeConfigs include_synonyms"));
    }
    if request.include_documentation {
        return Err(LegacyError::Unrepresentable("DescribeConfigs include_documentation"));
    }
    let mut w = Writer::new();
    w.array(&request.resources, |w, resource| {
        w.i8(resource.resource_type).string(&resource.resource_name)?;
        write_nullable_array(w, resource.configuration_keys.as_deref(), |w, key| {
            w.string(key)?;
            Ok(())
        })
    })?;
    Ok(w.finish())
}

/// A v0 DescribeConfigs response body → the crate's response (for tests), `config_source` derived
/// from `is_default` and the resource type (module documentation); no synonyms.
pub fn decode_response(version: i16, body: &[u8]) -> Result<DescribeConfigsResponse, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    whole(body, "DescribeConfigs response", |input| {
        let (input, throttle_time_ms) = be_i32(input)?;
        let (input, results) = array(result)(input)?;
        Ok((input, DescribeConfigsResponse::default().with_throttle_time_ms(throttle_time_ms).with_results(results)))
    })
}

/// The broker's response (decoded by the crate at the version the request was sent with) → the v0
/// layout, error codes mapped to ones the client knows, `is_default` from `config_source`.
/// Synonyms, config types and documentation (v1+, v3+) are dropped.
pub fn encode_response(version: i16, response: &DescribeConfigsResponse) -> Result<Vec<u8>, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    let mut w = Writer::new();
    w.i32(response.throttle_time_ms);
    w.array(&response.results, |w, result| {
        w.i16(downgrade_error(ApiKey::DescribeConfigs, version, result.error_code)).nullable_string(result.error_message.as_deref())?;
        w.i8(result.resource_type).string(&result.resource_name)?;
        w.array(&result.configs, |w, config| {
            w.string(&config.name)?.nullable_string(config.value.as_deref())?;
            w.bool(config.read_only).bool(config.config_source == SOURCE_DEFAULT_CONFIG).bool(config.is_sensitive);
            Ok(())
        })?;
        Ok(())
    })?;
    Ok(w.finish())
}

fn resource(input: &[u8]) -> Res<'_, DescribeConfigsResource> {
    let (input, resource_type) = be_i8(input)?;
    let (input, resource_name) = string(input)?;
    let (input, configuration_keys) = nullable_array(string)(input)?;
    let resource = DescribeConfigsResource::default()
        .with_resource_type(resource_type)
        .with_resource_name(resource_name)
        .with_configuration_keys(configuration_keys);
    Ok((input, resource))
}

fn result(input: &[u8]) -> Res<'_, DescribeConfigsResult> {
    let (input, error_code) = be_i16(input)?;
    let (input, error_message) = nullable_string(input)?;
    let (input, resource_type) = be_i8(input)?;
    let (input, resource_name) = string(input)?;
    let (input, configs) = array(|input| config(resource_type, input))(input)?;
    let result = DescribeConfigsResult::default()
        .with_error_code(error_code)
        .with_error_message(error_message)
        .with_resource_type(resource_type)
        .with_resource_name(resource_name)
        .with_configs(configs);
    Ok((input, result))
}

fn config(resource_type: i8, input: &[u8]) -> Res<'_, DescribeConfigsResourceResult> {
    let (input, name) = string(input)?;
    let (input, value) = nullable_string(input)?;
    let (input, read_only) = boolean(input)?;
    let (input, is_default) = boolean(input)?;
    let (input, is_sensitive) = boolean(input)?;
    let config = DescribeConfigsResourceResult::default()
        .with_name(name)
        .with_value(value)
        .with_read_only(read_only)
        .with_config_source(source_of_v0(is_default, resource_type))
        .with_is_sensitive(is_sensitive);
    Ok((input, config))
}

/// The source a v0 entry stands for, as Kafka's Java client read v0 answers.
fn source_of_v0(is_default: bool, resource_type: i8) -> i8 {
    match (is_default, resource_type) {
        (true, _) => SOURCE_DEFAULT_CONFIG,
        (false, RESOURCE_BROKER) => SOURCE_STATIC_BROKER_CONFIG,
        (false, RESOURCE_TOPIC) => SOURCE_TOPIC_CONFIG,
        (false, _) => SOURCE_UNKNOWN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::legacy::testing::{
        arbitrary_bytes, biased_bytes, cat, nullable_str_bytes, old_error, round_trip, s, str_bytes, text, through_crate
    };
    use kafka_protocol::messages::describe_configs_response::DescribeConfigsSynonym;
    use proptest::collection::vec;
    use proptest::prelude::*;

    /// Crate versions checked: the minimum, the next (same layout), the one with documentation.
    const CRATE_VERSIONS: [i16; 3] = [1, 2, 3];

    #[test]
    fn hand_assembled_request_decodes_field_by_field() {
        let body = cat(&[
            &2i32.to_be_bytes(),                                        // resources count
            &[2], &s("orders"), &1i32.to_be_bytes(), &s("retention.ms"), // resource_type TOPIC, name, one key
            &[4], &s("1"), &(-1i32).to_be_bytes(),                      // BROKER "1", every key
        ]);
        let request = decode_request(0, &body).unwrap();
        assert!(!request.include_synonyms && !request.include_documentation);
        let resources = &request.resources;
        assert_eq!((resources[0].resource_type, resources[0].resource_name.clone()), (2, text("orders")));
        assert_eq!(resources[0].configuration_keys, Some(vec![text("retention.ms")]));
        assert_eq!(
            (resources[1].resource_type, resources[1].resource_name.clone(), resources[1].configuration_keys.clone()),
            (4, text("1"), None)
        );
        assert_eq!(encode_request(0, &request).unwrap(), body);
    }

    #[test]
    fn hand_assembled_response_decodes_field_by_field() {
        let body = cat(&[
            &10i32.to_be_bytes(),                                       // throttle_time_ms
            &2i32.to_be_bytes(),                                        // results count
            &0i16.to_be_bytes(), &(-1i16).to_be_bytes(), &[2], &s("orders"), // error_code, error_message, TOPIC, name
            &2i32.to_be_bytes(),                                        // configs count
            &s("retention.ms"), &s("1000"), &[0, 0, 0],                 // read_only, is_default, is_sensitive
            &s("segment.bytes"), &s("1073741824"), &[1, 1, 0],
            &29i16.to_be_bytes(), &s("denied"), &[4], &s("1"), &0i32.to_be_bytes(),
        ]);
        let response = decode_response(0, &body).unwrap();
        assert_eq!(response.throttle_time_ms, 10);
        let topic = &response.results[0];
        assert_eq!(
            (topic.error_code, topic.error_message.clone(), topic.resource_type, topic.resource_name.clone()),
            (0, None, 2, text("orders"))
        );
        let retention = &topic.configs[0];
        assert_eq!((retention.name.clone(), retention.value.clone()), (text("retention.ms"), Some(text("1000"))));
        assert_eq!((retention.read_only, retention.config_source, retention.is_sensitive), (false, SOURCE_TOPIC_CONFIG, false));
        assert!(retention.synonyms.is_empty());
        let segment = &topic.configs[1];
        assert_eq!((segment.read_only, segment.config_source, segment.is_sensitive), (true, SOURCE_DEFAULT_CONFIG, false));
        let broker = &response.results[1];
        assert_eq!(
            (broker.error_code, broker.error_message.clone(), broker.resource_type, broker.configs.len()),
            (29, Some(text("denied")), 4, 0)
        );
        assert_eq!(encode_response(0, &response).unwrap(), body);
    }

    #[test]
    fn is_default_comes_from_the_config_source() {
        let config = |source: i8| DescribeConfigsResourceResult::default().with_name(text("k")).with_config_source(source);
        let synonym = DescribeConfigsSynonym::default().with_name(text("k")).with_source(4);
        let result = DescribeConfigsResult::default()
            .with_resource_type(RESOURCE_BROKER)
            .with_resource_name(text("1"))
            .with_error_code(0)
            .with_configs(vec![config(5).with_synonyms(vec![synonym]), config(4), config(2), config(-1)]);
        let response = DescribeConfigsResponse::default().with_results(vec![result]);
        let old = decode_response(0, &encode_response(0, &through_crate(&response, 3)).unwrap()).unwrap();
        let sources: Vec<i8> = old.results[0].configs.iter().map(|c| c.config_source).collect();
        assert_eq!(sources, vec![SOURCE_DEFAULT_CONFIG, SOURCE_STATIC_BROKER_CONFIG, SOURCE_STATIC_BROKER_CONFIG, SOURCE_STATIC_BROKER_CONFIG]);
        assert!(old.results[0].configs[0].synonyms.is_empty());
        assert_eq!(source_of_v0(false, 99), SOURCE_UNKNOWN);
    }

    #[test]
    fn synonyms_and_documentation_cannot_be_asked_in_v0() {
        let synonyms = DescribeConfigsRequest::default().with_include_synonyms(true);
        assert_eq!(encode_request(0, &synonyms), Err(LegacyError::Unrepresentable("DescribeConfigs include_synonyms")));
        let docs = DescribeConfigsRequest::default().with_include_documentation(true);
        assert_eq!(encode_request(0, &docs), Err(LegacyError::Unrepresentable("DescribeConfigs include_documentation")));
    }

    #[test]
    fn versions_outside_the_old_range_are_refused() {
        for version in [-1, 1, 4] {
            let refused = LegacyError::Unrepresentable("version");
            assert_eq!(decode_request(version, &[]).unwrap_err(), refused);
            assert_eq!(encode_request(version, &DescribeConfigsRequest::default()).unwrap_err(), refused);
            assert_eq!(decode_response(version, &[]).unwrap_err(), refused);
            assert_eq!(encode_response(version, &DescribeConfigsResponse::default()).unwrap_err(), refused);
        }
    }

    fn old_request() -> impl Strategy<Value = DescribeConfigsRequest> {
        let resource = (any::<i8>(), str_bytes(), prop::option::of(vec(str_bytes(), 0..3))).prop_map(|(kind, name, keys)| {
            DescribeConfigsResource::default().with_resource_type(kind).with_resource_name(name).with_configuration_keys(keys)
        });
        vec(resource, 0..4).prop_map(|resources| DescribeConfigsRequest::default().with_resources(resources))
    }

    fn old_response() -> impl Strategy<Value = DescribeConfigsResponse> {
        let config = (str_bytes(), nullable_str_bytes(), any::<bool>(), any::<bool>(), any::<bool>());
        let kind = prop_oneof![Just(RESOURCE_TOPIC), Just(RESOURCE_BROKER), any::<i8>()];
        let result = (old_error(ApiKey::DescribeConfigs, 0), nullable_str_bytes(), kind, str_bytes(), vec(config, 0..3))
            .prop_map(|(error, message, kind, name, configs)| {
                let configs = configs.into_iter().map(|(name, value, read_only, is_default, is_sensitive)| {
                    DescribeConfigsResourceResult::default()
                        .with_name(name)
                        .with_value(value)
                        .with_read_only(read_only)
                        .with_config_source(source_of_v0(is_default, kind))
                        .with_is_sensitive(is_sensitive)
                });
                DescribeConfigsResult::default()
                    .with_error_code(error)
                    .with_error_message(message)
                    .with_resource_type(kind)
                    .with_resource_name(name)
                    .with_configs(configs.collect())
            });
        (any::<i32>(), vec(result, 0..3))
            .prop_map(|(throttle, results)| DescribeConfigsResponse::default().with_throttle_time_ms(throttle).with_results(results))
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
