//! Bearer tokens, cached per registry and set of scopes until shortly before they expire.
//!
//! Keys are typed: a scope is `type:name:actions` with the actions as a set, so a token
//! granted `pull,push` serves a later `pull` for the same repository, whatever order the
//! scopes were asked in.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Mutex;
use std::time::Instant;

use secrecy::SecretString;

use crate::registry::lock;

/// One token-server scope (`repository:team/app:pull,push`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Scope {
    /// `type:name` (`repository:team/app`); the whole text when it has no actions part.
    resource: String,
    /// The actions granted or asked for (`pull`, `push`, `*`, …).
    actions: BTreeSet<String>,
}

impl Scope {
    /// Parse a scope as the distribution token spec writes it. Text that is not
    /// `type:name:actions` is kept whole, so it only ever matches itself.
    pub fn parse(text: &str) -> Self {
        match text.rsplit_once(':') {
            Some((resource, actions)) if resource.contains(':') => Self {
                resource: resource.to_string(),
                actions: actions
                    .split(',')
                    .filter(|a| !a.is_empty())
                    .map(str::to_string)
                    .collect(),
            },
            _ => Self {
                resource: text.to_string(),
                actions: BTreeSet::new(),
            },
        }
    }

    /// Whether a token granted `self` also grants `wanted`.
    fn covers(&self, wanted: &Scope) -> bool {
        self.resource == wanted.resource
            && (self.actions.contains("*") || wanted.actions.is_subset(&self.actions))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.actions.is_empty() {
            return f.write_str(&self.resource);
        }
        let actions: Vec<&str> = self.actions.iter().map(String::as_str).collect();
        write!(f, "{}:{}", self.resource, actions.join(","))
    }
}

/// What a cached token is for: one registry and a set of scopes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TokenKey {
    registry: String,
    scopes: BTreeSet<Scope>,
}

impl TokenKey {
    /// The key for `scopes` (as sent to the token server) at `registry`.
    pub fn new(registry: &str, scopes: &[String]) -> Self {
        Self {
            registry: registry.to_string(),
            scopes: scopes.iter().map(|s| Scope::parse(s)).collect(),
        }
    }

    /// Whether a token for `self` serves a request that needs `wanted`.
    fn covers(&self, wanted: &TokenKey) -> bool {
        self.registry == wanted.registry
            && wanted
                .scopes
                .iter()
                .all(|w| self.scopes.iter().any(|s| s.covers(w)))
    }
}

struct CachedToken {
    value: SecretString,
    expires: Instant,
}

/// Tokens per [`TokenKey`].
#[derive(Default)]
pub(crate) struct TokenCache {
    tokens: Mutex<HashMap<TokenKey, CachedToken>>,
}

impl TokenCache {
    /// A token that is still valid at `now` for `key`: one asked for exactly these scopes,
    /// else one whose scopes include them.
    pub fn get(&self, key: &TokenKey, now: Instant) -> Option<SecretString> {
        let tokens = lock(&self.tokens);
        let live = |t: &&CachedToken| t.expires > now;
        tokens
            .get(key)
            .filter(live)
            .or_else(|| {
                tokens
                    .iter()
                    .filter(|(k, _)| k.covers(key))
                    .map(|(_, t)| t)
                    .find(live)
            })
            .map(|t| t.value.clone())
    }

    /// Keep `value` for `key` until `expires`, dropping tokens that have expired.
    pub fn insert(&self, key: TokenKey, value: SecretString, expires: Instant) {
        let mut tokens = lock(&self.tokens);
        let now = Instant::now();
        tokens.retain(|_, t| t.expires > now);
        tokens.insert(key, CachedToken { value, expires });
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use secrecy::ExposeSecret as _;

    use super::*;

    fn scopes(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn scopes_parse_as_sets() {
        let s = Scope::parse("repository:team/app:push,pull");
        assert_eq!(s.to_string(), "repository:team/app:pull,push");
        assert_eq!(Scope::parse("odd").to_string(), "odd");
        assert!(Scope::parse("repository:a:pull,push").covers(&Scope::parse("repository:a:pull")));
        assert!(!Scope::parse("repository:a:pull").covers(&Scope::parse("repository:a:pull,push")));
        assert!(!Scope::parse("repository:a:pull,push").covers(&Scope::parse("repository:b:pull")));
        assert!(Scope::parse("registry:catalog:*").covers(&Scope::parse("registry:catalog:x")));
    }

    #[test]
    fn a_wider_token_serves_a_narrower_request_and_not_the_reverse() {
        let cache = TokenCache::default();
        let now = Instant::now();
        let later = now + Duration::from_secs(60);
        let push = TokenKey::new("r:5000", &scopes(&["repository:a:pull,push"]));
        cache.insert(push, SecretString::from("T-push".to_string()), later);
        let pull = TokenKey::new("r:5000", &scopes(&["repository:a:pull"]));
        assert_eq!(cache.get(&pull, now).unwrap().expose_secret(), "T-push");
        // Another registry, another repository, or more actions: not covered.
        assert!(cache
            .get(
                &TokenKey::new("other:5000", &scopes(&["repository:a:pull"])),
                now
            )
            .is_none());
        assert!(cache
            .get(
                &TokenKey::new("r:5000", &scopes(&["repository:b:pull"])),
                now
            )
            .is_none());
        assert!(cache
            .get(
                &TokenKey::new(
                    "r:5000",
                    &scopes(&["repository:a:pull", "repository:b:pull"])
                ),
                now
            )
            .is_none());
        // Order of scopes does not matter.
        let two = TokenKey::new(
            "r:5000",
            &scopes(&["repository:b:pull", "repository:a:pull"]),
        );
        cache.insert(two, SecretString::from("T-two".to_string()), later);
        let swapped = TokenKey::new(
            "r:5000",
            &scopes(&["repository:a:pull", "repository:b:pull"]),
        );
        assert_eq!(cache.get(&swapped, now).unwrap().expose_secret(), "T-two");
    }

    #[test]
    fn expired_tokens_are_not_served() {
        let cache = TokenCache::default();
        let now = Instant::now();
        let key = TokenKey::new("r", &scopes(&["repository:a:pull"]));
        cache.insert(key.clone(), SecretString::from("T".to_string()), now);
        assert!(cache.get(&key, now).is_none());
    }
}
