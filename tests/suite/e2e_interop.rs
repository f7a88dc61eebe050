//! Interop both ways with the real cosign 2.5 and skopeo 1.18 (containers/image 5.34):
//! they accept what sigbridge signs, and `sigbridge verify` accepts what they sign.

use crate::common;

use common::{repo_name, verified_payloads, Sandbox};
use sigbridge_testkit::{
    cosign_sign, cosign_verify, push_image, skopeo_generate_key, skopeo_sign, skopeo_verify,
    IdentityRule, OutputExt, Registry,
};

#[test]
fn cosign_and_skopeo_default_policy_accept_a_signature_made_with_identity() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let repo = "e2e/identity";
    let digest = push_image(&reg, repo, "v1");
    let by_tag = reg.image_ref(repo, "v1");

    sb.sigbridge()
        .arg("sign")
        .signer(&key)
        .arg("--identity")
        .arg(&by_tag)
        .registry(&reg)
        .arg(reg.image_ref(repo, &digest))
        .run()
        .ok();

    let cosign = cosign_verify(&reg, &key.public, &by_tag, &[]);
    assert!(cosign.status.success(), "{}", cosign.describe());
    let payloads = verified_payloads(&cosign.stdout);
    assert_eq!(payloads.len(), 1, "{}", cosign.describe());
    assert_eq!(
        payloads[0]["critical"]["identity"]["docker-reference"],
        by_tag
    );
    assert_eq!(
        payloads[0]["critical"]["image"]["docker-manifest-digest"],
        digest
    );

    for rule in [
        IdentityRule::MatchRepoDigestOrExact,
        IdentityRule::MatchRepository,
        IdentityRule::MatchExact,
    ] {
        let v = skopeo_verify(&reg, &key.public, &by_tag, rule.clone());
        assert!(v.accepted, "skopeo rejected under {rule:?}: {}", v.stderr);
    }
}

#[test]
fn without_identity_skopeo_default_rule_rejects_but_match_repository_accepts() {
    // This documents the difference between cosign's repository-only docker-reference and
    // what containers/image's default rule (podman, CRI-O) wants.
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let repo = "e2e/no-identity";
    let digest = push_image(&reg, repo, "v1");
    let by_tag = reg.image_ref(repo, "v1");

    sb.sigbridge()
        .arg("sign")
        .signer(&key)
        .registry(&reg)
        .arg(&by_tag)
        .run()
        .ok();

    let cosign = cosign_verify(&reg, &key.public, &reg.image_ref(repo, &digest), &[]);
    assert!(cosign.status.success(), "{}", cosign.describe());
    let payloads = verified_payloads(&cosign.stdout);
    assert_eq!(
        payloads[0]["critical"]["identity"]["docker-reference"],
        repo_name(&reg, repo)
    );

    let v = skopeo_verify(&reg, &key.public, &by_tag, IdentityRule::MatchRepository);
    assert!(v.accepted, "matchRepository: {}", v.stderr);
    let v = skopeo_verify(
        &reg,
        &key.public,
        &by_tag,
        IdentityRule::MatchRepoDigestOrExact,
    );
    assert!(
        !v.accepted,
        "matchRepoDigestOrExact must reject a repository-only identity"
    );
}

#[test]
fn sigbridge_verify_accepts_a_cosign_signature_and_prints_what_cosign_prints() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.cosign_key("cosign", "cosign-pw");
    let repo = "e2e/cosign-signed";
    let digest = push_image(&reg, repo, "v1");
    let by_digest = reg.image_ref(repo, &digest);
    cosign_sign(
        &reg,
        &key.private,
        "cosign-pw",
        &by_digest,
        &["-a", "team=e2e"],
    );

    let ours = sb
        .sigbridge()
        .arg("verify")
        .arg("--key")
        .arg(&key.public)
        .registry(&reg)
        .arg(reg.image_ref(repo, "v1"))
        .run()
        .ok();
    let theirs = cosign_verify(&reg, &key.public, &reg.image_ref(repo, "v1"), &[]);
    assert!(theirs.status.success(), "{}", theirs.describe());

    // Same payloads as cosign prints, and cosign's layout: a blank line, then the array.
    assert_eq!(
        verified_payloads(&ours.out.stdout),
        verified_payloads(&theirs.stdout),
        "{}",
        ours.describe()
    );
    assert!(ours.stdout().starts_with('\n'), "{}", ours.describe());
    let payloads = verified_payloads(&ours.out.stdout);
    assert_eq!(payloads.len(), 1);
    assert_eq!(
        payloads[0]["critical"]["image"]["docker-manifest-digest"],
        digest
    );
    assert_eq!(payloads[0]["optional"]["team"], "e2e");
    let stderr = ours.stderr();
    assert!(
        stderr.contains("Verification for") && stderr.contains(&reg.image_ref(repo, "v1")),
        "{}",
        ours.describe()
    );
}

#[test]
fn sigbridge_verify_accepts_a_skopeo_signature() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let skey = skopeo_generate_key(&sb.subdir("skopeo"), "skopeo-phrase");
    let repo = "e2e/skopeo-signed";
    let digest = push_image(&reg, repo, "v1");
    let by_tag = reg.image_ref(repo, "v1");
    skopeo_sign(&reg, &skey.private, &skey.passphrase_file, &by_tag, None);

    let out = sb
        .sigbridge()
        .arg("verify")
        .arg("--key")
        .arg(&skey.public)
        .registry(&reg)
        .arg(&by_tag)
        .run()
        .ok();
    let payloads = verified_payloads(&out.out.stdout);
    assert_eq!(payloads.len(), 1, "{}", out.describe());
    assert_eq!(
        payloads[0]["critical"]["image"]["docker-manifest-digest"],
        digest
    );
    // containers/image writes the tag into the identity and a creator into optional.
    assert_eq!(
        payloads[0]["critical"]["identity"]["docker-reference"],
        by_tag
    );
    assert!(
        payloads[0]["optional"]["creator"].is_string(),
        "{}",
        out.describe()
    );
}

#[test]
fn verify_text_output_prints_each_raw_payload_on_its_own_line() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let repo = "e2e/verify-text";
    let digest = push_image(&reg, repo, "v1");
    let by_digest = reg.image_ref(repo, &digest);
    sb.sigbridge()
        .arg("sign")
        .signer(&key)
        .args(["-a", "build=42"])
        .arg(&by_digest)
        .run()
        .ok();
    let layers = common::sig_layers(&reg, repo, &digest);
    assert_eq!(layers.len(), 1);
    let blob = common::get_blob(&reg, repo, layers[0]["digest"].as_str().unwrap());

    let out = sb
        .sigbridge()
        .arg("verify")
        .arg("--key")
        .arg(&key.public)
        .args(["-o", "text"])
        .arg(&by_digest)
        .run()
        .ok();
    let stdout = out.stdout();
    let printed: Vec<&str> = stdout.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(
        printed,
        vec![String::from_utf8(blob).unwrap().as_str()],
        "{}",
        out.describe()
    );
}

#[test]
fn verify_reads_the_public_key_from_an_environment_variable() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let repo = "e2e/env-key";
    let digest = push_image(&reg, repo, "v1");
    let by_digest = reg.image_ref(repo, &digest);
    sb.sigbridge()
        .arg("sign")
        .signer(&key)
        .arg(&by_digest)
        .run()
        .ok();
    sb.sigbridge()
        .arg("verify")
        .args(["--key", "env://E2E_PUBLIC_KEY"])
        .env("E2E_PUBLIC_KEY", key.public_pem())
        .arg(&by_digest)
        .run()
        .ok();
}

#[test]
fn cosign_compatibility_flags_are_accepted() {
    // Pipelines written for cosign pass -y, --tlog-upload=false and --insecure-ignore-tlog.
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let repo = "e2e/compat-flags";
    let digest = push_image(&reg, repo, "v1");
    let by_digest = reg.image_ref(repo, &digest);
    sb.sigbridge()
        .arg("sign")
        .arg("--key")
        .arg(&key.private)
        .args(["-y", "--tlog-upload=false"])
        .arg(&by_digest)
        .run()
        .ok();
    sb.sigbridge()
        .arg("verify")
        .arg("--key")
        .arg(&key.public)
        .arg("--insecure-ignore-tlog")
        .arg(&by_digest)
        .run()
        .ok();
}
