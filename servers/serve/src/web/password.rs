//! Approver passwords: argon2id PHC strings in serve.toml, made by `sigbridge serve
//! hash-password` and checked on login.
//!
//! Parameters: argon2id, 19 MiB, 2 passes, 1 lane — OWASP's password storage cheat sheet's
//! first recommended configuration. Verification takes the parameters from the stored string,
//! so raising them later only needs new hashes, not a new service. Hashing and verifying take
//! tens of milliseconds of CPU: callers on the async runtime run them with
//! `tokio::task::spawn_blocking`.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::Deserialize;

/// Memory cost in KiB (19 MiB).
pub const M_COST_KIB: u32 = 19 * 1024;
/// Passes over the memory.
pub const T_COST: u32 = 2;
/// Lanes.
pub const P_COST: u32 = 1;
/// Shortest password `hash-password` accepts.
pub const MIN_LEN: usize = 12;
/// Longest password accepted anywhere (bounds the work a login form can ask for).
pub const MAX_LEN: usize = 1024;

/// Why a password cannot be hashed.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Too short or too long.
    #[error("the password must be {MIN_LEN} to {MAX_LEN} bytes long (it is {0})")]
    Length(usize),
    /// The argon2 implementation refused.
    #[error("argon2 failed: {0}")]
    Argon2(String),
}

/// A checked `$argon2id$…` PHC string.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The hash is not the password, but it is what an offline guesser needs.
        f.write_str("PasswordHash(…)")
    }
}

impl PasswordHash {
    /// Parse and check a PHC string: argon2id only, with a salt and a hash.
    pub fn parse(text: &str) -> Result<Self, String> {
        let phc = argon2::password_hash::phc::PasswordHash::new(text).map_err(|e| {
            format!("password_argon2 is not a PHC string ({e}); make one with `sigbridge serve hash-password`")
        })?;
        if phc.algorithm.as_str() != "argon2id" {
            return Err(format!(
                "password_argon2 uses {}, not argon2id; make a new one with `sigbridge serve hash-password`",
                phc.algorithm
            ));
        }
        if phc.salt.is_none() || phc.hash.is_none() {
            return Err("password_argon2 has no salt or no hash".into());
        }
        Ok(Self(text.to_string()))
    }

    /// The PHC string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `password` matches (blocking: run it off the async reactor).
    pub fn verify(&self, password: &str) -> bool {
        password.len() <= MAX_LEN
            && Argon2::default()
                .verify_password(password.as_bytes(), self.0.as_str())
                .is_ok()
    }
}

impl<'de> Deserialize<'de> for PasswordHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

fn hasher() -> Result<Argon2<'static>, PasswordError> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None)
        .map_err(|e| PasswordError::Argon2(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hash `password` with a random salt (blocking).
pub fn hash(password: &str) -> Result<PasswordHash, PasswordError> {
    if password.len() < MIN_LEN || password.len() > MAX_LEN {
        return Err(PasswordError::Length(password.len()));
    }
    let phc = hasher()?
        .hash_password(password.as_bytes())
        .map_err(|e| PasswordError::Argon2(e.to_string()))?;
    Ok(PasswordHash(phc.to_string()))
}

/// A hash no password is known for, verified for unknown names so that a login for a name
/// that does not exist costs as much time as one for a name that does.
pub(crate) fn decoy() -> Option<&'static PasswordHash> {
    static DECOY: OnceLock<Option<PasswordHash>> = OnceLock::new();
    DECOY
        .get_or_init(|| {
            let mut random = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut random);
            hash(&hex::encode(random)).ok()
        })
        .as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only_and_carries_the_owasp_parameters() {
        let h = hash("correct horse battery").unwrap();
        assert!(
            h.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{}",
            h.as_str()
        );
        let back = PasswordHash::parse(h.as_str()).unwrap();
        assert!(back.verify("correct horse battery"));
        assert!(!back.verify("correct horse batterY"));
        assert!(!back.verify(&"x".repeat(MAX_LEN + 1)));
        assert!(!format!("{back:?}").contains("argon2id"));
    }

    #[test]
    fn short_passwords_and_other_algorithms_are_refused() {
        assert!(matches!(hash("short"), Err(PasswordError::Length(5))));
        let e = PasswordHash::parse("$argon2i$v=19$m=16,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo")
            .unwrap_err();
        assert!(e.contains("not argon2id"), "{e}");
        assert!(PasswordHash::parse("hunter2")
            .unwrap_err()
            .contains("not a PHC string"));
    }
}
