//! Request decode of arbitrary frames: never panics; whatever decodes re-encodes and decodes to
//! the same value.
#![no_main]

use kafka_lens_codec::body;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let frame = bytes::Bytes::copy_from_slice(data);
    let _ = kafka_lens_codec::header::decode_request_header(&frame, true);
    if let Ok(request) = body::decode_request(&frame) {
        let encoded = body::encode_request(&request.header, &request.body).expect("a decoded request encodes");
        let again = body::decode_request(&encoded.slice(4..)).expect("an encoded request decodes");
        assert_eq!(again.body, request.body);
    }
});
