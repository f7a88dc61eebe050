//! OCI image manifest, image index and descriptor types.
//!
//! Fields are declared in the order go-containerregistry's `v1.Manifest`/`v1.Descriptor`
//! marshal them, so what we write looks like what cosign writes. Fields we do not know are kept
//! in `extra` and written back, so a rewrite never drops what another tool put there.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::reference::Digest;

/// Media types sigbridge reads or writes.
pub mod media_types {
    /// OCI image manifest.
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// OCI image index.
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// OCI image config.
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    /// Docker image manifest, schema 2.
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// Docker manifest list.
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    /// Docker image config.
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    /// cosign's simple-signing payload layer.
    pub const COSIGN_SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

    /// Manifest media types the client asks for and accepts.
    pub const ACCEPTED_MANIFESTS: [&str; 4] = [
        OCI_MANIFEST,
        OCI_INDEX,
        DOCKER_MANIFEST,
        DOCKER_MANIFEST_LIST,
    ];

    /// Whether `media_type` is an image manifest (not an index).
    pub fn is_image_manifest(media_type: &str) -> bool {
        media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
    }

    /// Whether `media_type` is an index or manifest list.
    pub fn is_index(media_type: &str) -> bool {
        media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
    }
}

/// Why manifest bytes were refused.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not JSON of the expected shape.
    #[error("malformed manifest JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// JSON of the wrong kind.
    #[error("{0}")]
    Unexpected(String),
}

/// A content descriptor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The media type of the referenced content.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its digest.
    pub digest: Digest,
    /// Embedded content, base64 (kept as text so it round-trips byte for byte).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// Alternative download locations.
    #[serde(default, skip_serializing_if = "none_or_empty_vec")]
    pub urls: Option<Vec<String>>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "none_or_empty_map")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Platform (in index entries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Artifact type (OCI 1.1).
    #[serde(default, skip_serializing_if = "none_or_empty_str")]
    pub artifact_type: Option<String>,
    /// Fields this type does not know, kept for the rewrite.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Descriptor {
    /// A descriptor with only the required fields.
    pub fn new(media_type: impl Into<String>, digest: Digest, size: u64) -> Self {
        Self {
            media_type: media_type.into(),
            size,
            digest,
            data: None,
            urls: None,
            annotations: None,
            platform: None,
            artifact_type: None,
            extra: serde_json::Map::new(),
        }
    }

    /// The same descriptor with `annotations` (an empty map means none).
    pub fn with_annotations(mut self, annotations: BTreeMap<String, String>) -> Self {
        self.annotations = (!annotations.is_empty()).then_some(annotations);
        self
    }
}

/// The platform of an index entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// CPU architecture, e.g. `amd64`.
    pub architecture: String,
    /// Operating system, e.g. `linux`.
    pub os: String,
    /// OS version.
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "none_or_empty_str"
    )]
    pub os_version: Option<String>,
    /// OS features.
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "none_or_empty_vec"
    )]
    pub os_features: Option<Vec<String>>,
    /// CPU variant, e.g. `v8`.
    #[serde(default, skip_serializing_if = "none_or_empty_str")]
    pub variant: Option<String>,
    /// CPU features.
    #[serde(default, skip_serializing_if = "none_or_empty_vec")]
    pub features: Option<Vec<String>>,
    /// Fields this type does not know.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// An image manifest (OCI or Docker schema 2; both have this shape).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    /// Always 2.
    pub schema_version: u32,
    /// The manifest's media type; go-containerregistry before v0.9 left it out.
    #[serde(default, skip_serializing_if = "none_or_empty_str")]
    pub media_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// The layers, in order.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// Manifest annotations.
    #[serde(default, skip_serializing_if = "none_or_empty_map")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// The manifest this one refers to (OCI 1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Artifact type (OCI 1.1).
    #[serde(default, skip_serializing_if = "none_or_empty_str")]
    pub artifact_type: Option<String>,
    /// Fields this type does not know.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl ImageManifest {
    /// A schema-2 manifest of `media_type` with `config` and `layers`.
    pub fn new(media_type: impl Into<String>, config: Descriptor, layers: Vec<Descriptor>) -> Self {
        Self {
            schema_version: 2,
            media_type: Some(media_type.into()),
            config,
            layers,
            annotations: None,
            subject: None,
            artifact_type: None,
            extra: serde_json::Map::new(),
        }
    }

    /// Parse manifest bytes, refusing indexes and other kinds of JSON.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ManifestError> {
        let manifest: Self = serde_json::from_slice(bytes)?;
        check_kind(
            manifest.schema_version,
            manifest.media_type.as_deref(),
            media_types::is_image_manifest,
            "an image manifest",
        )?;
        Ok(manifest)
    }

    /// The JSON bytes, fields in go-containerregistry's order, no whitespace.
    pub fn to_vec(&self) -> Vec<u8> {
        // Invariant: every field serialises infallibly (strings, integers, string-keyed maps).
        serde_json::to_vec(self).expect("manifest serialisation cannot fail")
    }
}

/// Schema 2, and a media type (when one is given; old writers omitted it) of the expected kind.
fn check_kind(
    schema_version: u32,
    media_type: Option<&str>,
    is_kind: fn(&str) -> bool,
    kind: &str,
) -> Result<(), ManifestError> {
    if schema_version != 2 {
        return Err(ManifestError::Unexpected(format!(
            "schemaVersion is {schema_version}, expected 2"
        )));
    }
    match media_type {
        Some(mt) if !mt.is_empty() && !is_kind(mt) => Err(ManifestError::Unexpected(format!(
            "mediaType is {mt:?}, not {kind}"
        ))),
        _ => Ok(()),
    }
}

/// An image index (OCI) or manifest list (Docker).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    /// Always 2.
    pub schema_version: u32,
    /// The index's media type (may be absent on read).
    #[serde(default, skip_serializing_if = "none_or_empty_str")]
    pub media_type: Option<String>,
    /// The manifests it lists.
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    /// Index annotations.
    #[serde(default, skip_serializing_if = "none_or_empty_map")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// The manifest this one refers to (OCI 1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Artifact type (OCI 1.1).
    #[serde(default, skip_serializing_if = "none_or_empty_str")]
    pub artifact_type: Option<String>,
    /// Fields this type does not know.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl ImageIndex {
    /// Parse index bytes, refusing image manifests and other kinds of JSON.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ManifestError> {
        let index: Self = serde_json::from_slice(bytes)?;
        check_kind(
            index.schema_version,
            index.media_type.as_deref(),
            media_types::is_index,
            "an index",
        )?;
        Ok(index)
    }

    /// The JSON bytes, fields in go-containerregistry's order, no whitespace.
    pub fn to_vec(&self) -> Vec<u8> {
        // Invariant: every field serialises infallibly (strings, integers, string-keyed maps).
        serde_json::to_vec(self).expect("index serialisation cannot fail")
    }
}

/// The media type of manifest bytes whose `mediaType` field may be missing (old
/// go-containerregistry omitted it): an index has `manifests`, an image manifest `config`.
pub fn sniff_media_type(bytes: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        #[serde(default)]
        media_type: Option<String>,
        #[serde(default)]
        manifests: Option<serde::de::IgnoredAny>,
        #[serde(default)]
        config: Option<serde::de::IgnoredAny>,
    }
    let probe: Probe = serde_json::from_slice(bytes).ok()?;
    match probe.media_type {
        Some(mt) if !mt.is_empty() => Some(mt),
        _ if probe.manifests.is_some() => Some(media_types::OCI_INDEX.to_string()),
        _ if probe.config.is_some() => Some(media_types::OCI_MANIFEST.to_string()),
        _ => None,
    }
}

// serde's `skip_serializing_if` passes `&T`, so these take `&Option<_>`.
#[allow(clippy::ref_option)]
fn none_or_empty_str(v: &Option<String>) -> bool {
    v.as_deref().is_none_or(str::is_empty)
}

#[allow(clippy::ref_option)]
fn none_or_empty_vec<T>(v: &Option<Vec<T>>) -> bool {
    v.as_ref().is_none_or(Vec::is_empty)
}

#[allow(clippy::ref_option)]
fn none_or_empty_map(v: &Option<BTreeMap<String, String>>) -> bool {
    v.as_ref().is_none_or(BTreeMap::is_empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    // From cosign-formats.md §2.2 (fixture key-only): what cosign writes for one signature.
    const COSIGN_MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":233,"digest":"sha256:be321600a5bd794947dce257829a2f08c21b05dde3edf84706faf6f2ae0f5f60"},"layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","size":261,"digest":"sha256:cf482371b51a7633b3f02e29b87fc3f4a18b3f127af61cb114af5f2c04fcdd75","annotations":{"dev.cosignproject.cosign/signature":"MEYCIQDmtamqYPjMg81nqeBhptrPls44aA/r7PwLmspINJY4MwIhANKRpqe2E9UCBtGFdPoz/8jAbaQm4uP4h+IpwKTE6ClR"}}]}"#;

    #[test]
    fn cosign_manifest_round_trips_byte_for_byte() {
        let m = ImageManifest::from_slice(COSIGN_MANIFEST.as_bytes()).unwrap();
        assert_eq!(m.layers.len(), 1);
        assert_eq!(String::from_utf8(m.to_vec()).unwrap(), COSIGN_MANIFEST);
    }

    #[test]
    fn built_manifest_matches_cosign_bytes() {
        let config = Descriptor::new(
            media_types::OCI_CONFIG,
            "sha256:be321600a5bd794947dce257829a2f08c21b05dde3edf84706faf6f2ae0f5f60"
                .parse()
                .unwrap(),
            233,
        );
        let mut ann = BTreeMap::new();
        ann.insert(
            "dev.cosignproject.cosign/signature".to_string(),
            "MEYCIQDmtamqYPjMg81nqeBhptrPls44aA/r7PwLmspINJY4MwIhANKRpqe2E9UCBtGFdPoz/8jAbaQm4uP4h+IpwKTE6ClR".to_string(),
        );
        let layer = Descriptor::new(
            media_types::COSIGN_SIMPLE_SIGNING,
            "sha256:cf482371b51a7633b3f02e29b87fc3f4a18b3f127af61cb114af5f2c04fcdd75"
                .parse()
                .unwrap(),
            261,
        )
        .with_annotations(ann);
        let m = ImageManifest::new(media_types::OCI_MANIFEST, config, vec![layer]);
        assert_eq!(String::from_utf8(m.to_vec()).unwrap(), COSIGN_MANIFEST);
    }

    #[test]
    fn unknown_fields_survive_and_known_fields_keep_ggcr_order() {
        let input = r#"{"annotations":{"b":"2","a":"1"},"layers":[{"digest":"sha256:cf482371b51a7633b3f02e29b87fc3f4a18b3f127af61cb114af5f2c04fcdd75","size":3,"mediaType":"x/y","futureField":{"k":[1,2]},"artifactType":"t/a","urls":["https://u"],"data":"YWJj"}],"config":{"mediaType":"c/c","digest":"sha256:be321600a5bd794947dce257829a2f08c21b05dde3edf84706faf6f2ae0f5f60","size":2},"schemaVersion":2,"zzz":true,"subject":{"mediaType":"m/m","size":1,"digest":"sha256:be321600a5bd794947dce257829a2f08c21b05dde3edf84706faf6f2ae0f5f60"},"artifactType":"app/x"}"#;
        let m = ImageManifest::from_slice(input.as_bytes()).unwrap();
        assert_eq!(m.media_type, None);
        assert_eq!(m.extra.get("zzz"), Some(&serde_json::Value::Bool(true)));
        let out = String::from_utf8(m.to_vec()).unwrap();
        assert_eq!(
            out,
            r#"{"schemaVersion":2,"config":{"mediaType":"c/c","size":2,"digest":"sha256:be321600a5bd794947dce257829a2f08c21b05dde3edf84706faf6f2ae0f5f60"},"layers":[{"mediaType":"x/y","size":3,"digest":"sha256:cf482371b51a7633b3f02e29b87fc3f4a18b3f127af61cb114af5f2c04fcdd75","data":"YWJj","urls":["https://u"],"artifactType":"t/a","futureField":{"k":[1,2]}}],"annotations":{"a":"1","b":"2"},"subject":{"mediaType":"m/m","size":1,"digest":"sha256:be321600a5bd794947dce257829a2f08c21b05dde3edf84706faf6f2ae0f5f60"},"artifactType":"app/x","zzz":true}"#
        );
        // A second round trip is stable.
        let again = ImageManifest::from_slice(out.as_bytes()).unwrap();
        assert_eq!(again, m);
    }

    #[test]
    fn index_round_trip_with_platform() {
        let input = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":7,"digest":"sha256:be321600a5bd794947dce257829a2f08c21b05dde3edf84706faf6f2ae0f5f60","platform":{"architecture":"arm64","os":"linux","variant":"v8","x-extra":1}}]}"#;
        let idx = ImageIndex::from_slice(input.as_bytes()).unwrap();
        let p = idx.manifests[0].platform.as_ref().unwrap();
        assert_eq!(p.variant.as_deref(), Some("v8"));
        assert_eq!(String::from_utf8(idx.to_vec()).unwrap(), input);
        assert!(ImageManifest::from_slice(input.as_bytes()).is_err());
        assert!(ImageIndex::from_slice(COSIGN_MANIFEST.as_bytes()).is_err());
    }

    #[test]
    fn empty_optional_fields_are_skipped() {
        let d = Descriptor::new("a/b", Digest::of(b""), 0).with_annotations(BTreeMap::new());
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            r#"{"mediaType":"a/b","size":0,"digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}"#
        );
    }

    #[test]
    fn sniffing() {
        assert_eq!(
            sniff_media_type(br#"{"schemaVersion":2,"config":{}}"#).as_deref(),
            Some(media_types::OCI_MANIFEST)
        );
        assert_eq!(
            sniff_media_type(br#"{"schemaVersion":2,"manifests":[]}"#).as_deref(),
            Some(media_types::OCI_INDEX)
        );
        assert_eq!(
            sniff_media_type(br#"{"mediaType":"x"}"#).as_deref(),
            Some("x")
        );
        assert_eq!(sniff_media_type(b"nope"), None);
    }
}
