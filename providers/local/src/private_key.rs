//! Private keys: reading PKCS#8, SEC1 and PKCS#1 DER, signing as cosign does with file keys.

use ecdsa::signature::hazmat::PrehashSigner as _;
use ecdsa::signature::Signer as _;
use pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, EncodePublicKey as _};
use rand_core::OsRng;
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::traits::PublicKeyParts as _;
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use sha2::{Digest as _, Sha256};
use sigbridge_signer::{KeyKind, PublicKey, MIN_RSA_BITS};
use zeroize::Zeroizing;

use crate::LocalKeyError;

use sigbridge_signer::oid::{
    unsupported_oid_name as oid_name, OID_EC_PUBLIC_KEY, OID_ED25519, OID_P256, OID_P384, OID_RSA,
};

/// A private key ready to sign. Every variant zeroizes its secret on drop (the RustCrypto key
/// types implement `ZeroizeOnDrop`).
pub(crate) enum PrivateKey {
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    Rsa(Box<RsaPrivateKey>),
    Ed25519(ed25519_dalek::SigningKey),
}

impl PrivateKey {
    /// PKCS#8 `PrivateKeyInfo` DER (PEM `PRIVATE KEY`, and the inside of cosign keys).
    pub(crate) fn from_pkcs8_der(der: &[u8], origin: &str) -> Result<Self, LocalKeyError> {
        let info = pkcs8::PrivateKeyInfo::try_from(der)
            .map_err(|e| malformed(origin, format!("not a PKCS#8 private key ({e})")))?;
        let oid = info.algorithm.oid;
        let parse_error = |e: pkcs8::Error| malformed(origin, format!("invalid key ({e})"));
        if oid == OID_EC_PUBLIC_KEY {
            let curve = info
                .algorithm
                .parameters_oid()
                .map_err(|_| malformed(origin, "EC key without a named curve".to_string()))?;
            if curve == OID_P256 {
                Ok(Self::P256(
                    p256::ecdsa::SigningKey::from_pkcs8_der(der).map_err(parse_error)?,
                ))
            } else if curve == OID_P384 {
                Ok(Self::P384(
                    p384::ecdsa::SigningKey::from_pkcs8_der(der).map_err(parse_error)?,
                ))
            } else {
                Err(unsupported(origin, oid_name(curve)))
            }
        } else if oid == OID_RSA {
            let key = RsaPrivateKey::from_pkcs8_der(der).map_err(parse_error)?;
            Self::rsa(key, origin)
        } else if oid == OID_ED25519 {
            Ok(Self::Ed25519(
                ed25519_dalek::SigningKey::from_pkcs8_der(der).map_err(parse_error)?,
            ))
        } else {
            Err(unsupported(origin, oid_name(oid)))
        }
    }

    /// SEC1 `ECPrivateKey` DER (PEM `EC PRIVATE KEY`, as `openssl ec` writes).
    pub(crate) fn from_sec1_der(der: &[u8], origin: &str) -> Result<Self, LocalKeyError> {
        let info = sec1::EcPrivateKey::try_from(der)
            .map_err(|e| malformed(origin, format!("not a SEC1 EC private key ({e})")))?;
        let curve = info
            .parameters
            .and_then(|p| p.named_curve())
            .ok_or_else(|| malformed(origin, "EC PRIVATE KEY without a named curve".to_string()))?;
        let parse_error = |_| malformed(origin, "invalid EC private key".to_string());
        if curve == OID_P256 {
            let secret = p256::SecretKey::from_sec1_der(der).map_err(parse_error)?;
            Ok(Self::P256(secret.into()))
        } else if curve == OID_P384 {
            let secret = p384::SecretKey::from_sec1_der(der).map_err(parse_error)?;
            Ok(Self::P384(secret.into()))
        } else {
            Err(unsupported(origin, oid_name(curve)))
        }
    }

    /// PKCS#1 `RSAPrivateKey` DER (PEM `RSA PRIVATE KEY`).
    pub(crate) fn from_pkcs1_der(der: &[u8], origin: &str) -> Result<Self, LocalKeyError> {
        let key = RsaPrivateKey::from_pkcs1_der(der)
            .map_err(|e| malformed(origin, format!("not a valid PKCS#1 RSA private key ({e})")))?;
        Self::rsa(key, origin)
    }

    fn rsa(key: RsaPrivateKey, origin: &str) -> Result<Self, LocalKeyError> {
        let bits = key.n().bits();
        if bits < MIN_RSA_BITS {
            return Err(unsupported(
                origin,
                format!("RSA key of {bits} bits (at least {MIN_RSA_BITS} are required)"),
            ));
        }
        Ok(Self::Rsa(Box::new(key)))
    }

    /// A new random P-256 key, what `cosign generate-key-pair` makes.
    pub(crate) fn generate_p256() -> Result<Self, LocalKeyError> {
        // Draw scalars from the OS until one is in range (fails with probability ~2^-32 per
        // draw), so that an RNG failure is an error rather than a panic inside the library.
        for _ in 0..16 {
            let mut bytes = Zeroizing::new([0u8; 32]);
            crate::random_bytes(bytes.as_mut())?;
            if let Ok(key) = p256::ecdsa::SigningKey::from_slice(bytes.as_ref()) {
                return Ok(Self::P256(key));
            }
        }
        Err(LocalKeyError::Random(
            "no valid P-256 scalar in 16 draws".to_string(),
        ))
    }

    /// PKCS#8 DER of this key, the plaintext that cosign encrypts.
    pub(crate) fn to_pkcs8_der(&self) -> Result<pkcs8::SecretDocument, LocalKeyError> {
        match self {
            Self::P256(key) => key.to_pkcs8_der(),
            Self::P384(key) => key.to_pkcs8_der(),
            Self::Rsa(key) => key.to_pkcs8_der(),
            Self::Ed25519(key) => key.to_pkcs8_der(),
        }
        .map_err(|e| LocalKeyError::Encryption {
            reason: format!("cannot encode the key as PKCS#8 ({e})"),
        })
    }

    /// The matching public key.
    pub(crate) fn public_key(&self, origin: &str) -> Result<PublicKey, LocalKeyError> {
        let der = match self {
            Self::P256(key) => key.verifying_key().to_public_key_der(),
            Self::P384(key) => key.verifying_key().to_public_key_der(),
            Self::Rsa(key) => key.to_public_key().to_public_key_der(),
            Self::Ed25519(key) => key.verifying_key().to_public_key_der(),
        }
        .map_err(|e| malformed(origin, format!("cannot encode its public key ({e})")))?;
        PublicKey::from_spki_der(der.as_bytes())
            .map_err(|e| malformed(origin, format!("its public key is unusable ({e})")))
    }

    pub(crate) fn kind(&self) -> KeyKind {
        match self {
            Self::P256(_) => KeyKind::EcdsaP256,
            Self::P384(_) => KeyKind::EcdsaP384,
            Self::Rsa(key) => KeyKind::Rsa {
                bits: key.n().bits(),
            },
            Self::Ed25519(_) => KeyKind::Ed25519,
        }
    }

    /// Sign as cosign 2.x does with a file key (`LoadPrivateKey` hard-codes SHA-256): ECDSA
    /// over SHA-256(payload) for both curves, RSA PKCS#1 v1.5 SHA-256, pure Ed25519. ECDSA
    /// comes back as raw `r||s`; the caller normalises it.
    pub(crate) fn sign_raw(&self, payload: &[u8], origin: &str) -> Result<Vec<u8>, LocalKeyError> {
        let failed = |reason: String| LocalKeyError::Signing {
            origin: origin.to_string(),
            reason,
        };
        let digest = Sha256::digest(payload);
        match self {
            Self::P256(key) => {
                let sig: p256::ecdsa::Signature = key
                    .sign_prehash(&digest)
                    .map_err(|e| failed(e.to_string()))?;
                Ok(sig.to_bytes().to_vec())
            }
            Self::P384(key) => {
                let sig: p384::ecdsa::Signature = key
                    .sign_prehash(&digest)
                    .map_err(|e| failed(e.to_string()))?;
                Ok(sig.to_bytes().to_vec())
            }
            // With an RNG, rsa blinds the private operation against timing attacks.
            Self::Rsa(key) => key
                .sign_with_rng(&mut OsRng, Pkcs1v15Sign::new::<Sha256>(), &digest)
                .map_err(|e| failed(e.to_string())),
            Self::Ed25519(key) => Ok(key.sign(payload).to_bytes().to_vec()),
        }
    }
}

fn malformed(origin: &str, reason: String) -> LocalKeyError {
    LocalKeyError::MalformedKey {
        origin: origin.to_string(),
        reason,
    }
}

fn unsupported(origin: &str, what: String) -> LocalKeyError {
    LocalKeyError::UnsupportedKey {
        origin: origin.to_string(),
        what,
    }
}
