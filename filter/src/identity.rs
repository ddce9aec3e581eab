//! Who is on the other end of a connection, by order of trust.
//!
//! 1. The verified mTLS peer principal Envoy knows for the connection (the SPIFFE URI SAN Istio's
//!    mTLS presents, or the certificate subject): proven by a certificate chain Envoy checked.
//! 2. The SASL user the broker accepted (see [`kafka_lens_codec::sasl`]): proven to the broker.
//! 3. The `client_id` the client declares in every request header: a convention, spoofable by any
//!    client.
//!
//! The resolved identity labels the per-client metrics (`identity="sasl:alice"`), so dashboards can
//! tell a claimed name from a proven one, and is the key identity-based rules match on.

/// Where an identity comes from, most trusted first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    Mtls,
    Sasl,
    ClientId,
}

impl Source {
    /// The prefix of the identity label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Mtls => "mtls",
            Source::Sasl => "sasl",
            Source::ClientId => "client_id",
        }
    }
}

/// What the connection has proven about its client. See the module documentation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    principal: Option<String>,
    sasl_user: Option<String>,
    /// The client's address as Envoy saw it (`ip:port`): not an identity label, a policy match
    /// where nothing better exists.
    source_address: Option<String>,
    /// The client software announced in ApiVersions v3+ (name, version): a claim, like the
    /// client id; for policy rules, not a label.
    client_software: Option<(String, String)>,
}

impl Identity {
    /// The verified peer principal, from Envoy's connection properties.
    pub fn set_principal(&mut self, principal: Option<String>) {
        self.principal = principal.filter(|p| !p.is_empty());
    }

    /// The SASL user the broker accepted.
    pub fn set_sasl_user(&mut self, user: String) {
        self.sasl_user = Some(user);
    }

    /// The client's source address, from Envoy's connection properties.
    pub fn set_source_address(&mut self, address: Option<String>) {
        self.source_address = address.filter(|a| !a.is_empty());
    }

    pub fn source_address(&self) -> Option<&str> {
        self.source_address.as_deref()
    }

    /// The client software the connection announced.
    pub fn set_client_software(&mut self, name: &str, version: &str) {
        self.client_software = Some((name.to_owned(), version.to_owned()));
    }

    pub fn client_software(&self) -> Option<(&str, &str)> {
        self.client_software.as_ref().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    pub fn principal(&self) -> Option<&str> {
        self.principal.as_deref()
    }

    pub fn sasl_user(&self) -> Option<&str> {
        self.sasl_user.as_deref()
    }

    /// The most trusted identity known, given the request's `client_id`.
    pub fn resolve<'a>(&'a self, client_id: Option<&'a str>) -> (Source, &'a str) {
        if let Some(principal) = &self.principal {
            (Source::Mtls, principal)
        } else if let Some(user) = &self.sasl_user {
            (Source::Sasl, user)
        } else {
            (Source::ClientId, client_id.unwrap_or(""))
        }
    }

    /// The identity label value: `<source>:<name>` (sanitized and capped by the caller).
    pub fn label_value(&self, client_id: Option<&str>) -> String {
        let (source, name) = self.resolve(client_id);
        format!("{}:{}", source.as_str(), if name.is_empty() { crate::labels::NONE } else { name })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_trusted_identity_wins() {
        let mut identity = Identity::default();
        assert_eq!(identity.label_value(Some("shop")), "client_id:shop");
        assert_eq!(identity.label_value(None), "client_id:none");
        identity.set_sasl_user("alice".into());
        assert_eq!(identity.resolve(Some("shop")), (Source::Sasl, "alice"));
        identity.set_principal(Some("spiffe://cluster.local/ns/shop/sa/orders".into()));
        assert_eq!(identity.label_value(Some("shop")), "mtls:spiffe://cluster.local/ns/shop/sa/orders");
        identity.set_principal(Some(String::new()));
        assert_eq!(identity.label_value(Some("shop")), "sasl:alice");
    }
}
