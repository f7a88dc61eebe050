//! Web sessions: a random 256-bit id in an HttpOnly, SameSite=Strict cookie; the database
//! keeps only its SHA-256, the identity and the expiry, so sessions survive restarts and a copy
//! of the database logs nobody in.

use rusqlite::{params, OptionalExtension as _};
use sha2::{Digest as _, Sha256};

use crate::store::{Store, StoreError};

/// The cookie's name without TLS.
pub(crate) const COOKIE: &str = "sigbridge_session";
/// With TLS: the `__Host-` prefix makes browsers insist on Secure, Path=/ and no Domain.
pub(crate) const COOKIE_TLS: &str = "__Host-sigbridge_session";

/// A session id as sent in the cookie (64 hex characters).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SessionId(String);

impl std::fmt::Debug for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionId(…)")
    }
}

impl SessionId {
    /// 32 random bytes from the OS.
    pub(crate) fn random() -> Self {
        let mut b = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
        Self(hex::encode(b))
    }

    /// A cookie value, if it has the shape of an id (anything else is not looked up).
    pub(crate) fn from_cookie(value: &str) -> Option<Self> {
        (value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| Self(value.to_ascii_lowercase()))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    fn stored(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }
}

/// Store a new session for `identity` lasting until `expires_at`; old expired ones go.
pub(crate) fn create(
    store: &Store,
    identity: &str,
    now: i64,
    expires_at: i64,
) -> Result<SessionId, StoreError> {
    let id = SessionId::random();
    store.with(|c| {
        c.execute("DELETE FROM sessions WHERE expires_at <= ?1", [now])?;
        c.execute(
            "INSERT INTO sessions (id_sha256, identity, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![id.stored(), identity, now, expires_at],
        )?;
        Ok(())
    })?;
    Ok(id)
}

/// The identity of a live session.
pub(crate) fn lookup(
    store: &Store,
    id: &SessionId,
    now: i64,
) -> Result<Option<String>, StoreError> {
    store.with(|c| {
        Ok(c.query_row(
            "SELECT identity FROM sessions WHERE id_sha256 = ?1 AND expires_at > ?2",
            params![id.stored(), now],
            |r| r.get(0),
        )
        .optional()?)
    })
}

/// End a session.
pub(crate) fn delete(store: &Store, id: &SessionId) -> Result<(), StoreError> {
    store.with(|c| {
        c.execute("DELETE FROM sessions WHERE id_sha256 = ?1", [id.stored()])?;
        Ok(())
    })
}

/// The `Set-Cookie` value that stores `id` for `max_age` seconds.
pub(crate) fn set_cookie(id: &SessionId, tls: bool, max_age: u64) -> String {
    let (name, secure) = if tls {
        (COOKIE_TLS, "; Secure")
    } else {
        (COOKIE, "")
    };
    format!(
        "{name}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}",
        id.as_str()
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub(crate) fn clear_cookie(tls: bool) -> String {
    let (name, secure) = if tls {
        (COOKIE_TLS, "; Secure")
    } else {
        (COOKIE, "")
    };
    format!("{name}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}")
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_hash_is_stored_and_expired_sessions_are_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let id = create(&store, "alice", 100, 200).unwrap();
        assert_eq!(lookup(&store, &id, 150).unwrap().as_deref(), Some("alice"));
        assert_eq!(lookup(&store, &id, 200).unwrap(), None);
        let stored: Vec<String> = store
            .with(|c| {
                Ok(c.prepare("SELECT id_sha256 FROM sessions")?
                    .query_map([], |r| r.get(0))?
                    .collect::<Result<_, _>>()?)
            })
            .unwrap();
        assert_eq!(stored.len(), 1);
        assert_ne!(stored[0], id.as_str());
        delete(&store, &id).unwrap();
        assert_eq!(lookup(&store, &id, 150).unwrap(), None);
    }

    #[test]
    fn cookies_are_found_among_others_and_odd_values_are_not_ids() {
        let mut h = axum::http::HeaderMap::new();
        h.append("cookie", "a=1; sigbridge_session=AbC".parse().unwrap());
        assert_eq!(cookie(&h, COOKIE), Some("AbC"));
        assert!(SessionId::from_cookie("AbC").is_none());
        assert!(SessionId::from_cookie(&"a".repeat(64)).is_some());
        let set = set_cookie(&SessionId::random(), true, 60);
        assert!(set.starts_with("__Host-sigbridge_session="), "{set}");
        assert!(
            set.contains("HttpOnly; SameSite=Strict") && set.ends_with("; Secure"),
            "{set}"
        );
    }
}
