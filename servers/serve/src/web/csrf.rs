//! CSRF tokens: every POST form carries a token derived from the session id (or, before login,
//! from a random login cookie), which a cross-site page can neither read nor compute. Deriving
//! instead of storing keeps nothing extra in the database, and the token is useless without the
//! cookie it came from.

use sha2::{Digest as _, Sha256};

/// The hidden form field that carries the token.
pub(crate) const FIELD: &str = "csrf";

/// The token for `secret` (a session id, or the login cookie's value).
pub(crate) fn token(secret: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"sigbridge-serve csrf v1\0");
    h.update(secret.as_bytes());
    hex::encode(h.finalize())
}

/// Whether `presented` is the token for `secret` (constant time in the token's contents).
pub(crate) fn check(secret: &str, presented: Option<&str>) -> bool {
    let Some(presented) = presented else {
        return false;
    };
    let expected = token(secret);
    expected.len() == presented.len()
        && expected
            .bytes()
            .zip(presented.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_fits_only_its_own_session() {
        let t = token("session-a");
        assert!(check("session-a", Some(&t)));
        assert!(!check("session-b", Some(&t)));
        assert!(!check("session-a", None));
        assert!(!check("session-a", Some("")));
        assert!(!check("session-a", Some(&t[..63])));
    }
}
