//! Topic renames and tenant prefixes on arbitrary names and decoded messages: the mapping is a
//! bijection on what a client may see (rewrite∘unrewrite == identity: a name sent to the broker
//! comes back as the same client name), and renaming any decodable request or response never
//! panics and still encodes.
#![no_main]

use std::collections::HashMap;

use bytes::Bytes;
use kafka_lens_codec::body;
use kafka_lens_codec::kafka_protocol::messages::ApiKey;
use kafka_lens_codec::rename::{self, Mapped, Renamer};
use kafka_lens_codec::topic_names::NameKind;
use libfuzzer_sys::fuzz_target;

fn renamers() -> [Renamer; 2] {
    let renames: HashMap<String, String> =
        [("orders", "orders.v2"), ("a", "b"), ("c", "a.x")].into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    [Renamer::new(&renames, None), Renamer::new(&renames, Some("team-a.".to_owned()))]
}

fuzz_target!(|input: (u8, u8, &str, &[u8])| {
    let (which, key, name, frame) = input;
    let renamers = renamers();
    let Some(renamer) = renamers.get(usize::from(which % 2)) else { return };
    for kind in [NameKind::Topic, NameKind::Group, NameKind::TransactionalId] {
        let back = match renamer.to_broker(kind, name) {
            Mapped::Hidden => continue,
            Mapped::Same => renamer.to_client(kind, name),
            Mapped::Renamed(broker) => renamer.to_client(kind, &broker),
        };
        match back {
            Mapped::Same => assert!(!matches!(renamer.to_broker(kind, name), Mapped::Renamed(_))),
            Mapped::Renamed(client) => assert_eq!(client, name),
            Mapped::Hidden => panic!("{kind:?} {name:?} reaches the broker but is hidden on the way back"),
        }
    }
    let bytes = Bytes::copy_from_slice(frame);
    if which & 2 == 0 {
        if let Ok(mut request) = body::decode_request(&bytes) {
            rename::request_to_broker(&mut request.body, renamer);
            let _ = body::encode_request(&request.header, &request.body);
        }
    } else if let Ok(api) = ApiKey::try_from(i16::from(key % 75)) {
        let range = kafka_lens_codec::api::versions(api);
        if range.max < range.min {
            return;
        }
        let version = range.min + i16::from(which >> 2) % (range.max - range.min + 1);
        if let Ok(mut response) = body::decode_response(&bytes, api, version) {
            rename::response_to_client(&mut response.body, renamer);
            let _ = body::encode_response(&response.header, &response.body, api, version);
        }
    }
});
