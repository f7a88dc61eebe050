//! Turning a user's image reference into the digest that is signed or verified. A tag is
//! resolved exactly once, up front; everything after works on the digest.

use crate::error::{Error, Result};
use crate::reference::{Digest, ImageReference, Repository};
use crate::registry::RegistryClient;

/// An image pinned to the digest of its manifest (image or index).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedImage {
    /// The reference as the user gave it, pinned to `digest`.
    pub reference: ImageReference,
    /// The manifest digest.
    pub digest: Digest,
    /// The manifest media type the registry reported.
    pub media_type: String,
    /// Whether the user named a tag rather than a digest (cosign warns about that).
    pub from_tag: bool,
}

impl ResolvedImage {
    /// The repository of the image.
    pub fn repository(&self) -> &Repository {
        self.reference.repository()
    }

    /// `registry/path@sha256:…`.
    pub fn pinned(&self) -> String {
        format!("{}@{}", self.reference.repository(), self.digest)
    }
}

/// Resolve `image` to its manifest digest. A digest reference is checked to exist (a signature
/// for a manifest the registry does not have would be an orphan).
pub async fn resolve_image(
    client: &RegistryClient,
    image: &ImageReference,
) -> Result<ResolvedImage> {
    let reference = image.manifest_reference();
    let descriptor = client
        .head_manifest(image.repository(), &reference)
        .await?
        .ok_or_else(|| Error::ImageNotFound(image.to_string()))?;
    if let Some(asked) = image.digest() {
        if *asked != descriptor.digest {
            return Err(Error::InvalidInput(format!(
                "registry answered digest {} for {image}; refusing to continue with a digest other than the one asked for",
                descriptor.digest
            )));
        }
    }
    Ok(ResolvedImage {
        reference: image.with_digest(descriptor.digest.clone()),
        digest: descriptor.digest,
        media_type: descriptor.media_type,
        from_tag: image.digest().is_none(),
    })
}
