//! Key files move freely between cosign, skopeo and sigbridge.
//!
//! Encrypted keys cost one scrypt (N=32768) per use, so each test here uses as few as it can.

use crate::common;

use std::os::unix::fs::PermissionsExt;

use common::{exit, pem_body, unb64, Sandbox, TestKey};
use sigbridge_testkit::{
    cosign_for, cosign_verify, push_image, skopeo_generate_key, skopeo_verify, IdentityRule,
    OutputExt, Registry,
};

#[test]
fn a_cosign_generated_key_signs_and_cosign_verifies() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.cosign_key("cosign", "correct horse");
    let repo = "e2e/cosign-key";
    let digest = push_image(&reg, repo, "v1");
    let by_digest = reg.image_ref(repo, &digest);
    sb.sigbridge()
        .arg("sign")
        .signer(&key)
        .registry(&reg)
        .arg(&by_digest)
        .run()
        .ok();
    let out = cosign_verify(&reg, &key.public, &by_digest, &[]);
    assert!(out.status.success(), "{}", out.describe());
}

#[test]
fn a_skopeo_generated_key_signs_and_cosign_and_skopeo_verify() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let skey = skopeo_generate_key(&sb.subdir("skopeo"), "skopeo phrase");
    let key = TestKey {
        private: skey.private.clone(),
        public: skey.public.clone(),
        password: Some("skopeo phrase".into()),
        secret: None,
    };
    let repo = "e2e/skopeo-key";
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
    let out = cosign_verify(&reg, &key.public, &by_tag, &[]);
    assert!(out.status.success(), "{}", out.describe());
    let v = skopeo_verify(
        &reg,
        &key.public,
        &by_tag,
        IdentityRule::MatchRepoDigestOrExact,
    );
    assert!(v.accepted, "{}", v.stderr);
}

#[test]
fn a_sigbridge_generated_key_signs_with_cosign_and_both_verifiers_accept() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    sb.sigbridge()
        .args(["generate-key-pair", "--output-key-prefix", "release"])
        .env("COSIGN_PASSWORD", "sigbridge-made")
        .run()
        .ok();
    let private = sb.join("release.key");
    let public = sb.join("release.pub");

    let mode = std::fs::metadata(&private).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "private key mode {mode:o}");
    let pem = std::fs::read_to_string(&private).unwrap();
    assert!(
        pem.starts_with("-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\n"),
        "{pem}"
    );
    let envelope: serde_json::Value = serde_json::from_slice(&unb64(&pem_body(&pem))).unwrap();
    assert_eq!(envelope["kdf"]["name"], "scrypt", "{envelope}");
    assert_eq!(envelope["kdf"]["params"]["N"], 32768, "{envelope}");
    assert!(std::fs::read_to_string(&public)
        .unwrap()
        .starts_with("-----BEGIN PUBLIC KEY-----\n"));

    let repo = "e2e/sigbridge-key";
    let digest = push_image(&reg, repo, "v1");
    let by_digest = reg.image_ref(repo, &digest);
    let mut cosign = cosign_for(&reg);
    cosign
        .env("COSIGN_PASSWORD", "sigbridge-made")
        .arg("sign")
        .arg("--key")
        .arg(&private)
        .args(["--tlog-upload=false", "-y"])
        .args(reg.cosign_args())
        .arg(&by_digest);
    cosign.run_ok();

    sb.sigbridge()
        .arg("verify")
        .arg("--key")
        .arg(&public)
        .arg(&by_digest)
        .run()
        .ok();
    let out = cosign_verify(&reg, &public, &by_digest, &[]);
    assert!(out.status.success(), "{}", out.describe());
}

#[test]
fn generate_key_pair_refuses_to_overwrite_without_force() {
    let sb = Sandbox::new();
    let key = sb.write("cosign.key", "existing private");
    let public = sb.write("cosign.pub", "existing public");
    let out = sb
        .sigbridge()
        .arg("generate-key-pair")
        .env("COSIGN_PASSWORD", "pw")
        .run();
    assert_ne!(out.code(), Some(exit::OK), "{}", out.describe());
    assert_eq!(std::fs::read_to_string(&key).unwrap(), "existing private");
    assert_eq!(std::fs::read_to_string(&public).unwrap(), "existing public");

    sb.sigbridge()
        .args(["generate-key-pair", "--force"])
        .env("COSIGN_PASSWORD", "pw")
        .run()
        .ok();
    assert!(std::fs::read_to_string(&key)
        .unwrap()
        .starts_with("-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----"));
    assert!(std::fs::read_to_string(&public)
        .unwrap()
        .starts_with("-----BEGIN PUBLIC KEY-----"));
}

#[test]
fn public_key_of_a_cosign_key_equals_cosigns_pub_file() {
    let sb = Sandbox::new();
    let key = sb.cosign_key("cosign", "pk-password");
    let out = sb.sigbridge().arg("public-key").signer(&key).run().ok();
    assert_eq!(
        out.stdout(),
        std::fs::read_to_string(&key.public).unwrap(),
        "{}",
        out.describe()
    );
}

#[test]
fn public_key_writes_outfile() {
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("plain");
    let outfile = sb.join("exported.pub");
    sb.sigbridge()
        .arg("public-key")
        .signer(&key)
        .arg("--outfile")
        .arg(&outfile)
        .run()
        .ok();
    let written = std::fs::read_to_string(&outfile).unwrap();
    assert!(
        written.starts_with("-----BEGIN PUBLIC KEY-----"),
        "{written}"
    );
    assert_eq!(pem_body(&written), pem_body(&key.public_pem()));
}

#[test]
fn an_empty_cosign_password_is_an_empty_password() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.cosign_key("empty", "");
    let repo = "e2e/empty-password";
    let digest = push_image(&reg, repo, "v1");
    let by_digest = reg.image_ref(repo, &digest);
    sb.sigbridge()
        .arg("sign")
        .signer(&key)
        .arg(&by_digest)
        .run()
        .ok();
    let out = cosign_verify(&reg, &key.public, &by_digest, &[]);
    assert!(out.status.success(), "{}", out.describe());
}
