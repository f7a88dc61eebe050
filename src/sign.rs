//! The whole signing flow for resolved images: build payloads, have the signer sign them in one
//! batch, normalise and check every signature against the signer's public key, then attach.
//! Nothing reaches the registry unless its signature verifies over the exact payload bytes.

use std::collections::BTreeMap;

use futures::stream::{self, StreamExt};
use sigbridge_signer::{normalise_signature, Signer, SignerError, SignerErrorKind};

use crate::attach::{
    confirm_delay, confirm_signatures, write_signatures, AttachOutcome, Dedupe, NewSignature,
    SignatureLocation, WrittenSignatures, SETTLE_DELAY,
};
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
    // Phase 1: write every signature manifest. Phase 2 (below): confirm each once enough time
    // has passed for a racing writer to have landed, so the wait is paid once per batch.
    let written: Vec<Result<(SignedImage, WrittenSignatures)>> = stream::iter(checked)
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
                let written =
                    write_signatures(client, &location, std::slice::from_ref(&new), dedupe).await?;
                let signed = SignedImage {
                    image: img.pinned(),
                    digest: img.digest.clone(),
                    signature_repository: location.repository.to_string(),
                    signature_tag: location.tag.clone(),
                    docker_reference,
                    payload_digest,
                    outcome: written
                        .outcomes
                        .first()
                        .copied()
                        .unwrap_or(AttachOutcome::AlreadyPresent),
                };
                Ok((signed, written))
            }
        })
        .buffered(jobs)
        .collect()
        .await;

    let confirmed: Vec<Result<(SignedImage, WrittenSignatures)>> = stream::iter(written)
        .map(|r| async move {
            let (signed, mut written) = r?;
            let wait = confirm_delay(1).saturating_sub(written.written_at().elapsed());
            if written.needs_confirmation() && !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            confirm_signatures(client, &mut written).await?;
            Ok((signed, written))
        })
        .buffered(jobs)
        .collect()
        .await;

    // Phase 3: one settle wait for the whole batch, then a final look at every tag written.
    let last_write = confirmed
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .filter(|(_, w)| w.needs_confirmation())
        .map(|(_, w)| w.written_at())
        .max();
    if let Some(last) = last_write {
        tokio::time::sleep(SETTLE_DELAY.saturating_sub(last.elapsed())).await;
    }
    let results = stream::iter(confirmed)
        .map(|r| async move {
            let (signed, mut written) = r?;
            confirm_signatures(client, &mut written).await?;
            Ok(signed)
        })
        .buffered(jobs)
        .collect()
        .await;
    Ok(results)
}

/// One image's failure in a batch: where, what, and the exit code it maps to.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageFailure {
    /// The image as the user gave it, or pinned if it was resolved.
    pub image: String,
    /// What went wrong.
    pub error: String,
    /// The exit code for this failure.
    #[serde(skip)]
    pub exit_code: crate::ExitCode,
}

impl ImageFailure {
    /// A failure of `image` with `err`.
    pub fn new(image: impl Into<String>, err: &Error) -> Self {
        Self {
            image: image.into(),
            error: sigbridge_signer::error_chain(err),
            exit_code: err.exit_code(),
        }
    }
}

/// Totals of a batch run.
#[derive(Clone, Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchSummary {
    /// Signatures newly attached.
    pub attached: usize,
    /// Images that already carried an equivalent signature.
    pub already_present: usize,
    /// Images that failed.
    pub failed: usize,
    /// The first failure's exit code, if any.
    #[serde(skip)]
    pub first_failure: Option<crate::ExitCode>,
}

/// Sign a stream of images (already resolved, or failures from resolving), in batches of the
/// signer's preferred size, reporting every image's result as soon as it is known. Memory stays
/// bounded by the batch size, not the number of images. With `fail_fast`, nothing new is
/// started after the first failure.
pub async fn sign_stream<S, F>(
    client: &RegistryClient,
    signer: &dyn Signer,
    images: S,
    opts: &SignOptions,
    fail_fast: bool,
    mut report: F,
) -> BatchSummary
where
    S: futures::Stream<Item = std::result::Result<ResolvedImage, ImageFailure>>,
    F: FnMut(std::result::Result<&SignedImage, &ImageFailure>),
{
    let batch = signer.batch_size().unwrap_or(usize::MAX).max(1);
    let mut summary = BatchSummary::default();
    let mut chunks = std::pin::pin!(images.chunks(batch.min(4096)).fuse());
    let mut pending: Vec<ResolvedImage> = Vec::new();
    let record_failure = |summary: &mut BatchSummary, f: &ImageFailure| {
        summary.failed += 1;
        summary.first_failure.get_or_insert(f.exit_code);
    };
    loop {
        let next = chunks.next().await;
        let done = next.is_none();
        for item in next.into_iter().flatten() {
            match item {
                Ok(img) => pending.push(img),
                Err(f) => {
                    record_failure(&mut summary, &f);
                    report(Err(&f));
                }
            }
        }
        if fail_fast && summary.failed > 0 {
            return summary;
        }
        // A signer that wants everything at once (one approval) gets it only at the end.
        if pending.is_empty() || (!done && pending.len() < batch) {
            if done {
                return summary;
            }
            continue;
        }
        let take = pending.len().min(batch);
        let group: Vec<ResolvedImage> = pending.drain(..take).collect();
        match sign_images(client, signer, &group, opts).await {
            Ok(results) => {
                for (img, r) in group.iter().zip(results) {
                    match r {
                        Ok(signed) => {
                            match signed.outcome {
                                AttachOutcome::Attached => summary.attached += 1,
                                AttachOutcome::AlreadyPresent => summary.already_present += 1,
                            }
                            report(Ok(&signed));
                        }
                        Err(e) => {
                            let f = ImageFailure::new(img.pinned(), &e);
                            record_failure(&mut summary, &f);
                            report(Err(&f));
                        }
                    }
                }
            }
            Err(e) => {
                // The signer refused the whole batch: every image in it failed the same way.
                for img in &group {
                    let f = ImageFailure::new(img.pinned(), &e);
                    record_failure(&mut summary, &f);
                    report(Err(&f));
                }
            }
        }
        if fail_fast && summary.failed > 0 {
            return summary;
        }
        if done && pending.is_empty() {
            return summary;
        }
    }
}
