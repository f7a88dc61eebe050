//! Legacy Rekor bundles (`dev.sigstore.cosign/bundle`) checked offline, against a self-made log:
//! a test log key signs SETs over hashedrekord bodies made for the image's real signature, a
//! trusted_root.json names the key. sigbridge, cosign 3.1.1 and cosign 2.5 (`--trusted-root
//! --offline`) agree on the good bundle and on every tampered variant, but one: cosign 2.5.0
//! takes log keys without validity from SIGSTORE_REKOR_PUBLIC_KEY.

use crate::common;

use crate::sigstore_fixtures::{
    hashedrekord, set_layer_annotation, trusted_root, with_bad_set, Log, BUNDLE_ANNOTATION,
};
use common::{b64, exit, get_blob, sig_manifest, Sandbox, TestKey};
use serde_json::{json, Value};
use sigbridge_testkit::{push_image, Registry};

/// When the self-made log "integrated" the signature (Unix seconds); its key is valid from
/// `LOG_START`.
const INTEGRATED: i64 = 1_750_000_000;
const LOG_START: &str = "2025-01-01T00:00:00Z";

/// The image's one signature layer with `bundle` (or without one).
fn set_bundle(reg: &Registry, repo: &str, digest: &str, bundle: Option<&str>) {
    set_layer_annotation(reg, repo, digest, BUNDLE_ANNOTATION, bundle);
}

/// A trusted root naming only `log`, valid from `start`.
fn log_root(log: &Log, start: &str) -> Value {
    trusted_root(&[log.tlog_json(start)], &[])
}

struct Case<'a> {
    sb: &'a Sandbox,
    reg: &'a Registry,
    key: &'a TestKey,
    image: String,
}

impl Case<'_> {
    fn sigbridge(&self, args: &[&str]) -> common::Run {
        self.sb
            .sigbridge()
            .arg("verify")
            .arg("--key")
            .arg(&self.key.public)
            .args(args)
            .arg(&self.image)
            .env_remove("SIGSTORE_REKOR_PUBLIC_KEY")
            .run()
    }

    /// cosign 3.1.1 offline with `--trusted-root` only (its legacy bundle check uses the
    /// trusted root's logs and their validity).
    fn cosign3(&self, root: &std::path::Path) -> std::process::Output {
        let mut cosign = sigbridge_testkit::Tools::cosign3();
        self.reg.write_docker_config(&cosign.home().join(".docker"));
        cosign
            .arg("verify")
            .arg("--key")
            .arg(&self.key.public)
            .arg("--trusted-root")
            .arg(root)
            .arg("--offline")
            .args(self.reg.cosign_args())
            .arg(&self.image);
        cosign.run()
    }

    /// cosign 2.5 offline: `--trusted-root` is what its bundle check uses, and
    /// SIGSTORE_REKOR_PUBLIC_KEY keeps it from fetching the Rekor keys from TUF first.
    fn cosign(&self, root: &std::path::Path, log_public: &std::path::Path) -> std::process::Output {
        let mut cosign = sigbridge_testkit::cosign_for(self.reg);
        cosign
            .env("SIGSTORE_REKOR_PUBLIC_KEY", log_public)
            .arg("verify")
            .arg("--key")
            .arg(&self.key.public)
            .arg("--trusted-root")
            .arg(root)
            .arg("--offline")
            .args(self.reg.cosign_args())
            .arg(&self.image);
        cosign.run()
    }
}

#[test]
fn rekor_bundles_from_a_self_made_log_verify_and_every_tampered_variant_fails_as_in_cosign() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let log = Log::new(&sb);
    let repo = "e2e/tlog-legacy";
    let digest = push_image(&reg, repo, "v1");
    let image = reg.image_ref(repo, &digest);
    sb.sigbridge()
        .arg("sign")
        .signer(&key)
        .arg(&image)
        .run()
        .ok();
    let case = Case {
        sb: &sb,
        reg: &reg,
        key: &key,
        image,
    };
    let layer = sig_manifest(&reg, repo, &digest).expect(".sig")["layers"][0].clone();
    let payload = get_blob(&reg, repo, layer["digest"].as_str().expect("digest"));
    let signature = layer["annotations"]["dev.cosignproject.cosign/signature"]
        .as_str()
        .expect("signature annotation")
        .to_string();
    let root = sb.write("trusted_root.json", log_root(&log, LOG_START).to_string());
    let late_root = sb.write(
        "late_root.json",
        log_root(&log, "2026-01-01T00:00:00Z").to_string(),
    );

    // No bundle: passes with a key (no log line), fails with --require-tlog.
    let plain = case
        .sigbridge(&["--trusted-root", root.to_str().unwrap()])
        .ok();
    assert!(
        !plain.stderr().contains("transparency log"),
        "{}",
        plain.describe()
    );
    let required = case
        .sigbridge(&["--trusted-root", root.to_str().unwrap(), "--require-tlog"])
        .code_is(exit::NO_MATCHING_SIGNATURES);
    assert!(
        required.stderr().contains("--require-tlog requires one"),
        "{}",
        required.describe()
    );

    // The good bundle: both verify, print the same JSON, and sigbridge prints cosign's line.
    let body = hashedrekord(&payload, &signature, &key.public_pem());
    let good = log.bundle(&body, INTEGRATED, &log.id_hex());
    set_bundle(&reg, repo, &digest, Some(&good));
    let ours = case
        .sigbridge(&["--trusted-root", root.to_str().unwrap()])
        .ok();
    assert!(
        ours.stderr().contains(
            "  - The cosign claims were validated\n  - Existence of the claims in the transparency log was verified offline\n  - The signatures were verified against the specified public key"
        ),
        "{}",
        ours.describe()
    );
    let theirs = case.cosign(&root, &log.key.public);
    assert!(
        theirs.status.success(),
        "cosign: {}",
        String::from_utf8_lossy(&theirs.stderr)
    );
    assert_eq!(
        ours.stdout().trim(),
        String::from_utf8_lossy(&theirs.stdout).trim(),
        "the same output as cosign, optional.Bundle included"
    );
    // The same log key from SIGSTORE_REKOR_PUBLIC_KEY.
    sb.sigbridge()
        .arg("verify")
        .arg("--key")
        .arg(&key.public)
        .arg(&case.image)
        .env("SIGSTORE_REKOR_PUBLIC_KEY", &log.key.public)
        .run()
        .ok();
    // An entry but no trust material: refused, naming where to get it.
    let untrusted = case.sigbridge(&[]).code_is(exit::NO_MATCHING_SIGNATURES);
    assert!(
        untrusted.stderr().contains("--trusted-root")
            && untrusted.stderr().contains("SIGSTORE_REKOR_PUBLIC_KEY"),
        "{}",
        untrusted.describe()
    );
    // --insecure-ignore-tlog skips it.
    case.sigbridge(&["--insecure-ignore-tlog"]).ok();

    let mut spaced = String::from_utf8(body.clone()).expect("utf-8");
    spaced.insert(1, ' ');
    let bad_set = with_bad_set(&good);
    // A self-consistent body for another key's signature over the same payload (cosign 3
    // checks the body's own signature before comparing it with the layer's).
    let other_key = sb.pkcs8_key("other");
    let other_signature = b64(&other_key.sign_der(&payload));
    let variants: Vec<(&str, String, &std::path::Path, &str)> = vec![
        (
            "body changed after the log signed it",
            {
                let mut v: Value = serde_json::from_str(&good).expect("json");
                v["Payload"]["body"] = json!(b64(spaced.as_bytes()));
                v.to_string()
            },
            &root,
            "signed entry timestamp is invalid",
        ),
        (
            "SET changed",
            bad_set,
            &root,
            "signed entry timestamp is invalid",
        ),
        (
            "integrated before the log key's validFor",
            good.clone(),
            &late_root,
            "not valid at the entry's integratedTime",
        ),
        (
            "another log",
            log.bundle(&body, INTEGRATED, &"11".repeat(32)),
            &root,
            "which no trusted log key has",
        ),
        (
            "the entry is for another signature",
            log.bundle(
                &hashedrekord(&payload, &other_signature, &other_key.public_pem()),
                INTEGRATED,
                &log.id_hex(),
            ),
            &root,
            "does not match the signature",
        ),
        (
            "the entry is for another payload",
            log.bundle(
                &hashedrekord(b"another payload", &signature, &key.public_pem()),
                INTEGRATED,
                &log.id_hex(),
            ),
            &root,
            "does not match the payload hash",
        ),
    ];
    for (what, bundle, root, expected) in variants {
        set_bundle(&reg, repo, &digest, Some(&bundle));
        let ours = case
            .sigbridge(&["--trusted-root", root.to_str().unwrap()])
            .code_is(exit::NO_MATCHING_SIGNATURES);
        assert!(
            ours.stderr().contains(expected),
            "{what}: {}",
            ours.describe()
        );
        // cosign 3.1.1 checks legacy bundles with the trusted root's logs and their validFor
        // (sigstore-go VerifySET); cosign 2.5.0 with the SIGSTORE_REKOR_PUBLIC_KEY keys only,
        // which carry no validity, so it accepts an entry integrated before the key's start.
        let v3 = case.cosign3(root);
        assert_eq!(
            v3.status.code(),
            Some(12),
            "{what}: cosign 3.1.1: {}",
            String::from_utf8_lossy(&v3.stderr)
        );
        let v25 = case.cosign(root, &log.key.public);
        let cosign25_checks_validity = !expected.contains("integratedTime");
        assert_eq!(
            v25.status.success(),
            !cosign25_checks_validity,
            "{what}: cosign 2.5: {}",
            String::from_utf8_lossy(&v25.stderr)
        );
        eprintln!(
            "{what}: cosign 3.1.1 says {:?}; cosign 2.5 {:?}",
            String::from_utf8_lossy(&v3.stderr)
                .lines()
                .last()
                .unwrap_or_default(),
            String::from_utf8_lossy(&v25.stderr)
                .lines()
                .last()
                .unwrap_or_default(),
        );
    }
    set_bundle(&reg, repo, &digest, None);
}
