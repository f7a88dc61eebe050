//! Writing cosign signatures into the registry: read the `sha256-<hex>.sig` manifest, append one
//! layer per new signature, keep every existing layer and annotation, skip duplicates, upload the
//! blobs, then write the manifest.
//!
//! cosign's plain read-append-write loses a signature when two writers race (cosign#2432). Here
//! every write is followed by a re-read; any layer we ever saw at the tag that is missing (ours
//! or someone else's) is merged back and the manifest rewritten, with jittered backoff.

use std::collections::BTreeMap;
use std::time::Duration;

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
const MAX_WRITE_ROUNDS: u32 = 8;

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
    let repo = &location.repository;
    let existing = read_signature_manifest(client, location).await?;
    let docker_types = existing
        .as_ref()
        .is_some_and(|m| m.media_type.as_deref() == Some(media_types::DOCKER_MANIFEST));

    let mut seen: Vec<Descriptor> = existing
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
        client
            .put_blob(repo, &layer.digest, Bytes::from(sig.payload.clone()))
            .await?;
        ours.push(layer);
        outcomes.push(AttachOutcome::Attached);
    }
    if ours.is_empty() {
        return Ok(outcomes);
    }

    let mut round = 0;
    loop {
        round += 1;
        let layers = merge_layers(&seen, &ours);
        if layers.len() > MAX_SIGNATURE_LAYERS {
            return Err(Error::UnsafeSignatureManifest(format!(
                "{location} would hold {} signatures; cosign refuses to read more than {MAX_SIGNATURE_LAYERS}",
                layers.len()
            )));
        }
        write_manifest(client, location, &layers, docker_types).await?;

        // Give a racing writer time to land its write, then check nothing we know of vanished.
        tokio::time::sleep(jitter(round)).await;
        let now = read_signature_manifest(client, location).await?;
        let now_layers = now.map(|m| m.layers).unwrap_or_default();
        let missing = layers
            .iter()
            .any(|l| !now_layers.iter().any(|n| same_layer(n, l)));
        // Keep everything observed so a layer another writer added is never dropped by us.
        for l in now_layers {
            if !seen.iter().any(|s| same_layer(s, &l)) && !ours.iter().any(|o| same_layer(o, &l)) {
                seen.push(l);
            }
        }
        if !missing {
            return Ok(outcomes);
        }
        if round >= MAX_WRITE_ROUNDS {
            return Err(Error::UnsafeSignatureManifest(format!(
                "{location} kept losing signatures to concurrent writers after {round} attempts; run again"
            )));
        }
        tracing::info!(%location, round, "a concurrent writer replaced the signature manifest; merging and rewriting");
    }
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
        .put_blob(&location.repository, &config_digest, Bytes::from(config))
        .await?;
    let manifest = ImageManifest::new(
        manifest_type,
        Descriptor::new(config_type, config_digest, config_size),
        layers.to_vec(),
    );
    let body = manifest.to_vec();
    client
        .put_manifest(
            &location.repository,
            &location.tag,
            manifest_type,
            Bytes::from(body),
        )
        .await?;
    Ok(())
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

fn jitter(round: u32) -> Duration {
    use rand::Rng;
    let base = 50u64 * u64::from(round.min(6));
    Duration::from_millis(base + rand::thread_rng().gen_range(0..=100))
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
