//! Old protocol version translation on arbitrary bytes: an old request body upgraded to the
//! crate's type (and encoded at the version the broker would get), a response decoded by the
//! crate and downgraded to an old layout, and message sets / record batches converted both ways.
//! Never panics; whatever upgrades encodes or is refused with an error.
#![no_main]

use bytes::Bytes;
use kafka_lens_codec::api;
use kafka_lens_codec::kafka_protocol::messages::{RequestHeader, ResponseKind};
use kafka_lens_codec::legacy::{message_set, translate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u8, u8, u8, &[u8])| {
    let (which, version, mode, data) = input;
    let Some(key) = translate::TRANSLATED_APIS.get(usize::from(which) % translate::TRANSLATED_APIS.len()).copied() else { return };
    let Some(old) = translate::old_versions(key) else { return };
    let version = *old.start() + i16::from(version) % (*old.end() - *old.start() + 1);
    let target = api::versions(key).min;
    match mode % 4 {
        0 => {
            if let Ok(request) = translate::upgrade(key, version, data) {
                let header = RequestHeader::default().with_request_api_key(key as i16).with_request_api_version(target);
                let _ = kafka_lens_codec::body::encode_request(&header, &request);
            }
            let _ = translate::request_header(data);
        }
        1 => {
            if let Ok(response) = kafka_lens_codec::body::decode_response(&Bytes::copy_from_slice(data), key, target) {
                let body: &ResponseKind = &response.body;
                if let Ok(down) = translate::downgrade(version, body) {
                    assert!(translate::response_frame(response.header.correlation_id, &down.body).is_ok());
                }
            }
        }
        2 => {
            if let Ok(batch) = message_set::message_set_to_batch(data) {
                // What it builds is a valid batch the reverse conversion reads.
                let _ = message_set::batches_to_message_set(&batch, 1);
            }
        }
        _ => {
            let _ = message_set::batches_to_message_set(data, (mode / 4 % 2) as i8);
        }
    }
});
