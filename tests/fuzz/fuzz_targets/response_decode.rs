//! Response decode of arbitrary frames for any API and version: never panics; whatever decodes
//! re-encodes and decodes to the same value. The first 4 bytes choose the API and version.
#![no_main]

use kafka_lens_codec::body;
use kafka_lens_codec::kafka_protocol::messages::ApiKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((selector, rest)) = data.split_first_chunk::<4>() else { return };
    let Ok(key) = ApiKey::try_from(i16::from_be_bytes([selector[0], selector[1]])) else { return };
    let version = i16::from_be_bytes([selector[2], selector[3]]);
    let frame = bytes::Bytes::copy_from_slice(rest);
    if let Ok(response) = body::decode_response(&frame, key, version) {
        let encoded = body::encode_response(&response.header, &response.body, key, version).expect("a decoded response encodes");
        let again = body::decode_response(&encoded.slice(4..), key, version).expect("an encoded response decodes");
        assert_eq!(again.body, response.body);
    }
});
