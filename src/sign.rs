//! The whole signing flow for resolved images: build payloads, have the signer sign them in one
//! batch, normalise and check every signature against the signer's public key, then attach.
//! Nothing reaches the registry unless its signature verifies over the exact payload bytes.

use std::collections::BTreeMap;

use futures::stream::{self, StreamExt};
use sigbridge_signer::{normalise_signature, Signer, SignerError, SignerErrorKind};

use crate::attach::{attach_signatures, AttachOutcome, Dedupe, NewSignature, SignatureLocation};
use crate::error::{Error, Result};
use crate::payload::SimpleSigningPayload;
use crate::reference::{Digest, Repository};
use crate::registry::RegistryClient;
use crate::resolve::ResolvedImage;

/// Settings shared by every image of one `sign` run.
#[derive(Clone, Debug, Default)]
pub struct SignOptions {
    /// `-a` annotations put into `optional`.
    pub annotations: BTreeMap<String, String>,
    /// The `docker-reference` to claim instead of the repository name (e.g. `HOST/REPO:TAG`,
    /// which containers/image's default `matchRepoDigestOrExact` rule requires).
    pub identity: Option<String>,
    /// cosign's `COSIGN_REPOSITORY`: store signatures in this repository instead.
    pub signature_repository: Option<Repository>,
    /// How many attaches run at once.
    pub jobs: usize,
}

/// The result for one signed image.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedImage {
    /// `registry/path@sha256:…`.
    pub image: String,
    /// The signed manifest digest.
    pub digest: Digest,
    /// Where the signature is stored.
    pub signature_repository: String,
    /// The signature tag.
    pub signature_tag: String,
    /// The `docker-reference` in the payload.
    pub docker_reference: String,
    /// Digest of the payload blob.
    pub payload_digest: Digest,
    /// Whether a new layer was added.
    pub outcome: AttachOutcome,
}

/// Sign each image with `signer` and attach the signatures. Returns one result per image, in
/// order; a signer failure fails them all (the batch is one request).
pub async fn sign_images(
    client: &RegistryClient,
    signer: &dyn Signer,
    images: &[ResolvedImage],
    opts: &SignOptions,
) -> Result<Vec<Result<SignedImage>>> {
    let signer_error = |source: SignerError| Error::Signer {
        signer: signer.describe(),
        source,
    };
    let key = signer.public_key().await.map_err(signer_error)?;
    let certificate = signer.certificate().await.map_err(signer_error)?;

    let payloads: Vec<(String, Vec<u8>)> = images
        .iter()
        .map(|img| {
            let docker_reference = opts
                .identity
                .clone()
                .unwrap_or_else(|| img.repository().name());
            let payload = SimpleSigningPayload::new(
                docker_reference.clone(),
                img.digest.clone(),
                opts.annotations.clone(),
            );
            (docker_reference, payload.to_bytes())
        })
        .collect();
    let bytes: Vec<Vec<u8>> = payloads.iter().map(|(_, p)| p.clone()).collect();
    let raw = signer.sign(&bytes).await.map_err(signer_error)?;
    if raw.len() != bytes.len() {
        return Err(signer_error(SignerError::new(
            SignerErrorKind::BadSignature,
            format!(
                "returned {} signatures for {} payloads",
                raw.len(),
                bytes.len()
            ),
        )));
    }

    // Check every signature before attaching any, so a bad signer writes nothing at all.
    let mut checked = Vec::with_capacity(images.len());
    for ((img, (docker_reference, payload)), raw_sig) in images.iter().zip(payloads).zip(raw) {
        let context = || format!("signature from {} for {}", signer.describe(), img.pinned());
        let signature = normalise_signature(&key, &raw_sig).map_err(|source| Error::Signature {
            context: context(),
            source,
        })?;
        key.verify(&payload, &signature)
            .map_err(|source| Error::Signature {
                context: context(),
                source,
            })?;
        checked.push((img, docker_reference, payload, signature));
    }

    let dedupe = Dedupe::VerifiedWith(Box::new(key.clone()));
    let jobs = opts.jobs.max(1);
    let results = stream::iter(checked)
        .map(|(img, docker_reference, payload, signature)| {
            let dedupe = &dedupe;
            let certificate = certificate.clone();
            async move {
                let location = SignatureLocation::new(
                    img.repository(),
                    &img.digest,
                    opts.signature_repository.as_ref(),
                );
                let payload_digest = Digest::of(&payload);
                let new = NewSignature {
                    payload,
                    signature,
                    certificate: certificate.as_ref().map(|c| c.certificate_pem.clone()),
                    chain: certificate.as_ref().and_then(|c| c.chain_pem.clone()),
                };
                let outcome =
                    attach_signatures(client, &location, std::slice::from_ref(&new), dedupe)
                        .await?;
                Ok(SignedImage {
                    image: img.pinned(),
                    digest: img.digest.clone(),
                    signature_repository: location.repository.to_string(),
                    signature_tag: location.tag.clone(),
                    docker_reference,
                    payload_digest,
                    outcome: outcome
                        .first()
                        .copied()
                        .unwrap_or(AttachOutcome::AlreadyPresent),
                })
            }
        })
        .buffered(jobs)
        .collect()
        .await;
    Ok(results)
}
