//! API keys: who a request is from, what it may see and do, and how often.
//!
//! Keys are kept only as SHA-256 hashes. A presented key is hashed and compared with every
//! configured hash in constant time, so neither the comparison nor the search tells an
//! attacker how much of a guess was right. A key sees only the tenants in its scope: every
//! other tenant answers as if it did not exist.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use subtle::ConstantTimeEq;

use crate::config::{Access, KeyConfig, key_hash};

/// The key a request was made with.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The key's id.
    pub key_id: String,
    /// Tenants it may use, by id.
    pub tenants: Vec<String>,
    /// Customers whose tenants it may use.
    pub customers: Vec<String>,
    /// Whether it may change anything.
    pub access: Access,
    /// Whether it is an operator's key (connectors, metrics).
    pub operator: bool,
}

impl Principal {
    /// Whether the tenant `id`, of `customer`, is in the key's scope.
    pub fn may_use(&self, id: &str, customer: Option<&str>) -> bool {
        self.tenants.iter().any(|t| t == id)
            || customer.is_some_and(|c| self.customers.iter().any(|k| k == c))
    }

    /// Whether the key may write.
    pub fn may_write(&self) -> bool {
        self.access == Access::ReadWrite
    }
}

struct Entry {
    hash: [u8; 32],
    principal: Principal,
    per_minute: u32,
}

/// A token bucket per key.
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// The configured keys and their rate limits.
pub struct Keys {
    entries: Vec<Entry>,
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// Why a request was refused before it was handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No key, or an unknown one.
    Unauthenticated,
    /// Over the key's rate; retry after this many seconds.
    RateLimited(u64),
}

impl Keys {
    /// The keys of the configuration.
    pub fn new(keys: &[KeyConfig]) -> Self {
        let entries = keys
            .iter()
            .map(|k| Entry {
                hash: decode_hash(&k.sha256),
                principal: Principal {
                    key_id: k.id.clone(),
                    tenants: k.tenants.clone(),
                    customers: k.customers.clone(),
                    access: k.access,
                    operator: k.operator,
                },
                per_minute: k.requests_per_minute,
            })
            .collect();
        Keys { entries, buckets: Mutex::new(HashMap::new()) }
    }

    /// The principal of a request's `Authorization` header value, within its rate.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, Refusal> {
        let presented = authorization
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or(Refusal::Unauthenticated)?;
        let hash = decode_hash(&key_hash(presented));
        // Every entry is compared, matched or not, so the time taken says nothing.
        let mut found: Option<&Entry> = None;
        for entry in &self.entries {
            if bool::from(entry.hash.ct_eq(&hash)) {
                found = Some(entry);
            }
        }
        let entry = found.ok_or(Refusal::Unauthenticated)?;
        self.take_token(entry)?;
        Ok(entry.principal.clone())
    }

    fn take_token(&self, entry: &Entry) -> Result<(), Refusal> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let capacity = f64::from(entry.per_minute);
        let now = Instant::now();
        let bucket = buckets
            .entry(entry.principal.key_id.clone())
            .or_insert(Bucket { tokens: capacity, updated: now });
        let refill = now.duration_since(bucket.updated).as_secs_f64() * capacity / 60.0;
        bucket.tokens = (bucket.tokens + refill).min(capacity);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) * 60.0 / capacity;
            Err(Refusal::RateLimited(wait.ceil().max(1.0) as u64))
        }
    }
}

/// The 32 bytes of a hex SHA-256 (checked by the configuration); zeros for anything else,
/// which no key hashes to.
fn decode_hash(hex: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = hex.get(2 * i..2 * i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()).unwrap_or(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, secret: &str, per_minute: u32) -> KeyConfig {
        KeyConfig {
            id: id.into(),
            sha256: key_hash(secret),
            tenants: vec![format!("{id}-tenant")],
            customers: vec![],
            access: Access::ReadOnly,
            requests_per_minute: per_minute,
            operator: false,
        }
    }

    #[test]
    fn keys_are_matched_by_hash_and_limited_by_rate() {
        let keys = Keys::new(&[key("a", "secret-a", 600), key("b", "secret-b", 2)]);
        assert_eq!(keys.authenticate(Some("Bearer secret-a")).unwrap().key_id, "a");
        assert!(keys.authenticate(Some("Bearer secret-b")).unwrap().may_use("b-tenant", None));
        for bad in [None, Some(""), Some("Bearer "), Some("Bearer secret-c"), Some("secret-a")] {
            assert_eq!(keys.authenticate(bad).unwrap_err(), Refusal::Unauthenticated, "{bad:?}");
        }
        assert!(keys.authenticate(Some("Bearer secret-b")).is_ok());
        assert!(
            matches!(keys.authenticate(Some("Bearer secret-b")), Err(Refusal::RateLimited(s)) if s >= 1)
        );
    }
}
