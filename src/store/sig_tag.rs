//! cosign's `.sig` tag store: an image's signatures are the layers of one image manifest at
//! `<repository>:sha256-<hex>.sig` (the image's repository, or `COSIGN_REPOSITORY`).
//!
//! cosign's plain read-append-write loses a signature when two writers race (cosign#2432).
//! Here every write is followed by re-reads; any layer ever seen at the tag that is missing
//! (ours or someone else's) is merged back and the manifest rewritten, with jittered backoff.

use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;

use super::repair::{self, confirm_delay};
use super::{
    AttachOutcome, DuplicateCheck, PendingWrite, RegistryOps, SignatureLocation, SignatureStore,
};
use crate::error::{Error, Result};
use crate::format::Envelope;
use crate::reference::{Digest, Repository};
use crate::registry::manifest::{media_types, Descriptor, ImageManifest};
use crate::registry::RegistryError;
use crate::resolve::ResolvedImage;

/// cosign refuses to read signature manifests with more layers than this.
pub const MAX_SIGNATURE_LAYERS: usize = 1000;

/// How often a manifest write refused for an unknown blob is retried. Every blob it
/// references was uploaded (or seen in a manifest the registry served) moments before.
pub(super) const MAX_BLOB_RACE_RETRIES: u32 = 5;

/// The `.sig` tag store.
pub struct SigTagStore<'a> {
    ops: &'a dyn RegistryOps,
    repository_override: Option<Repository>,
}

impl<'a> SigTagStore<'a> {
    /// A store talking to `ops`, in each image's own repository unless `repository_override`
    /// (cosign's `COSIGN_REPOSITORY`: the whole repository) says otherwise.
    pub fn new(ops: &'a dyn RegistryOps, repository_override: Option<Repository>) -> Self {
        Self {
            ops,
            repository_override,
        }
    }
}

#[async_trait]
impl SignatureStore for SigTagStore<'_> {
    fn location(&self, image: &ResolvedImage) -> SignatureLocation {
        SignatureLocation {
            repository: self
                .repository_override
                .as_ref()
                .unwrap_or(image.repository())
                .clone(),
            tag: image.digest.signature_tag(),
        }
    }

    async fn read(&self, image: &ResolvedImage) -> Result<Vec<Descriptor>> {
        let location = self.location(image);
        Ok(read_manifest(self.ops, &location)
            .await?
            .map(|m| m.layers)
            .unwrap_or_default())
    }

    async fn fetch(&self, image: &ResolvedImage, candidate: &Descriptor) -> Result<Bytes> {
        let location = self.location(image);
        Ok(self
            .ops
            .get_blob_sized(&location.repository, &candidate.digest, candidate.size)
            .await?)
    }

    async fn write<'s>(
        &'s self,
        image: &ResolvedImage,
        new: &[Envelope],
        duplicate: &DuplicateCheck<'_>,
    ) -> Result<Box<dyn PendingWrite + 's>> {
        let location = self.location(image);
        Ok(Box::new(write(self.ops, location, new, duplicate).await?))
    }
}

/// A signature manifest write that still has to be confirmed.
struct SigTagWrite<'a> {
    ops: &'a dyn RegistryOps,
    location: SignatureLocation,
    outcomes: Vec<AttachOutcome>,
    /// Layers that were already there or appeared since: never to be dropped.
    seen: Vec<Descriptor>,
    /// Layers this write added.
    ours: Vec<Descriptor>,
    docker_types: bool,
    round: u32,
    written_at: Instant,
}

#[async_trait]
impl PendingWrite for SigTagWrite<'_> {
    fn outcomes(&self) -> &[AttachOutcome] {
        &self.outcomes
    }

    fn needs_confirmation(&self) -> bool {
        !self.ours.is_empty()
    }

    fn written_at(&self) -> Instant {
        self.written_at
    }

    async fn confirm(&mut self) -> Result<()> {
        confirm(self).await
    }
}

/// Upload the blobs, read the signature manifest, append what is new, and write it.
async fn write<'a>(
    ops: &'a dyn RegistryOps,
    location: SignatureLocation,
    new: &[Envelope],
    duplicate: &DuplicateCheck<'_>,
) -> Result<SigTagWrite<'a>> {
    let repo = &location.repository;
    // Independent requests go out together, so an image costs round trips only where one
    // request needs another's answer: our layers upload while the manifest is read, and the
    // config (which lists every layer, so it needs the read) uploads while they finish. The
    // read-to-write window, in which a concurrent writer can slip in, stays one config upload
    // and one PUT. A duplicate costs one small wasted upload; re-uploading content is harmless.
    let upload_layers = futures::future::try_join_all(new.iter().map(|env| async move {
        let digest = Digest::of(&env.blob);
        ops.upload_blob(repo, &digest, Bytes::from(env.blob.clone()))
            .await
    }));
    let read_and_prepare = async {
        let existing = read_manifest(ops, &location).await?;
        let docker_types = existing
            .as_ref()
            .is_some_and(|m| m.media_type.as_deref() == Some(media_types::DOCKER_MANIFEST));
        let seen: Vec<Descriptor> = existing.map(|m| m.layers).unwrap_or_default();
        let mut outcomes = Vec::with_capacity(new.len());
        let mut ours: Vec<Descriptor> = Vec::new();
        for env in new {
            let layer = env.descriptor();
            if seen
                .iter()
                .chain(ours.iter())
                .any(|l| same_layer(l, &layer) || duplicate(l, env))
            {
                outcomes.push(AttachOutcome::AlreadyPresent);
                continue;
            }
            ours.push(layer);
            outcomes.push(AttachOutcome::Attached);
        }
        let prepared = if ours.is_empty() {
            None
        } else {
            Some(prepare_manifest(ops, &location, &merge_layers(&seen, &ours), docker_types).await?)
        };
        Ok::<_, Error>((docker_types, seen, ours, outcomes, prepared))
    };
    let (_, (docker_types, seen, ours, outcomes, prepared)) = futures::future::try_join(
        async { upload_layers.await.map_err(Error::from) },
        read_and_prepare,
    )
    .await?;
    let mut written = SigTagWrite {
        ops,
        location,
        outcomes,
        seen,
        ours,
        docker_types,
        round: 0,
        written_at: Instant::now(),
    };
    if let Some(prepared) = prepared {
        written.round = 1;
        put_manifest(ops, &written.location, &prepared).await?;
        written.written_at = Instant::now();
    }
    Ok(written)
}

async fn rewrite(w: &mut SigTagWrite<'_>) -> Result<()> {
    w.round += 1;
    let layers = merge_layers(&w.seen, &w.ours);
    let prepared = prepare_manifest(w.ops, &w.location, &layers, w.docker_types).await?;
    put_manifest(w.ops, &w.location, &prepared).await?;
    w.written_at = Instant::now();
    Ok(())
}

/// Re-read the tag; if any layer we wrote or saw is gone (a concurrent writer replaced the
/// manifest with its own read-append-write), merge everything back and rewrite
/// ([`repair::repair`]), until the tag holds all of it.
async fn confirm(w: &mut SigTagWrite<'_>) -> Result<()> {
    if !w.needs_confirmation() {
        return Ok(());
    }
    repair::repair(w).await
}

#[async_trait]
impl repair::SharedObjectWrite for SigTagWrite<'_> {
    fn same(a: &Descriptor, b: &Descriptor) -> bool {
        same_layer(a, b)
    }

    async fn look(&self) -> Result<Vec<Descriptor>> {
        let now = read_manifest(self.ops, &self.location).await?;
        Ok(now.map(|m| m.layers).unwrap_or_default())
    }

    fn kept(&mut self) -> (&mut Vec<Descriptor>, &[Descriptor]) {
        (&mut self.seen, &self.ours)
    }

    fn round(&self) -> u32 {
        self.round
    }

    async fn rewrite(&mut self) -> Result<()> {
        rewrite(self).await
    }

    fn gave_up(&self) -> Error {
        Error::UnsafeSignatureManifest(format!(
            "{} kept losing signatures to concurrent writers after {} attempts; run again",
            self.location, self.round
        ))
    }

    fn location(&self) -> &SignatureLocation {
        &self.location
    }
}

/// Fetch and parse the signature manifest; `None` if the tag does not exist.
async fn read_manifest(
    ops: &dyn RegistryOps,
    location: &SignatureLocation,
) -> Result<Option<ImageManifest>> {
    let Some(fetched) = ops
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

/// A signature manifest ready to PUT: its config is uploaded.
struct PreparedManifest {
    manifest_type: &'static str,
    body: Bytes,
    config_digest: Digest,
    config: Bytes,
}

/// Build the manifest holding `layers` and upload its config; refuses more layers than
/// cosign reads.
async fn prepare_manifest(
    ops: &dyn RegistryOps,
    location: &SignatureLocation,
    layers: &[Descriptor],
    docker_types: bool,
) -> Result<PreparedManifest> {
    if layers.len() > MAX_SIGNATURE_LAYERS {
        return Err(Error::UnsafeSignatureManifest(format!(
            "{location} would hold {} signatures; cosign refuses to read more than {MAX_SIGNATURE_LAYERS}",
            layers.len()
        )));
    }
    let config = config_blob(layers);
    let (manifest_type, config_type) = if docker_types {
        (media_types::DOCKER_MANIFEST, media_types::DOCKER_CONFIG)
    } else {
        (media_types::OCI_MANIFEST, media_types::OCI_CONFIG)
    };
    let config_digest = Digest::of(&config);
    let config_size = config.len() as u64;
    let config = Bytes::from(config);
    ops.upload_blob(&location.repository, &config_digest, config.clone())
        .await?;
    let manifest = ImageManifest::new(
        manifest_type,
        Descriptor::new(config_type, config_digest.clone(), config_size),
        layers.to_vec(),
    );
    Ok(PreparedManifest {
        manifest_type,
        body: Bytes::from(manifest.to_vec()),
        config_digest,
        config,
    })
}

/// PUT a prepared manifest at the tag, retrying while the registry briefly does not see a blob.
async fn put_manifest(
    ops: &dyn RegistryOps,
    location: &SignatureLocation,
    prepared: &PreparedManifest,
) -> Result<()> {
    let mut attempt = 0;
    loop {
        match ops
            .put_manifest(
                &location.repository,
                &location.tag,
                prepared.manifest_type,
                prepared.body.clone(),
            )
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if attempt < MAX_BLOB_RACE_RETRIES && is_transient_blob_unknown(&e) => {
                attempt += 1;
                tracing::info!(%location, attempt, "the registry briefly did not see a blob the signature manifest references (a concurrent upload of the same blob); retrying the write");
                tokio::time::sleep(confirm_delay(attempt)).await;
                // Re-upload the config: cheap, and harmless if it is there.
                ops.upload_blob(
                    &location.repository,
                    &prepared.config_digest,
                    prepared.config.clone(),
                )
                .await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// docker-registry (distribution 2.x, filesystem storage) rewrites a repository's blob link
/// file in place when the same blob is uploaded again, so while several writers upload the
/// same payload (every signer of one image signs the same bytes) a manifest PUT can find the
/// link empty and answer 400 `MANIFEST_BLOB_UNKNOWN`/`DIGEST_INVALID` for a blob that exists.
pub(super) fn is_transient_blob_unknown(e: &RegistryError) -> bool {
    use crate::registry::ErrorCode;
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

#[cfg(test)]
#[path = "sig_tag_tests.rs"]
mod tests;
