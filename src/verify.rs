//! cosign-compatible key-based verification: the store's candidates -> the format reads and
//! checks each -> results. (For the `.sig` store and simple-signing format today.)
//!
//! Semantics follow `cosign verify --key K --insecure-ignore-tlog`: every layer is checked on its
//! own and one good layer is enough; the layer's signature must verify over the exact payload
//! blob; the payload must claim the image's digest; `-a k=v` must match string values in
//! `optional`. Like cosign, the layer media type, `critical.type` and `docker-reference` are not
//! checked (containers/image checks the identity; use its policies for that).

use std::collections::BTreeMap;

use futures::stream::{self, StreamExt};
use sigbridge_signer::PublicKey;

use crate::error::{Error, Result};
use crate::format::simple_signing::CHAIN_ANNOTATION;
use crate::format::{Candidate, SignatureFormat};
use crate::keyless::{self, CertificateInput, IdentityPolicy};
use crate::registry::manifest::Descriptor;
use crate::resolve::ResolvedImage;
use crate::store::SignatureStore;
use crate::tlog::{SignedMaterial, TlogPolicy, VerifiedTlog};
use crate::trust::TrustedRoot;

pub use crate::format::VerifiedSignature;

/// cosign's default cap on a signature payload blob (`COSIGN_MAX_ATTACHMENT_SIZE` overrides it).
pub const DEFAULT_MAX_PAYLOAD_SIZE: u64 = 128 * 1024 * 1024;

/// The most payload bytes one `verify` reads over all layers together (or one payload's limit,
/// if that was raised above it). Layers are granted their declared size in manifest order;
/// a layer that would go over fails on its own, unread. cosign has no such total (1000
/// layers of 128 MiB); real payloads are a few hundred bytes.
pub const MAX_VERIFY_TOTAL: u64 = 256 * 1024 * 1024;

/// How many layers are fetched and checked at once (cosign's `--max-workers` default).
const VERIFY_CONCURRENCY: usize = 10;

/// What a signature must verify with.
#[derive(Clone, Debug)]
pub enum SignatureCheck {
    /// `--key`: this public key.
    Key(Box<PublicKey>),
    /// No key: a Fulcio certificate chaining to the trusted root, naming an accepted signer
    /// (see [`crate::keyless`]).
    Keyless(Box<KeylessCheck>),
}

/// What a keyless signature is checked against.
#[derive(Clone, Debug)]
pub struct KeylessCheck {
    /// Certificate authorities (and transparency logs) to trust.
    pub trusted_root: TrustedRoot,
    /// Who may have signed.
    pub policy: IdentityPolicy,
    /// `--certificate` (and `--certificate-chain`): used instead of the one stored with the
    /// signature.
    pub certificate: Option<CertificateInput>,
}

/// What to check.
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    /// The key, or the keyless checks, signatures must verify with.
    pub check: SignatureCheck,
    /// `-a` annotations that must be present with equal string values.
    pub annotations: BTreeMap<String, String>,
    /// Largest payload blob read.
    pub max_payload_size: u64,
    /// Transparency-log checks: trusted logs, required or skipped.
    pub tlog: TlogPolicy,
}

/// Verify the signatures of `image`: the store's candidates, each read and checked by the format.
pub async fn verify_image(
    format: &dyn SignatureFormat,
    store: &dyn SignatureStore,
    image: &ResolvedImage,
    opts: &VerifyOptions,
) -> Result<Vec<VerifiedSignature>> {
    let layers = store.read(image).await?;
    verify_layers(format, store, image, &layers, opts).await
}

/// Check the signature `layers` already read from `store` (as [`verify_image`] does after
/// reading them), so a caller that had to look at them first does not fetch them twice.
pub async fn verify_layers(
    format: &dyn SignatureFormat,
    store: &dyn SignatureStore,
    image: &ResolvedImage,
    layers: &[Descriptor],
    opts: &VerifyOptions,
) -> Result<Vec<VerifiedSignature>> {
    if layers.is_empty() {
        let location = store.location(image);
        return Err(Error::NoSignatures {
            image: image.pinned(),
            tag: location.tag.clone(),
            repository: location.repository.to_string(),
        });
    }
    let total = MAX_VERIFY_TOTAL.max(opts.max_payload_size);
    let granted = grant_reads(layers.iter().map(|l| l.size), opts.max_payload_size, total);
    let results: Vec<std::result::Result<VerifiedSignature, String>> = stream::iter(
        layers.iter().zip(granted),
    )
    .map(|(layer, granted)| async move {
        if !granted {
            return Err(format!(
                "signature layer {}: not read: its {} bytes would take this verify past its total of {total} bytes of payloads",
                layer.digest, layer.size
            ));
        }
        check_candidate(format, store, image, layer, opts).await
    })
        .buffered(VERIFY_CONCURRENCY)
        .collect()
        .await;
    let mut good = Vec::new();
    let mut reasons = Vec::new();
    for r in results {
        match r {
            Ok(v) => good.push(v),
            Err(reason) => reasons.push(reason),
        }
    }
    if good.is_empty() {
        return Err(Error::NoMatchingSignatures { reasons });
    }
    for reason in &reasons {
        tracing::debug!(%reason, "a signature layer did not match");
    }
    Ok(good)
}

/// Which layers may be read, from their declared sizes, in manifest order, so the outcome does
/// not depend on which download finishes first. A layer over the per-payload limit is refused
/// later without reading and uses none of the total.
fn grant_reads(sizes: impl Iterator<Item = u64>, per_payload: u64, total: u64) -> Vec<bool> {
    let mut left = total;
    sizes
        .map(|size| {
            if size > per_payload {
                return true;
            }
            let fits = size <= left;
            if fits {
                left -= size;
            }
            fits
        })
        .collect()
}

async fn check_candidate(
    format: &dyn SignatureFormat,
    store: &dyn SignatureStore,
    image: &ResolvedImage,
    stored: &Descriptor,
    opts: &VerifyOptions,
) -> std::result::Result<VerifiedSignature, String> {
    format.screen(stored)?;
    if stored.size > opts.max_payload_size {
        return Err(format!(
            "signature layer {}: payload of {} bytes exceeds the limit of {} (COSIGN_MAX_ATTACHMENT_SIZE)",
            stored.digest, stored.size, opts.max_payload_size
        ));
    }
    // Exactly the declared size: a registry streaming more is cut off after one extra byte.
    let blob = store
        .fetch(image, stored)
        .await
        .map_err(|e| format!("signature layer {}: reading payload: {e}", stored.digest))?;
    let candidate = format.open(stored, blob)?;
    // cosign's order with a key: the signature over the exact signed bytes first, then the
    // claims, then the log entry. Keyless needs the verified log entry first: its integrated
    // time is when the certificate must have been valid.
    let checked = match &opts.check {
        SignatureCheck::Key(key) => {
            key.verify(&candidate.signed, &candidate.signature)
                .map_err(|e| format!("signature layer {}: {e}", stored.digest))?;
            Checked::Key(key)
        }
        SignatureCheck::Keyless(check) => {
            let material = keyless_material(check, stored, &candidate)
                .map_err(|e| format!("signature layer {}: {e}", stored.digest))?;
            let tlog = check_tlog(stored, &candidate, opts, &material.leaf_der)?;
            check_keyless(check, &material, &candidate, tlog.as_ref())
                .map_err(|e| format!("signature layer {}: {e}", stored.digest))?;
            Checked::Keyless(tlog)
        }
    };
    let parsed = format.claims(stored, &candidate)?;
    if parsed.manifest_digest != image.digest.to_string() {
        return Err(format!(
            "invalid or missing digest in claim: {}",
            parsed.manifest_digest
        ));
    }
    if !parsed.has_annotations(&opts.annotations) {
        return Err("missing or incorrect annotation".to_string());
    }
    let tlog = match checked {
        Checked::Keyless(tlog) => tlog,
        Checked::Key(key) => {
            let certificate = stored_certificate_der(&candidate);
            let verifier = certificate.as_deref().unwrap_or_else(|| key.spki_der());
            check_tlog(stored, &candidate, opts, verifier)?
        }
    };
    Ok(VerifiedSignature {
        payload: candidate.signed.to_vec(),
        parsed,
        signature: candidate.signature_text,
        certificate: candidate.certificate,
        tlog,
    })
}

/// How a candidate's signature was checked, and what is left to do for its log entry.
enum Checked<'a> {
    /// With this key; the log entry is checked after the claims.
    Key(&'a PublicKey),
    /// Keyless; its log entry was checked first (for the signing time).
    Keyless(Option<VerifiedTlog>),
}

/// The candidate's transparency-log entry under the run's policy. The body is compared with
/// `verifier_der` (the certificate the signature was checked with, else the key); for a DSSE
/// bundle with its statement.
fn check_tlog(
    stored: &Descriptor,
    candidate: &Candidate,
    opts: &VerifyOptions,
    verifier_der: &[u8],
) -> std::result::Result<Option<VerifiedTlog>, String> {
    let payload = match &candidate.tlog {
        Some(crate::tlog::TlogEvidence::BundleEntries(_)) => {
            crate::format::bundle::pae_payload(&candidate.signed).unwrap_or_default()
        }
        _ => &candidate.signed[..],
    };
    let signed = SignedMaterial {
        signature_b64: &candidate.signature_text,
        verifier_der,
        payload,
    };
    opts.tlog
        .check(candidate.tlog.as_ref(), &signed)
        .map_err(|e| format!("signature layer {}: {e}", stored.digest))
}

/// The DER of the certificate stored with `candidate`, if it has a readable one.
fn stored_certificate_der(candidate: &Candidate) -> Option<Vec<u8>> {
    candidate
        .certificate
        .as_deref()
        .and_then(|pem| sigbridge_signer::pem::decode_first(pem.as_bytes()).ok())
        .map(|block| block.contents().to_vec())
}

/// The certificate a keyless signature is checked with: `--certificate`, else the one stored
/// with the signature (and its chain annotation).
fn keyless_material(
    check: &KeylessCheck,
    stored: &Descriptor,
    candidate: &Candidate,
) -> std::result::Result<CertificateInput, String> {
    if let Some(given) = &check.certificate {
        return Ok(given.clone());
    }
    let Some(leaf) = &candidate.certificate else {
        return Err("no certificate is stored with this signature (keyless verification needs one; or give --certificate)".into());
    };
    let chain = stored
        .annotations
        .as_ref()
        .and_then(|a| a.get(CHAIN_ANNOTATION));
    CertificateInput::from_pem(leaf, chain.map(String::as_str)).map_err(|e| e.to_string())
}

/// The keyless checks of one candidate: its certificate at the signing time, the integrated
/// time of its verified transparency-log entry (keyless always needs one, as cosign).
fn check_keyless(
    check: &KeylessCheck,
    material: &CertificateInput,
    candidate: &Candidate,
    tlog: Option<&VerifiedTlog>,
) -> std::result::Result<(), String> {
    let signing_time = keyless_signing_time(tlog)?;
    keyless::verify_keyless(
        material,
        &candidate.signed,
        &candidate.signature,
        &check.trusted_root,
        signing_time,
        &check.policy,
    )
    .map(|_| ())
    .map_err(|e| e.to_string())
}

/// The time a keyless certificate is checked at: the verified entry's signed integrated time.
/// An entry verified by its inclusion proof alone has none (the time is not signed), and says so.
fn keyless_signing_time(
    tlog: Option<&VerifiedTlog>,
) -> std::result::Result<std::time::SystemTime, String> {
    let verified_time = match tlog {
        Some(t) => Some(
            t.integrated_time
                .ok_or_else(|| crate::tlog::NO_SIGNED_TIME.to_string())?,
        ),
        None => None,
    };
    keyless::signing_time::require(verified_time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_only_log_entry_gives_keyless_no_signing_time_and_says_why() {
        let at = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_750_000_000);
        let promised = VerifiedTlog {
            integrated_time: Some(at),
            rekor_bundle: None,
        };
        assert_eq!(keyless_signing_time(Some(&promised)), Ok(at));
        let proof_only = VerifiedTlog {
            integrated_time: None,
            rekor_bundle: None,
        };
        let err = keyless_signing_time(Some(&proof_only)).unwrap_err();
        assert!(err.contains("inclusion proof only"), "{err}");
        assert!(err.contains("inclusion promise"), "{err}");
    }

    #[test]
    fn reads_are_granted_in_order_until_the_total() {
        let sizes = [40, 200, 50, 20, 10];
        // 200 is over the per-payload limit: refused later, unread, and costs nothing here.
        assert_eq!(
            grant_reads(sizes.into_iter(), 100, 100),
            [true, true, true, false, true]
        );
        assert_eq!(grant_reads([].into_iter(), 100, 100), Vec::<bool>::new());
    }
}
