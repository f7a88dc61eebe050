//! An in-memory registry for the stores' unit tests: it can play a racing writer, drop writes,
//! briefly not see blobs, and answer the referrers API or not.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;

use super::{RegistryOps, SignatureLocation};
use crate::reference::{Digest, Repository};
use crate::registry::manifest::{media_types, Descriptor, ImageIndex, ImageManifest};
use crate::registry::{FetchedManifest, RegistryError};

/// Runs on the stored manifests right after a PUT of ours landed, once.
pub type Hook = Box<dyn FnOnce(&mut HashMap<String, Bytes>) + Send>;

#[derive(Default)]
pub struct State {
    /// Manifests by `repository:tag` or `repository:sha256:…`.
    pub manifests: HashMap<String, Bytes>,
    pub blobs: HashMap<Digest, Bytes>,
    pub after_next_put: Option<Hook>,
    /// PUTs to answer 201 without storing (a write lost on the registry's side).
    pub drop_puts: u32,
    /// PUTs by tag (not by digest) to answer 201 without storing.
    pub drop_tag_puts: u32,
    /// PUTs to refuse with 400 MANIFEST_BLOB_UNKNOWN.
    pub blob_unknown_puts: u32,
    pub puts: u32,
    /// How many layers (or index entries) PUTs removed from a tag (lost updates that happened).
    pub layers_lost: usize,
    /// Whether the registry implements the OCI 1.1 referrers API.
    pub referrers_api: bool,
    /// Referrers API lookups asked (answered or not).
    pub referrers_lookups: u32,
    /// Every blob upload, in order.
    pub uploads: Vec<Digest>,
}

#[derive(Clone, Default)]
pub struct FakeRegistry(Arc<Mutex<State>>);

impl FakeRegistry {
    pub fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap()
    }

    pub fn layers(&self, location: &SignatureLocation) -> Vec<Descriptor> {
        self.state()
            .manifests
            .get(&location.to_string())
            .map(|b| ImageManifest::from_slice(b).unwrap().layers)
            .unwrap_or_default()
    }

    pub fn put_layers(
        &self,
        location: &SignatureLocation,
        media_type: &str,
        layers: Vec<Descriptor>,
    ) {
        let config = Descriptor::new(media_types::OCI_CONFIG, Digest::of(b"{}"), 2);
        let m = ImageManifest::new(media_type, config, layers);
        self.state()
            .manifests
            .insert(location.to_string(), Bytes::from(m.to_vec()));
    }

    /// The entries of the index at `location`.
    pub fn index_entries(&self, location: &SignatureLocation) -> Vec<Descriptor> {
        self.state()
            .manifests
            .get(&location.to_string())
            .map(|b| ImageIndex::from_slice(b).unwrap().manifests)
            .unwrap_or_default()
    }
}

/// Entries of a manifest or index body: layers or listed manifests.
fn entries(body: &[u8]) -> Vec<Descriptor> {
    if let Ok(m) = ImageManifest::from_slice(body) {
        return m.layers;
    }
    ImageIndex::from_slice(body)
        .map(|i| i.manifests)
        .unwrap_or_default()
}

fn same_entry(a: &Descriptor, b: &Descriptor) -> bool {
    a.digest == b.digest && a.annotations == b.annotations
}

#[async_trait]
impl RegistryOps for FakeRegistry {
    async fn get_manifest(
        &self,
        repo: &Repository,
        reference: &str,
    ) -> Result<Option<FetchedManifest>, RegistryError> {
        let got = self
            .state()
            .manifests
            .get(&format!("{repo}:{reference}"))
            .cloned();
        // Let other writers run between this read and whatever the caller does next.
        tokio::task::yield_now().await;
        Ok(got.map(|bytes| FetchedManifest {
            media_type: crate::registry::manifest::sniff_media_type(&bytes).unwrap_or_default(),
            digest: Digest::of(&bytes),
            bytes,
        }))
    }

    async fn put_manifest(
        &self,
        repo: &Repository,
        reference: &str,
        _media_type: &str,
        body: Bytes,
    ) -> Result<Digest, RegistryError> {
        tokio::task::yield_now().await;
        let key = format!("{repo}:{reference}");
        let mut s = self.state();
        s.puts += 1;
        if s.blob_unknown_puts > 0 {
            s.blob_unknown_puts -= 1;
            return Err(RegistryError::Status {
                method: "PUT".into(),
                url: key,
                status: 400,
                detail: ": MANIFEST_BLOB_UNKNOWN: blob unknown to registry".into(),
                codes: vec![crate::registry::ErrorCode::ManifestBlobUnknown],
            });
        }
        let digest = Digest::of(&body);
        if s.drop_puts > 0 {
            s.drop_puts -= 1;
            return Ok(digest);
        }
        if s.drop_tag_puts > 0 && !reference.contains(':') {
            s.drop_tag_puts -= 1;
            return Ok(digest);
        }
        if let Ok(new) = ImageManifest::from_slice(&body) {
            for l in new.layers.iter().chain([&new.config]) {
                assert!(
                    s.blobs.contains_key(&l.digest),
                    "manifest names a blob never uploaded"
                );
            }
        } else {
            let index = ImageIndex::from_slice(&body).expect("a manifest or an index");
            for m in &index.manifests {
                assert!(
                    s.manifests.contains_key(&format!("{repo}:{}", m.digest)),
                    "index names a manifest never pushed"
                );
            }
        }
        let new = entries(&body);
        if let Some(old) = s.manifests.get(&key) {
            s.layers_lost += entries(old)
                .iter()
                .filter(|l| !new.iter().any(|n| same_entry(n, l)))
                .count();
        }
        s.manifests.insert(key, body);
        if let Some(hook) = s.after_next_put.take() {
            hook(&mut s.manifests);
        }
        Ok(digest)
    }

    async fn upload_blob(
        &self,
        _repo: &Repository,
        digest: &Digest,
        body: Bytes,
    ) -> Result<(), RegistryError> {
        assert_eq!(Digest::of(&body), *digest);
        let mut s = self.state();
        s.uploads.push(digest.clone());
        s.blobs.insert(digest.clone(), body);
        Ok(())
    }

    async fn get_blob_sized(
        &self,
        _repo: &Repository,
        digest: &Digest,
        _size: u64,
    ) -> Result<Bytes, RegistryError> {
        self.state()
            .blobs
            .get(digest)
            .cloned()
            .ok_or_else(|| RegistryError::NotFound {
                what: digest.to_string(),
            })
    }

    async fn referrers(
        &self,
        repo: &Repository,
        subject: &Digest,
    ) -> Result<Option<ImageIndex>, RegistryError> {
        let mut s = self.state();
        s.referrers_lookups += 1;
        if !s.referrers_api {
            return Ok(None);
        }
        let prefix = format!("{repo}:sha256:");
        let mut manifests: Vec<Descriptor> = s
            .manifests
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .filter_map(|(_, body)| {
                let m = ImageManifest::from_slice(body).ok()?;
                (m.subject.as_ref()?.digest == *subject).then(|| {
                    let mut d = Descriptor::new(
                        media_types::OCI_MANIFEST,
                        Digest::of(body),
                        body.len() as u64,
                    );
                    d.artifact_type = m.artifact_type.clone();
                    d.annotations = m.annotations.clone();
                    d
                })
            })
            .collect();
        manifests.sort_by_key(|e| e.digest.to_string());
        Ok(Some(ImageIndex {
            schema_version: 2,
            media_type: Some(media_types::OCI_INDEX.to_string()),
            manifests,
            annotations: None,
            subject: None,
            artifact_type: None,
            extra: serde_json::Map::new(),
        }))
    }
}
