//! SASL as it crosses a Kafka connection: who the client says it is, and whether the broker agreed.
//!
//! A client authenticates with `SaslHandshake` (naming the mechanism) and then SASL messages: in
//! `SaslAuthenticate` frames (handshake v1+), or, after a v0 handshake, as raw size-prefixed tokens
//! that are **not** Kafka frames (no header, no correlation id). [`SaslExchange`] follows one
//! exchange from either form: it takes the user name from the client's first message where the
//! mechanism shows it in the clear (PLAIN, SCRAM, the `sub` claim of an OAUTHBEARER token) and
//! reports it as authenticated only when the broker's answer says the exchange succeeded. It never
//! keeps or returns anything secret: passwords, SCRAM proofs and tokens are read in place and
//! dropped.
//!
//! The broker stays the one who verifies: an OAUTHBEARER token's claims are read without checking
//! its signature, and they only label anything once the broker accepted the token.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// Longest SASL message the filter reads (OAUTHBEARER tokens run to a few KiB); larger ones pass
/// through without being looked at.
pub const MAX_MESSAGE_BYTES: u32 = 64 * 1024;

/// The SASL mechanisms the filter tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    ScramSha256,
    ScramSha512,
    OAuthBearer,
    Gssapi,
    /// Any other mechanism: followed, never labelled.
    Other,
}

impl Mechanism {
    /// The mechanism a `SaslHandshake` request names.
    pub fn parse(name: &str) -> Mechanism {
        match name {
            "PLAIN" => Mechanism::Plain,
            "SCRAM-SHA-256" => Mechanism::ScramSha256,
            "SCRAM-SHA-512" => Mechanism::ScramSha512,
            "OAUTHBEARER" => Mechanism::OAuthBearer,
            "GSSAPI" => Mechanism::Gssapi,
            _ => Mechanism::Other,
        }
    }

    /// Metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
            Mechanism::OAuthBearer => "OAUTHBEARER",
            Mechanism::Gssapi => "GSSAPI",
            Mechanism::Other => "other",
        }
    }

    /// Whether the filter knows from the messages alone when the exchange ends (and so when raw
    /// v0 tokens stop); for the others the end is the first frame that reads as a Kafka request.
    fn ends_are_known(self) -> bool {
        matches!(self, Mechanism::Plain | Mechanism::ScramSha256 | Mechanism::ScramSha512 | Mechanism::OAuthBearer)
    }
}

/// How an exchange stands after a broker message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// More messages to come.
    Continue,
    /// The broker accepted the client. `user` is the authenticated name where the mechanism shows
    /// one (PLAIN, SCRAM, OAUTHBEARER), `None` otherwise (GSSAPI's principal is inside a ticket).
    Authenticated { user: Option<String> },
    /// The broker refused the client: nothing may be labelled with the name it claimed.
    Failed,
}

/// Where an exchange is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// `SaslHandshake` sent, its response not seen yet.
    Handshake,
    /// Messages flowing.
    Exchanging,
    /// Finished one way or the other (or abandoned).
    Done,
}

/// One SASL exchange on a connection. See the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslExchange {
    mechanism: Mechanism,
    /// Tokens travel as raw frames (handshake v0) rather than in `SaslAuthenticate`.
    raw: bool,
    stage: Stage,
    /// The name the client's first message claims, until the broker confirms or refuses it.
    claimed: Option<String>,
    client_messages: u32,
    /// Raw client tokens the broker has not answered yet.
    raw_unanswered: u32,
}

impl SaslExchange {
    /// An exchange opened by a `SaslHandshake` request of `version` naming `mechanism`.
    pub fn handshake(mechanism: &str, version: i16) -> SaslExchange {
        SaslExchange {
            mechanism: Mechanism::parse(mechanism),
            raw: version == 0,
            stage: Stage::Handshake,
            claimed: None,
            client_messages: 0,
            raw_unanswered: 0,
        }
    }

    /// An exchange with no handshake seen (re-authentication on a connection the filter joined
    /// late is not a case: the handshake always comes first). Used for `SaslAuthenticate` frames
    /// that arrive without one: followed, never labelled.
    pub fn unknown() -> SaslExchange {
        SaslExchange { stage: Stage::Exchanging, ..SaslExchange::handshake("", 1) }
    }

    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// The broker answered the handshake: on success the exchange begins (with raw tokens after a
    /// v0 handshake); otherwise it is over.
    pub fn on_handshake_response(&mut self, error_code: i16) {
        self.stage = if error_code == 0 && self.stage == Stage::Handshake { Stage::Exchanging } else { Stage::Done };
    }

    /// Whether the next client frame is a raw SASL token rather than a Kafka request. For the
    /// mechanisms whose end is not visible, the caller checks whether the frame reads as a Kafka
    /// request and calls [`SaslExchange::end_raw`] if so.
    pub fn expects_raw_client_token(&self) -> bool {
        self.raw && self.stage == Stage::Exchanging
    }

    /// Whether the frame would be the end of the raw phase if it read as a Kafka request: only for
    /// mechanisms whose end the filter cannot see in the messages.
    pub fn raw_end_is_guessed(&self) -> bool {
        !self.mechanism.ends_are_known()
    }

    /// The client sent a Kafka request: raw tokens are over (the broker accepted the client, or
    /// it would have closed the connection).
    pub fn end_raw(&mut self) -> Outcome {
        self.stage = Stage::Done;
        Outcome::Authenticated { user: None }
    }

    /// Whether the next broker frame is a raw SASL token (answering a raw client token).
    pub fn expects_raw_server_token(&self) -> bool {
        self.raw && self.raw_unanswered > 0
    }

    /// A client SASL message: a `SaslAuthenticate` request's `auth_bytes`, or a raw token.
    /// `oauth_claim` names the OAUTHBEARER token claim that holds the principal.
    pub fn on_client_message(&mut self, message: &[u8], oauth_claim: &str) {
        if self.raw {
            self.raw_unanswered = self.raw_unanswered.saturating_add(1);
        }
        if self.client_messages == 0 {
            self.claimed = claimed_user(self.mechanism, message, oauth_claim);
        }
        self.client_messages = self.client_messages.saturating_add(1);
    }

    /// A client token too large to read: counted, never used to label.
    pub fn on_unread_client_message(&mut self) {
        self.on_client_message(&[], "");
        self.claimed = None;
    }

    /// A raw broker token too large to read: the exchange goes on without it.
    pub fn on_unread_server_message(&mut self) {
        self.raw_unanswered = self.raw_unanswered.saturating_sub(1);
    }

    /// A broker SASL message: a `SaslAuthenticate` response (its error code and `auth_bytes`), or a
    /// raw token (error code 0: in the raw form a failure closes the connection instead).
    pub fn on_server_message(&mut self, error_code: i16, message: &[u8]) -> Outcome {
        if self.raw {
            self.raw_unanswered = self.raw_unanswered.saturating_sub(1);
        }
        if self.stage == Stage::Done {
            return Outcome::Continue;
        }
        if error_code != 0 {
            self.stage = Stage::Done;
            self.claimed = None;
            return Outcome::Failed;
        }
        match self.mechanism {
            // One round: the answer to the only client message settles it.
            Mechanism::Plain => self.authenticated(),
            // server-first (`r=..,s=..,i=..`), then server-final: `v=<signature>` or `e=<error>`.
            Mechanism::ScramSha256 | Mechanism::ScramSha512 => match message {
                [b'v', b'=', ..] => self.authenticated(),
                [b'e', b'=', ..] => self.failed(),
                _ => Outcome::Continue,
            },
            // Success is an empty answer; a refused token is answered with a JSON error challenge
            // (RFC 7628 §3.2.2) before the broker fails the exchange.
            Mechanism::OAuthBearer => {
                if message.is_empty() {
                    self.authenticated()
                } else {
                    self.failed()
                }
            }
            Mechanism::Gssapi | Mechanism::Other => Outcome::Continue,
        }
    }

    /// Whether the exchange is over.
    pub fn is_done(&self) -> bool {
        self.stage == Stage::Done
    }

    fn authenticated(&mut self) -> Outcome {
        self.stage = Stage::Done;
        Outcome::Authenticated { user: self.claimed.take() }
    }

    fn failed(&mut self) -> Outcome {
        self.stage = Stage::Done;
        self.claimed = None;
        Outcome::Failed
    }
}

/// The user name a client's first SASL message claims, where the mechanism shows it.
pub fn claimed_user(mechanism: Mechanism, message: &[u8], oauth_claim: &str) -> Option<String> {
    let user = match mechanism {
        Mechanism::Plain => plain_user(message),
        Mechanism::ScramSha256 | Mechanism::ScramSha512 => scram_user(message),
        Mechanism::OAuthBearer => oauthbearer_principal(message, oauth_claim),
        Mechanism::Gssapi | Mechanism::Other => None,
    }?;
    (!user.is_empty()).then_some(user)
}

/// PLAIN (RFC 4616): `[authzid] NUL authcid NUL passwd`; the user is `authcid`. The password is
/// never looked at.
fn plain_user(message: &[u8]) -> Option<String> {
    let mut parts = message.splitn(3, |b| *b == 0);
    let _authzid = parts.next()?;
    let authcid = parts.next()?;
    parts.next()?; // a password must follow, or this is not a PLAIN message
    String::from_utf8(authcid.to_vec()).ok()
}

/// SCRAM client-first-message (RFC 5802): `gs2-header` (`n,,` or `n,a=authzid,`), then
/// `n=saslname,r=nonce[,extensions]`. Delegation-token logins (`tokenauth=true`) name a token id,
/// not a user, so they give no name.
fn scram_user(message: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(message).ok()?;
    let mut fields = text.splitn(3, ',');
    let flag = fields.next()?;
    if !(flag == "n" || flag == "y" || flag.starts_with("p=")) {
        return None;
    }
    let _authzid = fields.next()?;
    let bare = fields.next()?;
    let mut attributes = bare.split(',');
    let name = attributes.next()?.strip_prefix("n=")?;
    if attributes.any(|a| a == "tokenauth=true") {
        return None;
    }
    unescape_saslname(name)
}

/// `=2C` is `,` and `=3D` is `=`; any other `=` is malformed.
fn unescape_saslname(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('=') {
        out.push_str(rest.get(..at)?);
        let escape = rest.get(at..at + 3)?;
        out.push(match escape {
            "=2C" => ',',
            "=3D" => '=',
            _ => return None,
        });
        rest = rest.get(at + 3..)?;
    }
    out.push_str(rest);
    Some(out)
}

/// OAUTHBEARER client initial response (RFC 7628): `gs2-header ^A auth=Bearer <token> ^A ... ^A`.
/// The principal is the `claim` of the token's payload (a JWT: `header.payload.signature`, each
/// base64url). Read without verifying anything: the broker verifies, and only its acceptance makes
/// the name count.
fn oauthbearer_principal(message: &[u8], claim: &str) -> Option<String> {
    let text = std::str::from_utf8(message).ok()?;
    let token = text.split('\u{1}').find_map(|pair| {
        let value = pair.strip_prefix("auth=")?;
        let (scheme, token) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
    })?;
    let mut parts = token.split('.');
    let _header = parts.next()?;
    let payload = parts.next()?.trim_end_matches('=');
    let json = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&json).ok()?;
    claims.get(claim)?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        format!("{}.{}.", URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#), URL_SAFE_NO_PAD.encode(payload))
    }

    #[test]
    fn plain_names_the_authentication_identity() {
        assert_eq!(claimed_user(Mechanism::Plain, b"\0alice\0s3cret", "sub").as_deref(), Some("alice"));
        assert_eq!(claimed_user(Mechanism::Plain, b"admin\0alice\0s3cret", "sub").as_deref(), Some("alice"));
        assert_eq!(claimed_user(Mechanism::Plain, b"\0alice", "sub"), None);
        assert_eq!(claimed_user(Mechanism::Plain, b"\0\0pw", "sub"), None);
        assert_eq!(claimed_user(Mechanism::Plain, b"", "sub"), None);
    }

    #[test]
    fn scram_reads_and_unescapes_the_saslname() {
        let first = b"n,,n=alice,r=fyko+d2lbbFgONRv9qkxdawL";
        assert_eq!(claimed_user(Mechanism::ScramSha512, first, "sub").as_deref(), Some("alice"));
        assert_eq!(claimed_user(Mechanism::ScramSha256, b"n,a=bob,n=bob,r=x", "sub").as_deref(), Some("bob"));
        assert_eq!(claimed_user(Mechanism::ScramSha256, b"n,,n=a=2Cb=3Dc,r=x", "sub").as_deref(), Some("a,b=c"));
        assert_eq!(claimed_user(Mechanism::ScramSha256, b"n,,n=a=41,r=x", "sub"), None);
        assert_eq!(claimed_user(Mechanism::ScramSha256, b"n,,n=tok,r=x,tokenauth=true", "sub"), None);
        assert_eq!(claimed_user(Mechanism::ScramSha256, b"c=biws,r=x,p=proof", "sub"), None);
        assert_eq!(claimed_user(Mechanism::ScramSha256, b"n,,r=x", "sub"), None);
    }

    #[test]
    fn oauthbearer_reads_the_configured_claim_without_verifying() {
        let token = jwt(r#"{"sub":"svc-orders","azp":"orders-app","exp":1}"#);
        let message = format!("n,,\u{1}auth=Bearer {token}\u{1}\u{1}");
        assert_eq!(claimed_user(Mechanism::OAuthBearer, message.as_bytes(), "sub").as_deref(), Some("svc-orders"));
        assert_eq!(claimed_user(Mechanism::OAuthBearer, message.as_bytes(), "azp").as_deref(), Some("orders-app"));
        assert_eq!(claimed_user(Mechanism::OAuthBearer, message.as_bytes(), "exp"), None);
        assert_eq!(claimed_user(Mechanism::OAuthBearer, b"n,,\x01auth=Bearer not-a-jwt\x01\x01", "sub"), None);
        assert_eq!(claimed_user(Mechanism::OAuthBearer, b"n,,\x01auth=Basic abc\x01\x01", "sub"), None);
    }

    #[test]
    fn plain_is_authenticated_only_by_a_successful_answer() {
        let mut ok = SaslExchange::handshake("PLAIN", 1);
        ok.on_handshake_response(0);
        ok.on_client_message(b"\0alice\0pw", "sub");
        assert_eq!(ok.on_server_message(0, b""), Outcome::Authenticated { user: Some("alice".into()) });
        assert!(ok.is_done());

        let mut refused = SaslExchange::handshake("PLAIN", 1);
        refused.on_handshake_response(0);
        refused.on_client_message(b"\0alice\0wrong", "sub");
        assert_eq!(refused.on_server_message(58, b""), Outcome::Failed);
        assert_eq!(refused.on_server_message(0, b""), Outcome::Continue);
    }

    #[test]
    fn scram_is_authenticated_by_the_server_final_message() {
        let mut exchange = SaslExchange::handshake("SCRAM-SHA-256", 1);
        exchange.on_handshake_response(0);
        exchange.on_client_message(b"n,,n=alice,r=abc", "sub");
        assert_eq!(exchange.on_server_message(0, b"r=abcdef,s=c2FsdA==,i=4096"), Outcome::Continue);
        exchange.on_client_message(b"c=biws,r=abcdef,p=cHJvb2Y=", "sub");
        assert_eq!(exchange.on_server_message(0, b"v=c2lnbmF0dXJl"), Outcome::Authenticated { user: Some("alice".into()) });

        let mut refused = SaslExchange::handshake("SCRAM-SHA-512", 1);
        refused.on_handshake_response(0);
        refused.on_client_message(b"n,,n=alice,r=abc", "sub");
        assert_eq!(refused.on_server_message(0, b"r=abcdef,s=c2FsdA==,i=4096"), Outcome::Continue);
        refused.on_client_message(b"c=biws,r=abcdef,p=d3Jvbmc=", "sub");
        assert_eq!(refused.on_server_message(0, b"e=invalid-proof"), Outcome::Failed);
    }

    #[test]
    fn oauthbearer_error_challenge_fails() {
        let message = format!("n,,\u{1}auth=Bearer {}\u{1}\u{1}", jwt(r#"{"sub":"x"}"#));
        let mut exchange = SaslExchange::handshake("OAUTHBEARER", 1);
        exchange.on_handshake_response(0);
        exchange.on_client_message(message.as_bytes(), "sub");
        assert_eq!(exchange.on_server_message(0, br#"{"status":"invalid_token"}"#), Outcome::Failed);
    }

    #[test]
    fn v0_handshake_switches_to_raw_tokens_until_the_exchange_ends() {
        let mut exchange = SaslExchange::handshake("SCRAM-SHA-256", 0);
        assert!(!exchange.expects_raw_client_token());
        exchange.on_handshake_response(0);
        assert!(exchange.expects_raw_client_token());
        assert!(!exchange.expects_raw_server_token());
        exchange.on_client_message(b"n,,n=alice,r=abc", "sub");
        assert!(exchange.expects_raw_server_token());
        assert_eq!(exchange.on_server_message(0, b"r=abcdef,s=c2FsdA==,i=4096"), Outcome::Continue);
        assert!(!exchange.expects_raw_server_token());
        exchange.on_client_message(b"c=biws,r=abcdef,p=x", "sub");
        assert_eq!(exchange.on_server_message(0, b"v=sig"), Outcome::Authenticated { user: Some("alice".into()) });
        assert!(!exchange.expects_raw_client_token());
    }

    #[test]
    fn gssapi_raw_phase_ends_when_the_client_speaks_kafka() {
        let mut exchange = SaslExchange::handshake("GSSAPI", 0);
        exchange.on_handshake_response(0);
        exchange.on_client_message(&[0x60, 0x82, 0x02], "sub");
        assert_eq!(exchange.on_server_message(0, &[0x60, 0x01]), Outcome::Continue);
        assert!(exchange.expects_raw_client_token() && exchange.raw_end_is_guessed());
        assert_eq!(exchange.end_raw(), Outcome::Authenticated { user: None });
        assert!(!exchange.expects_raw_client_token());
    }

    #[test]
    fn a_refused_handshake_ends_the_exchange() {
        let mut exchange = SaslExchange::handshake("PLAIN", 0);
        exchange.on_handshake_response(33);
        assert!(exchange.is_done() && !exchange.expects_raw_client_token());
    }
}
