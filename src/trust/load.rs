//! Reading trust material from files: a Sigstore `trusted_root.json`, cosign's
//! `SIGSTORE_REKOR_PUBLIC_KEY` (a PEM log key) and `SIGSTORE_ROOT_FILE` (PEM Fulcio roots).
//! Each file is read with a size cap; errors name the file and the field.

use std::io::Read as _;
use std::path::Path;
use std::time::SystemTime;

use sigbridge_signer::{pem, PublicKey};

use super::root_json::{self, TrustedRootJson};
use super::{CertificateAuthority, TransparencyLogKey, TrustedRoot, Validity};

/// The largest trust file read (the public-good trusted root is about 10 KiB).
pub const MAX_TRUST_FILE: u64 = 1024 * 1024;

/// Why trust material could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is over [`MAX_TRUST_FILE`].
    #[error("{path} is larger than the {MAX_TRUST_FILE}-byte limit for trust material")]
    TooLarge {
        /// The file.
        path: String,
    },
    /// The content is wrong; `reason` names the field.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file (or variable) it came from.
        path: String,
        /// What is wrong, naming the field.
        reason: String,
    },
}

fn read_capped(path: &Path) -> Result<Vec<u8>, TrustError> {
    let shown = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| TrustError::Io {
        path: shown.clone(),
        source,
    })?;
    let mut buf = Vec::new();
    file.take(MAX_TRUST_FILE + 1)
        .read_to_end(&mut buf)
        .map_err(|source| TrustError::Io {
            path: shown.clone(),
            source,
        })?;
    if buf.len() as u64 > MAX_TRUST_FILE {
        return Err(TrustError::TooLarge { path: shown });
    }
    Ok(buf)
}

impl TrustedRoot {
    /// Read a Sigstore `trusted_root.json` (`--trusted-root FILE`).
    pub fn from_trusted_root_file(path: &Path) -> Result<Self, TrustError> {
        let bytes = read_capped(path)?;
        Self::from_trusted_root_json(&bytes).map_err(|reason| TrustError::Invalid {
            path: path.display().to_string(),
            reason,
        })
    }

    /// Parse a Sigstore `trusted_root.json` (protojson of `TrustedRoot` v0.1).
    pub fn from_trusted_root_json(bytes: &[u8]) -> Result<Self, String> {
        let parsed: TrustedRootJson = serde_json::from_slice(bytes)
            .map_err(|e| format!("not a Sigstore trusted root: {e}"))?;
        root_json::convert(parsed)
    }

    /// Add the log keys of a PEM file (`SIGSTORE_REKOR_PUBLIC_KEY`), each valid from the epoch
    /// on with no end, as cosign treats them.
    pub fn add_rekor_public_keys_file(&mut self, path: &Path) -> Result<(), TrustError> {
        for der in pem_blocks(path, "PUBLIC KEY")? {
            let key = PublicKey::from_spki_der(&der)
                .map_err(|e| invalid(path, format!("PUBLIC KEY: {e}")))?;
            self.tlogs.push(TransparencyLogKey::new(
                key.spki_der().to_vec(),
                open_validity(),
                String::new(),
            ));
        }
        Ok(())
    }

    /// Add the certificate authorities of a PEM file of root certificates
    /// (`SIGSTORE_ROOT_FILE`): each certificate is its own authority, with an open validity
    /// (the certificates' own dates still apply to the chain check).
    pub fn add_fulcio_roots_file(&mut self, path: &Path) -> Result<(), TrustError> {
        for der in pem_blocks(path, "CERTIFICATE")? {
            PublicKey::from_certificate_der(&der)
                .map_err(|e| invalid(path, format!("CERTIFICATE: {e}")))?;
            self.certificate_authorities.push(CertificateAuthority {
                chain_der: vec![der],
                validity: open_validity(),
                uri: String::new(),
            });
        }
        Ok(())
    }
}

/// The contents of the PEM blocks of the file at `path`: at least one, every one `label`.
fn pem_blocks(path: &Path, label: &str) -> Result<Vec<Vec<u8>>, TrustError> {
    let bytes = read_capped(path)?;
    let blocks = pem::decode_all(&bytes).map_err(|e| invalid(path, format!("not PEM: {e}")))?;
    if blocks.is_empty() {
        return Err(invalid(path, format!("holds no PEM {label} block")));
    }
    blocks
        .into_iter()
        .map(|block| {
            if block.label() == label {
                Ok(block.contents().to_vec())
            } else {
                Err(invalid(
                    path,
                    format!("PEM block {:?} is not a {label}", block.label()),
                ))
            }
        })
        .collect()
}

fn invalid(path: &Path, reason: String) -> TrustError {
    TrustError::Invalid {
        path: path.display().to_string(),
        reason,
    }
}

fn open_validity() -> Validity {
    Validity::since(SystemTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(contents: &[u8]) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), contents).unwrap();
        file
    }

    const REKOR_PUB: &str = include_str!("../../tests/fixtures/tlog/ci-rekor.pub");
    const FULCIO_CERT: &str = include_str!("../../tests/fixtures/tlog/ci-rekor-cert");

    #[test]
    fn a_rekor_key_file_gives_a_log_keyed_by_its_sha256_valid_from_the_epoch() {
        let mut root = TrustedRoot::default();
        root.add_rekor_public_keys_file(temp(REKOR_PUB.as_bytes()).path())
            .unwrap();
        assert_eq!(
            hex::encode(&root.tlogs[0].log_id),
            "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d"
        );
        assert!(root.tlogs[0].validity.contains(SystemTime::UNIX_EPOCH));
        assert_eq!(root.tlogs[0].validity.end, None);
    }

    #[test]
    fn a_root_file_gives_one_authority_per_certificate_and_refuses_other_blocks() {
        let mut root = TrustedRoot::default();
        root.add_fulcio_roots_file(temp(FULCIO_CERT.as_bytes()).path())
            .unwrap();
        assert_eq!(root.certificate_authorities.len(), 1);
        let err = root
            .add_fulcio_roots_file(temp(REKOR_PUB.as_bytes()).path())
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("\"PUBLIC KEY\" is not a CERTIFICATE"),
            "{err}"
        );
        let err = root
            .add_rekor_public_keys_file(temp(b"nothing").path())
            .unwrap_err();
        assert!(err.to_string().contains("not PEM"), "{err}");
    }

    #[test]
    fn an_oversized_file_is_refused_unread() {
        let big = vec![b' '; MAX_TRUST_FILE as usize + 1];
        let err = TrustedRoot::from_trusted_root_file(temp(&big).path()).unwrap_err();
        assert!(matches!(err, TrustError::TooLarge { .. }), "{err}");
    }
}
