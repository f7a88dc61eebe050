//! Small random OCI images, written as OCI layouts and pushed with the real skopeo (so the kit
//! does not depend on sigbridge's registry client), or over plain HTTP for bulk pushes.

use std::path::Path;

use rand_core::{OsRng, RngCore};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::http;
use crate::registry::Registry;
use crate::tools::{OutputExt, Tools};

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config media type.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Uncompressed OCI layer media type.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// One single-platform image: manifest, config and one uncompressed layer, all in memory.
#[derive(Debug, Clone)]
pub struct SampleImage {
    /// Manifest bytes exactly as pushed.
    pub manifest: Vec<u8>,
    /// Digest of `manifest`.
    pub digest: String,
    /// Config blob.
    pub config: Vec<u8>,
    /// Layer blob (a tar holding one file of random bytes).
    pub layer: Vec<u8>,
    /// `(os, architecture)`.
    pub platform: (String, String),
}

impl SampleImage {
    /// A fresh image whose layer holds 256 random bytes, so every call has a new digest.
    pub fn random(os: &str, arch: &str) -> Self {
        let mut content = [0u8; 256];
        OsRng.fill_bytes(&mut content);
        let layer = tar_with_one_file("random.bin", &content);
        let layer_digest = sha256_digest(&layer);
        let config = json!({
            "architecture": arch,
            "os": os,
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
            "config": {},
        })
        .to_string()
        .into_bytes();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256_digest(&config), "size": config.len()},
            "layers": [{"mediaType": OCI_LAYER_TAR, "digest": layer_digest, "size": layer.len()}],
        })
        .to_string()
        .into_bytes();
        Self {
            digest: sha256_digest(&manifest),
            manifest,
            config,
            layer,
            platform: (os.to_owned(), arch.to_owned()),
        }
    }

    /// The config and layer blobs as `(digest, bytes)`.
    pub fn blobs(&self) -> [(String, &[u8]); 2] {
        [
            (sha256_digest(&self.config), &self.config),
            (sha256_digest(&self.layer), &self.layer),
        ]
    }
}

/// A ustar archive with one regular file: just enough for a valid layer.
fn tar_with_one_file(name: &str, content: &[u8]) -> Vec<u8> {
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    let mut put =
        |at: usize, field: &str| header[at..at + field.len()].copy_from_slice(field.as_bytes());
    put(100, "0000644\0"); // mode
    put(108, "0000000\0"); // uid
    put(116, "0000000\0"); // gid
    put(124, &format!("{:011o}\0", content.len())); // size
    put(136, "00000000000\0"); // mtime
    put(148, "        "); // checksum is computed with this field as spaces
    put(156, "0"); // regular file
    put(257, "ustar\0");
    put(263, "00");
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());

    let mut tar = header.to_vec();
    tar.extend_from_slice(content);
    tar.resize(tar.len().div_ceil(512) * 512, 0);
    // Two zero blocks end the archive.
    tar.resize(tar.len() + 1024, 0);
    tar
}

fn write_blob(layout: &Path, bytes: &[u8]) {
    let digest = sha256_digest(bytes);
    let hex = digest.trim_start_matches("sha256:");
    std::fs::write(layout.join("blobs/sha256").join(hex), bytes).expect("write OCI blob");
}

/// Writes an OCI image layout at `dir` whose `index.json` names `top` (media type, bytes) as
/// `tag`; `images` supplies the blobs.
fn write_layout(dir: &Path, tag: &str, top: (&str, &[u8]), images: &[SampleImage]) {
    std::fs::create_dir_all(dir.join("blobs/sha256")).expect("create OCI layout");
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("write oci-layout");
    for image in images {
        write_blob(dir, &image.manifest);
        write_blob(dir, &image.config);
        write_blob(dir, &image.layer);
    }
    write_blob(dir, top.1);
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": top.0,
            "digest": sha256_digest(top.1),
            "size": top.1.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    });
    std::fs::write(dir.join("index.json"), index.to_string()).expect("write index.json");
}

/// Writes `image` as an OCI layout in `dir` under `tag`.
pub fn write_oci_layout(dir: &Path, tag: &str, image: &SampleImage) {
    write_layout(
        dir,
        tag,
        (OCI_MANIFEST, &image.manifest),
        std::slice::from_ref(image),
    );
}

/// `skopeo copy --preserve-digests [--all] oci:DIR:TAG docker://HOST/REPO:TAG`, checking that
/// the digest skopeo reports equals `expected`.
fn skopeo_push(reg: &Registry, layout: &Path, repo: &str, tag: &str, all: bool, expected: &str) {
    let mut skopeo = Tools::skopeo();
    let digest_file = skopeo.home().join("digest");
    skopeo.arg("copy").arg("--preserve-digests");
    if all {
        skopeo.arg("--all");
    }
    skopeo
        .args(reg.skopeo_dest_args())
        .arg("--digestfile")
        .arg(&digest_file)
        .arg(format!("oci:{}:{tag}", layout.display()))
        .arg(format!("docker://{}", reg.image_ref(repo, tag)));
    let out = skopeo.run();
    assert!(
        out.status.success(),
        "skopeo push failed\n{}\n--- registry log ---\n{}",
        out.describe(),
        reg.log()
    );
    let pushed = std::fs::read_to_string(&digest_file).expect("skopeo wrote --digestfile");
    assert_eq!(pushed.trim(), expected, "skopeo changed the manifest");
}

/// Pushes a fresh random linux/amd64 image as `repo:tag` with skopeo; returns its manifest
/// digest (`sha256:...`).
pub fn push_image(reg: &Registry, repo: &str, tag: &str) -> String {
    let image = SampleImage::random("linux", "amd64");
    push_sample(reg, repo, tag, &image);
    image.digest
}

/// Pushes a given image as `repo:tag` with skopeo.
pub fn push_sample(reg: &Registry, repo: &str, tag: &str, image: &SampleImage) {
    let layout = tempfile::tempdir().expect("create layout dir");
    write_oci_layout(layout.path(), tag, image);
    skopeo_push(reg, layout.path(), repo, tag, false, &image.digest);
}

/// Pushes a multi-platform image index as `repo:tag` (`skopeo copy --all`), one fresh random
/// image per `(os, arch)`; returns the index digest and the children's digests, in order.
pub fn push_index(
    reg: &Registry,
    repo: &str,
    tag: &str,
    platforms: &[(&str, &str)],
) -> (String, Vec<String>) {
    let images: Vec<SampleImage> = platforms
        .iter()
        .map(|(os, arch)| SampleImage::random(os, arch))
        .collect();
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": images.iter().map(|i| json!({
            "mediaType": OCI_MANIFEST,
            "digest": i.digest,
            "size": i.manifest.len(),
            "platform": {"os": i.platform.0, "architecture": i.platform.1},
        })).collect::<Vec<_>>(),
    })
    .to_string()
    .into_bytes();
    let index_digest = sha256_digest(&index);
    let layout = tempfile::tempdir().expect("create layout dir");
    write_layout(layout.path(), tag, (OCI_INDEX, &index), &images);
    skopeo_push(reg, layout.path(), repo, tag, true, &index_digest);
    (index_digest, images.into_iter().map(|i| i.digest).collect())
}

/// Pushes a fresh random image with plain HTTP requests (no skopeo process), for bulk setups
/// such as benchmarks. Works with every mode; bearer mode fetches one token per call.
pub fn push_image_http(reg: &Registry, repo: &str, tag: &str) -> String {
    push_images_http(reg, &[(repo, tag)]).remove(0)
}

/// Pushes one fresh random image per `(repo, tag)` over one HTTP client; returns the digests.
pub fn push_images_http(reg: &Registry, targets: &[(&str, &str)]) -> Vec<String> {
    let base = reg.url();
    let ca = reg.ca_pem_path().map(Path::to_path_buf);
    // One Authorization value per repository (a bearer token is scoped to one).
    let mut auth_by_repo = std::collections::HashMap::new();
    let jobs: Vec<(String, String, Option<String>, SampleImage)> = targets
        .iter()
        .map(|(repo, tag)| {
            let auth = auth_by_repo
                .entry(repo.to_string())
                .or_insert_with(|| reg.authorization(repo))
                .clone();
            (
                repo.to_string(),
                tag.to_string(),
                auth,
                SampleImage::random("linux", "amd64"),
            )
        })
        .collect();
    http::off_runtime(move || {
        let client = http::client(ca.as_deref());
        jobs.iter()
            .map(|(repo, tag, auth, image)| {
                http_push(&client, &base, repo, tag, auth.as_deref(), image);
                image.digest.clone()
            })
            .collect()
    })
}

pub(crate) fn http_push(
    client: &reqwest::blocking::Client,
    base: &str,
    repo: &str,
    tag: &str,
    auth: Option<&str>,
    image: &SampleImage,
) {
    let with_auth = |req: reqwest::blocking::RequestBuilder| match auth {
        Some(a) => req.header(reqwest::header::AUTHORIZATION, a),
        None => req,
    };
    for (digest, bytes) in image.blobs() {
        let start = with_auth(client.post(format!("{base}/v2/{repo}/blobs/uploads/")))
            .send()
            .expect("start blob upload");
        assert_eq!(
            start.status().as_u16(),
            202,
            "start upload: {:?}",
            start.text()
        );
        let location = start.headers()[reqwest::header::LOCATION]
            .to_str()
            .expect("Location is ASCII")
            .to_owned();
        let location = if location.starts_with('/') {
            format!("{base}{location}")
        } else {
            location
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let put = with_auth(client.put(format!("{location}{sep}digest={digest}")))
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .expect("finish blob upload");
        assert_eq!(put.status().as_u16(), 201, "blob PUT: {:?}", put.text());
    }
    let put = with_auth(client.put(format!("{base}/v2/{repo}/manifests/{tag}")))
        .header(reqwest::header::CONTENT_TYPE, OCI_MANIFEST)
        .body(image.manifest.clone())
        .send()
        .expect("put manifest");
    assert_eq!(put.status().as_u16(), 201, "manifest PUT: {:?}", put.text());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_header_checksum_and_padding() {
        let tar = tar_with_one_file("a", b"hello");
        assert_eq!(tar.len(), 512 + 512 + 1024);
        let stored = std::str::from_utf8(&tar[148..154]).unwrap();
        let mut header = tar[..512].to_vec();
        header[148..156].fill(b' ');
        let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
        assert_eq!(u32::from_str_radix(stored, 8).unwrap(), sum);
        assert_eq!(&tar[512..517], b"hello");
    }
}
