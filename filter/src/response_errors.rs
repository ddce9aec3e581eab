//! Error codes in responses: every error field at every level, counted per API, error and client.
//!
//! Decoded responses are walked by the codec's generated walker (every `error_code` and
//! `*_error_code` field of every response type); Fetch responses, which are scanned rather than
//! decoded, give their top-level and per-partition codes from the scan.

use kafka_lens_codec::generated::response_errors::{error_name, response_error_codes};
use kafka_lens_codec::kafka_protocol::messages::ResponseKind;
use kafka_lens_codec::scan::FetchSummary;

use crate::labels::Client;
use crate::metrics::{Metric, MetricSink};

/// Counts the non-zero codes; returns the name of the last one.
fn count(codes: impl IntoIterator<Item = i16>, api: &'static str, client: &Client, sink: &mut dyn MetricSink) -> Option<&'static str> {
    let mut last = None;
    for code in codes {
        if code != 0 {
            let error = error_name(code);
            sink.add(Metric::ResponseErrors { api, error, client: client.clone() }, 1);
            last = Some(error);
        }
    }
    last
}

/// Counts the non-zero error codes of a decoded response; returns the name of the last one.
pub fn count_decoded(response: &ResponseKind, api: &'static str, client: &Client, sink: &mut dyn MetricSink) -> Option<&'static str> {
    let mut last = None;
    response_error_codes(response, &mut |code| last = count([code], api, client, sink).or(last));
    last
}

/// Counts the non-zero error codes of a scanned Fetch response; returns the name of the last one.
pub fn count_fetch(response: &FetchSummary, client: &Client, sink: &mut dyn MetricSink) -> Option<&'static str> {
    let partitions = response.topics.iter().flat_map(|t| &t.partitions).map(|p| p.error_code);
    count(std::iter::once(response.error_code).chain(partitions), "Fetch", client, sink)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestSink;
    use kafka_lens_codec::kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
    use kafka_lens_codec::kafka_protocol::messages::ProduceResponse;

    #[test]
    fn every_nested_error_field_counts() {
        let (mut sink, client) = (TestSink::default(), crate::labels::Client::fixed("app", "client_id:app"));
        let partitions = [0, 6, 6, 3].map(|code| PartitionProduceResponse::default().with_error_code(code)).to_vec();
        let response = ResponseKind::Produce(
            ProduceResponse::default().with_responses(vec![TopicProduceResponse::default().with_partition_responses(partitions)]),
        );
        count_decoded(&response, "Produce", &client, &mut sink);
        let errors = |error| sink.get(&Metric::ResponseErrors { api: "Produce", error, client: client.clone() });
        assert_eq!(errors("NOT_LEADER_OR_FOLLOWER"), 2);
        assert_eq!(errors("UNKNOWN_TOPIC_OR_PARTITION"), 1);
        assert_eq!(sink.sum(|m| matches!(m, Metric::ResponseErrors { .. })), 3);
    }
}
