//! Smoke test of the registry client against a real CNCF distribution (`docker-registry`)
//! on 127.0.0.1 over plain HTTP, anonymous. The shared testkit covers TLS and auth modes.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sigbridge::reference::{Digest, Repository};
use sigbridge::registry::manifest::{media_types, Descriptor, ImageManifest};
use sigbridge::registry::{RegistryClient, RegistryOptions};

const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// A `docker-registry serve` process, killed on drop.
struct RealRegistry {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for RealRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl RealRegistry {
    fn start() -> Self {
        assert!(
            Path::new(REGISTRY_BIN).exists(),
            "{REGISTRY_BIN} is missing: apt-get install -y docker-registry"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let reg = RealRegistry {
            child,
            addr,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&reg.addr).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        reg
    }
}

#[tokio::test]
async fn push_and_read_back_on_distribution() {
    let reg = RealRegistry::start();
    let client = RegistryClient::new(RegistryOptions {
        docker_config: Some("/nonexistent/sigbridge-test/config.json".into()),
        ..Default::default()
    })
    .unwrap();
    let repo = Repository::parse(&format!("{}/smoke/app", reg.addr)).unwrap();

    let layer = Bytes::from_static(b"{\"critical\":{}}");
    let layer_digest = Digest::of(&layer);
    let config = Bytes::from_static(b"{\"architecture\":\"\",\"os\":\"\",\"config\":{},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}");
    let config_digest = Digest::of(&config);

    assert!(client.get_manifest(&repo, "v1").await.unwrap().is_none());
    assert!(client.head_manifest(&repo, "v1").await.unwrap().is_none());
    assert!(!client.blob_exists(&repo, &layer_digest).await.unwrap());

    client
        .put_blob(&repo, &layer_digest, layer.clone())
        .await
        .unwrap();
    client
        .put_blob(&repo, &config_digest, config.clone())
        .await
        .unwrap();
    // Second upload is a no-op.
    client
        .put_blob(&repo, &layer_digest, layer.clone())
        .await
        .unwrap();
    assert!(client.blob_exists(&repo, &layer_digest).await.unwrap());
    assert_eq!(
        client.get_blob(&repo, &layer_digest, 1024).await.unwrap(),
        layer
    );

    let manifest = ImageManifest::new(
        media_types::OCI_MANIFEST,
        Descriptor::new(media_types::OCI_CONFIG, config_digest, config.len() as u64),
        vec![Descriptor::new(
            media_types::COSIGN_SIMPLE_SIGNING,
            layer_digest.clone(),
            layer.len() as u64,
        )],
    );
    let bytes = Bytes::from(manifest.to_vec());
    let digest = client
        .put_manifest(&repo, "v1", media_types::OCI_MANIFEST, bytes.clone())
        .await
        .unwrap();
    assert_eq!(digest, Digest::of(&bytes));

    let head = client.head_manifest(&repo, "v1").await.unwrap().unwrap();
    assert_eq!(head.digest, digest);
    assert_eq!(head.media_type, media_types::OCI_MANIFEST);
    assert_eq!(head.size, bytes.len() as u64);

    let by_digest = client
        .get_manifest(&repo, &digest.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_digest.bytes, bytes);
    assert_eq!(by_digest.media_type, media_types::OCI_MANIFEST);
    let parsed = ImageManifest::from_slice(&by_digest.bytes).unwrap();
    assert_eq!(parsed, manifest);

    // Pushing by digest works too, and a missing blob is a clear registry error.
    client
        .put_manifest(&repo, &digest.to_string(), media_types::OCI_MANIFEST, bytes)
        .await
        .unwrap();
    let orphan = ImageManifest::new(
        media_types::OCI_MANIFEST,
        Descriptor::new(media_types::OCI_CONFIG, Digest::of(b"absent"), 6),
        vec![],
    );
    let err = client
        .put_manifest(
            &repo,
            "orphan",
            media_types::OCI_MANIFEST,
            Bytes::from(orphan.to_vec()),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("MANIFEST_BLOB_UNKNOWN"), "{err}");
}
