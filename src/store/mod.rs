//! Signature stores: where an image's signatures live, and how concurrent writers keep each
//! other's. A store reads the stored candidates for an image and writes new ones in phases
//! (write, confirm after a short delay, confirm again once settled), so a caller can hold no
//! registry permit while waiting and report each image as soon as it is final.
//!
//! A store knows nothing of what is signed (that is a [`crate::format`]). Two stores:
//! [`sig_tag`] (`sha256-<hex>.sig`, or in `COSIGN_REPOSITORY`) and [`referrers`] (OCI 1.1
//! artifact manifests, through the referrers API or the `sha256-<hex>` fallback index, which is
//! a shared mutable object needing the same repair; also in `COSIGN_REPOSITORY` when set, as
//! cosign 3 does). A new store is one new file here
//! implementing [`SignatureStore`] and [`PendingWrite`].

#[cfg(test)]
mod fake_registry;
pub mod ops;
pub mod referrers;
mod repair;
pub mod sig_tag;

use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::Semaphore;

use crate::error::Result;
use crate::format::Envelope;
use crate::reference::Repository;
use crate::registry::manifest::Descriptor;
use crate::resolve::ResolvedImage;

pub use ops::RegistryOps;
pub use referrers::ReferrersStore;
pub use sig_tag::SigTagStore;

/// Where the signatures of one image live, for output and messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureLocation {
    /// The repository (the image's own, or `COSIGN_REPOSITORY`).
    pub repository: Repository,
    /// The tag that holds them (`sha256-<hex>.sig` for the `.sig` store).
    pub tag: String,
}

impl std::fmt::Display for SignatureLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.repository, self.tag)
    }
}

/// What a write did for one new signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttachOutcome {
    /// The signature was appended.
    Attached,
    /// An equivalent signature was already there; nothing new was added.
    AlreadyPresent,
}

/// Decides whether a stored entry already holds a new envelope (beyond byte identity, which
/// the store checks itself). Formats provide it: see
/// [`SignatureFormat::is_duplicate`](crate::format::SignatureFormat::is_duplicate).
pub type DuplicateCheck<'a> = dyn Fn(&Descriptor, &Envelope) -> bool + Send + Sync + 'a;

/// Where signatures live.
#[async_trait]
pub trait SignatureStore: Send + Sync {
    /// Where `image`'s signatures are stored.
    fn location(&self, image: &ResolvedImage) -> SignatureLocation;

    /// The stored candidates for `image` (descriptors of their blobs), in stored order.
    async fn read(&self, image: &ResolvedImage) -> Result<Vec<Descriptor>>;

    /// The blob of a candidate returned by [`read`](Self::read): exactly its declared size.
    async fn fetch(&self, image: &ResolvedImage, candidate: &Descriptor) -> Result<Bytes>;

    /// Store `new` for `image`, keeping everything already stored and skipping duplicates.
    /// The result must be confirmed (see [`settle`]) before the signatures count as stored.
    async fn write<'s>(
        &'s self,
        image: &ResolvedImage,
        new: &[Envelope],
        duplicate: &DuplicateCheck<'_>,
    ) -> Result<Box<dyn PendingWrite + 's>>;
}

/// A write that is not final yet: a concurrent writer may still replace what it wrote.
#[async_trait]
pub trait PendingWrite: Send {
    /// What happened to each new envelope, in order.
    fn outcomes(&self) -> &[AttachOutcome];

    /// Whether anything was written (a batch of duplicates writes nothing).
    fn needs_confirmation(&self) -> bool;

    /// When the last write happened.
    fn written_at(&self) -> Instant;

    /// Look at what is stored; repair anything a concurrent writer dropped.
    async fn confirm(&mut self) -> Result<()>;
}

/// When the confirmation read comes after the last write. A writer that read before our write
/// and writes after it would drop our signature without knowing it; this look comes after any
/// such writer's read-to-write window (one config upload and one PUT) has closed, even on slow
/// networks and loaded machines, and repairs what it finds missing, looking again after each
/// repair until nothing is. One look per image: an earlier one only found the same losses
/// sooner, at the cost of a request per image (see docs/performance.md). Registries offer no
/// conditional writes, so this narrows the race rather than closing it.
pub const SETTLE_DELAY: Duration = Duration::from_millis(300);

/// Confirm `pending` once [`SETTLE_DELAY`] has passed since its last write. The look holds a
/// permit of `permits` (if given) only while it talks to the registry, never while waiting.
pub async fn settle(pending: &mut dyn PendingWrite, permits: Option<&Semaphore>) -> Result<()> {
    if !pending.needs_confirmation() {
        return Ok(());
    }
    // Test builds may shorten the wait (`test_knobs`); release builds never do.
    let scale = crate::test_knobs::settle_scale();
    tokio::time::sleep(
        SETTLE_DELAY
            .mul_f64(scale)
            .saturating_sub(pending.written_at().elapsed()),
    )
    .await;
    // The semaphore is never closed, so a permit is always granted.
    let _permit = match permits {
        Some(p) => p.acquire().await.ok(),
        None => None,
    };
    pending.confirm().await
}

/// Write `new` for `image` and settle it: the whole store step for one image.
pub async fn write_and_settle(
    store: &dyn SignatureStore,
    image: &ResolvedImage,
    new: &[Envelope],
    duplicate: &DuplicateCheck<'_>,
) -> Result<Vec<AttachOutcome>> {
    let mut pending = store.write(image, new, duplicate).await?;
    settle(pending.as_mut(), None).await?;
    Ok(pending.outcomes().to_vec())
}
