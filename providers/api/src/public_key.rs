//! Public keys as cosign reads them (`cosign.pub`, a certificate's key) and verifies with them.

use std::fmt;
use std::hash::{Hash, Hasher};

use der::asn1::AnyRef;
use der::{Decode as _, Encode as _, Reader as _, Tag, TagNumber, Tagged as _};
use ecdsa::signature::hazmat::PrehashVerifier as _;
use ecdsa::signature::Verifier as _;
use rsa::pkcs8::EncodePublicKey as _;
use rsa::traits::PublicKeyParts as _;
use rsa::{BigUint, Pkcs1v15Sign, RsaPublicKey};
use sha2::{Digest as _, Sha256, Sha384};
use spki::SubjectPublicKeyInfoRef;

use crate::pem;
use crate::signature::{ecdsa_fixed, SignatureError};

/// The algorithm family of a public key, as cosign verifies it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyKind {
    /// ECDSA on NIST P-256, SHA-256.
    EcdsaP256,
    /// ECDSA on NIST P-384 (cosign hashes with SHA-256 for keys loaded from files).
    EcdsaP384,
    /// RSA PKCS#1 v1.5 with SHA-256.
    Rsa {
        /// Modulus size in bits.
        bits: usize,
    },
    /// Ed25519 (pure, over the message).
    Ed25519,
}

impl KeyKind {
    /// Byte length of one ECDSA coordinate (and so of `r` and `s`), `None` for non-ECDSA keys.
    pub fn ecdsa_coordinate_len(self) -> Option<usize> {
        match self {
            Self::EcdsaP256 => Some(32),
            Self::EcdsaP384 => Some(48),
            Self::Rsa { .. } | Self::Ed25519 => None,
        }
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EcdsaP256 => f.write_str("ECDSA P-256"),
            Self::EcdsaP384 => f.write_str("ECDSA P-384"),
            Self::Rsa { bits } => write!(f, "RSA-{bits}"),
            Self::Ed25519 => f.write_str("Ed25519"),
        }
    }
}

/// Smallest RSA modulus accepted; cosign's own tooling refuses smaller keys too.
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted. Verification cost is small even at this size; the limit only
/// stops absurd inputs.
const MAX_RSA_BITS: usize = 16384;

use crate::oid::{
    unsupported_oid_name, OID_EC_PUBLIC_KEY, OID_ED25519, OID_P256, OID_P384, OID_RSA,
};

/// The parsed key, kept next to its DER so that `verify` does not re-parse.
#[derive(Clone)]
enum Verifier {
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    Rsa(RsaPublicKey),
    Ed25519(ed25519_dalek::VerifyingKey),
}

/// A parsed public key that signatures are checked against.
///
/// Equality and hashing compare the canonical SubjectPublicKeyInfo DER.
#[derive(Clone)]
pub struct PublicKey {
    kind: KeyKind,
    spki_der: Vec<u8>,
    verifier: Verifier,
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.spki_der == other.spki_der
    }
}

impl Eq for PublicKey {}

impl Hash for PublicKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.spki_der.hash(state);
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("kind", &self.kind)
            .field("spki_sha256", &hex_lower(&Sha256::digest(&self.spki_der)))
            .finish()
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl PublicKey {
    /// Parse `-----BEGIN PUBLIC KEY-----` (SPKI) PEM, also an X.509 `CERTIFICATE` PEM (its key
    /// is used) and `RSA PUBLIC KEY` (PKCS#1). Like cosign, only the first PEM block counts.
    pub fn from_pem(pem: &str) -> Result<Self, SignatureError> {
        let block = pem::decode_first(pem.as_bytes())?;
        match block.label() {
            "PUBLIC KEY" => Self::from_spki_der(block.contents()),
            "CERTIFICATE" => Self::from_certificate_der(block.contents()),
            "RSA PUBLIC KEY" => Self::from_pkcs1_der(block.contents()),
            other => Err(SignatureError::UnexpectedPemLabel {
                label: other.to_string(),
                hint: if other.contains("PRIVATE KEY") {
                    " (this is a private key: give the public key, such as cosign.pub)"
                } else {
                    ""
                },
            }),
        }
    }

    /// Parse DER SubjectPublicKeyInfo.
    ///
    /// The stored DER is re-encoded canonically (an EC point is kept uncompressed), because
    /// cosign's Go code cannot read compressed points and compares keys by their DER.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, SignatureError> {
        let spki = SubjectPublicKeyInfoRef::from_der(der)
            .map_err(|e| malformed_key(format!("not a DER SubjectPublicKeyInfo ({e})")))?;
        let key_bytes = spki.subject_public_key.as_bytes().ok_or_else(|| {
            malformed_key("the public key BIT STRING has unused bits".to_string())
        })?;
        let oid = spki.algorithm.oid;
        if oid == OID_EC_PUBLIC_KEY {
            let curve = spki
                .algorithm
                .parameters_oid()
                .map_err(|_| malformed_key("EC public key without a named curve".to_string()))?;
            if curve == OID_P256 {
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(key_bytes)
                    .map_err(|_| malformed_key("not a valid P-256 point".to_string()))?;
                Self::build(Verifier::P256(key))
            } else if curve == OID_P384 {
                let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(key_bytes)
                    .map_err(|_| malformed_key("not a valid P-384 point".to_string()))?;
                Self::build(Verifier::P384(key))
            } else {
                Err(SignatureError::UnsupportedKey {
                    what: unsupported_oid_name(curve),
                })
            }
        } else if oid == OID_RSA {
            Self::from_pkcs1_der(key_bytes)
        } else if oid == OID_ED25519 {
            let bytes: &[u8; 32] = key_bytes.try_into().map_err(|_| {
                malformed_key(format!(
                    "an Ed25519 public key is 32 bytes, this one is {}",
                    key_bytes.len()
                ))
            })?;
            let key = ed25519_dalek::VerifyingKey::from_bytes(bytes)
                .map_err(|_| malformed_key("not a valid Ed25519 point".to_string()))?;
            Self::build(Verifier::Ed25519(key))
        } else {
            Err(SignatureError::UnsupportedKey {
                what: unsupported_oid_name(oid),
            })
        }
    }

    /// Parse a DER PKCS#1 `RSAPublicKey` (PEM `RSA PUBLIC KEY`).
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self, SignatureError> {
        let parsed = rsa::pkcs1::RsaPublicKey::from_der(der)
            .map_err(|e| malformed_key(format!("not a DER PKCS#1 RSA public key ({e})")))?;
        let n = BigUint::from_bytes_be(parsed.modulus.as_bytes());
        let e = BigUint::from_bytes_be(parsed.public_exponent.as_bytes());
        let bits = n.bits();
        if bits < MIN_RSA_BITS {
            return Err(SignatureError::RsaKeyTooSmall { bits });
        }
        let key = RsaPublicKey::new_with_max_size(n, e, MAX_RSA_BITS)
            .map_err(|e| malformed_key(format!("invalid RSA public key ({e})")))?;
        Self::build(Verifier::Rsa(key))
    }

    /// Parse a DER X.509 certificate and take its subject public key.
    pub fn from_certificate_der(der: &[u8]) -> Result<Self, SignatureError> {
        let spki = certificate_spki(der)
            .map_err(|reason| SignatureError::MalformedCertificate { reason })?;
        Self::from_spki_der(&spki)
    }

    fn build(verifier: Verifier) -> Result<Self, SignatureError> {
        let encoded = match &verifier {
            Verifier::P256(key) => key.to_public_key_der(),
            Verifier::P384(key) => key.to_public_key_der(),
            Verifier::Rsa(key) => key.to_public_key_der(),
            Verifier::Ed25519(key) => key.to_public_key_der(),
        }
        .map_err(|e| malformed_key(format!("cannot re-encode the key ({e})")))?;
        let kind = match &verifier {
            Verifier::P256(_) => KeyKind::EcdsaP256,
            Verifier::P384(_) => KeyKind::EcdsaP384,
            Verifier::Rsa(key) => KeyKind::Rsa {
                bits: key.n().bits(),
            },
            Verifier::Ed25519(_) => KeyKind::Ed25519,
        };
        Ok(Self {
            kind,
            spki_der: encoded.as_bytes().to_vec(),
            verifier,
        })
    }

    /// PEM `PUBLIC KEY`, with trailing newline, as cosign writes `cosign.pub`.
    pub fn to_pem(&self) -> String {
        pem::encode("PUBLIC KEY", &self.spki_der)
    }

    /// DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// The algorithm family.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// Check `signature` over `message` the way cosign's `verify --key` does:
    /// ECDSA over SHA-256(message) with an ASN.1 DER or raw `r||s` signature (P-384 also
    /// accepts SHA-384, which cosign 2.6+ signs with); RSA PKCS#1 v1.5 over SHA-256 with a
    /// signature exactly as long as the modulus; pure Ed25519 over the message.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), SignatureError> {
        let failed = || SignatureError::VerificationFailed { kind: self.kind };
        match &self.verifier {
            Verifier::P256(key) => {
                let fixed = ecdsa_fixed(self.kind, signature)?;
                let sig = p256::ecdsa::Signature::from_slice(&fixed)
                    .map_err(|_| crate::signature::scalar_out_of_range(self.kind))?;
                key.verify_prehash(&Sha256::digest(message), &sig)
                    .map_err(|_| failed())
            }
            Verifier::P384(key) => {
                let fixed = ecdsa_fixed(self.kind, signature)?;
                let sig = p384::ecdsa::Signature::from_slice(&fixed)
                    .map_err(|_| crate::signature::scalar_out_of_range(self.kind))?;
                // cosign <= 2.5 signs P-384 file keys over SHA-256, cosign >= 2.6 over SHA-384.
                key.verify_prehash(&Sha256::digest(message), &sig)
                    .or_else(|_| key.verify_prehash(&Sha384::digest(message), &sig))
                    .map_err(|_| failed())
            }
            Verifier::Rsa(key) => {
                if signature.len() != key.size() {
                    return Err(SignatureError::MalformedSignature {
                        kind: self.kind,
                        reason: format!(
                            "an RSA signature is as long as the modulus ({} bytes), this one is {} bytes",
                            key.size(),
                            signature.len()
                        ),
                    });
                }
                key.verify(
                    Pkcs1v15Sign::new::<Sha256>(),
                    &Sha256::digest(message),
                    signature,
                )
                .map_err(|_| failed())
            }
            Verifier::Ed25519(key) => {
                let bytes: &[u8; 64] =
                    signature
                        .try_into()
                        .map_err(|_| SignatureError::MalformedSignature {
                            kind: self.kind,
                            reason: format!(
                                "an Ed25519 signature is 64 bytes, this one is {} bytes",
                                signature.len()
                            ),
                        })?;
                key.verify(message, &ed25519_dalek::Signature::from_bytes(bytes))
                    .map_err(|_| failed())
            }
        }
    }
}

fn malformed_key(reason: String) -> SignatureError {
    SignatureError::MalformedKey { reason }
}

/// Walk `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serial,
/// signature, issuer, validity, subject, subjectPublicKeyInfo, ... }, ... }` (RFC 5280) down to
/// the SPKI. Only the path to the key is parsed, so unusual extensions never get in the way.
fn certificate_spki(der: &[u8]) -> Result<Vec<u8>, String> {
    let cert = AnyRef::from_der(der).map_err(|e| format!("not DER ({e})"))?;
    if cert.tag() != Tag::Sequence {
        return Err("not an X.509 certificate (expected a SEQUENCE)".to_string());
    }
    let mut outer = der::SliceReader::new(cert.value()).map_err(|e| e.to_string())?;
    let tbs: AnyRef<'_> = outer
        .decode()
        .map_err(|e| format!("no tbsCertificate ({e})"))?;
    if tbs.tag() != Tag::Sequence {
        return Err("tbsCertificate is not a SEQUENCE".to_string());
    }
    let mut fields = der::SliceReader::new(tbs.value()).map_err(|e| e.to_string())?;
    let version_tag = Tag::ContextSpecific {
        constructed: true,
        number: TagNumber::N0,
    };
    let first: AnyRef<'_> = fields.decode().map_err(|e| e.to_string())?;
    // Skip the serial number (unless `first` was it), signature, issuer, validity, subject.
    let to_skip = if first.tag() == version_tag { 5 } else { 4 };
    for _ in 0..to_skip {
        fields
            .decode::<AnyRef<'_>>()
            .map_err(|e| format!("truncated tbsCertificate ({e})"))?;
    }
    let spki: AnyRef<'_> = fields
        .decode()
        .map_err(|e| format!("no subjectPublicKeyInfo ({e})"))?;
    if spki.tag() != Tag::Sequence {
        return Err("subjectPublicKeyInfo is not a SEQUENCE".to_string());
    }
    spki.to_der().map_err(|e| e.to_string())
}
