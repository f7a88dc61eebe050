//! The local-key signer: cosign encrypted key files (`cosign generate-key-pair`,
//! `skopeo generate-sigstore-key`) and plaintext PKCS#8, SEC1 and PKCS#1 PEM files.
//!
//! Signatures are what cosign makes with the same file: ECDSA over SHA-256 in ASN.1 DER,
//! RSA PKCS#1 v1.5 with SHA-256, pure Ed25519. Every signature is checked against the key's
//! own public key before it is returned.

#![forbid(unsafe_code)]

mod envelope;
mod error;
mod private_key;
mod provider;

use std::fmt;
use std::io::Read as _;
use std::path::Path;

use async_trait::async_trait;
use rand_core::{OsRng, RngCore as _};
use secrecy::SecretString;
use sigbridge_signer::pem::{self, PemBlock};
use sigbridge_signer::{
    normalise_signature, Capabilities, KeyKind, PublicKey, SignOutcome, SignRequest, Signer,
    SignerError,
};
use zeroize::Zeroizing;

pub use error::LocalKeyError;
pub use provider::LocalProvider;

use envelope::Envelope;
use private_key::PrivateKey;

/// Largest key file read: real ones are well under 10 KiB, so anything this big is a mistake.
pub const MAX_KEY_FILE_SIZE: u64 = 1024 * 1024;

/// PEM label of cosign v2.0.1+ and `cosign import-key-pair` keys.
pub const SIGSTORE_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// PEM label of cosign 1.x keys (and of skopeo's); every cosign version reads it.
pub const COSIGN_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";

fn random_bytes(buf: &mut [u8]) -> Result<(), LocalKeyError> {
    OsRng
        .try_fill_bytes(buf)
        .map_err(|e| LocalKeyError::Random(e.to_string()))
}

enum Contents {
    Encrypted(Envelope),
    Plain(PrivateKey),
}

/// A parsed private key file, possibly still encrypted.
pub struct KeyFile {
    origin: String,
    label: String,
    contents: Contents,
}

impl fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("KeyFile");
        s.field("origin", &self.origin).field("label", &self.label);
        match &self.contents {
            Contents::Encrypted(envelope) => s.field("encrypted", envelope),
            Contents::Plain(key) => s.field("kind", &key.kind()),
        };
        s.finish()
    }
}

impl KeyFile {
    /// Read and parse a key file. Files over [`MAX_KEY_FILE_SIZE`] are refused unread.
    pub fn read(path: &Path) -> Result<KeyFile, LocalKeyError> {
        let origin = path.display().to_string();
        let io = |error| LocalKeyError::Io {
            origin: origin.clone(),
            error,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        let too_large = || LocalKeyError::TooLarge {
            origin: origin.clone(),
            limit: MAX_KEY_FILE_SIZE,
        };
        if size > MAX_KEY_FILE_SIZE {
            return Err(too_large());
        }
        // Sized up front (the file may grow, hence +1 and `take`) so that reading never
        // reallocates and leaves an unzeroized copy of a plaintext key behind.
        let capacity = usize::try_from(MAX_KEY_FILE_SIZE.min(size) + 1).unwrap_or(usize::MAX);
        let mut buf = Zeroizing::new(Vec::with_capacity(capacity));
        file.take(MAX_KEY_FILE_SIZE + 1)
            .read_to_end(&mut buf)
            .map_err(io)?;
        if buf.len() as u64 > MAX_KEY_FILE_SIZE {
            return Err(too_large());
        }
        Self::parse(&buf, &origin)
    }

    /// Parse PEM text; `origin` names it in messages and in [`Signer::describe`].
    ///
    /// Accepted: `ENCRYPTED SIGSTORE PRIVATE KEY` and `ENCRYPTED COSIGN PRIVATE KEY` (cosign's
    /// scrypt + secretbox envelope), `PRIVATE KEY` (PKCS#8), `EC PRIVATE KEY` (SEC1) and
    /// `RSA PRIVATE KEY` (PKCS#1). The first key block is used; an `EC PARAMETERS` block in
    /// front (as `openssl ecparam -genkey` writes) is skipped.
    pub fn parse(pem_text: &[u8], origin: &str) -> Result<KeyFile, LocalKeyError> {
        let pem_error = |error| LocalKeyError::Pem {
            origin: origin.to_string(),
            error,
        };
        let mut blocks = pem::blocks(pem_text);
        let mut block = blocks
            .next()
            .unwrap_or(Err(pem::PemError::NoBlock))
            .map_err(pem_error)?;
        if block.label() == "EC PARAMETERS" {
            block = blocks
                .next()
                .ok_or_else(|| LocalKeyError::UnsupportedFormat {
                    origin: origin.to_string(),
                    label: "EC PARAMETERS".to_string(),
                    hint: " on its own: the file has curve parameters but no key",
                })?
                .map_err(pem_error)?;
        }
        let contents = Self::parse_block(&block, origin)?;
        Ok(KeyFile {
            origin: origin.to_string(),
            label: block.label().to_string(),
            contents,
        })
    }

    fn parse_block(block: &PemBlock, origin: &str) -> Result<Contents, LocalKeyError> {
        let unsupported = |hint: &'static str| LocalKeyError::UnsupportedFormat {
            origin: origin.to_string(),
            label: block.label().to_string(),
            hint,
        };
        if block.header("Proc-Type").is_some() {
            return Err(unsupported(
                " with OpenSSL's legacy PEM encryption: decrypt it once with `(umask 077 && openssl pkey -in FILE -out plain.pem)` and sign with plain.pem (cosign import-key-pair refuses EC and RSA keys)",
            ));
        }
        match block.label() {
            SIGSTORE_LABEL | COSIGN_LABEL => {
                Ok(Contents::Encrypted(Envelope::parse(block.contents(), origin)?))
            }
            "PRIVATE KEY" => Ok(Contents::Plain(PrivateKey::from_pkcs8_der(
                block.contents(),
                origin,
            )?)),
            "EC PRIVATE KEY" => Ok(Contents::Plain(PrivateKey::from_sec1_der(
                block.contents(),
                origin,
            )?)),
            "RSA PRIVATE KEY" => Ok(Contents::Plain(PrivateKey::from_pkcs1_der(
                block.contents(),
                origin,
            )?)),
            "PUBLIC KEY" | "RSA PUBLIC KEY" | "CERTIFICATE" => {
                Err(LocalKeyError::NotAPrivateKey {
                    origin: origin.to_string(),
                    label: block.label().to_string(),
                })
            }
            "ENCRYPTED PRIVATE KEY" => Err(unsupported(
                " (PKCS#8 with a password): decrypt it once with `(umask 077 && openssl pkey -in FILE -out plain.pem)` and sign with plain.pem (cosign import-key-pair refuses EC and RSA keys)",
            )),
            "OPENSSH PRIVATE KEY" => Err(unsupported(
                ": SSH keys are not used for cosign signatures",
            )),
            _ => Err(unsupported(
                ": expected a cosign key (ENCRYPTED SIGSTORE PRIVATE KEY) or PRIVATE KEY, EC PRIVATE KEY, RSA PRIVATE KEY",
            )),
        }
    }

    /// Whether [`KeyFile::decrypt`] needs a password.
    pub fn is_encrypted(&self) -> bool {
        matches!(self.contents, Contents::Encrypted(_))
    }

    /// The PEM label of the key block.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// scrypt N of an encrypted key (for diagnostics), `None` for a plaintext key.
    pub fn scrypt_n(&self) -> Option<u64> {
        match &self.contents {
            Contents::Encrypted(envelope) => Some(envelope.scrypt_n()),
            Contents::Plain(_) => None,
        }
    }

    /// Decrypt (if needed) into a signer. A password given for a plaintext key is ignored, so
    /// that a `COSIGN_PASSWORD` set for other keys does no harm; an encrypted key without a
    /// password is a [`LocalKeyError::PasswordRequired`] error (an empty password is
    /// `Some("")`).
    pub fn decrypt(self, password: Option<&SecretString>) -> Result<LocalSigner, LocalKeyError> {
        let key = match self.contents {
            Contents::Plain(key) => key,
            Contents::Encrypted(envelope) => {
                let password = password.ok_or_else(|| LocalKeyError::PasswordRequired {
                    origin: self.origin.clone(),
                })?;
                let plaintext = envelope.decrypt(password, &self.origin)?;
                // cosign only ever encrypts PKCS#8 and refuses anything else inside.
                PrivateKey::from_pkcs8_der(&plaintext, &self.origin).map_err(|e| match e {
                    LocalKeyError::MalformedKey { origin, reason } => LocalKeyError::MalformedKey {
                        origin,
                        reason: format!(
                            "the decrypted content is not a PKCS#8 private key as cosign writes ({reason})"
                        ),
                    },
                    other => other,
                })?
            }
        };
        LocalSigner::new(key, self.origin)
    }
}

/// A decrypted local key that signs cosign payloads.
pub struct LocalSigner {
    origin: String,
    key: PrivateKey,
    public_key: PublicKey,
}

impl fmt::Debug for LocalSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalSigner")
            .field("origin", &self.origin)
            .field("public_key", &self.public_key)
            .finish_non_exhaustive()
    }
}

impl LocalSigner {
    fn new(key: PrivateKey, origin: String) -> Result<Self, LocalKeyError> {
        let public_key = key.public_key(&origin)?;
        Ok(Self {
            origin,
            key,
            public_key,
        })
    }

    /// The public key every signature verifies against.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// The key type.
    pub fn kind(&self) -> KeyKind {
        self.key.kind()
    }

    /// Where the key came from (a path, or the origin given to [`KeyFile::parse`]).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Sign one payload as cosign would with this key file, returning the signature in
    /// cosign's encoding (DER for ECDSA), already verified against [`LocalSigner::public_key`].
    pub fn sign_one(&self, payload: &[u8]) -> Result<Vec<u8>, LocalKeyError> {
        let self_check = |error| LocalKeyError::SelfCheck {
            origin: self.origin.clone(),
            error,
        };
        let raw = self.key.sign_raw(payload, &self.origin)?;
        let signature = normalise_signature(&self.public_key, &raw).map_err(self_check)?;
        self.public_key
            .verify(payload, &signature)
            .map_err(self_check)?;
        Ok(signature)
    }

    /// This key as a cosign encrypted key file (label `ENCRYPTED COSIGN PRIVATE KEY`, scrypt
    /// N=32768), plus its public key PEM: what `cosign import-key-pair` does, in the most
    /// widely readable form (see [`generate_key_pair`]).
    pub fn export_encrypted(
        &self,
        password: &SecretString,
    ) -> Result<GeneratedKeyPair, LocalKeyError> {
        let pkcs8 = self.key.to_pkcs8_der()?;
        let json = envelope::encrypt(pkcs8.as_bytes(), password, envelope::WRITE_LOG_N)?;
        Ok(GeneratedKeyPair {
            private_pem: Zeroizing::new(pem::encode(COSIGN_LABEL, &json)),
            public_pem: self.public_key.to_pem(),
        })
    }
}

#[async_trait]
impl Signer for LocalSigner {
    fn describe(&self) -> String {
        format!("local key {}", self.origin)
    }

    async fn public_key(&self) -> Result<PublicKey, SignerError> {
        Ok(self.public_key.clone())
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            deferred: false,
            // RSA signing blinds the private operation, but the `rsa` crate's Marvin advisory
            // (RUSTSEC-2023-0071) has no fixed release: fine for a key owner signing their own
            // images, not for signing on behalf of others who can time it.
            safe_for_remote_callers: !matches!(self.kind(), KeyKind::Rsa { .. }),
        }
    }

    async fn sign(
        &self,
        payloads: &[Vec<u8>],
        _request: &SignRequest,
    ) -> Result<SignOutcome, SignerError> {
        payloads
            .iter()
            .map(|payload| self.sign_one(payload).map_err(SignerError::from))
            .collect::<Result<Vec<_>, _>>()
            .map(SignOutcome::Signed)
    }
}

/// A new key pair as PEM text, ready to be written to `cosign.key` (mode 0600) and `cosign.pub`.
pub struct GeneratedKeyPair {
    /// The encrypted private key PEM.
    pub private_pem: Zeroizing<String>,
    /// The public key PEM (`PUBLIC KEY`).
    pub public_pem: String,
}

impl fmt::Debug for GeneratedKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedKeyPair")
            .field("public_pem", &self.public_pem)
            .finish_non_exhaustive()
    }
}

/// Make a new ECDSA P-256 key pair as `cosign generate-key-pair` does: PKCS#8 DER, encrypted
/// with scrypt and NaCl secretbox under `password` (which may be empty).
///
/// The file is written with label `ENCRYPTED COSIGN PRIVATE KEY` and scrypt N=32768, r=8, p=1,
/// although current cosign writes `ENCRYPTED SIGSTORE PRIVATE KEY` with N=65536: cosign 1.x
/// reads only the COSIGN label, cosign up to 2.1 (go-tuf) accepts only N=32768, and cosign
/// 2.2+ and containers/image (skopeo, podman) read both, so this one choice loads everywhere.
pub fn generate_key_pair(password: &SecretString) -> Result<GeneratedKeyPair, LocalKeyError> {
    let key = PrivateKey::generate_p256()?;
    LocalSigner::new(key, "the new key".to_string())?.export_encrypted(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(s: &str) -> SecretString {
        SecretString::from(s.to_string())
    }

    /// A cosign-format key file around `plaintext`, made with this crate's own encryption.
    fn wrap(plaintext: &[u8], password: &str, log_n: u8) -> String {
        let json = envelope::encrypt(plaintext, &pw(password), log_n).unwrap();
        pem::encode(SIGSTORE_LABEL, &json)
    }

    fn der_of(pem_text: &[u8]) -> Vec<u8> {
        pem::decode_first(pem_text).unwrap().contents().to_vec()
    }

    #[test]
    fn scrypt_n_131072_key() {
        let pkcs8 = der_of(include_bytes!("../tests/fixtures/p256-pkcs8.pem"));
        let file = KeyFile::parse(wrap(&pkcs8, "big-n", 17).as_bytes(), "n17.key").unwrap();
        assert_eq!(file.scrypt_n(), Some(131072));
        let signer = file.decrypt(Some(&pw("big-n"))).unwrap();
        let expected = PublicKey::from_pem(include_str!("../tests/fixtures/p256.pub")).unwrap();
        assert_eq!(signer.public_key(), &expected);
    }

    #[test]
    fn non_pkcs8_plaintext_inside_encrypted_key() {
        let sec1 = der_of(include_bytes!("../tests/fixtures/p256-sec1.pem"));
        for plaintext in [&sec1[..], b"random bytes, not DER at all"] {
            let file = KeyFile::parse(wrap(plaintext, "", 15).as_bytes(), "odd.key").unwrap();
            let err = file.decrypt(Some(&pw(""))).unwrap_err();
            assert!(matches!(err, LocalKeyError::MalformedKey { .. }), "{err}");
            assert!(
                err.to_string().contains("not a PKCS#8 private key"),
                "{err}"
            );
        }
    }

    #[test]
    fn unsupported_key_inside_encrypted_key() {
        let p521 = der_of(include_bytes!("../tests/fixtures/p521-pkcs8.pem"));
        let file = KeyFile::parse(wrap(&p521, "x", 15).as_bytes(), "p521.key").unwrap();
        let err = file.decrypt(Some(&pw("x"))).unwrap_err();
        assert!(matches!(err, LocalKeyError::UnsupportedKey { .. }), "{err}");
    }
}
