//! The whole signing flow for resolved images: images -> the format's payloads -> the signer
//! -> normalise and check every signature against the signer's public key -> the store.
//! Nothing reaches the registry unless its signature verifies over the exact payload bytes.

use std::collections::{BTreeMap, HashSet};

use futures::stream::{self, StreamExt};
use sigbridge_signer::{
    normalise_signature, CertificateMaterial, PublicKey, SignOutcome, SignRequest, Signer,
    SignerError, SignerErrorKind, Ticket,
};

use crate::error::{Error, Result};
use crate::format::{Dedupe, Envelope, SignatureFormat};
use crate::reference::{Digest, Repository};
use crate::resolve::ResolvedImage;
use crate::store::{settle, AttachOutcome, SignatureStore};

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
    /// How long the signer may wait (for an approval); `Wait::No` may leave the run pending.
    pub request: SignRequest,
    /// Collect this pending job (`--resume`) instead of asking the signer anew.
    pub resume: Option<Ticket>,
}

/// One format written to one store: `sign --format legacy` is one target, `both` two.
#[derive(Clone, Copy)]
pub struct SignTarget<'a> {
    /// What is signed and how it is wrapped.
    pub format: &'a dyn SignatureFormat,
    /// Where it is stored.
    pub store: &'a dyn SignatureStore,
    /// The name reported with each result (`None` for the legacy format, whose output stays
    /// as it always was).
    pub label: Option<&'static str>,
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
    /// The format, when not the legacy one (`bundle`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<&'static str>,
}

/// A signer opened for a run: its public key and certificate are read once, before any
/// registry work, so a wrong PIN, password or key is found (and reported once) before anything
/// else happens; every later batch reuses them.
pub struct OpenedSigner<'a> {
    signer: &'a dyn Signer,
    key: PublicKey,
    certificate: Option<CertificateMaterial>,
}

impl<'a> OpenedSigner<'a> {
    /// Open `signer`: for PKCS#11 this loads the module, logs in and finds the key; for a
    /// signing service it reads and checks the key signatures will be verified with.
    pub async fn open(signer: &'a dyn Signer) -> Result<Self> {
        let wrap = |source: SignerError| Error::Signer {
            signer: signer.describe(),
            source,
        };
        let key = signer.public_key().await.map_err(wrap)?;
        let certificate = signer.certificate().await.map_err(wrap)?;
        Ok(Self {
            signer,
            key,
            certificate,
        })
    }

    /// The signer itself.
    pub fn signer(&self) -> &'a dyn Signer {
        self.signer
    }

    /// The signer's public key (read once when opened).
    pub fn key(&self) -> &PublicKey {
        &self.key
    }

    fn error(&self, source: SignerError) -> Error {
        Error::Signer {
            signer: self.signer.describe(),
            source,
        }
    }
}

/// The one call into the signer: one raw signature per payload, in order, or the ticket of a
/// job the signer was told not to wait for (`--no-wait`), or collecting such a job (`--resume`).
async fn sign_payloads(
    opened: &OpenedSigner<'_>,
    payloads: &[Vec<u8>],
    opts: &SignOptions,
) -> Result<SignOutcome> {
    let outcome = match &opts.resume {
        Some(ticket) => {
            opened
                .signer
                .collect(ticket, payloads, opts.request.wait)
                .await
        }
        None => opened.signer.sign(payloads, &opts.request).await,
    }
    .map_err(|e| opened.error(e))?;
    if let SignOutcome::Signed(raw) = &outcome {
        if raw.len() != payloads.len() {
            return Err(opened.error(SignerError::new(
                SignerErrorKind::BadSignature,
                format!(
                    "returned {} signatures for {} payloads",
                    raw.len(),
                    payloads.len()
                ),
            )));
        }
    }
    Ok(outcome)
}

/// One image's signature for one target, checked against the signer's key, ready to store.
struct Checked<'t> {
    image: ResolvedImage,
    target: SignTarget<'t>,
    docker_reference: String,
    envelope: Envelope,
}

/// What the signer made of one group.
enum GroupOutcome<'t> {
    /// Every signature checked, in input order (images x targets).
    Signed(Vec<Checked<'t>>),
    /// The signer did not sign yet (it was asked not to wait); nothing was stored.
    Pending(Ticket),
}

/// Ask the signer for every target's payload of every image of `images` in one call (one
/// approval), then check every signature before any is stored, so a bad signer writes nothing
/// of the group. An `Err` is a failure of the whole group.
async fn sign_group<'t>(
    targets: &[SignTarget<'t>],
    opened: &OpenedSigner<'_>,
    images: &[ResolvedImage],
    opts: &SignOptions,
) -> Result<GroupOutcome<'t>> {
    let jobs_list: Vec<(&ResolvedImage, SignTarget<'t>)> = images
        .iter()
        .flat_map(|img| targets.iter().map(move |t| (img, *t)))
        .collect();
    let payloads: Vec<_> = jobs_list
        .iter()
        .map(|(img, t)| t.format.payload(img))
        .collect();
    let bytes: Vec<Vec<u8>> = payloads.iter().map(|p| p.bytes.clone()).collect();
    let raw = match sign_payloads(opened, &bytes, opts).await? {
        SignOutcome::Signed(raw) => raw,
        SignOutcome::Pending(ticket) => return Ok(GroupOutcome::Pending(ticket)),
    };
    let key = &opened.key;
    let mut checked = Vec::with_capacity(jobs_list.len());
    for ((&(img, target), payload), raw_sig) in jobs_list.iter().zip(payloads).zip(raw) {
        let context = || {
            format!(
                "signature from {} for {}",
                opened.signer.describe(),
                img.pinned()
            )
        };
        let signature = normalise_signature(key, &raw_sig).map_err(|source| Error::Signature {
            context: context(),
            source,
        })?;
        key.verify(&payload.bytes, &signature)
            .map_err(|source| Error::Signature {
                context: context(),
                source,
            })?;
        let envelope = target
            .format
            .wrap(&payload, &signature, opened.certificate.as_ref());
        checked.push(Checked {
            image: img.clone(),
            target,
            docker_reference: payload.identity,
            envelope,
        });
    }
    Ok(GroupOutcome::Signed(checked))
}

/// Store one image's signature: write it while holding a permit, then settle it (the
/// confirmation read after [`crate::store::SETTLE_DELAY`], which holds a permit only while it
/// talks to the registry).
async fn store_one(
    checked: Checked<'_>,
    permits: &tokio::sync::Semaphore,
    dedupe: &Dedupe,
) -> (ResolvedImage, Result<SignedImage>) {
    let Checked {
        image,
        target,
        docker_reference,
        envelope,
    } = checked;
    let duplicate = |stored: &_, new: &_| target.format.is_duplicate(stored, new, dedupe);
    let result = async {
        let store = target.store;
        let location = store.location(&image);
        let payload_digest = Digest::of(&envelope.blob);
        let mut pending = {
            // The semaphore is never closed, so a permit is always granted.
            let _permit = permits.acquire().await.ok();
            store
                .write(&image, std::slice::from_ref(&envelope), &duplicate)
                .await?
        };
        settle(pending.as_mut(), Some(permits)).await?;
        Ok(SignedImage {
            image: image.pinned(),
            digest: image.digest.clone(),
            signature_repository: location.repository.to_string(),
            signature_tag: location.tag,
            docker_reference,
            payload_digest,
            outcome: pending
                .outcomes()
                .first()
                .copied()
                .unwrap_or(AttachOutcome::AlreadyPresent),
            format: target.label,
        })
    }
    .await;
    (image, result)
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
    /// Images dropped because an earlier one in the list resolved to the same repository and
    /// digest (the same payload, so the same signature).
    pub duplicates: usize,
    /// A failure of the signer that ended the run; reported once, not per image.
    pub run_failure: Option<RunFailure>,
    /// The signer left a group pending (`--no-wait`); the run stopped there.
    #[serde(skip)]
    pub pending: Option<PendingRun>,
    /// The first failure's exit code, if any.
    #[serde(skip)]
    pub first_failure: Option<crate::ExitCode>,
}

/// The signer failed for a whole group of images (wrong PIN, locked token, request denied,
/// bad signatures): the run stops, and this is reported once with the summary.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunFailure {
    /// What went wrong.
    pub error: String,
    /// The exit code for this failure.
    #[serde(skip)]
    pub exit_code: crate::ExitCode,
    /// The images of the group the signer failed on, pinned, in the order they were submitted.
    pub images: Vec<String>,
    /// Whether images after that group were left unstarted.
    pub rest_not_started: bool,
}

/// A group the signer has not signed yet: what to collect, and for which images.
#[derive(Clone, Debug)]
pub struct PendingRun {
    /// What the signer gave to collect the signatures with later.
    pub ticket: Ticket,
    /// The group's images, pinned, in the order they were submitted (the order collecting
    /// needs).
    pub images: Vec<String>,
}

/// Sign a stream of images (already resolved, or failures from resolving), in groups of the
/// signer's preferred size, reporting every image's result as soon as it is final, in input
/// order. The stages overlap: images are resolved ahead, the next group is signed while the
/// previous one is still being written and confirmed, and writes are bounded by `opts.jobs`
/// across groups, so the registry never idles between groups. Memory stays bounded by a few
/// groups, not the number of images (plus one short string per distinct image, to drop
/// duplicates). With `fail_fast`, nothing new is started after the first failure; a failure of
/// the signer itself always stops the run (see [`RunFailure`]); either way what was already
/// signed is still stored and reported.
pub async fn sign_stream<S, F>(
    targets: &[SignTarget<'_>],
    opened: &OpenedSigner<'_>,
    images: S,
    opts: &SignOptions,
    fail_fast: bool,
    mut report: F,
) -> BatchSummary
where
    S: futures::Stream<Item = std::result::Result<ResolvedImage, ImageFailure>>,
    F: FnMut(std::result::Result<&SignedImage, &ImageFailure>),
{
    // A group is counted in payloads; each image has one per target.
    let batch = (opened.signer.batch_size().unwrap_or(usize::MAX) / targets.len().max(1)).max(1);
    let jobs = opts.jobs.max(1);
    // Stores in flight (writing, waiting out the settle delay, confirming); the waits hold no
    // permit, so this is well above `jobs`.
    let in_flight = (jobs * 8).max(64);
    let permits = tokio::sync::Semaphore::new(jobs);
    let dedupe = Dedupe::VerifiedWith(Box::new(opened.key.clone()));

    let mut summary = BatchSummary::default();
    let mut seen: HashSet<String> = HashSet::new();
    let mut source = std::pin::pin!(images.chunks(batch.min(4096)).fuse());
    let mut source_done = false;
    // Resolved, not yet handed to the signer.
    let mut unsigned: Vec<ResolvedImage> = Vec::new();
    // The group the signer is working on, and its images.
    let mut signing = None;
    let mut signing_images: Vec<ResolvedImage> = Vec::new();
    // Signed and checked, waiting for room among the stores in flight.
    let mut signed: std::collections::VecDeque<Checked<'_>> = Default::default();
    let mut storing = stream::FuturesOrdered::new();
    // Set when nothing new may start (a signer failure, a pending group, fail-fast).
    let mut stop = false;

    loop {
        if fail_fast && summary.failed > 0 {
            stop = true;
        }
        while storing.len() < in_flight {
            match signed.pop_front() {
                Some(c) => storing.push_back(store_one(c, &permits, &dedupe)),
                None => break,
            }
        }
        // One group at the signer at a time, and only once the last group's stores have all
        // started, so at most about two groups are held.
        let group_ready = unsigned.len() >= batch || (source_done && !unsigned.is_empty());
        if !stop && signing.is_none() && signed.is_empty() && group_ready {
            let take = unsigned.len().min(batch);
            signing_images = unsigned.drain(..take).collect();
            let group = signing_images.clone();
            signing = Some(Box::pin(async move {
                sign_group(targets, opened, &group, opts).await
            }));
        }
        let want_source = !stop && !source_done && unsigned.len() < batch;
        if signing.is_none() && storing.is_empty() && signed.is_empty() && !want_source {
            break;
        }
        tokio::select! {
            Some((img, result)) = storing.next(), if !storing.is_empty() => match result {
                Ok(done) => {
                    match done.outcome {
                        AttachOutcome::Attached => summary.attached += 1,
                        AttachOutcome::AlreadyPresent => summary.already_present += 1,
                    }
                    report(Ok(&done));
                }
                Err(e) => {
                    let f = ImageFailure::new(img.pinned(), &e);
                    summary.failed += 1;
                    summary.first_failure.get_or_insert(f.exit_code);
                    report(Err(&f));
                }
            },
            Some(outcome) = futures::future::OptionFuture::from(signing.as_mut()), if signing.is_some() => {
                signing = None;
                let group = std::mem::take(&mut signing_images);
                match outcome {
                    Ok(GroupOutcome::Signed(checked)) => signed.extend(checked),
                    Ok(GroupOutcome::Pending(ticket)) => {
                        summary.pending = Some(PendingRun {
                            ticket,
                            images: group.iter().map(ResolvedImage::pinned).collect(),
                        });
                        stop = true;
                    }
                    Err(e) => {
                        // The signer refused the whole group: one failure for the run, not
                        // one per image.
                        summary.first_failure.get_or_insert(e.exit_code());
                        summary.run_failure = Some(RunFailure {
                            error: sigbridge_signer::error_chain(&e),
                            exit_code: e.exit_code(),
                            images: group.iter().map(ResolvedImage::pinned).collect(),
                            rest_not_started: !(source_done && unsigned.is_empty()),
                        });
                        stop = true;
                    }
                }
            },
            next = source.next(), if want_source => match next {
                None => source_done = true,
                Some(items) => {
                    for item in items {
                        match item {
                            // Same repository and digest: the same payload (identity and
                            // annotations are per run), so signing it again would only find
                            // it already present.
                            Ok(img) if !seen.insert(img.pinned()) => summary.duplicates += 1,
                            Ok(img) => unsigned.push(img),
                            Err(f) => {
                                summary.failed += 1;
                                summary.first_failure.get_or_insert(f.exit_code);
                                report(Err(&f));
                            }
                        }
                    }
                }
            },
        }
    }
    summary
}

#[cfg(test)]
#[path = "sign_tests.rs"]
mod tests;
