//! `sigbridge verify` rejects what must be rejected, with cosign's exit codes.

use crate::common;

use common::{b64, exit, sig_manifest, sig_tag, Sandbox};
use sigbridge_testkit::{
    cosign_attach_signature, cosign_generate, cosign_verify, push_image, OutputExt, Registry,
    OCI_MANIFEST,
};

fn verify(sb: &Sandbox, public: &std::path::Path, image: &str) -> common::Run {
    sb.sigbridge()
        .arg("verify")
        .arg("--key")
        .arg(public)
        .arg(image)
        .run()
}

#[test]
fn verify_with_another_key_exits_12() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let (key, other) = (sb.pkcs8_key("signer"), sb.pkcs8_key("other"));
    let repo = "e2e/wrong-key";
    let digest = push_image(&reg, repo, "v1");
    let by_digest = reg.image_ref(repo, &digest);
    sb.sigbridge()
        .arg("sign")
        .signer(&key)
        .arg(&by_digest)
        .run()
        .ok();
    let out = verify(&sb, &other.public, &by_digest).code_is(exit::NO_MATCHING_SIGNATURES);
    assert!(
        out.stdout().trim().is_empty(),
        "nothing verified, nothing printed\n{}",
        out.describe()
    );
}

#[test]
fn verify_an_unsigned_image_exits_10() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let repo = "e2e/unsigned";
    let digest = push_image(&reg, repo, "v1");
    verify(&sb, &key.public, &reg.image_ref(repo, &digest)).code_is(exit::NO_SIGNATURES);
    verify(&sb, &key.public, &reg.image_ref(repo, "v1")).code_is(exit::NO_SIGNATURES);
}

#[test]
fn verify_a_missing_image_exits_11() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let repo = "e2e/missing";
    push_image(&reg, repo, "v1");
    verify(&sb, &key.public, &reg.image_ref(repo, "no-such-tag")).code_is(exit::IMAGE_NOT_FOUND);
    let absent = format!("sha256:{}", "ab".repeat(32));
    verify(&sb, &key.public, &reg.image_ref(repo, &absent)).code_is(exit::IMAGE_NOT_FOUND);
    verify(&sb, &key.public, &reg.image_ref("e2e/no-such-repo", "v1"))
        .code_is(exit::IMAGE_NOT_FOUND);
}

#[test]
fn verify_a_tampered_payload_exits_12() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let repo = "e2e/tampered";
    let digest = push_image(&reg, repo, "v1");
    let by_digest = reg.image_ref(repo, &digest);
    sb.sigbridge()
        .arg("sign")
        .signer(&key)
        .args(["-a", "approved=no"])
        .arg(&by_digest)
        .run()
        .ok();
    verify(&sb, &key.public, &by_digest).ok();

    // Swap the payload for one that says something else (same image digest), keep the
    // signature annotation, and rewrite the .sig manifest to point at the new blob.
    let mut manifest = sig_manifest(&reg, repo, &digest).expect("signature manifest");
    let layer = manifest["layers"][0].clone();
    let payload = common::get_blob(&reg, repo, layer["digest"].as_str().unwrap());
    let forged = String::from_utf8(payload)
        .unwrap()
        .replace("\"approved\":\"no\"", "\"approved\":\"ok\"");
    assert!(forged.contains("\"approved\":\"ok\""), "{forged}");
    let forged_digest = common::put_blob(&reg, repo, forged.as_bytes());
    manifest["layers"][0]["digest"] = forged_digest.into();
    manifest["layers"][0]["size"] = forged.len().into();
    put_sig_manifest(&reg, repo, &digest, &manifest);

    let cosign = cosign_verify(&reg, &key.public, &by_digest, &[]);
    assert!(
        !cosign.status.success(),
        "cosign must reject it too: {}",
        cosign.describe()
    );
    verify(&sb, &key.public, &by_digest).code_is(exit::NO_MATCHING_SIGNATURES);
}

#[test]
fn verify_a_signed_payload_for_another_image_exits_12() {
    // cosign attach checks nothing, so a correctly signed payload naming image B can be
    // attached to image A; verification of A must not accept it.
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let repo = "e2e/other-image";
    let digest_a = push_image(&reg, repo, "a");
    let digest_b = push_image(&reg, repo, "b");
    let payload_b = cosign_generate(&reg, &reg.image_ref(repo, &digest_b), &[]);
    let payload = sb.write("payload-b.json", &payload_b);
    let signature = sb.write("payload-b.sig", b64(&key.sign_der(&payload_b)));
    let by_digest_a = reg.image_ref(repo, &digest_a);
    let out = cosign_attach_signature(&reg, &by_digest_a, &payload, &signature, &[]);
    assert!(out.status.success(), "{}", out.describe());

    let cosign = cosign_verify(&reg, &key.public, &by_digest_a, &[]);
    assert!(!cosign.status.success(), "{}", cosign.describe());
    verify(&sb, &key.public, &by_digest_a).code_is(exit::NO_MATCHING_SIGNATURES);
}

#[test]
fn verify_requires_the_given_annotations() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let repo = "e2e/annotations";
    let digest = push_image(&reg, repo, "v1");
    let by_digest = reg.image_ref(repo, &digest);
    sb.sigbridge()
        .arg("sign")
        .signer(&key)
        .args(["-a", "env=prod", "-a", "team=e2e"])
        .arg(&by_digest)
        .run()
        .ok();
    let with = |ann: &[&str]| {
        let mut cmd = sb.sigbridge().arg("verify").arg("--key").arg(&key.public);
        for a in ann {
            cmd = cmd.arg("-a").arg(a);
        }
        cmd.arg(&by_digest).run()
    };
    with(&["env=prod"]).ok();
    with(&["env=prod", "team=e2e"]).ok();
    with(&["env=dev"]).code_is(exit::NO_MATCHING_SIGNATURES);
    with(&["missing=yes"]).code_is(exit::NO_MATCHING_SIGNATURES);
}

fn put_sig_manifest(reg: &Registry, repo: &str, digest: &str, manifest: &serde_json::Value) {
    let media_type = manifest["mediaType"].as_str().unwrap_or(OCI_MANIFEST);
    let body = serde_json::to_vec(manifest).unwrap();
    common::put_manifest(reg, repo, &sig_tag(digest), &body, media_type);
}
