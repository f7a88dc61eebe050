//! The registry client against real `docker-registry` processes from the shared testkit in
//! its TLS, Basic and bearer-token modes.

use std::time::Duration;

use bytes::Bytes;
use secrecy::SecretString;
use sigbridge::reference::{Digest, Repository};
use sigbridge::registry::manifest::{media_types, Descriptor, ImageManifest};
use sigbridge::registry::{RegistryClient, RegistryError, RegistryOptions};
use sigbridge_testkit::Registry;

fn options() -> RegistryOptions {
    RegistryOptions {
        docker_config: Some("/nonexistent/sigbridge-test/config.json".into()),
        request_timeout: Duration::from_secs(30),
        ..Default::default()
    }
}

async fn start(f: fn() -> Registry) -> Registry {
    // The kit starts processes and waits for them synchronously.
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// Push one blob and a manifest naming it, read both back; returns the manifest digest.
async fn round_trip(client: &RegistryClient, repo: &Repository) -> Result<Digest, RegistryError> {
    let blob = Bytes::from(format!("payload for {repo}"));
    let blob_digest = Digest::of(&blob);
    client.put_blob(repo, &blob_digest, blob.clone()).await?;
    let manifest = ImageManifest::new(
        media_types::OCI_MANIFEST,
        Descriptor::new(
            media_types::OCI_CONFIG,
            blob_digest.clone(),
            blob.len() as u64,
        ),
        vec![Descriptor::new(
            media_types::COSIGN_SIMPLE_SIGNING,
            blob_digest.clone(),
            blob.len() as u64,
        )],
    );
    let bytes = Bytes::from(manifest.to_vec());
    let digest = client
        .put_manifest(repo, "t1", media_types::OCI_MANIFEST, bytes.clone())
        .await?;
    let head = client.head_manifest(repo, "t1").await?.expect("tag exists");
    assert_eq!(head.digest, digest);
    let got = client
        .get_manifest(repo, &digest.to_string())
        .await?
        .expect("digest exists");
    assert_eq!(got.bytes, bytes);
    assert_eq!(client.get_blob(repo, &blob_digest, 1 << 20).await?, blob);
    Ok(digest)
}

#[tokio::test]
async fn tls_needs_the_ca_and_never_falls_back() {
    let reg = start(Registry::tls).await;
    let repo = Repository::parse(&format!("{}/modes/tls", reg.host())).unwrap();

    let err = RegistryClient::new(options())
        .unwrap()
        .head_manifest(&repo, "t1")
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Certificate { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("--registry-cacert"), "{msg}");
    assert!(msg.contains(&reg.host()), "{msg}");

    let with_ca = RegistryClient::new(RegistryOptions {
        ca_files: vec![reg.ca_pem_path().unwrap().to_path_buf()],
        ..options()
    })
    .unwrap();
    round_trip(&with_ca, &repo).await.unwrap();

    let insecure = RegistryClient::new(RegistryOptions {
        insecure_skip_tls_verify: true,
        ..options()
    })
    .unwrap();
    assert!(insecure.head_manifest(&repo, "t1").await.unwrap().is_some());
}

#[tokio::test]
async fn bad_ca_file_is_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, "not a certificate").unwrap();
    let err = RegistryClient::new(RegistryOptions {
        ca_files: vec![path],
        ..options()
    })
    .unwrap_err();
    assert!(matches!(err, RegistryError::CaFile { .. }), "{err:?}");
}

#[tokio::test]
async fn basic_auth_explicit_and_from_docker_config() {
    let reg = start(|| Registry::basic("alice", "wonder-land")).await;
    let repo = Repository::parse(&format!("{}/modes/basic", reg.host())).unwrap();

    let explicit = RegistryClient::new(RegistryOptions {
        username: Some("alice".into()),
        password: Some(SecretString::from("wonder-land".to_string())),
        ..options()
    })
    .unwrap();
    round_trip(&explicit, &repo).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let config = reg.write_docker_config(dir.path());
    let from_config = RegistryClient::new(RegistryOptions {
        docker_config: Some(config),
        ..options()
    })
    .unwrap();
    assert!(from_config
        .head_manifest(&repo, "t1")
        .await
        .unwrap()
        .is_some());

    let anonymous = RegistryClient::new(options()).unwrap();
    let err = anonymous.head_manifest(&repo, "t1").await.unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err:?}");
    assert!(err.to_string().contains("docker login"), "{err}");

    let wrong = RegistryClient::new(RegistryOptions {
        username: Some("alice".into()),
        password: Some(SecretString::from("not-her-password".to_string())),
        ..options()
    })
    .unwrap();
    let err = wrong.get_manifest(&repo, "t1").await.unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("not-her-password"));
}

#[tokio::test]
async fn bearer_tokens_are_fetched_scoped_and_reused() {
    let reg = start(|| Registry::bearer("bob", "builder")).await;
    let repo = Repository::parse(&format!("{}/modes/bearer", reg.host())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let client = RegistryClient::new(RegistryOptions {
        docker_config: Some(reg.write_docker_config(dir.path())),
        ..options()
    })
    .unwrap();
    round_trip(&client, &repo).await.unwrap();
    let requests = reg.token_requests();
    // One push token serves the whole round trip, reads included.
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].user.as_deref(), Some("bob"));
    assert_eq!(requests[0].scopes, ["repository:modes/bearer:pull,push"]);
    assert!(requests[0].granted);

    // A fresh client that only reads asks for pull alone.
    let reader = RegistryClient::new(RegistryOptions {
        docker_config: Some(reg.write_docker_config(dir.path())),
        ..options()
    })
    .unwrap();
    assert!(reader.head_manifest(&repo, "t1").await.unwrap().is_some());
    let last = reg.token_requests().pop().unwrap();
    assert_eq!(last.scopes, ["repository:modes/bearer:pull"]);

    let anonymous = RegistryClient::new(options()).unwrap();
    let err = anonymous.head_manifest(&repo, "t1").await.unwrap_err();
    assert!(err.is_auth(), "{err:?}");
    eprintln!("{err}");
}
