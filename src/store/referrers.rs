//! OCI 1.1 referrers, as cosign 3 stores its bundles: each signature is its own artifact manifest
//! (empty config, one layer holding the envelope, `artifactType`, `subject` = the image),
//! pushed by digest. A registry with the referrers API indexes it; otherwise the manifest is
//! added to the fallback index at tag `sha256-<hex>` (go-containerregistry's layout: entries
//! deduplicated and sorted by digest, entry `artifactType` = the config's media type).
//!
//! The fallback index is a shared mutable object like the `.sig` tag, and ggcr writes it with
//! a plain read-modify-write (lost updates under concurrency). Here every write is confirmed by
//! re-reads and any entry ever seen that went missing is merged back, as in [`super::sig_tag`].
//!
//! With cosign's `COSIGN_REPOSITORY`, everything (blobs, referrer manifests, the fallback index,
//! the referrers API lookup) lives in that repository, as cosign 3.1.1 does it (ociremote's
//! `WriteReferrer`, `Referrers` and `GetBundles` with `WithTargetRepository`); the `subject`
//! still names the image.

use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;

use super::repair::{self, confirm_delay};
use super::sig_tag::{is_transient_blob_unknown, MAX_BLOB_RACE_RETRIES};
use super::{
    AttachOutcome, DuplicateCheck, PendingWrite, RegistryOps, SignatureLocation, SignatureStore,
};
use crate::error::{Error, Result};
use crate::format::Envelope;
use crate::reference::{Digest, Repository};
use crate::registry::manifest::{media_types, Descriptor, ImageIndex, ImageManifest};
use crate::resolve::ResolvedImage;

/// The OCI empty descriptor's media type (the config of an artifact manifest).
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The empty config's content: `{}`, size 2, digest `sha256:44136fa…`.
pub const EMPTY_CONFIG: &[u8] = b"{}";

/// How many referrers are read for one image before giving up (a hostile registry could list
/// any number, each costing a manifest GET). cosign 3.1.1 has no limit; 1000 is its limit on
/// the layers of a `.sig` manifest. A listing over it is refused, never truncated: on `sign`
/// a truncated fallback index written back would lose the entries left out.
pub const MAX_REFERRERS: usize = crate::registry::MAX_REFERRERS_LISTED;

/// The largest referrer manifest read (its size as listed). cosign's are under 1 KiB; with
/// [`MAX_REFERRERS`] this bounds what one listing can make `verify` download to 64 MiB.
pub const MAX_REFERRER_MANIFEST_SIZE: u64 = 64 * 1024;

/// The referrers store for artifacts of one `artifactType`.
pub struct ReferrersStore<'a> {
    ops: &'a dyn RegistryOps,
    artifact_type: String,
    repository_override: Option<Repository>,
    /// Whether each registry (by host) has the referrers API, once one lookup has told. A
    /// registry does not gain or lose the API within a run, so later images skip the probe
    /// (a 404 on registries without it) and go straight to the store that applies.
    api_support: std::sync::Mutex<std::collections::HashMap<String, bool>>,
    /// Repositories this store has uploaded the empty config to in this run. Every artifact
    /// manifest shares that one blob, so it goes up once per repository, not once per image;
    /// should the registry lose it anyway, the manifest PUT's "blob unknown" re-uploads it.
    config_uploaded: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl<'a> ReferrersStore<'a> {
    /// A store talking to `ops` for artifacts of `artifact_type` (what a format's envelopes
    /// are: the bundle media type for cosign 3's signatures).
    pub fn new(ops: &'a dyn RegistryOps, artifact_type: impl Into<String>) -> Self {
        Self {
            ops,
            artifact_type: artifact_type.into(),
            repository_override: None,
            api_support: Default::default(),
            config_uploaded: Default::default(),
        }
    }

    /// Keep the referrers in `repository` (cosign's `COSIGN_REPOSITORY`: the whole
    /// repository) instead of each image's own; `None` keeps them next to the image.
    pub fn with_repository_override(mut self, repository: Option<Repository>) -> Self {
        self.repository_override = repository;
        self
    }

    /// The listing for `image`: the referrers API's when the registry has one (`true`), else
    /// the fallback index's (`false`, empty when the tag does not exist).
    async fn listing(
        &self,
        location: &SignatureLocation,
        subject: &Digest,
    ) -> Result<(Vec<Descriptor>, bool)> {
        if self.known_api(location) != Some(false) {
            let answer = self.ops.referrers(&location.repository, subject).await?;
            self.learn_api(location, answer.is_some());
            if let Some(index) = answer {
                return Ok((checked_count(location, index.manifests)?, true));
            }
        }
        Ok((read_fallback(self.ops, location).await?, false))
    }

    /// What an earlier lookup told about the registry of `location`, if any.
    fn known_api(&self, location: &SignatureLocation) -> Option<bool> {
        // A poisoned lock only means another task panicked mid-insert of a bool: the map
        // is still a valid cache, so use it.
        let known = self
            .api_support
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        known.get(location.repository.registry()).copied()
    }

    fn learn_api(&self, location: &SignatureLocation, api: bool) {
        self.api_support
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(location.repository.registry().to_string(), api);
    }

    /// Whether the empty config went up to `repo` earlier in this run.
    fn config_known(&self, repo: &Repository) -> bool {
        self.config_uploaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&repo.to_string())
    }

    /// Upload the empty config (once per repository) and the envelopes' blobs at once, then PUT one artifact
    /// manifest per envelope (by digest); the index entries for them.
    async fn push_artifacts(
        &self,
        repo: &Repository,
        image: &ResolvedImage,
        new: &[Envelope],
    ) -> Result<Vec<Descriptor>> {
        let config = async {
            if self.config_known(repo) {
                return Ok(());
            }
            self.ops
                .upload_blob(
                    repo,
                    &Digest::of(EMPTY_CONFIG),
                    Bytes::from_static(EMPTY_CONFIG),
                )
                .await?;
            self.config_uploaded
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(repo.to_string());
            Ok(())
        };
        let layers = futures::future::try_join_all(new.iter().map(|env| async move {
            let digest = Digest::of(&env.blob);
            self.ops
                .upload_blob(repo, &digest, Bytes::from(env.blob.clone()))
                .await
        }));
        futures::future::try_join(config, layers).await?;
        let mut pushed = Vec::with_capacity(new.len());
        for env in new {
            let body = Bytes::from(artifact_manifest(env, image, &self.artifact_type));
            let digest = Digest::of(&body);
            put_retrying(
                self.ops,
                repo,
                &digest.to_string(),
                media_types::OCI_MANIFEST,
                body.clone(),
                || async {
                    self.ops
                        .upload_blob(
                            repo,
                            &Digest::of(EMPTY_CONFIG),
                            Bytes::from_static(EMPTY_CONFIG),
                        )
                        .await
                        .map_err(Error::from)
                },
            )
            .await?;
            let mut entry = Descriptor::new(media_types::OCI_MANIFEST, digest, body.len() as u64);
            entry.artifact_type = Some(EMPTY_MEDIA_TYPE.to_string());
            pushed.push(entry);
        }
        Ok(pushed)
    }
}

/// The fallback tag of `digest`: `sha256-<hex>` (no suffix, unlike cosign's `.sig`).
pub fn fallback_tag(digest: &Digest) -> String {
    format!("{}-{}", digest.algorithm(), digest.hex())
}

#[async_trait]
impl SignatureStore for ReferrersStore<'_> {
    fn location(&self, image: &ResolvedImage) -> SignatureLocation {
        SignatureLocation {
            repository: self
                .repository_override
                .as_ref()
                .unwrap_or(image.repository())
                .clone(),
            tag: fallback_tag(&image.digest),
        }
    }

    async fn read(&self, image: &ResolvedImage) -> Result<Vec<Descriptor>> {
        let location = self.location(image);
        let (listing, _) = self.listing(&location, &image.digest).await?;
        let mut out = Vec::new();
        for entry in listing {
            if !media_types::is_image_manifest(&entry.media_type) {
                continue;
            }
            // The API copies the manifest's artifactType; the fallback index (as ggcr writes
            // it) holds the config's, so there only the manifest itself tells.
            if entry
                .artifact_type
                .as_deref()
                .is_some_and(|t| t != self.artifact_type && t != EMPTY_MEDIA_TYPE)
            {
                continue;
            }
            if let Some(layer) = self.read_referrer(&location, image, &entry).await? {
                out.push(layer);
            }
        }
        Ok(out)
    }

    async fn fetch(&self, image: &ResolvedImage, candidate: &Descriptor) -> Result<Bytes> {
        // The blob sits next to the referrer manifest that lists it.
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
        _duplicate: &DuplicateCheck<'_>,
    ) -> Result<Box<dyn PendingWrite + 's>> {
        let location = self.location(image);
        let repo = &location.repository;
        // The listing does not depend on our pushes: it is read while they go up, so the
        // fallback index costs no round trip of its own before its write. With the referrers
        // API (known from an earlier image) there is nothing to list: the registry indexes
        // the manifest itself.
        let (pushed, (listing, api)) = if self.known_api(&location) == Some(true) {
            (
                self.push_artifacts(repo, image, new).await?,
                (Vec::new(), true),
            )
        } else {
            futures::future::try_join(
                self.push_artifacts(repo, image, new),
                self.listing(&location, &image.digest),
            )
            .await?
        };
        let mut outcomes = Vec::with_capacity(new.len());
        let mut ours = Vec::new();
        for entry in pushed {
            // A byte-identical manifest (same digest) is the same signature; bundles carry a
            // creation time, so this is rare.
            if listing
                .iter()
                .chain(&ours)
                .any(|l| l.digest == entry.digest)
                && !api
            {
                outcomes.push(AttachOutcome::AlreadyPresent);
                continue;
            }
            outcomes.push(AttachOutcome::Attached);
            if !api {
                ours.push(entry);
            }
        }
        let mut written = FallbackWrite {
            ops: self.ops,
            location,
            outcomes,
            seen: listing,
            ours,
            api,
            round: 0,
            written_at: Instant::now(),
        };
        if written.needs_confirmation() {
            rewrite(&mut written).await?;
        }
        Ok(Box::new(written))
    }
}

impl ReferrersStore<'_> {
    /// The one layer of the referrer `entry` if it is an artifact of our type about `image`;
    /// `None` (with a warning) for a referrer that is not, or that the registry serves other
    /// than its index entry says. Like cosign 3, which skips referrers it cannot read, one bad
    /// referrer does not hide the good ones; a registry that fails to answer is an error.
    async fn read_referrer(
        &self,
        location: &SignatureLocation,
        image: &ResolvedImage,
        entry: &Descriptor,
    ) -> Result<Option<Descriptor>> {
        let referrer = &entry.digest;
        if entry.size > MAX_REFERRER_MANIFEST_SIZE {
            tracing::warn!("{location} lists {referrer} as {} bytes; a signature referrer is at most {MAX_REFERRER_MANIFEST_SIZE}; skipping it unread", entry.size);
            return Ok(None);
        }
        // Read by the index entry: at most its size (+1 byte), its digest from the bytes.
        let fetched = match self
            .ops
            .get_manifest_sized(&location.repository, referrer, entry.size)
            .await
        {
            Ok(Some(fetched)) => fetched,
            Ok(None) => {
                tracing::warn!(
                    "{location} lists {referrer}, which the registry does not have; skipping it"
                );
                return Ok(None);
            }
            Err(e) if is_bad_content(&e) => {
                tracing::warn!(
                    "{location} lists {referrer}, but the registry serves something else: {e}"
                );
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        let Ok(manifest) = ImageManifest::from_slice(&fetched.bytes) else {
            tracing::warn!(
                "{location} lists {referrer}, which is not an image manifest; skipping it"
            );
            return Ok(None);
        };
        let artifact_type = manifest
            .artifact_type
            .as_deref()
            .unwrap_or(&manifest.config.media_type);
        let about_image = manifest
            .subject
            .as_ref()
            .is_some_and(|s| s.digest == image.digest);
        if artifact_type != self.artifact_type || !about_image {
            return Ok(None);
        }
        // cosign 3.1.1 reads a bundle referrer only if it has exactly one layer.
        match <[Descriptor; 1]>::try_from(manifest.layers) {
            Ok([layer]) => Ok(Some(layer)),
            Err(layers) => {
                tracing::warn!(
                    "referrer {referrer} of {location} holds {} layers; a signature referrer holds exactly one (cosign 3 skips it too); skipping it",
                    layers.len()
                );
                Ok(None)
            }
        }
    }
}

/// What a hostile or broken registry serves instead of the listed content (as opposed to a
/// registry that does not answer).
fn is_bad_content(e: &crate::registry::RegistryError) -> bool {
    use crate::registry::RegistryError as E;
    matches!(
        e,
        E::DigestMismatch { .. }
            | E::SizeMismatch { .. }
            | E::TooLarge { .. }
            | E::UnsupportedMediaType { .. }
    )
}

/// The artifact manifest for one envelope, as cosign 3 writes it.
fn artifact_manifest(env: &Envelope, image: &ResolvedImage, artifact_type: &str) -> Vec<u8> {
    let mut config = Descriptor::new(EMPTY_MEDIA_TYPE, Digest::of(EMPTY_CONFIG), 2);
    config.artifact_type = Some(artifact_type.to_string());
    let layer = Descriptor::new(
        env.media_type.clone(),
        Digest::of(&env.blob),
        env.blob.len() as u64,
    );
    let mut manifest = ImageManifest::new(media_types::OCI_MANIFEST, config, vec![layer]);
    // The format's annotations describe the artifact: cosign puts them on the manifest.
    manifest.annotations = (!env.annotations.is_empty()).then(|| env.annotations.clone());
    manifest.subject = Some(image.descriptor());
    manifest.artifact_type = Some(artifact_type.to_string());
    manifest.to_vec()
}

/// A pending fallback-index write (nothing to confirm when the registry has the API).
struct FallbackWrite<'a> {
    ops: &'a dyn RegistryOps,
    location: SignatureLocation,
    outcomes: Vec<AttachOutcome>,
    /// Entries that were already there or appeared since: never to be dropped.
    seen: Vec<Descriptor>,
    /// Entries this write added.
    ours: Vec<Descriptor>,
    api: bool,
    round: u32,
    written_at: Instant,
}

#[async_trait]
impl PendingWrite for FallbackWrite<'_> {
    fn outcomes(&self) -> &[AttachOutcome] {
        &self.outcomes
    }

    fn needs_confirmation(&self) -> bool {
        !self.api && !self.ours.is_empty()
    }

    fn written_at(&self) -> Instant {
        self.written_at
    }

    async fn confirm(&mut self) -> Result<()> {
        confirm(self).await
    }
}

async fn rewrite(w: &mut FallbackWrite<'_>) -> Result<()> {
    w.round += 1;
    let entries = merge(&w.seen, &w.ours);
    if entries.len() > MAX_REFERRERS {
        return Err(Error::UnsafeSignatureManifest(format!(
            "{} would list {} referrers; sigbridge reads at most {MAX_REFERRERS}",
            w.location,
            entries.len()
        )));
    }
    let index = ImageIndex {
        schema_version: 2,
        media_type: Some(media_types::OCI_INDEX.to_string()),
        manifests: entries,
        annotations: None,
        subject: None,
        artifact_type: None,
        extra: serde_json::Map::new(),
    };
    let repo = &w.location.repository;
    put_retrying(
        w.ops,
        repo,
        &w.location.tag,
        media_types::OCI_INDEX,
        Bytes::from(index.to_vec()),
        || async { Ok(()) },
    )
    .await?;
    w.written_at = Instant::now();
    Ok(())
}

/// Re-read the fallback index; if an entry we wrote or saw is gone (another writer's
/// read-modify-write), merge everything back and rewrite ([`repair::repair`]).
async fn confirm(w: &mut FallbackWrite<'_>) -> Result<()> {
    if !w.needs_confirmation() {
        return Ok(());
    }
    repair::repair(w).await
}

#[async_trait]
impl repair::SharedObjectWrite for FallbackWrite<'_> {
    fn same(a: &Descriptor, b: &Descriptor) -> bool {
        a.digest == b.digest
    }

    async fn look(&self) -> Result<Vec<Descriptor>> {
        read_fallback(self.ops, &self.location).await
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
            "{} kept losing referrers to concurrent writers after {} attempts; run again",
            self.location, self.round
        ))
    }

    fn location(&self) -> &SignatureLocation {
        &self.location
    }
}

/// `seen` and `ours`, one entry per digest (the first seen wins), sorted by digest as ggcr
/// sorts them.
fn merge(seen: &[Descriptor], ours: &[Descriptor]) -> Vec<Descriptor> {
    let mut out: Vec<Descriptor> = Vec::with_capacity(seen.len() + ours.len());
    for e in seen.iter().chain(ours) {
        if !out.iter().any(|o| o.digest == e.digest) {
            out.push(e.clone());
        }
    }
    out.sort_by_key(|e| e.digest.to_string());
    out
}

/// The fallback index's entries; empty when the tag does not exist.
async fn read_fallback(
    ops: &dyn RegistryOps,
    location: &SignatureLocation,
) -> Result<Vec<Descriptor>> {
    let Some(fetched) = ops
        .get_manifest(&location.repository, &location.tag)
        .await?
    else {
        return Ok(Vec::new());
    };
    let index = ImageIndex::from_slice(&fetched.bytes).map_err(|e| {
        Error::UnsafeSignatureManifest(format!(
            "{location} holds a {} that is not a referrers index ({e}); refusing to read or overwrite it",
            fetched.media_type
        ))
    })?;
    checked_count(location, index.manifests)
}

fn checked_count(
    location: &SignatureLocation,
    entries: Vec<Descriptor>,
) -> Result<Vec<Descriptor>> {
    if entries.len() > MAX_REFERRERS {
        return Err(Error::UnsafeSignatureManifest(format!(
            "{location} lists {} referrers; sigbridge reads at most {MAX_REFERRERS}",
            entries.len()
        )));
    }
    Ok(entries)
}

/// PUT a manifest or index, retrying docker-registry's transient "blob unknown" (see
/// [`is_transient_blob_unknown`]) after `before_retry`.
async fn put_retrying<F, Fut>(
    ops: &dyn RegistryOps,
    repo: &Repository,
    reference: &str,
    media_type: &str,
    body: Bytes,
    before_retry: F,
) -> Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let mut attempt = 0;
    loop {
        match ops
            .put_manifest(repo, reference, media_type, body.clone())
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if attempt < MAX_BLOB_RACE_RETRIES && is_transient_blob_unknown(&e) => {
                attempt += 1;
                tracing::info!(%repo, reference, attempt, "the registry briefly did not see content the manifest references; retrying");
                tokio::time::sleep(confirm_delay(attempt)).await;
                before_retry().await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
#[path = "referrers_tests.rs"]
mod tests;
