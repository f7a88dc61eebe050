//! Turning a user's image reference into the digest that is signed or verified. A tag is
//! resolved exactly once, up front; everything after works on the digest.

use crate::error::{Error, Result};
use crate::reference::{Digest, ImageReference, Repository};
use crate::registry::manifest::{media_types, Descriptor, ImageIndex};
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
    /// The manifest's size in bytes (an OCI 1.1 `subject` names it).
    pub size: u64,
    /// Whether the user named a tag rather than a digest (cosign warns about that).
    pub from_tag: bool,
}

impl ResolvedImage {
    /// The repository of the image.
    pub fn repository(&self) -> &Repository {
        self.reference.repository()
    }

    /// The manifest's descriptor (media type, digest, size): the `subject` of a referrer.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(self.media_type.clone(), self.digest.clone(), self.size)
    }

    /// `registry/path@sha256:…`.
    pub fn pinned(&self) -> String {
        format!("{}@{}", self.reference.repository(), self.digest)
    }
}

/// Resolve `image` to its manifest digest. The manifest is fetched and its bytes hashed, as
/// cosign does: a registry's `Docker-Content-Digest` header alone is never trusted (it must
/// agree with the bytes, else this fails), and a digest reference is confirmed to name content
/// the registry actually serves (a signature for a manifest it does not have would be an
/// orphan). One GET, the same single round trip a HEAD would cost.
pub async fn resolve_image(
    client: &RegistryClient,
    image: &ImageReference,
) -> Result<ResolvedImage> {
    let reference = image.manifest_reference();
    let fetched = client
        .get_manifest(image.repository(), &reference)
        .await?
        .ok_or_else(|| Error::ImageNotFound(image.to_string()))?;
    // get_manifest refuses bytes that do not hash to an asked digest; this holds by
    // construction, checked again because signing the wrong digest is the worst outcome.
    if let Some(asked) = image.digest() {
        if *asked != fetched.digest {
            return Err(Error::InvalidInput(format!(
                "registry served manifest {} for {image}; refusing to continue with a digest other than the one asked for",
                fetched.digest
            )));
        }
    }
    Ok(ResolvedImage {
        reference: image.with_digest(fetched.digest.clone()),
        digest: fetched.digest,
        media_type: fetched.media_type,
        size: fetched.bytes.len() as u64,
        from_tag: image.digest().is_none(),
    })
}

/// How deep nested indexes are followed before giving up (a cycle or a pathological index).
const MAX_INDEX_DEPTH: usize = 8;

/// cosign's `--recursive`: the image itself, then, if it is an index, every manifest it lists,
/// depth-first, each pinned by digest in the same repository. Children of other media types
/// abort, as in cosign (`unknown mime type`).
pub async fn expand_recursive(
    client: &RegistryClient,
    image: ResolvedImage,
) -> Result<Vec<ResolvedImage>> {
    let mut out = Vec::new();
    let mut stack = vec![(image, 0usize)];
    while let Some((current, depth)) = stack.pop() {
        let is_index = media_types::is_index(&current.media_type);
        out.push(current.clone());
        if !is_index {
            continue;
        }
        if depth >= MAX_INDEX_DEPTH {
            return Err(Error::InvalidInput(format!(
                "{} nests indexes deeper than {MAX_INDEX_DEPTH} levels; refusing to follow further",
                current.pinned()
            )));
        }
        let fetched = client
            .get_manifest(current.repository(), &current.digest.to_string())
            .await?
            .ok_or_else(|| Error::ImageNotFound(current.pinned()))?;
        let index = ImageIndex::from_slice(&fetched.bytes).map_err(|e| {
            Error::InvalidInput(format!(
                "{} is not a readable image index: {e}",
                current.pinned()
            ))
        })?;
        // Push in reverse so children are visited in index order.
        for child in index.manifests.iter().rev() {
            if !media_types::is_image_manifest(&child.media_type)
                && !media_types::is_index(&child.media_type)
            {
                return Err(Error::InvalidInput(format!(
                    "{} lists {} with unknown mime type {:?}",
                    current.pinned(),
                    child.digest,
                    child.media_type
                )));
            }
            let reference = current.reference.with_digest(child.digest.clone());
            stack.push((
                ResolvedImage {
                    reference,
                    digest: child.digest.clone(),
                    media_type: child.media_type.clone(),
                    // The index is content-addressed, so the size it lists is as sure as a HEAD.
                    size: child.size,
                    from_tag: false,
                },
                depth + 1,
            ));
        }
    }
    Ok(out)
}
