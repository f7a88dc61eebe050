//! API tokens: 32 random bytes shown once; the service keeps only their SHA-256.
//!
//! A plain SHA-256 is enough here (argon2 is for passwords): a 256-bit random token cannot be
//! guessed or brute-forced from its hash, and a fast hash keeps every API call cheap.

use rand::RngCore as _;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

/// `sha256:HEX` of a token.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// The hash of `token`.
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// Parse `sha256:HEX`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let hex_part = text
            .strip_prefix("sha256:")
            .ok_or_else(|| format!("{text:?} is not sha256:HEX"))?;
        let bytes = hex::decode(hex_part).map_err(|e| format!("{text:?}: {e}"))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| format!("{text:?} is not 32 bytes of hex"))?;
        Ok(Self(arr))
    }

    /// Constant-time comparison, so response timing says nothing about how close a guess was.
    pub fn matches(&self, other: &Self) -> bool {
        self.0
            .iter()
            .zip(other.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl std::fmt::Display for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sha256:{}", hex::encode(self.0))
    }
}

impl<'de> Deserialize<'de> for TokenHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A new token (64 hex characters from 32 random bytes) and its hash.
pub fn new_token() -> (String, TokenHash) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    let hash = TokenHash::of(&token);
    (token, hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_token_matches_its_printed_hash_and_no_other() {
        let (token, hash) = new_token();
        let parsed = TokenHash::parse(&hash.to_string()).unwrap();
        assert!(parsed.matches(&TokenHash::of(&token)));
        assert!(!parsed.matches(&TokenHash::of("something else")));
        assert_eq!(token.len(), 64);
    }
}
