//! Bad input gets the contract's exit code and leaves nothing in the registry.

use crate::common;

use common::{exit, sig_layers, Sandbox};
use sigbridge_testkit::{push_image, Registry};

#[test]
fn a_malformed_reference_exits_3() {
    let reg = Registry::shared_plain();
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
    let reg = Registry::shared_plain();
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
    let reg = Registry::shared_plain();
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
    let reg = Registry::shared_plain();
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
    let reg = Registry::shared_plain();
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
    let reg = Registry::shared_plain();
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
    let reg = Registry::shared_plain();
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

/// Exit code for "nothing was changed: it already exists / is already final".
const CONFLICT: i32 = 14;

#[test]
fn malformed_references_exit_3_before_any_network_and_name_the_bad_part() {
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    // Nothing listens on port 1, so a request would exit 6, not 3.
    let cases = [
        ("127.0.0.1:99999/e2e/app:v1", "port \"99999\""),
        ("127.0.0.1:0/e2e/app:v1", "port \"0\""),
        ("127.0.0.1:1/repo/../base:v1", "\"..\""),
        ("127.0.0.1:1/repo//base:v1", "empty path component"),
        ("repo/../base", "\"..\""),
        ("repo//base", "empty path component"),
        ("127.0.0.1:1/e2e/app:-v1", "invalid tag \"-v1\""),
    ];
    let mut failures = Vec::new();
    for (image, part) in cases {
        let runs = [
            sb.sigbridge().args(["generate", image]).run(),
            sb.sigbridge().arg("sign").signer(&key).arg(image).run(),
            sb.sigbridge()
                .arg("verify")
                .arg("--key")
                .arg(&key.public)
                .arg(image)
                .run(),
        ];
        for run in runs {
            if run.code() != Some(exit::INVALID_INPUT) || !run.stderr().contains(part) {
                failures.push(format!(
                    "{image}: want exit 3 naming {part}\n{}",
                    run.describe()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn existing_output_files_exit_14_without_a_raw_os_error() {
    let sb = Sandbox::new();
    let existing_key = sb.write("cosign.key", "keep me");
    let out = sb
        .sigbridge()
        .arg("generate-key-pair")
        .env("COSIGN_PASSWORD", "")
        .run()
        .code_is(CONFLICT);
    assert!(
        out.stderr()
            .contains("cosign.key already exists; remove it"),
        "{}",
        out.describe()
    );
    assert_eq!(std::fs::read_to_string(&existing_key).unwrap(), "keep me");
    assert!(!sb.join("cosign.pub").exists());

    let key = sb.pkcs8_key("signer");
    let outfile = sb.write("taken.pub", "keep me too");
    let out = sb
        .sigbridge()
        .arg("public-key")
        .signer(&key)
        .arg("--outfile")
        .arg(&outfile)
        .run()
        .code_is(CONFLICT);
    let err = out.stderr();
    assert!(
        err.contains("taken.pub already exists; remove it or choose another path"),
        "{}",
        out.describe()
    );
    assert!(!err.contains("os error"), "{}", out.describe());
    assert_eq!(std::fs::read_to_string(&outfile).unwrap(), "keep me too");
}

/// A payload for a pushed image, made with `generate`.
fn payload_for(sb: &Sandbox, image: &str) -> std::path::PathBuf {
    let out = sb.sigbridge().args(["generate", image]).run().ok();
    sb.write("payload.json", &out.out.stdout)
}

#[test]
fn attach_refuses_raw_r_s_without_a_key_and_stores_nothing() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let repo = "e2e/raw-rs";
    let digest = push_image(&reg, repo, "v1");
    let image = reg.image_ref(repo, &digest);
    let payload = payload_for(&sb, &image);
    let raw = key.sign_raw(&std::fs::read(&payload).unwrap());
    for (name, bytes) in [
        ("raw.sig", raw.clone()),
        ("raw.b64", common::b64(&raw).into_bytes()),
    ] {
        let signature = sb.write(name, &bytes);
        let out = sb
            .sigbridge()
            .arg("attach")
            .registry(&reg)
            .arg("--payload")
            .arg(&payload)
            .arg("--signature")
            .arg(&signature)
            .arg(&image)
            .run()
            .code_is(exit::INVALID_INPUT);
        assert!(out.stderr().contains("--key"), "{}", out.describe());
    }
    assert!(sig_layers(&reg, repo, &digest).is_empty());

    // With --key the same raw signature is checked, converted to DER and attached.
    let signature = sb.write("raw.sig", &raw);
    sb.sigbridge()
        .arg("attach")
        .registry(&reg)
        .arg("--payload")
        .arg(&payload)
        .arg("--signature")
        .arg(&signature)
        .arg("--key")
        .arg(&key.public)
        .arg(&image)
        .run()
        .ok();
    assert_eq!(sig_layers(&reg, repo, &digest).len(), 1);
}

#[test]
fn attach_accepts_cosigns_attach_signature_form() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let repo = "e2e/attach-signature-form";
    let digest = push_image(&reg, repo, "v1");
    let image = reg.image_ref(repo, &digest);
    let payload = payload_for(&sb, &image);
    let der = key.sign_der(&std::fs::read(&payload).unwrap());
    let signature = sb.write("payload.sig", common::b64(&der));
    let out = sb
        .sigbridge()
        .args(["attach", "signature"])
        .registry(&reg)
        .arg("--payload")
        .arg(&payload)
        .arg("--signature")
        .arg(&signature)
        .arg(&image)
        .run()
        .ok();
    assert!(out.stdout().contains(&digest), "{}", out.describe());
    assert_eq!(sig_layers(&reg, repo, &digest).len(), 1);

    // Any other extra word is still a usage error.
    sb.sigbridge()
        .args(["attach", "signatures"])
        .arg("--payload")
        .arg(&payload)
        .arg("--signature")
        .arg(&signature)
        .arg(&image)
        .run()
        .code_is(exit::USAGE);
}

#[test]
fn an_unknown_signer_name_names_the_profiles_and_files_searched() {
    let sb = Sandbox::new();
    let image = "127.0.0.1:1/e2e/app@sha256:4aa3054270f7a70b4528f2064ee90961788e1e1518703592ae4463de3b889dec";
    let out = sb
        .sigbridge()
        .args(["sign", "--signer", "nosuch", image])
        .run()
        .code_is(exit::KEY);
    let err = out.stderr();
    for part in [
        "signer \"nosuch\" is not a file, a URI or a profile",
        "sigbridge.toml",
        ".config/sigbridge/sigbridge.toml",
        "pkcs11: URI",
        "signpath:// URI",
    ] {
        assert!(err.contains(part), "missing {part:?}\n{}", out.describe());
    }

    // With a configuration file: it is named, with the profiles it has.
    let config = sb.write(
        "sigbridge.toml",
        "[profiles.release]\nsigner = \"release.key\"\n[profiles.staging]\nsigner = \"staging.key\"\n",
    );
    let out = sb
        .sigbridge()
        .env("SIGBRIDGE_CONFIG", &config)
        .args(["public-key", "--signer", "nosuch"])
        .run()
        .code_is(exit::KEY);
    let err = out.stderr();
    assert!(
        err.contains(&format!("no profile \"nosuch\" in {}", config.display())),
        "{}",
        out.describe()
    );
    assert!(
        err.contains("profiles there: release, staging"),
        "{}",
        out.describe()
    );

    let help = sb.sigbridge().args(["sign", "--help"]).run().ok();
    assert!(help.stdout().contains("profile"), "{}", help.describe());
}
