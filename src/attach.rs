//! Writing cosign signatures into the registry: read the `sha256-<hex>.sig` manifest, append one
//! layer per new signature, keep every existing layer and annotation, skip duplicates, upload the
//! blobs, then write the manifest.
//!
//! cosign's plain read-append-write loses a signature when two writers race (cosign#2432). Here
//! every write is followed by a re-read; any layer we ever saw at the tag that is missing (ours
//! or someone else's) is merged back and the manifest rewritten, with jittered backoff.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use sigbridge_signer::PublicKey;

use crate::error::{Error, Result};
use crate::reference::{Digest, Repository};
use crate::registry::manifest::{media_types, Descriptor, ImageManifest};
use crate::registry::RegistryClient;

/// Annotation holding the base64 signature (cosign keeps its old project prefix for this one).
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// Annotation holding the PEM leaf certificate.
pub const CERTIFICATE_ANNOTATION: &str = "dev.sigstore.cosign/certificate";
/// Annotation holding the PEM chain (intermediates to root).
pub const CHAIN_ANNOTATION: &str = "dev.sigstore.cosign/chain";

/// cosign refuses to read signature manifests with more layers than this.
pub const MAX_SIGNATURE_LAYERS: usize = 1000;

/// How many times a lost update is repaired before giving up.
const MAX_WRITE_ROUNDS: u32 = 16;

/// One signature to attach: the exact payload bytes and what goes into the layer annotations.
#[derive(Clone, Debug)]
pub struct NewSignature {
    /// The payload bytes, stored verbatim as the layer blob.
    pub payload: Vec<u8>,
    /// The raw (decoded) signature bytes; stored base64 (standard, padded).
    pub signature: Vec<u8>,
    /// PEM leaf certificate, if any.
    pub certificate: Option<String>,
    /// PEM chain, if any.
    pub chain: Option<String>,
}

impl NewSignature {
    fn layer(&self) -> Descriptor {
        let mut annotations = BTreeMap::new();
        annotations.insert(
            SIGNATURE_ANNOTATION.to_string(),
            base64::engine::general_purpose::STANDARD.encode(&self.signature),
        );
        if let Some(cert) = &self.certificate {
            annotations.insert(CERTIFICATE_ANNOTATION.to_string(), cert.clone());
            // cosign's `attach` omits the chain key when no chain was given.
            if let Some(chain) = &self.chain {
                annotations.insert(CHAIN_ANNOTATION.to_string(), chain.clone());
            }
        }
        Descriptor::new(
            media_types::COSIGN_SIMPLE_SIGNING,
            Digest::of(&self.payload),
            self.payload.len() as u64,
        )
        .with_annotations(annotations)
    }
}

/// Where signatures of one image live: `<repository>:sha256-<hex>.sig`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureLocation {
    /// The repository (the image's own, or `COSIGN_REPOSITORY`).
    pub repository: Repository,
    /// The tag, `sha256-<hex>.sig`.
    pub tag: String,
}

impl SignatureLocation {
    /// The location for `image_digest` in `image_repository`, unless `override_repository`
    /// (cosign's `COSIGN_REPOSITORY`: the whole repository) says otherwise.
    pub fn new(
        image_repository: &Repository,
        image_digest: &Digest,
        override_repository: Option<&Repository>,
    ) -> Self {
        Self {
            repository: override_repository.unwrap_or(image_repository).clone(),
            tag: image_digest.signature_tag(),
        }
    }
}

impl std::fmt::Display for SignatureLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.repository, self.tag)
    }
}

/// What an attach did for one signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttachOutcome {
    /// The signature was appended.
    Attached,
    /// An equivalent signature was already there; nothing new was added.
    AlreadyPresent,
}

/// How duplicates are recognised.
#[derive(Clone, Debug)]
pub enum Dedupe {
    /// Like `cosign sign`: an existing layer with the same payload, the same non-signature
    /// annotations, and a signature that verifies with this key is the same signature (ECDSA is
    /// randomised, so bytes differ between two signings).
    VerifiedWith(Box<PublicKey>),
    /// Only byte-identical layers are duplicates.
    ExactOnly,
}

/// Read, append, write and confirm. Blobs are uploaded before the manifest, so the registry
/// never holds a manifest pointing at a missing blob.
pub async fn attach_signatures(
    client: &RegistryClient,
    location: &SignatureLocation,
    signatures: &[NewSignature],
    dedupe: &Dedupe,
) -> Result<Vec<AttachOutcome>> {
    let mut written = write_signatures(client, location, signatures, dedupe).await?;
    let outcomes = written.outcomes.clone();
    if written.needs_confirmation() {
        tokio::time::sleep(confirm_delay(1)).await;
        confirm_signatures(client, &mut written).await?;
        tokio::time::sleep(SETTLE_DELAY.saturating_sub(written.written_at().elapsed())).await;
        confirm_signatures(client, &mut written).await?;
    }
    Ok(outcomes)
}

/// When the second, final confirmation read comes after the last write. A writer that read
/// the manifest before our write and writes after our first confirmation would drop our layer
/// without knowing it; this later look catches writers whose read-to-write window was longer
/// than the first confirmation delay (slow networks, loaded machines). Registries offer no
/// conditional writes, so this narrows the race rather than closing it.
pub const SETTLE_DELAY: Duration = Duration::from_millis(300);

/// A signature manifest write that still has to be confirmed by [`confirm_signatures`].
#[derive(Debug)]
pub struct WrittenSignatures {
    location: SignatureLocation,
    /// What happened to each new signature.
    pub outcomes: Vec<AttachOutcome>,
    /// Layers that were already there or appeared since: never to be dropped.
    seen: Vec<Descriptor>,
    /// Layers this write added.
    ours: Vec<Descriptor>,
    /// What the last write put at the tag.
    written: Vec<Descriptor>,
    docker_types: bool,
    round: u32,
    written_at: Instant,
}

impl WrittenSignatures {
    /// Whether anything was written (a batch of duplicates writes nothing).
    pub fn needs_confirmation(&self) -> bool {
        !self.ours.is_empty()
    }

    /// When the manifest was written.
    pub fn written_at(&self) -> Instant {
        self.written_at
    }
}

/// Upload the payloads, read the signature manifest, append what is new, and write it. The
/// result must be passed to [`confirm_signatures`] a little later: batches write many
/// manifests first and confirm them afterwards, so the wait that lets racing writers land
/// their writes is spent once, not per image.
pub async fn write_signatures(
    client: &RegistryClient,
    location: &SignatureLocation,
    signatures: &[NewSignature],
    dedupe: &Dedupe,
) -> Result<WrittenSignatures> {
    let repo = &location.repository;
    // Payload blobs go up before the manifest is read: it keeps the read-to-write window, in
    // which a concurrent writer can slip in, as short as possible. A duplicate costs one
    // small wasted upload; re-uploading existing content is harmless.
    for sig in signatures {
        client
            .upload_blob(
                repo,
                &Digest::of(&sig.payload),
                Bytes::from(sig.payload.clone()),
            )
            .await?;
    }
    let existing = read_signature_manifest(client, location).await?;
    let docker_types = existing
        .as_ref()
        .is_some_and(|m| m.media_type.as_deref() == Some(media_types::DOCKER_MANIFEST));

    let seen: Vec<Descriptor> = existing
        .as_ref()
        .map(|m| m.layers.clone())
        .unwrap_or_default();
    let mut outcomes = Vec::with_capacity(signatures.len());
    let mut ours: Vec<Descriptor> = Vec::new();
    for sig in signatures {
        let layer = sig.layer();
        if seen
            .iter()
            .chain(ours.iter())
            .any(|l| is_duplicate(l, &layer, sig, dedupe))
        {
            outcomes.push(AttachOutcome::AlreadyPresent);
            continue;
        }
        ours.push(layer);
        outcomes.push(AttachOutcome::Attached);
    }
    let mut written = WrittenSignatures {
        location: location.clone(),
        outcomes,
        seen,
        ours,
        written: Vec::new(),
        docker_types,
        round: 0,
        written_at: Instant::now(),
    };
    if written.needs_confirmation() {
        rewrite(client, &mut written).await?;
    }
    Ok(written)
}

async fn rewrite(client: &RegistryClient, w: &mut WrittenSignatures) -> Result<()> {
    w.round += 1;
    let layers = merge_layers(&w.seen, &w.ours);
    if layers.len() > MAX_SIGNATURE_LAYERS {
        return Err(Error::UnsafeSignatureManifest(format!(
            "{} would hold {} signatures; cosign refuses to read more than {MAX_SIGNATURE_LAYERS}",
            w.location,
            layers.len()
        )));
    }
    write_manifest(client, &w.location, &layers, w.docker_types).await?;
    w.written = layers;
    w.written_at = Instant::now();
    Ok(())
}

/// Re-read the tag; if any layer we wrote or saw is gone (a concurrent writer replaced the
/// manifest with its own read-append-write), merge everything back and rewrite, with growing
/// jittered waits, until the tag holds all of it.
pub async fn confirm_signatures(client: &RegistryClient, w: &mut WrittenSignatures) -> Result<()> {
    if !w.needs_confirmation() {
        return Ok(());
    }
    // Alternate between looking and writing: after a loss, first wait a random, growing while
    // and look again, because another writer may be about to write a union that already holds
    // our layers; write ourselves only if the loss is still there. Writers that all rewrote at
    // once would keep clobbering each other (a livelock seen with 16 concurrent signers).
    let mut looks = 0u32;
    loop {
        let now = read_signature_manifest(client, &w.location).await?;
        let now_layers = now.map(|m| m.layers).unwrap_or_default();
        // Keep everything observed so a layer another writer added is never dropped by us.
        for l in &now_layers {
            if !w.seen.iter().any(|s| same_layer(s, l)) && !w.ours.iter().any(|o| same_layer(o, l))
            {
                w.seen.push(l.clone());
            }
        }
        let known = merge_layers(&w.seen, &w.ours);
        let missing = known
            .iter()
            .any(|l| !now_layers.iter().any(|n| same_layer(n, l)));
        if !missing {
            return Ok(());
        }
        if w.round >= MAX_WRITE_ROUNDS {
            return Err(Error::UnsafeSignatureManifest(format!(
                "{} kept losing signatures to concurrent writers after {} attempts; run again",
                w.location, w.round
            )));
        }
        looks += 1;
        if looks % 2 == 1 {
            tokio::time::sleep(backoff(looks)).await;
            continue;
        }
        tracing::info!(location = %w.location, round = w.round, "a concurrent writer replaced the signature manifest; merging and rewriting");
        rewrite(client, w).await?;
        tokio::time::sleep(confirm_delay(w.round)).await;
    }
}

/// Randomised exponential backoff ("full jitter") between looks after a lost update, so
/// colliding writers spread out instead of retrying in step.
fn backoff(attempt: u32) -> Duration {
    use rand::Rng;
    let cap = 25u64.saturating_mul(1 << attempt.min(6)).min(1600);
    Duration::from_millis(rand::thread_rng().gen_range(10..=cap.max(10)))
}

/// Fetch and parse the signature manifest; `None` if the tag does not exist.
pub async fn read_signature_manifest(
    client: &RegistryClient,
    location: &SignatureLocation,
) -> Result<Option<ImageManifest>> {
    let Some(fetched) = client
        .get_manifest(&location.repository, &location.tag)
        .await?
    else {
        return Ok(None);
    };
    let manifest = ImageManifest::from_slice(&fetched.bytes).map_err(|e| {
        Error::UnsafeSignatureManifest(format!(
            "{location} holds a {} that is not an image manifest sigbridge can append to ({e}); refusing to overwrite it",
            fetched.media_type
        ))
    })?;
    if manifest.layers.len() > MAX_SIGNATURE_LAYERS {
        return Err(Error::UnsafeSignatureManifest(format!(
            "{location} has {} layers; cosign refuses more than {MAX_SIGNATURE_LAYERS}",
            manifest.layers.len()
        )));
    }
    Ok(Some(manifest))
}

async fn write_manifest(
    client: &RegistryClient,
    location: &SignatureLocation,
    layers: &[Descriptor],
    docker_types: bool,
) -> Result<()> {
    let config = config_blob(layers);
    let (manifest_type, config_type) = if docker_types {
        (media_types::DOCKER_MANIFEST, media_types::DOCKER_CONFIG)
    } else {
        (media_types::OCI_MANIFEST, media_types::OCI_CONFIG)
    };
    let config_digest = Digest::of(&config);
    let config_size = config.len() as u64;
    client
        .upload_blob(&location.repository, &config_digest, Bytes::from(config))
        .await?;
    let manifest = ImageManifest::new(
        manifest_type,
        Descriptor::new(config_type, config_digest.clone(), config_size),
        layers.to_vec(),
    );
    let body = Bytes::from(manifest.to_vec());
    let mut attempt = 0;
    loop {
        match client
            .put_manifest(
                &location.repository,
                &location.tag,
                manifest_type,
                body.clone(),
            )
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if attempt < MAX_BLOB_RACE_RETRIES && is_transient_blob_unknown(&e) => {
                attempt += 1;
                tracing::info!(%location, attempt, "the registry briefly did not see a blob the signature manifest references (a concurrent upload of the same blob); retrying the write");
                tokio::time::sleep(confirm_delay(attempt)).await;
                // Re-upload the config: cheap, and harmless if it is there.
                client
                    .upload_blob(
                        &location.repository,
                        &config_digest,
                        Bytes::from(config_blob(layers)),
                    )
                    .await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// How often a manifest write refused for an unknown blob is retried. Every blob it
/// references was uploaded (or seen in a manifest the registry served) moments before.
const MAX_BLOB_RACE_RETRIES: u32 = 5;

/// docker-registry (distribution 2.x, filesystem storage) rewrites a repository's blob link
/// file in place when the same blob is uploaded again, so while several writers upload the
/// same payload (every signer of one image signs the same bytes) a manifest PUT can find the
/// link empty and answer 400 `MANIFEST_BLOB_UNKNOWN`/`DIGEST_INVALID` for a blob that exists.
fn is_transient_blob_unknown(e: &crate::registry::RegistryError) -> bool {
    use crate::registry::{ErrorCode, RegistryError};
    matches!(e, RegistryError::Status { status: 400, .. })
        && [
            ErrorCode::ManifestBlobUnknown,
            ErrorCode::BlobUnknown,
            ErrorCode::DigestInvalid,
        ]
        .iter()
        .any(|c| e.has_code(c))
}

/// The config go-containerregistry writes for a signature image: zero times, one empty history
/// entry and one diff id per layer (layers are uncompressed, so diff id = digest). Nothing
/// verifies it; it only has to be consistent with the layers.
fn config_blob(layers: &[Descriptor]) -> Vec<u8> {
    let history: Vec<&str> = layers
        .iter()
        .map(|_| r#"{"created":"0001-01-01T00:00:00Z"}"#)
        .collect();
    let diff_ids: Vec<String> = layers.iter().map(|l| format!("\"{}\"", l.digest)).collect();
    format!(
        r#"{{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{}],"os":"","rootfs":{{"type":"layers","diff_ids":[{}]}},"config":{{}}}}"#,
        history.join(","),
        diff_ids.join(",")
    )
    .into_bytes()
}

fn merge_layers(seen: &[Descriptor], ours: &[Descriptor]) -> Vec<Descriptor> {
    let mut out: Vec<Descriptor> = Vec::with_capacity(seen.len() + ours.len());
    for l in seen.iter().chain(ours) {
        if !out.iter().any(|o| same_layer(o, l)) {
            out.push(l.clone());
        }
    }
    out
}

/// Two layers are the same entry when digest and annotations are equal.
fn same_layer(a: &Descriptor, b: &Descriptor) -> bool {
    a.digest == b.digest && a.annotations == b.annotations
}

fn is_duplicate(
    existing: &Descriptor,
    new_layer: &Descriptor,
    sig: &NewSignature,
    dedupe: &Dedupe,
) -> bool {
    if same_layer(existing, new_layer) {
        return true;
    }
    let Dedupe::VerifiedWith(key) = dedupe else {
        return false;
    };
    if existing.digest != new_layer.digest || existing.media_type != new_layer.media_type {
        return false;
    }
    let empty = BTreeMap::new();
    let have = existing.annotations.as_ref().unwrap_or(&empty);
    let want = new_layer.annotations.as_ref().unwrap_or(&empty);
    let others_match = want
        .iter()
        .filter(|(k, _)| k.as_str() != SIGNATURE_ANNOTATION)
        .all(|(k, v)| have.get(k) == Some(v));
    if !others_match {
        return false;
    }
    let Some(b64) = have.get(SIGNATURE_ANNOTATION) else {
        return false;
    };
    let Ok(existing_sig) = decode_signature_annotation(b64) else {
        return false;
    };
    key.verify(&sig.payload, &existing_sig).is_ok()
}

/// Decode a signature annotation as cosign does (`base64.StdEncoding`, which skips `\r`/`\n`).
pub fn decode_signature_annotation(b64: &str) -> std::result::Result<Vec<u8>, base64::DecodeError> {
    let cleaned: String = b64.chars().filter(|c| *c != '\n' && *c != '\r').collect();
    base64::engine::general_purpose::STANDARD.decode(cleaned)
}

/// How long after a write its confirmation re-read should come.
pub fn confirm_delay(round: u32) -> Duration {
    use rand::Rng;
    // Long enough for a writer that read the manifest just before our write to land its own
    // write (its read-to-write window is one config upload and one PUT), short enough not to
    // dominate a signature's latency; it grows when writers keep colliding.
    let base = 25u64 * u64::from(round.min(8));
    Duration::from_millis(base + rand::thread_rng().gen_range(0..=50))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_matches_ggcr_for_one_layer() {
        let payload = b"x";
        let layer = Descriptor::new(media_types::COSIGN_SIMPLE_SIGNING, Digest::of(payload), 1);
        let cfg = String::from_utf8(config_blob(&[layer])).unwrap();
        assert_eq!(
            cfg,
            format!(
                r#"{{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{{"created":"0001-01-01T00:00:00Z"}}],"os":"","rootfs":{{"type":"layers","diff_ids":["{}"]}},"config":{{}}}}"#,
                Digest::of(payload)
            )
        );
        serde_json::from_str::<serde_json::Value>(&cfg).unwrap();
    }

    #[test]
    fn signature_annotation_decoding_is_cosign_lenient() {
        assert_eq!(decode_signature_annotation("aGVsbG8=\n").unwrap(), b"hello");
        assert!(decode_signature_annotation("aGVsbG8").is_err());
        assert!(decode_signature_annotation("aGV-bG8=").is_err());
    }
}
