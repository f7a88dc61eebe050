//! The registry's floor for attaching one signature: the requests no signer can avoid, issued
//! directly with plain HTTP (no crypto, no parsing beyond the status) at a given concurrency.
//! The benchmark compares sigbridge against this.
//!
//! Per image: GET the `.sig` manifest (404), upload the payload blob and the config blob
//! (monolithic POST, falling back to POST+PUT), PUT the signature manifest.
//!
//! With `--same-reads` it also makes the two reads sigbridge makes for safety (8 requests): GET
//! the image manifest first (sigbridge checks the image exists and hashes its bytes) and GET the
//! `.sig` manifest again after the PUT (the confirmation read that repairs a concurrent writer's
//! lost update). Comparing sigbridge with both floors separates the cost of those reads from
//! anything else sigbridge does.
//!
//! Usage: `registry-floor HOST:PORT JOBS [--same-reads] < digests` where each stdin line is
//! `REPO@sha256:HEX` (repository path without the host). Prints `floor: N images in S s (R
//! images/s)`.

use std::io::BufRead as _;
use std::time::Instant;

use futures::StreamExt as _;
use sha2::{Digest as _, Sha256};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let host = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: registry-floor HOST:PORT JOBS < list"))?;
    let jobs: usize = args.next().map(|j| j.parse()).transpose()?.unwrap_or(16);
    let same_reads = match args.next().as_deref() {
        None => false,
        Some("--same-reads") => true,
        Some(other) => anyhow::bail!("unknown argument {other:?} (expected --same-reads)"),
    };
    let lines: Vec<String> = std::io::stdin().lock().lines().collect::<Result<_, _>>()?;
    let client = reqwest::Client::new();
    let started = Instant::now();
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(lines.iter())
        .map(|line| attach_one(&client, &host, line, same_reads))
        .buffer_unordered(jobs)
        .collect()
        .await;
    let failures = results.iter().filter(|r| r.is_err()).count();
    if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
        eprintln!("first failure: {e:#}");
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "floor: {} images in {secs:.2} s ({:.1} images/s), {failures} failed",
        lines.len(),
        lines.len() as f64 / secs
    );
    Ok(())
}

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

async fn attach_one(
    client: &reqwest::Client,
    host: &str,
    line: &str,
    same_reads: bool,
) -> anyhow::Result<()> {
    let (repo, image_digest) = line
        .split_once('@')
        .ok_or_else(|| anyhow::anyhow!("bad line {line}"))?;
    let hex = image_digest.trim_start_matches("sha256:");
    let tag = format!("floor-sha256-{hex}.sig");
    let base = format!("http://{host}/v2/{repo}");
    if same_reads {
        let resp = client
            .get(format!("{base}/manifests/{image_digest}"))
            .header("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json")
            .send()
            .await?;
        anyhow::ensure!(resp.status().is_success(), "image GET: {}", resp.status());
        let _ = resp.bytes().await?;
    }
    let resp = client.get(format!("{base}/manifests/{tag}")).send().await?;
    let _ = resp.bytes().await?;
    let payload = format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"{host}/{repo}"}},"image":{{"docker-manifest-digest":"{image_digest}"}},"type":"cosign container image signature"}},"optional":null}}"#
    );
    let payload_digest = digest(payload.as_bytes());
    upload(client, &base, payload.into_bytes(), &payload_digest).await?;
    let config = format!(
        r#"{{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{{"created":"0001-01-01T00:00:00Z"}}],"os":"","rootfs":{{"type":"layers","diff_ids":["{payload_digest}"]}},"config":{{}}}}"#
    );
    let config_digest = digest(config.as_bytes());
    let config_len = config.len();
    upload(client, &base, config.into_bytes(), &config_digest).await?;
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","size":{config_len},"digest":"{config_digest}"}},"layers":[{{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","size":200,"digest":"{payload_digest}","annotations":{{"dev.cosignproject.cosign/signature":"MEUCIQ=="}}}}]}}"#
    );
    let resp = client
        .put(format!("{base}/manifests/{tag}"))
        .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest)
        .send()
        .await?;
    anyhow::ensure!(
        resp.status().is_success(),
        "manifest PUT: {}",
        resp.status()
    );
    if same_reads {
        // docker-registry answers 404 for an OCI manifest unless the client accepts it.
        let resp = client
            .get(format!("{base}/manifests/{tag}"))
            .header("Accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
            .await?;
        anyhow::ensure!(resp.status().is_success(), "confirm GET: {}", resp.status());
        let _ = resp.bytes().await?;
    }
    Ok(())
}

async fn upload(
    client: &reqwest::Client,
    base: &str,
    body: Vec<u8>,
    digest: &str,
) -> anyhow::Result<()> {
    let resp = client
        .post(format!("{base}/blobs/uploads/?digest={digest}"))
        .header("Content-Type", "application/octet-stream")
        .body(body.clone())
        .send()
        .await?;
    match resp.status().as_u16() {
        201 => Ok(()),
        202 => {
            let location = resp
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| anyhow::anyhow!("no Location"))?
                .to_string();
            let url = reqwest::Url::parse(&format!("{base}/"))?.join(&location)?;
            let sep = if url.query().is_some() { '&' } else { '?' };
            let resp = client
                .put(format!("{url}{sep}digest={digest}"))
                .body(body)
                .send()
                .await?;
            anyhow::ensure!(resp.status().is_success(), "blob PUT: {}", resp.status());
            Ok(())
        }
        s => anyhow::bail!("blob POST: {s}"),
    }
}
