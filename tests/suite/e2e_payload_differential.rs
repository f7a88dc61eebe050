//! A payload whose keys cosign and an exact-case reader resolve differently is refused by
//! `sigbridge verify` and `sigbridge attach`, even when real cosign accepts it.
//!
//! The payloads are signed with a real key and put into the registry by the real
//! `cosign attach signature`; real `cosign verify` shows which image cosign thinks they are for.

use crate::common;

use common::{assert_no_sig_tag, b64, exit, sig_layers, Sandbox};
use sigbridge_testkit::{
    cosign_attach_signature, cosign_verify, push_image, sha256_digest, OutputExt, Registry,
};

fn critical(reference: &str, digest: &str) -> String {
    format!(
        r#"{{"identity":{{"docker-reference":"{reference}"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}}"#
    )
}

/// No blob with these bytes was uploaded to `repo`.
#[track_caller]
fn assert_no_blob(reg: &Registry, repo: &str, bytes: &[u8]) {
    let url = format!("{}/v2/{repo}/blobs/{}", reg.url(), sha256_digest(bytes));
    let status = reg
        .blocking_client()
        .head(url)
        .send()
        .expect("HEAD blob")
        .status()
        .as_u16();
    assert_eq!(status, 404, "the refused payload was uploaded to {repo}");
}

#[test]
fn critical_keys_differing_in_case_are_refused_by_verify_and_attach() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let repo = "e2e/differential";
    let digest_a = push_image(&reg, repo, "a");
    let digest_b = push_image(&reg, repo, "b");
    let (image_a, image_b) = (
        reg.image_ref(repo, &digest_a),
        reg.image_ref(repo, &digest_b),
    );
    let identity = format!("{}/{repo}", reg.host());
    // An exact-case reader sees A; Go (cosign) matches both keys and keeps the last: B.
    let colliding = format!(
        r#"{{"critical":{},"Critical":{},"optional":null}}"#,
        critical(&identity, &digest_a),
        critical(&identity, &digest_b)
    );
    let payload = sb.write("payload.json", &colliding);
    let signature = sb.write("payload.sig", b64(&key.sign_der(colliding.as_bytes())));

    // attach --key refuses it as malformed input before touching the registry.
    for image in [&image_a, &image_b] {
        let out = sb
            .sigbridge()
            .arg("attach")
            .arg("--payload")
            .arg(&payload)
            .arg("--signature")
            .arg(&signature)
            .arg("--key")
            .arg(&key.public)
            .arg(image)
            .run()
            .code_is(exit::INVALID_INPUT);
        assert!(
            out.stderr().contains("\"critical\"") && out.stderr().contains("\"Critical\""),
            "the error names the colliding keys\n{}",
            out.describe()
        );
    }
    assert_no_sig_tag(&reg, repo, &digest_a);
    assert_no_sig_tag(&reg, repo, &digest_b);
    assert_no_blob(&reg, repo, colliding.as_bytes());

    // Really in the registry, attached by cosign to both images.
    for image in [&image_a, &image_b] {
        let out = cosign_attach_signature(&reg, image, &payload, &signature, &[]);
        assert!(out.status.success(), "{}", out.describe());
    }
    assert_eq!(sig_layers(&reg, repo, &digest_a).len(), 1);
    assert_eq!(sig_layers(&reg, repo, &digest_b).len(), 1);
    // cosign reads the payload as being for B (the last key wins).
    let cosign_b = cosign_verify(&reg, &key.public, &image_b, &[]);
    assert!(cosign_b.status.success(), "{}", cosign_b.describe());
    let cosign_a = cosign_verify(&reg, &key.public, &image_a, &[]);
    assert!(!cosign_a.status.success(), "{}", cosign_a.describe());

    // sigbridge gives no verdict either way: no matching signature for A nor for B.
    for image in [&image_a, &image_b] {
        let out = sb
            .sigbridge()
            .arg("verify")
            .arg("--key")
            .arg(&key.public)
            .arg(image)
            .run()
            .code_is(exit::NO_MATCHING_SIGNATURES);
        assert!(out.stdout().trim().is_empty(), "{}", out.describe());
        assert!(
            out.stderr().contains("\"critical\"") && out.stderr().contains("\"Critical\""),
            "the reason names the colliding keys\n{}",
            out.describe()
        );
    }
}

#[test]
fn optional_keys_differing_in_case_are_refused_under_annotations() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let repo = "e2e/differential-optional";
    let digest = push_image(&reg, repo, "v1");
    let image = reg.image_ref(repo, &digest);
    let identity = format!("{}/{repo}", reg.host());
    let colliding = format!(
        r#"{{"critical":{},"optional":{{"env":"dev"}},"Optional":{{"env":"prod"}}}}"#,
        critical(&identity, &digest)
    );
    let payload = sb.write("payload.json", &colliding);
    let signature = sb.write("payload.sig", b64(&key.sign_der(colliding.as_bytes())));
    let out = cosign_attach_signature(&reg, &image, &payload, &signature, &[]);
    assert!(out.status.success(), "{}", out.describe());

    // cosign reads env=prod (the last key wins).
    let prod = cosign_verify(&reg, &key.public, &image, &["-a", "env=prod"]);
    assert!(prod.status.success(), "{}", prod.describe());
    let dev = cosign_verify(&reg, &key.public, &image, &["-a", "env=dev"]);
    assert!(!dev.status.success(), "{}", dev.describe());

    for wanted in [None, Some("env=prod"), Some("env=dev")] {
        let mut cmd = sb.sigbridge().arg("verify").arg("--key").arg(&key.public);
        if let Some(a) = wanted {
            cmd = cmd.args(["-a", a]);
        }
        let out = cmd.arg(&image).run().code_is(exit::NO_MATCHING_SIGNATURES);
        assert!(
            out.stderr().contains("\"Optional\""),
            "the reason names the colliding keys\n{}",
            out.describe()
        );
    }
}

#[test]
fn kelvin_sign_digest_key_is_refused_by_attach() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let repo = "e2e/differential-kelvin";
    let digest_a = push_image(&reg, repo, "a");
    let digest_b = push_image(&reg, repo, "b");
    let image_a = reg.image_ref(repo, &digest_a);
    // Go 1.21+ folds U+212A onto 'k', so cosign reads B; an exact-case reader reads A.
    let colliding = format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"x"}},"image":{{"docker-manifest-digest":"{digest_a}","doc\u212aer-manifest-digest":"{digest_b}"}},"type":"cosign container image signature"}},"optional":null}}"#
    );
    let payload = sb.write("payload.json", &colliding);
    let signature = sb.write("payload.sig", b64(&key.sign_der(colliding.as_bytes())));
    sb.sigbridge()
        .arg("attach")
        .arg("--payload")
        .arg(&payload)
        .arg("--signature")
        .arg(&signature)
        .arg("--key")
        .arg(&key.public)
        .arg(&image_a)
        .run()
        .code_is(exit::INVALID_INPUT);
    assert_no_sig_tag(&reg, repo, &digest_a);
    assert_no_blob(&reg, repo, colliding.as_bytes());
}
