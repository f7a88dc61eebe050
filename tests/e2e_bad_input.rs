//! Bad input gets the contract's exit code and leaves nothing in the registry.

mod common;

use common::{exit, sig_layers, Sandbox};
use sigbridge_testkit::{push_image, Registry};

#[test]
fn a_malformed_reference_exits_3() {
    let reg = Registry::plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let bad_refs = [
        format!("{}/Upper/Case:v1", reg.host()),
        format!("{}/e2e/app@sha256:not-hex", reg.host()),
        "not a reference".to_owned(),
        format!("{}/e2e/app:bad:tag", reg.host()),
    ];
    for image in &bad_refs {
        sb.sigbridge()
            .arg("generate")
            .arg(image)
            .run()
            .code_is(exit::INVALID_INPUT);
        sb.sigbridge()
            .arg("sign")
            .signer(&key)
            .arg(image)
            .run()
            .code_is(exit::INVALID_INPUT);
        sb.sigbridge()
            .arg("verify")
            .arg("--key")
            .arg(&key.public)
            .arg(image)
            .run()
            .code_is(exit::INVALID_INPUT);
    }
}

#[test]
fn an_annotation_without_a_value_exits_3() {
    let reg = Registry::plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let repo = "e2e/bad-annotation";
    let digest = push_image(&reg, repo, "v1");
    let by_digest = reg.image_ref(repo, &digest);
    sb.sigbridge()
        .arg("generate")
        .args(["-a", "novalue"])
        .arg(&by_digest)
        .run()
        .code_is(exit::INVALID_INPUT);
    sb.sigbridge()
        .arg("sign")
        .signer(&key)
        .args(["-a", "novalue"])
        .arg(&by_digest)
        .run()
        .code_is(exit::INVALID_INPUT);
    assert!(sig_layers(&reg, repo, &digest).is_empty());
}

#[test]
fn a_missing_key_file_exits_4() {
    let reg = Registry::plain();
    let sb = Sandbox::new();
    let repo = "e2e/missing-key";
    let digest = push_image(&reg, repo, "v1");
    let by_digest = reg.image_ref(repo, &digest);
    let missing_private = sb.join("no-such.key");
    let missing_public = sb.join("no-such.pub");
    let payload = sb.write(
        "payload.json",
        sb.sigbridge()
            .arg("generate")
            .arg(&by_digest)
            .run()
            .ok()
            .out
            .stdout,
    );
    let signature = sb.write("payload.sig", common::b64(&[0x30, 0x00]));
    let runs = [
        sb.sigbridge()
            .arg("sign")
            .arg("--signer")
            .arg(&missing_private)
            .arg(&by_digest)
            .run(),
        sb.sigbridge()
            .arg("public-key")
            .arg("--signer")
            .arg(&missing_private)
            .run(),
        sb.sigbridge()
            .arg("verify")
            .arg("--key")
            .arg(&missing_public)
            .arg(&by_digest)
            .run(),
        sb.sigbridge()
            .arg("attach")
            .arg("--payload")
            .arg(&payload)
            .arg("--signature")
            .arg(&signature)
            .arg("--key")
            .arg(&missing_public)
            .arg(&by_digest)
            .run(),
    ];
    let failures: Vec<String> = runs
        .iter()
        .filter(|r| r.code() != Some(exit::KEY))
        .map(common::Run::describe)
        .collect();
    assert!(
        failures.is_empty(),
        "expected exit 4 from each:\n{}",
        failures.join("\n\n")
    );
    assert!(sig_layers(&reg, repo, &digest).is_empty());
}

#[test]
fn a_malformed_key_file_exits_4() {
    let reg = Registry::plain();
    let sb = Sandbox::new();
    let repo = "e2e/malformed-key";
    let digest = push_image(&reg, repo, "v1");
    let by_digest = reg.image_ref(repo, &digest);
    let garbage = sb.write(
        "garbage.key",
        "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n",
    );
    sb.sigbridge()
        .arg("sign")
        .arg("--signer")
        .arg(&garbage)
        .arg(&by_digest)
        .run()
        .code_is(exit::KEY);
    let not_a_public_key = sb.write("garbage.pub", "hello\n");
    sb.sigbridge()
        .arg("verify")
        .arg("--key")
        .arg(&not_a_public_key)
        .arg(&by_digest)
        .run()
        .code_is(exit::KEY);
    assert!(sig_layers(&reg, repo, &digest).is_empty());
}

#[test]
fn a_wrong_key_password_exits_4() {
    let reg = Registry::plain();
    let sb = Sandbox::new();
    let key = sb.cosign_key("cosign", "right-password");
    let repo = "e2e/wrong-password";
    let digest = push_image(&reg, repo, "v1");
    sb.sigbridge()
        .arg("sign")
        .arg("--signer")
        .arg(&key.private)
        .env("COSIGN_PASSWORD", "wrong-password")
        .arg(reg.image_ref(repo, &digest))
        .run()
        .code_is(exit::KEY);
    assert!(sig_layers(&reg, repo, &digest).is_empty());
}

#[test]
fn an_encrypted_key_without_password_and_without_a_tty_exits_4() {
    // stdin is /dev/null (see Sandbox::sigbridge), so there is nobody to prompt: the binary
    // must give up instead of waiting.
    let reg = Registry::plain();
    let sb = Sandbox::new();
    let key = sb.cosign_key("cosign", "some-password");
    let repo = "e2e/no-password";
    let digest = push_image(&reg, repo, "v1");
    let out = sb
        .sigbridge()
        .arg("sign")
        .arg("--signer")
        .arg(&key.private)
        .env_remove("COSIGN_PASSWORD")
        .arg(reg.image_ref(repo, &digest))
        .run()
        .code_is(exit::KEY);
    assert!(
        out.stderr().contains("COSIGN_PASSWORD"),
        "the error should say how to give the password\n{}",
        out.describe()
    );
    assert!(sig_layers(&reg, repo, &digest).is_empty());
}

#[test]
fn an_unknown_image_tag_exits_11() {
    let reg = Registry::plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let repo = "e2e/unknown-tag";
    push_image(&reg, repo, "v1");
    let image = reg.image_ref(repo, "no-such-tag");
    sb.sigbridge()
        .arg("generate")
        .arg(&image)
        .run()
        .code_is(exit::IMAGE_NOT_FOUND);
    sb.sigbridge()
        .arg("sign")
        .signer(&key)
        .arg(&image)
        .run()
        .code_is(exit::IMAGE_NOT_FOUND);
}

#[test]
fn sign_without_a_signer_is_a_usage_error() {
    let sb = Sandbox::new();
    sb.sigbridge()
        .args(["sign", "127.0.0.1:1/e2e/app:v1"])
        .run()
        .code_is(exit::USAGE);
}
