//! The registry operations signature stores use, as a trait: [`RegistryClient`] implements it
//! over HTTP, and tests implement it in memory to drive races (a competing writer's PUT between
//! our write and our confirmation, dropped writes, a blob the registry briefly does not see)
//! without a registry.

use async_trait::async_trait;
use bytes::Bytes;

use crate::reference::{Digest, Repository};
use crate::registry::manifest::ImageIndex;
use crate::registry::{FetchedManifest, RegistryClient, RegistryError};

/// What a signature store needs from a registry.
#[async_trait]
pub trait RegistryOps: Send + Sync {
    /// The manifest at `reference` (tag or digest); `None` if there is none.
    async fn get_manifest(
        &self,
        repo: &Repository,
        reference: &str,
    ) -> Result<Option<FetchedManifest>, RegistryError>;

    /// The manifest `digest` whose descriptor declares `size` bytes; `None` if there is none.
    /// A body of another length is refused; over HTTP at most `size + 1` bytes are read. This
    /// default (for in-memory registries) fetches and then compares the length.
    async fn get_manifest_sized(
        &self,
        repo: &Repository,
        digest: &Digest,
        size: u64,
    ) -> Result<Option<FetchedManifest>, RegistryError> {
        let fetched = self.get_manifest(repo, &digest.to_string()).await?;
        match fetched {
            Some(f) if f.bytes.len() as u64 != size => Err(RegistryError::SizeMismatch {
                what: format!("manifest {repo}@{digest}"),
                declared: size,
                detail: format!("it is {} bytes", f.bytes.len()),
            }),
            other => Ok(other),
        }
    }

    /// Put a manifest under `reference`; returns its digest.
    async fn put_manifest(
        &self,
        repo: &Repository,
        reference: &str,
        media_type: &str,
        body: Bytes,
    ) -> Result<Digest, RegistryError>;

    /// Upload a blob (re-uploading existing content is harmless).
    async fn upload_blob(
        &self,
        repo: &Repository,
        digest: &Digest,
        body: Bytes,
    ) -> Result<(), RegistryError>;

    /// A blob of exactly `size` bytes that hashes to `digest`.
    async fn get_blob_sized(
        &self,
        repo: &Repository,
        digest: &Digest,
        size: u64,
    ) -> Result<Bytes, RegistryError>;

    /// The referrers API's index of manifests whose `subject` is `subject`; `None` when the
    /// registry has no referrers API (then the `sha256-<hex>` fallback tag is used).
    async fn referrers(
        &self,
        repo: &Repository,
        subject: &Digest,
    ) -> Result<Option<ImageIndex>, RegistryError>;
}

#[async_trait]
impl RegistryOps for RegistryClient {
    async fn get_manifest(
        &self,
        repo: &Repository,
        reference: &str,
    ) -> Result<Option<FetchedManifest>, RegistryError> {
        RegistryClient::get_manifest(self, repo, reference).await
    }

    async fn get_manifest_sized(
        &self,
        repo: &Repository,
        digest: &Digest,
        size: u64,
    ) -> Result<Option<FetchedManifest>, RegistryError> {
        RegistryClient::get_manifest_sized(self, repo, digest, size).await
    }

    async fn put_manifest(
        &self,
        repo: &Repository,
        reference: &str,
        media_type: &str,
        body: Bytes,
    ) -> Result<Digest, RegistryError> {
        RegistryClient::put_manifest(self, repo, reference, media_type, body).await
    }

    async fn upload_blob(
        &self,
        repo: &Repository,
        digest: &Digest,
        body: Bytes,
    ) -> Result<(), RegistryError> {
        RegistryClient::upload_blob(self, repo, digest, body).await
    }

    async fn get_blob_sized(
        &self,
        repo: &Repository,
        digest: &Digest,
        size: u64,
    ) -> Result<Bytes, RegistryError> {
        RegistryClient::get_blob_sized(self, repo, digest, size).await
    }

    async fn referrers(
        &self,
        repo: &Repository,
        subject: &Digest,
    ) -> Result<Option<ImageIndex>, RegistryError> {
        RegistryClient::get_referrers(self, repo, subject).await
    }
}
