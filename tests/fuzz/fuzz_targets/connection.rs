//! The filter's per-connection state machine driven by arbitrary interleaved request and response
//! chunks: never panics, gauges return to zero at close, every close has its counted reason.
#![no_main]

use std::collections::HashMap;

use kafka_lens_codec::frame::SliceSource;
use kafka_lens_filter::config::Config;
use kafka_lens_filter::connection::{Connection, Limits, Verdict};
use kafka_lens_filter::metrics::Metric;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|chunks: Vec<(bool, &[u8])>| {
    let mut config = Config::default();
    config.max_frame_bytes = 64 * 1024;
    config.max_in_flight = 8;
    let mut conn = Connection::new(Limits::from(&config));
    let mut sink: HashMap<Metric, i64> = HashMap::new();
    let mut closed = false;
    for (is_request, chunk) in chunks {
        let mut source = SliceSource(chunk);
        let verdict = if is_request {
            conn.on_request_data(&mut source, chunk.len(), &mut sink)
        } else {
            conn.on_response_data(&mut source, chunk.len(), &mut sink)
        };
        closed |= matches!(verdict, Verdict::Close(_));
    }
    conn.on_close(&mut sink);
    assert_eq!(sink.get(&Metric::InFlightRequests).copied().unwrap_or(0), 0);
    let closes: i64 = sink.iter().filter(|(k, _)| matches!(k, Metric::ConnectionsClosedByFilter { .. })).map(|(_, v)| v).sum();
    assert_eq!(closes > 0, closed);
});
