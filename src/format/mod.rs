//! Signature formats: what is signed for an image (the exact bytes handed to the signer), how a
//! checked signature is wrapped for storage, and how a stored one is read back and checked.
//!
//! A format knows nothing of where signatures live (that is a [`crate::store`]); a store knows
//! nothing of what the bytes mean. Two formats: [`simple_signing`] (cosign's legacy payload, the
//! one containers/image reads) and [`bundle`] (cosign 3's Sigstore bundle v0.3: DSSE over an
//! in-toto statement). A new format is one new file here implementing [`SignatureFormat`].

pub mod bundle;
pub mod simple_signing;

use std::collections::BTreeMap;

use bytes::Bytes;
use sigbridge_signer::{CertificateMaterial, PublicKey};

use crate::payload::ParsedPayload;
use crate::reference::Digest;
use crate::registry::manifest::Descriptor;
use crate::resolve::ResolvedImage;

pub use bundle::SigstoreBundle;
pub use simple_signing::SimpleSigning;

/// What the signer signs for one image.
#[derive(Clone, Debug)]
pub struct Payload {
    /// The exact bytes handed to the signer.
    pub bytes: Vec<u8>,
    /// The identity the payload claims for the image (cosign's `docker-reference`).
    pub identity: String,
}

/// A signed payload ready for a store: one blob, its media type and its annotations. A store
/// decides how envelopes are laid out (layers of one manifest, one manifest each, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The blob's media type.
    pub media_type: String,
    /// The blob, stored verbatim.
    pub blob: Vec<u8>,
    /// Annotations stored with the blob's descriptor.
    pub annotations: BTreeMap<String, String>,
}

impl Envelope {
    /// The descriptor that stores this envelope.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(
            self.media_type.clone(),
            Digest::of(&self.blob),
            self.blob.len() as u64,
        )
        .with_annotations(self.annotations.clone())
    }
}

/// How duplicates of a new signature are recognised among stored ones.
#[derive(Clone, Debug)]
pub enum Dedupe {
    /// Like `cosign sign`: a stored signature over the same signed bytes, with the same other
    /// annotations, that verifies with this key is the same signature (ECDSA is randomised, so
    /// bytes differ between two signings).
    VerifiedWith(Box<PublicKey>),
    /// Only byte-identical entries are duplicates.
    ExactOnly,
}

/// A stored signature read back: what was signed and the signature over it.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// The exact bytes the signature is over (simple signing: the blob; a DSSE bundle: the
    /// pre-authentication encoding of its statement).
    pub signed: Bytes,
    /// The raw (decoded) signature.
    pub signature: Vec<u8>,
    /// The signature as stored (text), for output.
    pub signature_text: String,
    /// The PEM certificate stored with it, if any.
    pub certificate: Option<String>,
    /// Transparency-log material stored with it (checked by [`crate::verify`]), if any.
    pub tlog: Option<crate::tlog::TlogEvidence>,
}

/// A signature that passed every check.
#[derive(Clone, Debug)]
pub struct VerifiedSignature {
    /// The exact signed payload bytes.
    pub payload: Vec<u8>,
    /// What the payload claims.
    pub parsed: ParsedPayload,
    /// The signature as stored.
    pub signature: String,
    /// The certificate stored with it, if present.
    pub certificate: Option<String>,
    /// Its transparency-log entry, if one was verified.
    pub tlog: Option<crate::tlog::VerifiedTlog>,
}

/// A signature format. Reading back is split so the checks common to all formats (size limits,
/// the key, the claimed digest, `-a` annotations) stay in [`crate::verify`]. Errors while
/// reading stored candidates are one line of text each: a candidate that fails is a reason,
/// not a failure of the whole verify.
pub trait SignatureFormat: Send + Sync {
    /// The bytes to sign for `image`.
    fn payload(&self, image: &ResolvedImage) -> Payload;

    /// Wrap a signature (already normalised and checked over `payload.bytes`) for storage.
    fn wrap(
        &self,
        payload: &Payload,
        signature: &[u8],
        certificate: Option<&CertificateMaterial>,
    ) -> Envelope;

    /// Whether `stored` holds the same signature as `new` (beyond byte identity, which every
    /// store checks itself).
    fn is_duplicate(&self, stored: &Descriptor, new: &Envelope, dedupe: &Dedupe) -> bool;

    /// Refuse a stored entry that cannot be a usable signature, from its descriptor alone
    /// (before its blob is read).
    fn screen(&self, stored: &Descriptor) -> Result<(), String>;

    /// Read a stored entry and its blob back into what was signed and the signature.
    fn open(&self, stored: &Descriptor, blob: Bytes) -> Result<Candidate, String>;

    /// What a candidate whose signature verified claims (image digest, identity, annotations).
    fn claims(&self, stored: &Descriptor, candidate: &Candidate) -> Result<ParsedPayload, String>;
}
