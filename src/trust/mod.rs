//! Trust material for checks beyond a public key: the transparency logs whose signed entry
//! timestamps are accepted and the certificate authorities keyless certificates must chain to,
//! each with the time span in which it may be used. A Sigstore `trusted_root.json` (or cosign's
//! `SIGSTORE_REKOR_PUBLIC_KEY` / `SIGSTORE_ROOT_FILE`) is read into a [`TrustedRoot`]; the
//! checks (transparency-log entries, certificate chains) take it as it is, never fetch it.

mod load;
mod root_json;

use std::time::SystemTime;

pub use load::{TrustError, MAX_TRUST_FILE};
pub use root_json::TRUSTED_ROOT_MEDIA_TYPE;

/// When a piece of trust material may be used: from `start`, until `end` if it has one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validity {
    /// The first moment it is valid.
    pub start: SystemTime,
    /// The last moment it is valid; `None`: still valid.
    pub end: Option<SystemTime>,
}

impl Validity {
    /// Valid from `start` on, with no end.
    pub fn since(start: SystemTime) -> Self {
        Self { start, end: None }
    }

    /// Whether `at` falls within this span (both ends included).
    pub fn contains(&self, at: SystemTime) -> bool {
        at >= self.start && self.end.is_none_or(|end| at <= end)
    }
}

/// A transparency log (Rekor) key: entries whose `logID` is `log_id` carry a signed entry
/// timestamp made with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransparencyLogKey {
    /// The log's id: SHA-256 of the key's DER SubjectPublicKeyInfo (32 bytes).
    pub log_id: Vec<u8>,
    /// The key, DER SubjectPublicKeyInfo.
    pub spki_der: Vec<u8>,
    /// When entries it signed are accepted (the entry's integrated time must fall within).
    pub validity: Validity,
    /// Where the log lives, for messages only (never contacted).
    pub base_url: String,
}

impl TransparencyLogKey {
    /// A log key with its id computed as Rekor computes it (SHA-256 of the DER key).
    pub fn new(spki_der: Vec<u8>, validity: Validity, base_url: String) -> Self {
        use sha2::{Digest as _, Sha256};
        Self {
            log_id: Sha256::digest(&spki_der).to_vec(),
            spki_der,
            validity,
            base_url,
        }
    }
}

/// A certificate authority (Fulcio): a keyless certificate must chain to `chain`'s root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateAuthority {
    /// DER certificates, the issuing certificate first and the root last.
    pub chain_der: Vec<Vec<u8>>,
    /// When certificates it issued are accepted (the signing time must fall within).
    pub validity: Validity,
    /// Where the authority lives, for messages only (never contacted).
    pub uri: String,
}

/// Everything a verify may trust besides the key it is given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedRoot {
    /// Transparency logs (Rekor) whose entries are accepted.
    pub tlogs: Vec<TransparencyLogKey>,
    /// Certificate authorities (Fulcio) keyless certificates must chain to.
    pub certificate_authorities: Vec<CertificateAuthority>,
}

impl TrustedRoot {
    /// The log key with id `log_id` that was valid at `at`, if any.
    pub fn tlog_key(&self, log_id: &[u8], at: SystemTime) -> Option<&TransparencyLogKey> {
        self.tlogs
            .iter()
            .find(|k| k.log_id == log_id && k.validity.contains(at))
    }

    /// The authorities that were valid at `at`.
    pub fn authorities_at(&self, at: SystemTime) -> impl Iterator<Item = &CertificateAuthority> {
        self.certificate_authorities
            .iter()
            .filter(move |a| a.validity.contains(at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn validity_includes_both_ends_and_an_open_end() {
        let t = |s| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        let closed = Validity {
            start: t(10),
            end: Some(t(20)),
        };
        assert!(!closed.contains(t(9)));
        assert!(closed.contains(t(10)) && closed.contains(t(20)));
        assert!(!closed.contains(t(21)));
        assert!(Validity::since(t(10)).contains(t(u32::MAX as u64)));
    }

    #[test]
    fn a_log_key_is_found_by_id_only_within_its_validity() {
        let t = |s| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        let root = TrustedRoot {
            tlogs: vec![TransparencyLogKey {
                log_id: vec![1; 32],
                spki_der: vec![],
                validity: Validity {
                    start: t(10),
                    end: Some(t(20)),
                },
                base_url: "https://rekor.example".into(),
            }],
            certificate_authorities: vec![],
        };
        assert!(root.tlog_key(&[1; 32], t(15)).is_some());
        assert!(root.tlog_key(&[1; 32], t(25)).is_none(), "expired key");
        assert!(root.tlog_key(&[2; 32], t(15)).is_none(), "another log");
    }
}
