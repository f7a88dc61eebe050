//! STUB: to be implemented (helper A). Interface is fixed.
use crate::SignatureError;

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

/// A parsed public key that signatures are checked against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    kind: KeyKind,
    spki_der: Vec<u8>,
}

impl PublicKey {
    /// Parse `-----BEGIN PUBLIC KEY-----` (SPKI) PEM, also an X.509 `CERTIFICATE` PEM (its key is used).
    pub fn from_pem(_pem: &str) -> Result<Self, SignatureError> {
        todo!()
    }
    /// Parse DER SubjectPublicKeyInfo.
    pub fn from_spki_der(_der: &[u8]) -> Result<Self, SignatureError> {
        todo!()
    }
    /// PEM `PUBLIC KEY`, with trailing newline, as cosign writes `cosign.pub`.
    pub fn to_pem(&self) -> String {
        todo!()
    }
    /// DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }
    /// The algorithm family.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }
    /// Check `signature` over `message` the way cosign does (ECDSA accepts DER and raw r||s).
    pub fn verify(&self, _message: &[u8], _signature: &[u8]) -> Result<(), SignatureError> {
        todo!()
    }
}
