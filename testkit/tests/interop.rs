//! The cosign and skopeo helpers really sign and verify, against every registry mode, and the
//! two tools accept each other's signatures. This proves the harness, independent of sigbridge.

use sigbridge_testkit::{
    cosign_generate, cosign_generate_key_pair, cosign_sign, cosign_verify, push_image, push_index,
    sigstore_policy, skopeo_generate_key, skopeo_sign, skopeo_verify, skopeo_verify_with_policy,
    IdentityRule, OutputExt, Registry,
};

fn round_trip(reg: &Registry) {
    let keys = tempfile::tempdir().unwrap();
    let repo = "kit/app";
    let digest = push_image(reg, repo, "v1");
    let by_digest = reg.image_ref(repo, &digest);
    let by_tag = reg.image_ref(repo, "v1");

    // cosign signs; cosign verifies with the right key and rejects another one.
    let cosign_dir = keys.path().join("cosign");
    let other_dir = keys.path().join("other");
    std::fs::create_dir_all(&cosign_dir).unwrap();
    std::fs::create_dir_all(&other_dir).unwrap();
    let (key, public) = cosign_generate_key_pair(&cosign_dir, "pw");
    let (_, other_public) = cosign_generate_key_pair(&other_dir, "pw2");
    assert!(cosign_verify(reg, &public, &by_digest, &[]).status.code() != Some(0));
    cosign_sign(reg, &key, "pw", &by_digest, &[]);
    let ok = cosign_verify(reg, &public, &by_tag, &[]);
    assert!(ok.status.success(), "{}", ok.describe());
    assert!(ok.stdout_str().contains(&digest), "{}", ok.describe());
    let wrong = cosign_verify(reg, &other_public, &by_tag, &[]);
    assert!(!wrong.status.success(), "{}", wrong.describe());

    // cosign's payload names the repository only, so containers/image accepts it under
    // matchRepository and rejects it under its default rule.
    let v = skopeo_verify(reg, &public, &by_tag, IdentityRule::MatchRepository);
    assert!(v.accepted, "{}", v.stderr);
    let v = skopeo_verify(reg, &public, &by_tag, IdentityRule::MatchRepoDigestOrExact);
    assert!(
        !v.accepted,
        "default rule should reject a repository-only identity"
    );

    // skopeo signs in place (identity HOST/REPO:TAG) and accepts its own signature under both
    // rules; cosign accepts it too; a different key is rejected.
    let skopeo_dir = keys.path().join("skopeo");
    std::fs::create_dir_all(&skopeo_dir).unwrap();
    let skey = skopeo_generate_key(&skopeo_dir, "phrase");
    let digest2 = push_image(reg, repo, "v2");
    let by_tag2 = reg.image_ref(repo, "v2");
    skopeo_sign(reg, &skey.private, &skey.passphrase_file, &by_tag2, None);
    for rule in [
        IdentityRule::MatchRepository,
        IdentityRule::MatchRepoDigestOrExact,
    ] {
        let v = skopeo_verify(reg, &skey.public, &by_tag2, rule.clone());
        assert!(v.accepted, "{rule:?}: {}", v.stderr);
    }
    let v = skopeo_verify(reg, &other_public, &by_tag2, IdentityRule::MatchRepository);
    assert!(!v.accepted);
    let ok = cosign_verify(reg, &skey.public, &reg.image_ref(repo, &digest2), &[]);
    assert!(ok.status.success(), "{}", ok.describe());

    // The payload cosign would sign names this image's digest.
    let payload = cosign_generate(reg, &by_digest, &[("team", "kit")]);
    let payload: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(
        payload["critical"]["image"]["docker-manifest-digest"],
        digest
    );
    assert_eq!(payload["optional"]["team"], "kit");
}

#[test]
fn plain_registry_round_trip() {
    round_trip(&Registry::plain());
}

#[test]
fn tls_registry_round_trip() {
    round_trip(&Registry::tls());
}

#[test]
fn basic_registry_round_trip() {
    round_trip(&Registry::basic("alice", "s3cret"));
}

#[test]
fn bearer_registry_round_trip() {
    let reg = Registry::bearer("bob", "hunter2");
    round_trip(&reg);
    assert!(reg.tokens_issued() > 0);
    assert!(reg.token_requests().iter().all(|r| r.granted));
}

#[test]
fn multi_arch_index_signatures_are_checked_per_platform() {
    let reg = Registry::plain();
    let keys = tempfile::tempdir().unwrap();
    let repo = "kit/multi";
    let (index, children) = push_index(&reg, repo, "v1", &[("linux", "amd64"), ("linux", "arm64")]);
    assert_eq!(children.len(), 2);
    assert!(!children.contains(&index));
    let skey = skopeo_generate_key(keys.path(), "phrase");
    let by_tag = reg.image_ref(repo, "v1");
    let pem = std::fs::read(&skey.public).unwrap();
    let policy = sigstore_policy(&pem, &IdentityRule::MatchRepoDigestOrExact);

    // Only the amd64 child signed (by digest, under the tag's identity): a pull of the host's
    // platform passes, a pull of every platform does not.
    skopeo_sign(
        &reg,
        &skey.private,
        &skey.passphrase_file,
        &reg.image_ref(repo, &children[0]),
        Some(&by_tag),
    );
    let v = skopeo_verify_with_policy(&reg, &policy, &by_tag, &[]);
    assert!(v.accepted, "{}", v.stderr);
    let v = skopeo_verify_with_policy(&reg, &policy, &by_tag, &["--all"]);
    assert!(!v.accepted, "the unsigned arm64 child must be rejected");

    // Signing the tag with --all signs the index and every child; the tag still names the index.
    skopeo_sign(&reg, &skey.private, &skey.passphrase_file, &by_tag, None);
    let v = skopeo_verify_with_policy(&reg, &policy, &by_tag, &["--all"]);
    assert!(v.accepted, "{}", v.stderr);
    for digest in std::iter::once(&index).chain(&children) {
        let ok = cosign_verify(&reg, &skey.public, &reg.image_ref(repo, digest), &[]);
        assert!(ok.status.success(), "{digest}: {}", ok.describe());
    }
    let ok = cosign_verify(&reg, &skey.public, &by_tag, &[]);
    assert!(ok.stdout_str().contains(&index), "{}", ok.describe());
}
