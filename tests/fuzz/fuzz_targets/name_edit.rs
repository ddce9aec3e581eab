//! The in-place topic rename of Produce requests and Fetch responses on arbitrary bytes: never
//! panics, and an edit it returns stays inside the bytes it was given and writes a size prefix
//! that matches the edited frame.
#![no_main]

use kafka_lens_codec::name_edit::{fetch_response, produce_request};
use kafka_lens_codec::topic_names::NameKind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (bool, u8, u8, &[u8])| {
    let (produce, version, header_len, frame) = input;
    let version = i16::from(version % 16);
    let header_len = usize::from(header_len % 64);
    let Some(size) = frame.get(..4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]])) else { return };
    let mut rename = |kind: NameKind, name: &str| match kind {
        NameKind::Topic if name.len() % 2 == 0 => Some(format!("tenant.{name}")),
        NameKind::Topic => name.get(1..).map(str::to_owned),
        _ => Some(format!("x{name}")),
    };
    let result = if produce {
        produce_request(frame, size, header_len, version, &mut rename)
    } else {
        fetch_response(frame, size, header_len, version, &mut rename)
    };
    if let Ok(Some(edit)) = result {
        assert!(edit.consumed <= frame.len() && edit.consumed >= 4);
        let new_size = i32::from_be_bytes([edit.data[0], edit.data[1], edit.data[2], edit.data[3]]);
        let delta = edit.data.len() as i64 - edit.consumed as i64;
        assert_eq!(i64::from(new_size), i64::from(size) + delta);
    }
});
