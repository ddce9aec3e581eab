//! Metric label values from untrusted input (client ids): sanitized and capped.
//!
//! Any client can send any client id, so a label taken from it could inject Envoy tag separators
//! or create unbounded series (a client looping over a million ids). Values are sanitized to a
//! safe character set and length, and each label admits at most a configured number of distinct
//! values across *all* worker VMs: admitted values are recorded in proxy-wasm shared data, the
//! count is bumped with compare-and-swap, and values beyond the cap fold into `__overflow__`.

use std::collections::HashSet;
use std::rc::Rc;

/// The value that every value beyond a label's cap folds into.
pub const OVERFLOW: &str = "__overflow__";
/// The value of a label whose input was absent or empty.
pub const NONE: &str = "none";

/// A label value: static (API names, versions) or admitted from input.
#[derive(Debug, Clone, Eq, PartialOrd, Ord)]
pub enum Label {
    Static(&'static str),
    Owned(Rc<str>),
}

impl PartialEq for Label {
    /// As derived, with a shortcut: admitted values are shared, so the same value is most
    /// often the same allocation.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Label::Static(a), Label::Static(b)) => a == b,
            (Label::Owned(a), Label::Owned(b)) => Rc::ptr_eq(a, b) || a == b,
            _ => false,
        }
    }
}

impl std::hash::Hash for Label {
    /// As derived (equal labels hash alike: `eq` only adds a shortcut).
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        self.as_str().hash(state);
    }
}

impl Label {
    pub fn as_str(&self) -> &str {
        match self {
            Label::Static(s) => s,
            Label::Owned(s) => s,
        }
    }
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who sent a request, as metrics label it: the self-declared `client_id` and the resolved
/// identity (see [`crate::identity`]). Renders as `client_id=..;identity=..` in a stat name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Client {
    pub client_id: Label,
    pub identity: Label,
}

impl Client {
    /// A client with fixed labels (tests, tools).
    pub fn fixed(client_id: &'static str, identity: &'static str) -> Client {
        Client { client_id: Label::Static(client_id), identity: Label::Static(identity) }
    }
}

impl std::fmt::Display for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "client_id={};identity={}", self.client_id, self.identity)
    }
}

/// Keeps `[A-Za-z0-9._:/@-]`, replaces anything else with `_` (so no `;`, `=`, quotes or
/// control bytes reach a stat name), truncates to `max_len` characters; empty becomes `none`.
pub fn sanitize(raw: &str, max_len: usize) -> String {
    let out: String = raw
        .chars()
        .take(max_len)
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '/' | '@' | '-') { c } else { '_' })
        .collect();
    if out.is_empty() {
        NONE.to_string()
    } else {
        out
    }
}

/// Why a shared-data write did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError {
    /// Another VM wrote the entry since it was read.
    CasMismatch,
    /// Envoy refused the call.
    Failed,
}

/// Data shared by all VMs of the plugin (proxy-wasm shared data in Envoy, a map in tests).
pub trait SharedStore {
    /// The value and CAS token of `key`, or `None`.
    fn get(&mut self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError>;
    /// Writes `key`; `cas` 0 writes unconditionally, otherwise only over that version.
    fn set(&mut self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError>;
}

/// Attempts at a compare-and-swap before giving up.
const CAS_ATTEMPTS: usize = 8;

/// Read-modify-write of one shared entry, safe against every other VM doing the same: `update`
/// sees the stored value (`None` if absent) and returns the value to write with a result, or
/// `None` to leave the entry as it is. The write happens only over the version read; another VM's
/// write in between makes it read and decide again (up to a few times). `None` if `update`
/// declined, the store failed, or the attempts ran out.
pub fn update_shared<R>(store: &mut dyn SharedStore, key: &str, mut update: impl FnMut(Option<&[u8]>) -> Option<(Vec<u8>, R)>) -> Option<R> {
    for _ in 0..CAS_ATTEMPTS {
        let (stored, cas) = match store.get(key) {
            Ok(Some((raw, cas))) => (Some(raw), cas),
            Ok(None) => (None, 0),
            Err(_) => return None,
        };
        let (value, result) = update(stored.as_deref())?;
        match store.set(key, &value, cas) {
            Ok(()) => return Some(result),
            Err(StoreError::CasMismatch) => continue,
            Err(StoreError::Failed) => return None,
        }
    }
    None
}

/// A stored decimal number (`None` if absent or not a number).
pub fn parse_stored<T: std::str::FromStr>(raw: Option<&[u8]>) -> Option<T> {
    std::str::from_utf8(raw?).ok()?.parse().ok()
}

/// The cap of one label, as seen from one VM.
#[derive(Debug)]
pub struct LabelCap {
    name: &'static str,
    cap: u32,
    max_len: usize,
    /// Values this VM already knows are admitted (bounded by `cap`).
    admitted: HashSet<Rc<str>>,
}

/// Result of admitting a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    pub label: Label,
    /// The value was new and the cap was full (or the store failed): it folded into overflow.
    pub overflowed: bool,
}

impl LabelCap {
    pub fn new(name: &'static str, cap: u32, max_len: usize) -> Self {
        LabelCap { name, cap, max_len, admitted: HashSet::new() }
    }

    fn count_key(&self) -> String {
        format!("kafka-lens/labels/{}/#count", self.name)
    }

    fn value_key(&self, value: &str) -> String {
        format!("kafka-lens/labels/{}/={value}", self.name)
    }

    /// The label for `raw` (absent: `none`): its sanitized value if admitted, else `__overflow__`.
    pub fn admit(&mut self, store: &mut dyn SharedStore, raw: Option<&str>) -> Admitted {
        let value = sanitize(raw.unwrap_or(""), self.max_len);
        if let Some(known) = self.admitted.get(value.as_str()) {
            return Admitted { label: Label::Owned(Rc::clone(known)), overflowed: false };
        }
        let admitted = match store.get(&self.value_key(&value)) {
            Ok(Some(_)) => true,
            Ok(None) => self.take_slot(store) && store.set(&self.value_key(&value), b"1", 0).is_ok(),
            Err(_) => false,
        };
        if admitted {
            let value: Rc<str> = Rc::from(value);
            self.admitted.insert(Rc::clone(&value));
            Admitted { label: Label::Owned(value), overflowed: false }
        } else {
            Admitted { label: Label::Static(OVERFLOW), overflowed: true }
        }
    }

    /// Bumps the shared count if it is below the cap.
    fn take_slot(&mut self, store: &mut dyn SharedStore) -> bool {
        let cap = self.cap;
        update_shared(store, &self.count_key(), |raw| {
            // An unreadable count reads as full.
            let count = if raw.is_some() { parse_stored::<u32>(raw).unwrap_or(u32::MAX) } else { 0 };
            (count < cap).then(|| ((count + 1).to_string().into_bytes(), ()))
        })
        .is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;

    /// Shared data as Envoy keeps it: values with a version bumped on every write.
    #[derive(Default)]
    struct Store(Rc<RefCell<HashMap<String, (Vec<u8>, u32)>>>);

    impl SharedStore for Store {
        fn get(&mut self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
            Ok(self.0.borrow().get(key).cloned())
        }
        fn set(&mut self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
            let mut map = self.0.borrow_mut();
            let version = map.get(key).map_or(0, |(_, v)| *v);
            if cas != 0 && cas != version {
                return Err(StoreError::CasMismatch);
            }
            map.insert(key.to_string(), (value.to_vec(), version + 1));
            Ok(())
        }
    }

    #[test]
    fn sanitizes_separators_and_length() {
        assert_eq!(sanitize("shop;api=x", 64), "shop_api_x");
        assert_eq!(sanitize("rdkafka", 64), "rdkafka");
        assert_eq!(sanitize("a\u{e9}\n\"b", 64), "a___b");
        assert_eq!(sanitize("", 64), "none");
        assert_eq!(sanitize(&"x".repeat(500), 64).len(), 64);
    }

    #[test]
    fn cap_is_shared_across_vms() {
        let shared = Rc::new(RefCell::new(HashMap::new()));
        let mut vm1 = (LabelCap::new("client_id", 3, 64), Store(Rc::clone(&shared)));
        let mut vm2 = (LabelCap::new("client_id", 3, 64), Store(Rc::clone(&shared)));
        assert!(!vm1.0.admit(&mut vm1.1, Some("a")).overflowed);
        assert!(!vm2.0.admit(&mut vm2.1, Some("b")).overflowed);
        // Already admitted by the other VM: no new slot.
        assert_eq!(vm2.0.admit(&mut vm2.1, Some("a")).label.as_str(), "a");
        assert!(!vm1.0.admit(&mut vm1.1, None).overflowed); // "none" takes the third slot
        let over = vm2.0.admit(&mut vm2.1, Some("c"));
        assert_eq!(over, Admitted { label: Label::Static(OVERFLOW), overflowed: true });
        assert_eq!(vm1.0.admit(&mut vm1.1, Some("b")).label.as_str(), "b");
    }

    #[test]
    fn a_million_distinct_values_stay_bounded() {
        let mut store = Store::default();
        let mut cap = LabelCap::new("client_id", 100, 64);
        let overflowed = (0..20_000).filter(|i| cap.admit(&mut store, Some(&format!("id-{i}"))).overflowed).count();
        assert_eq!(overflowed, 20_000 - 100);
        assert_eq!(cap.admitted.len(), 100);
        assert_eq!(store.0.borrow().len(), 101); // 100 values + the count
    }
}
