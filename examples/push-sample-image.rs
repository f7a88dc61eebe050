//! Push a tiny single-layer OCI image to a registry, without Docker, for demos and benchmarks.
//!
//! Usage: `cargo run --example push-sample-image -- 127.0.0.1:5000/demo/hello:1.0 [COUNT]`
//! With COUNT > 1, pushes COUNT distinct images tagged `<tag>-<n>` and prints each digest.
//! With `SAMPLE_IMAGE_SEED=<u64>` the images are the same on every run with that seed, so the
//! benchmark can push identical images into a fresh repository per contender.

use bytes::Bytes;
use futures::StreamExt as _;
use sigbridge::reference::{Digest, ImageReference};
use sigbridge::registry::{RegistryClient, RegistryOptions};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let target = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: push-sample-image REGISTRY/REPO:TAG [COUNT]"))?;
    let count: usize = args.next().map(|c| c.parse()).transpose()?.unwrap_or(1);
    let reference = ImageReference::parse(&target)?;
    let tag = reference.tag().unwrap_or("latest").to_string();
    let seed: Option<u64> = std::env::var("SAMPLE_IMAGE_SEED")
        .ok()
        .map(|s| s.parse())
        .transpose()
        .map_err(|e| anyhow::anyhow!("SAMPLE_IMAGE_SEED must be an unsigned integer: {e}"))?;
    let client = RegistryClient::new(RegistryOptions::default())?;
    let pushes = futures::stream::iter(0..count)
        .map(|n| {
            let (client, reference) = (&client, &reference);
            let tag = if count == 1 {
                tag.clone()
            } else {
                format!("{tag}-{n}")
            };
            async move {
                let digest = push_one(client, reference, &tag, n, seed).await?;
                anyhow::Ok(format!("{}:{tag}@{digest}", reference.repository()))
            }
        })
        .buffered(16);
    let mut pushes = std::pin::pin!(pushes);
    while let Some(line) = pushes.next().await {
        println!("{}", line?);
    }
    Ok(())
}

async fn push_one(
    client: &RegistryClient,
    reference: &ImageReference,
    tag: &str,
    n: usize,
    seed: Option<u64>,
) -> anyhow::Result<Digest> {
    let repo = reference.repository();
    let nonce: u64 = seed.unwrap_or_else(rand::random);
    let content = format!("hello from sigbridge's sample image {n} ({nonce:016x})\n");
    let layer = tar_with_one_file("hello.txt", content.as_bytes());
    let layer_digest = Digest::of(&layer);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/cat", "/hello.txt"]},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest.to_string()]},
    }))?;
    let config_digest = Digest::of(&config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": config.len(), "digest": config_digest.to_string()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "size": layer.len(), "digest": layer_digest.to_string()}],
    }))?;
    client
        .put_blob(repo, &layer_digest, Bytes::from(layer))
        .await?;
    client
        .put_blob(repo, &config_digest, Bytes::from(config))
        .await?;
    Ok(client
        .put_manifest(
            repo,
            tag,
            "application/vnd.oci.image.manifest.v1+json",
            Bytes::from(manifest),
        )
        .await?)
}

/// A POSIX ustar archive holding one regular file.
fn tar_with_one_file(name: &str, data: &[u8]) -> Vec<u8> {
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    let mut field = |offset: usize, width: usize, value: u64| {
        let text = format!("{value:0w$o}\0", w = width - 1);
        header[offset..offset + width].copy_from_slice(text.as_bytes());
    };
    field(100, 8, 0o644); // mode
    field(108, 8, 0); // uid
    field(116, 8, 0); // gid
    field(124, 12, data.len() as u64); // size
    field(136, 12, 0); // mtime
    header[156] = b'0'; // regular file
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    // The checksum is computed with its own field as spaces.
    header[148..156].copy_from_slice(b"        ");
    let sum: u64 = header.iter().map(|b| u64::from(*b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut out = header.to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out.extend_from_slice(&[0u8; 1024]);
    out
}
