//! The strict readers of what sigbridge signs, shared by the `sigbridge` library (sign, verify,
//! attach) and `sigbridge serve` (what approvers are shown, and what it agrees to sign):
//!
//! - [`simple_signing`]: cosign's simple-signing payload read as cosign (Go `encoding/json`)
//!   reads it, refusing duplicate and case-folded keys and what Go refuses;
//! - [`statement`]: a DSSE pre-authentication encoding ([`pae`]) of a cosign 3 in-toto
//!   statement, read through [`strict_json`], which refuses keys two readers could take for
//!   one field.
//!
//! A parser differential is a vulnerability: each reader reads as the downstream verifiers
//! read, or refuses.

mod fold;
pub mod pae;
pub mod simple_signing;
pub mod statement;
pub mod strict_json;

pub use simple_signing::{ParsedPayload, PayloadError, COSIGN_SIGNATURE_TYPE};
pub use statement::{read_signed_bytes, StatementError};

/// `text` when it is an image digest as sigbridge and cosign write it: `sha256:` and 64
/// lowercase hex digits.
pub fn checked_sha256(text: &str) -> Option<&str> {
    let hex = text.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::checked_sha256;

    #[test]
    fn only_lowercase_sha256_digests_are_checked_digests() {
        let good = format!("sha256:{}", "0a".repeat(32));
        assert_eq!(checked_sha256(&good), Some(good.as_str()));
        for bad in [
            format!("sha256:{}", "0A".repeat(32)),
            format!("sha512:{}", "0a".repeat(32)),
            format!("sha256:{}", "0a".repeat(31)),
            "sha256:".to_string(),
            "x".to_string(),
        ] {
            assert_eq!(checked_sha256(&bad), None, "{bad}");
        }
    }
}
