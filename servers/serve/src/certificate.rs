//! A signing policy's X.509 certificate (`certificate = "file.pem"` in serve.toml): read with a
//! size bound, parsed in full, and checked at start-up against the key of the policy's signer,
//! so the certificate route never hands clients a certificate whose key would not verify the
//! policy's signatures. The route serves it as DER, as SignPath does.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use sigbridge_signer::PublicKey;
use x509_cert::der::{Decode as _, Encode as _};

/// Largest certificate file read (a certificate is a few KiB; a chain of several fits too).
pub const MAX_CERTIFICATE_BYTES: u64 = 64 * 1024;

/// Why a policy's certificate cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    /// The file could not be read.
    #[error("policy {policy}: cannot read its certificate {}: {source}", path.display())]
    Read {
        /// `project/slug`.
        policy: String,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_CERTIFICATE_BYTES`].
    #[error("policy {policy}: its certificate {} is larger than {MAX_CERTIFICATE_BYTES} bytes; give the PEM certificate issued for the policy's key", path.display())]
    TooLarge {
        /// `project/slug`.
        policy: String,
        /// The file.
        path: PathBuf,
    },
    /// Not a PEM X.509 certificate.
    #[error("policy {policy}: its certificate {} is not a PEM X.509 certificate ({reason}); give the certificate (-----BEGIN CERTIFICATE-----) issued for the policy's key", path.display())]
    Malformed {
        /// `project/slug`.
        policy: String,
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The certificate holds another key than the policy's signer.
    #[error("policy {policy}: its certificate {} is for another key than the policy's signer {signer}, so signatures from this policy would not verify with it; give the certificate issued for this signer's key, or remove `certificate` to serve the signer's public key", path.display())]
    OtherKey {
        /// `project/slug`.
        policy: String,
        /// The file.
        path: PathBuf,
        /// The policy's `signer`.
        signer: String,
    },
    /// The signer could not give its key.
    #[error("policy {policy}: cannot read the public key of its signer {signer} to check its certificate: {reason}")]
    SignerKey {
        /// `project/slug`.
        policy: String,
        /// The policy's `signer`.
        signer: String,
        /// Why.
        reason: String,
    },
}

/// Read `path` and return the DER of its first certificate (the policy's own, when the file
/// holds a chain) if its key is `key`. `policy` (`project/slug`) and `signer` name the policy
/// in errors.
pub fn load(
    policy: &str,
    signer: &str,
    path: &Path,
    key: &PublicKey,
) -> Result<Vec<u8>, CertificateError> {
    let read_err = |source| CertificateError::Read {
        policy: policy.into(),
        path: path.into(),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(read_err)?
        .take(MAX_CERTIFICATE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_CERTIFICATE_BYTES {
        return Err(CertificateError::TooLarge {
            policy: policy.into(),
            path: path.into(),
        });
    }
    let malformed = |reason: String| CertificateError::Malformed {
        policy: policy.into(),
        path: path.into(),
        reason,
    };
    let block =
        sigbridge_signer::pem::decode_first(&bytes).map_err(|e| malformed(e.to_string()))?;
    if block.label() != "CERTIFICATE" {
        return Err(malformed(format!(
            "its first PEM block is {:?}",
            block.label()
        )));
    }
    let der = block.contents().to_vec();
    let cert = x509_cert::Certificate::from_der(&der).map_err(|e| malformed(e.to_string()))?;
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| malformed(e.to_string()))?;
    let cert_key =
        PublicKey::from_spki_der(&spki).map_err(|e| malformed(format!("its public key: {e}")))?;
    if &cert_key != key {
        return Err(CertificateError::OtherKey {
            policy: policy.into(),
            path: path.into(),
            signer: signer.into(),
        });
    }
    Ok(der)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_pair() -> (rcgen::KeyPair, PublicKey) {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let key = PublicKey::from_pem(&pair.public_key_pem()).unwrap();
        (pair, key)
    }

    fn cert_pem(pair: &rcgen::KeyPair) -> String {
        rcgen::CertificateParams::new(vec!["release-signing".into()])
            .unwrap()
            .self_signed(pair)
            .unwrap()
            .pem()
    }

    #[test]
    fn a_certificate_for_the_signers_key_is_served_as_der_and_one_for_another_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (pair, key) = key_pair();
        let path = dir.path().join("policy.pem");
        std::fs::write(&path, cert_pem(&pair)).unwrap();
        let der = load("p/s", "k.pem", &path, &key).unwrap();
        assert_eq!(PublicKey::from_certificate_der(&der).unwrap(), key);

        let (other, _) = key_pair();
        std::fs::write(&path, cert_pem(&other)).unwrap();
        let e = load("p/s", "k.pem", &path, &key).unwrap_err().to_string();
        assert!(
            e.contains("policy p/s") && e.contains("for another key"),
            "{e}"
        );
    }

    #[test]
    fn a_public_key_garbage_and_an_oversized_file_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let (_, key) = key_pair();
        let path = dir.path().join("policy.pem");
        std::fs::write(&path, key.to_pem()).unwrap();
        let e = load("p/s", "k.pem", &path, &key).unwrap_err().to_string();
        assert!(
            e.contains("not a PEM X.509 certificate") && e.contains("PUBLIC KEY"),
            "{e}"
        );

        std::fs::write(
            &path,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = load("p/s", "k.pem", &path, &key).unwrap_err().to_string();
        assert!(
            e.contains("policy p/s") && e.contains("not a PEM X.509 certificate"),
            "{e}"
        );

        std::fs::write(&path, vec![b'A'; MAX_CERTIFICATE_BYTES as usize + 1]).unwrap();
        let e = load("p/s", "k.pem", &path, &key).unwrap_err().to_string();
        assert!(e.contains("larger than"), "{e}");

        let e = load("p/s", "k.pem", &dir.path().join("missing.pem"), &key)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot read its certificate"), "{e}");
    }
}
