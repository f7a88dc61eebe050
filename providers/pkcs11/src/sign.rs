//! Signing on the token, as cosign's PKCS#11 signer does: SHA-256 on the host, then
//! `CKM_ECDSA` over the digest (SoftHSM 2.6 has no `CKM_ECDSA_SHA256`); RSA with
//! `CKM_SHA256_RSA_PKCS`, or `CKM_RSA_PKCS` over a SHA-256 DigestInfo when the token lacks it.
//! ECDSA signatures come back as raw `r||s`; the caller converts them to DER.

use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;
use sha2::{Digest as _, Sha256};
use sigbridge_signer::KeyKind;

use crate::error::Pkcs11Error;

/// DER prefix of a DigestInfo for SHA-256 (RFC 8017 section 9.2, note 1).
const SHA256_DIGEST_INFO: &[u8] = &[
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

/// The mechanism chosen for a key on a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// SHA-256 on the host, `CKM_ECDSA` on the token.
    EcdsaPrehashed,
    /// `CKM_SHA256_RSA_PKCS`: the token hashes.
    RsaSha256,
    /// `CKM_RSA_PKCS` over a DigestInfo built on the host.
    RsaRawDigestInfo,
}

impl Scheme {
    /// Pick the scheme for `kind`; `has` says whether the token offers a mechanism.
    pub fn choose(
        kind: KeyKind,
        has: impl Fn(MechanismType) -> bool,
        token: &str,
    ) -> Result<Self, Pkcs11Error> {
        match kind {
            KeyKind::EcdsaP256 | KeyKind::EcdsaP384 => {
                if has(MechanismType::ECDSA) {
                    Ok(Self::EcdsaPrehashed)
                } else {
                    Err(Pkcs11Error::UnsupportedMechanism {
                        token: token.to_string(),
                        mechanism: "CKM_ECDSA".into(),
                        key: kind.to_string(),
                    })
                }
            }
            KeyKind::Rsa { .. } => {
                if has(MechanismType::SHA256_RSA_PKCS) {
                    Ok(Self::RsaSha256)
                } else if has(MechanismType::RSA_PKCS) {
                    Ok(Self::RsaRawDigestInfo)
                } else {
                    Err(Pkcs11Error::UnsupportedMechanism {
                        token: token.to_string(),
                        mechanism: "CKM_SHA256_RSA_PKCS or CKM_RSA_PKCS".into(),
                        key: kind.to_string(),
                    })
                }
            }
            other => Err(Pkcs11Error::UnsupportedKey(format!(
                "{other} keys cannot sign through PKCS#11 in sigbridge"
            ))),
        }
    }

    /// Sign one payload (the exact bytes) with `key`. One C_SignInit + C_Sign.
    pub fn sign(
        self,
        session: &Session,
        key: ObjectHandle,
        payload: &[u8],
    ) -> Result<Vec<u8>, Pkcs11Error> {
        let call = |e| Pkcs11Error::call("signing (C_Sign)", e);
        match self {
            Self::EcdsaPrehashed => {
                let digest = Sha256::digest(payload);
                session.sign(&Mechanism::Ecdsa, key, &digest).map_err(call)
            }
            Self::RsaSha256 => session
                .sign(&Mechanism::Sha256RsaPkcs, key, payload)
                .map_err(call),
            Self::RsaRawDigestInfo => {
                let mut info = SHA256_DIGEST_INFO.to_vec();
                info.extend_from_slice(&Sha256::digest(payload));
                session.sign(&Mechanism::RsaPkcs, key, &info).map_err(call)
            }
        }
    }
}
