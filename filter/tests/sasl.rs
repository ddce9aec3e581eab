//! SASL through the connection state machine: the authenticated user becomes the identity label
//! only after the broker accepted it, raw v0 tokens are never read as Kafka frames, and a refused
//! login labels nothing. Frames are built with the kafka-protocol crate as clients and brokers
//! send them (PLAIN and SCRAM are also exercised end to end against tansu in
//! tests/test_identity.py; OAUTHBEARER and the v0 raw-token form, which tansu does not speak, only
//! here).

use bytes::Bytes;
use kafka_lens_codec::body::{encode_request, encode_response};
use kafka_lens_codec::frame::SliceSource;
use kafka_lens_codec::kafka_protocol::messages::*;
use kafka_lens_codec::kafka_protocol::protocol::StrBytes;
use kafka_lens_filter::config::Config;
use kafka_lens_filter::connection::{Connection, Limits, Verdict};
use kafka_lens_filter::metrics::Metric;
use kafka_lens_filter::testing::TestSink;

struct Wire {
    conn: Connection,
    sink: TestSink,
    correlation: i32,
}

impl Wire {
    fn new() -> Wire {
        Wire { conn: Connection::new(Limits::from(&Config::default())), sink: TestSink::default(), correlation: 0 }
    }

    fn send(&mut self, bytes: &[u8]) {
        let verdict = self.conn.on_request_data(&mut SliceSource(bytes), bytes.len(), &mut self.sink);
        assert_eq!(verdict, Verdict::Continue);
    }

    fn receive(&mut self, bytes: &[u8]) {
        self.conn.on_response_data(&mut SliceSource(bytes), bytes.len(), &mut self.sink);
    }

    /// Sends a request; returns its correlation id.
    fn request(&mut self, key: ApiKey, version: i16, body: RequestKind) -> i32 {
        self.correlation += 1;
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("app")));
        let frame = encode_request(&header, &body).unwrap();
        self.send(&frame);
        self.correlation
    }

    fn respond(&mut self, correlation: i32, key: ApiKey, version: i16, body: ResponseKind) {
        let header = ResponseHeader::default().with_correlation_id(correlation);
        let frame = encode_response(&header, &body, key, version).unwrap();
        self.receive(&frame);
    }

    fn handshake(&mut self, mechanism: &'static str, version: i16, error_code: i16) {
        let body = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism));
        let id = self.request(ApiKey::SaslHandshake, version, RequestKind::SaslHandshake(body));
        let response = SaslHandshakeResponse::default().with_error_code(error_code);
        self.respond(id, ApiKey::SaslHandshake, version, ResponseKind::SaslHandshake(response));
    }

    fn authenticate(&mut self, client: &[u8], error_code: i16, server: &[u8]) {
        let body = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::copy_from_slice(client));
        let id = self.request(ApiKey::SaslAuthenticate, 2, RequestKind::SaslAuthenticate(body));
        let response = SaslAuthenticateResponse::default().with_error_code(error_code).with_auth_bytes(Bytes::copy_from_slice(server));
        self.respond(id, ApiKey::SaslAuthenticate, 2, ResponseKind::SaslAuthenticate(response));
    }

    /// A raw v0 token: size-prefixed, no header.
    fn raw(&mut self, client: bool, token: &[u8]) {
        let mut frame = (token.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(token);
        if client {
            self.send(&frame);
        } else {
            self.receive(&frame);
        }
    }

    /// Sends a Metadata request and answers it; returns the identity label it was counted under.
    fn identity_of_next_request(&mut self) -> String {
        let id = self.request(ApiKey::Metadata, 12, RequestKind::Metadata(MetadataRequest::default()));
        self.respond(id, ApiKey::Metadata, 12, ResponseKind::Metadata(MetadataResponse::default()));
        let identities: Vec<String> = self
            .sink
            .metrics
            .keys()
            .filter_map(|m| match m {
                Metric::Requests { api: "Metadata", client, .. } => Some(client.identity.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(identities.len(), 1, "{identities:?}");
        self.sink.metrics.retain(|m, _| !matches!(m, Metric::Requests { api: "Metadata", .. }));
        identities.into_iter().next().unwrap()
    }

    fn sasl(&self, mechanism: &'static str, result: &'static str) -> i64 {
        self.sink.get(&Metric::SaslAuthentications { mechanism, result })
    }

    fn undecodable(&self) -> i64 {
        self.sink.sum(|m| matches!(m, Metric::UndecodableFrames { .. } | Metric::UnmatchedResponses | Metric::BodyDecodeErrors { .. }))
    }
}

#[test]
fn plain_user_labels_requests_after_the_broker_accepts() {
    let mut wire = Wire::new();
    assert_eq!(wire.identity_of_next_request(), "client_id:app");
    wire.handshake("PLAIN", 1, 0);
    wire.authenticate(b"\0alice\0alice-secret", 0, b"");
    assert_eq!(wire.identity_of_next_request(), "sasl:alice");
    assert_eq!(wire.sasl("PLAIN", "success"), 1);
    assert_eq!(wire.undecodable(), 0);
}

#[test]
fn refused_login_labels_nothing() {
    let mut wire = Wire::new();
    wire.handshake("SCRAM-SHA-512", 1, 0);
    wire.authenticate(b"n,,n=mallory,r=abc", 0, b"r=abcdef,s=c2FsdA==,i=4096");
    wire.authenticate(b"c=biws,r=abcdef,p=d3Jvbmc=", 58, b"");
    assert_eq!(wire.identity_of_next_request(), "client_id:app");
    assert_eq!(wire.sasl("SCRAM-SHA-512", "failure"), 1);
    assert_eq!(wire.sasl("SCRAM-SHA-512", "success"), 0);
}

#[test]
fn scram_user_is_confirmed_by_the_server_final_message() {
    let mut wire = Wire::new();
    wire.handshake("SCRAM-SHA-256", 1, 0);
    wire.authenticate(b"n,,n=bob,r=abc", 0, b"r=abcdef,s=c2FsdA==,i=4096");
    wire.authenticate(b"c=biws,r=abcdef,p=cHJvb2Y=", 0, b"v=c2ln");
    assert_eq!(wire.identity_of_next_request(), "sasl:bob");
}

#[test]
fn oauthbearer_principal_comes_from_the_configured_claim() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let token = format!("{}.{}.", URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#), URL_SAFE_NO_PAD.encode(br#"{"sub":"svc-orders"}"#));
    let message = format!("n,,\u{1}auth=Bearer {token}\u{1}\u{1}");
    let mut wire = Wire::new();
    wire.handshake("OAUTHBEARER", 1, 0);
    wire.authenticate(message.as_bytes(), 0, b"");
    assert_eq!(wire.identity_of_next_request(), "sasl:svc-orders");
}

#[test]
fn v0_raw_tokens_pass_without_being_framed_as_kafka() {
    let mut wire = Wire::new();
    wire.handshake("SCRAM-SHA-256", 0, 0);
    // Raw tokens: no header (a SCRAM client-final read as a header would be API key 0x633d).
    wire.raw(true, b"n,,n=carol,r=abc");
    wire.raw(false, b"r=abcdef,s=c2FsdA==,i=4096");
    wire.raw(true, b"c=biws,r=abcdef,p=cHJvb2Y=");
    wire.raw(false, b"v=c2ln");
    assert_eq!(wire.identity_of_next_request(), "sasl:carol");
    assert_eq!(wire.undecodable(), 0);
    assert_eq!(wire.conn.in_flight(), 0);
}

#[test]
fn v0_plain_empty_server_token_is_a_frame_not_an_error() {
    let mut wire = Wire::new();
    wire.handshake("PLAIN", 0, 0);
    wire.raw(true, b"\0dave\0pw");
    wire.raw(false, b""); // Kafka answers a v0 PLAIN login with an empty token
    assert_eq!(wire.identity_of_next_request(), "sasl:dave");
    assert_eq!(wire.undecodable(), 0);
}

#[test]
fn v0_gssapi_ends_when_the_client_speaks_kafka_again() {
    let mut wire = Wire::new();
    wire.handshake("GSSAPI", 0, 0);
    wire.raw(true, &[0x60, 0x82, 0x02, 0x10, 0x06, 0x09]);
    wire.raw(false, &[0x60, 0x81, 0x9a]);
    wire.raw(true, &[0x05, 0x04, 0x01, 0xff]);
    wire.raw(false, &[0x05, 0x04, 0x00, 0xff]);
    // No user name is readable from Kerberos tokens: the identity stays the client id.
    assert_eq!(wire.identity_of_next_request(), "client_id:app");
    assert_eq!(wire.sasl("GSSAPI", "success"), 1);
    assert_eq!(wire.undecodable(), 0);
}

#[test]
fn tokens_in_several_chunks_and_pipelined_requests_after_login() {
    let mut wire = Wire::new();
    wire.handshake("PLAIN", 0, 0);
    let mut frame = 12u32.to_be_bytes().to_vec();
    frame.extend_from_slice(b"\0erin\0secret");
    for byte in &frame {
        wire.send(std::slice::from_ref(byte));
    }
    wire.receive(&0u32.to_be_bytes());
    assert_eq!(wire.identity_of_next_request(), "sasl:erin");
}

#[test]
fn mtls_principal_outranks_the_sasl_user() {
    let mut wire = Wire::new();
    wire.conn.set_peer_principal(Some("spiffe://cluster.local/ns/shop/sa/orders".into()));
    wire.handshake("PLAIN", 1, 0);
    wire.authenticate(b"\0alice\0pw", 0, b"");
    assert_eq!(wire.identity_of_next_request(), "mtls:spiffe://cluster.local/ns/shop/sa/orders");
    assert_eq!(wire.conn.identity().sasl_user(), Some("alice"));
}
