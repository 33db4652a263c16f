//! IMDSv2 session tokens: made by `PUT /latest/api/token`, bound to the instance that asked,
//! valid for the TTL it asked for (1 to 21,600 seconds).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine;
use rand::RngCore;

/// Shortest TTL a token may have, in seconds.
pub const MIN_TTL: u64 = 1;
/// Longest TTL a token may have, in seconds (six hours).
pub const MAX_TTL: u64 = 21_600;
/// Most live tokens one instance may hold; the oldest are dropped past this.
const MAX_PER_INSTANCE: usize = 1_000;

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The TTL is missing, not a number, or out of range.
    #[error("X-aws-ec2-metadata-token-ttl-seconds must be a whole number from 1 to 21600")]
    BadTtl,
    /// Unknown, expired, or another instance's token.
    #[error("the token is missing, expired or not this instance's")]
    Invalid,
}

/// The live tokens of every instance, kept apart per instance: issuing or checking one
/// instance's tokens never looks at another's, so a guest asking for tokens without end
/// costs only its own (bounded) list.
#[derive(Default)]
pub struct TokenStore {
    /// Instance id → its tokens and when each expires.
    by_instance: HashMap<String, HashMap<String, Instant>>,
}

impl std::fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenStore")
            .field("instances", &self.by_instance.len())
            .finish()
    }
}

/// Parses the TTL header's value.
pub fn parse_ttl(value: Option<&str>) -> Result<Duration, TokenError> {
    let secs: u64 = value
        .and_then(|v| v.trim().parse().ok())
        .ok_or(TokenError::BadTtl)?;
    if !(MIN_TTL..=MAX_TTL).contains(&secs) {
        return Err(TokenError::BadTtl);
    }
    Ok(Duration::from_secs(secs))
}

impl TokenStore {
    /// A new, random token for `instance`, valid for `ttl` from `now`. Past
    /// [`MAX_PER_INSTANCE`] live tokens, the ones expiring first are dropped.
    pub fn issue(&mut self, instance: &str, ttl: Duration, now: Instant) -> String {
        let held = self.by_instance.entry(instance.to_owned()).or_default();
        held.retain(|_, expires| *expires > now);
        while held.len() >= MAX_PER_INSTANCE {
            let Some(first) = held.iter().min_by_key(|(_, e)| **e).map(|(k, _)| k.clone()) else {
                break;
            };
            held.remove(&first);
        }
        let mut raw = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut raw);
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        held.insert(token.clone(), now + ttl);
        token
    }

    /// Checks that `token` is live and belongs to `instance`.
    pub fn check(&self, token: &str, instance: &str, now: Instant) -> Result<(), TokenError> {
        match self
            .by_instance
            .get(instance)
            .and_then(|held| held.get(token))
        {
            Some(expires) if *expires > now => Ok(()),
            _ => Err(TokenError::Invalid),
        }
    }

    /// Forgets every token of `instance` (it stopped or terminated).
    pub fn revoke_instance(&mut self, instance: &str) {
        self.by_instance.remove(instance);
    }

    /// How many tokens `instance` holds (expired ones not yet dropped included).
    pub fn held(&self, instance: &str) -> usize {
        self.by_instance.get(instance).map_or(0, HashMap::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_must_be_in_range() {
        assert_eq!(parse_ttl(Some("21600")), Ok(Duration::from_secs(21_600)));
        assert_eq!(parse_ttl(Some("1")), Ok(Duration::from_secs(1)));
        for bad in [
            None,
            Some("0"),
            Some("21601"),
            Some("-5"),
            Some("soon"),
            Some(""),
        ] {
            assert_eq!(parse_ttl(bad), Err(TokenError::BadTtl), "{bad:?}");
        }
    }

    #[test]
    fn tokens_are_bound_to_their_instance_and_expire() {
        let mut store = TokenStore::default();
        let t0 = Instant::now();
        let token = store.issue("i-a", Duration::from_secs(10), t0);
        assert_eq!(token.len(), 43);
        assert!(store.check(&token, "i-a", t0).is_ok());
        assert_eq!(store.check(&token, "i-b", t0), Err(TokenError::Invalid));
        assert_eq!(
            store.check(&token, "i-a", t0 + Duration::from_secs(10)),
            Err(TokenError::Invalid)
        );
        assert_eq!(store.check("forged", "i-a", t0), Err(TokenError::Invalid));
        let other = store.issue("i-a", Duration::from_secs(10), t0);
        assert_ne!(token, other);
        store.revoke_instance("i-a");
        assert_eq!(store.check(&other, "i-a", t0), Err(TokenError::Invalid));
    }

    #[test]
    fn an_instance_cannot_hoard_tokens() {
        let mut store = TokenStore::default();
        let t0 = Instant::now();
        let first = store.issue("i-a", Duration::from_secs(100), t0);
        for i in 0..MAX_PER_INSTANCE {
            store.issue("i-a", Duration::from_secs(200 + i as u64), t0);
        }
        assert_eq!(store.held("i-a"), MAX_PER_INSTANCE);
        let other = store.issue("i-b", Duration::from_secs(100), t0);
        assert!(store.check(&other, "i-b", t0).is_ok(), "others keep theirs");
        assert_eq!(store.held("i-a"), MAX_PER_INSTANCE);
        assert_eq!(
            store.check(&first, "i-a", t0),
            Err(TokenError::Invalid),
            "the oldest went"
        );
    }
}
