//! The manual flow: `sigbridge generate`, sign elsewhere, `sigbridge attach`. Everything is
//! checked before anything is written.

use crate::common;

use std::path::{Path, PathBuf};

use common::{assert_no_sig_tag, b64, exit, sig_layers, unb64, Sandbox, TestKey};
use sigbridge_testkit::{cosign_verify, push_image, OutputExt, Registry};

const CERT_ANNOTATION: &str = "dev.sigstore.cosign/certificate";
const SIG_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// `sigbridge generate IMAGE` into a file; returns `(path, bytes)`.
fn generate(sb: &Sandbox, image: &str, name: &str) -> (PathBuf, Vec<u8>) {
    let bytes = sb
        .sigbridge()
        .arg("generate")
        .arg(image)
        .run()
        .ok()
        .out
        .stdout;
    (sb.write(name, &bytes), bytes)
}

fn attach(sb: &Sandbox, payload: &Path, signature: &Path) -> common::Sigbridge {
    sb.sigbridge()
        .arg("attach")
        .arg("--payload")
        .arg(payload)
        .arg("--signature")
        .arg(signature)
}

#[track_caller]
fn assert_cosign_accepts(reg: &Registry, key: &TestKey, image: &str) {
    let out = cosign_verify(reg, &key.public, image, &[]);
    assert!(out.status.success(), "{}", out.describe());
}

#[test]
fn attach_a_cosign_sign_blob_signature_then_cosign_verifies() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.cosign_key("cosign", "blob-pw");
    let repo = "e2e/attach-base64";
    let digest = push_image(&reg, repo, "v1");
    let by_digest = reg.image_ref(repo, &digest);
    let (payload, payload_bytes) = generate(&sb, &by_digest, "payload.json");
    let signature = sb.write("payload.sig", common::cosign_sign_blob(&key, &payload));

    attach(&sb, &payload, &signature)
        .arg("--key")
        .arg(&key.public)
        .arg(&by_digest)
        .run()
        .ok();

    assert_cosign_accepts(&reg, &key, &by_digest);
    sb.sigbridge()
        .arg("verify")
        .arg("--key")
        .arg(&key.public)
        .arg(&by_digest)
        .run()
        .ok();
    // The payload is attached verbatim.
    let layers = sig_layers(&reg, repo, &digest);
    assert_eq!(layers.len(), 1);
    let blob = common::get_blob(&reg, repo, layers[0]["digest"].as_str().unwrap());
    assert_eq!(blob, payload_bytes);
}

#[test]
fn attach_a_raw_der_signature_with_key() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let repo = "e2e/attach-der";
    let digest = push_image(&reg, repo, "v1");
    let by_digest = reg.image_ref(repo, &digest);
    let (payload, bytes) = generate(&sb, &by_digest, "payload.json");
    let der = key.sign_der(&bytes);
    assert_eq!(der[0], 0x30, "an ASN.1 SEQUENCE");
    let signature = sb.write("payload.der", &der);

    attach(&sb, &payload, &signature)
        .arg("--key")
        .arg(&key.public)
        .arg(&by_digest)
        .run()
        .ok();
    assert_cosign_accepts(&reg, &key, &by_digest);
    let layers = sig_layers(&reg, repo, &digest);
    assert_eq!(
        unb64(layers[0]["annotations"][SIG_ANNOTATION].as_str().unwrap()),
        der
    );
}

#[test]
fn attach_a_raw_r_s_signature_with_key_stores_der() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let repo = "e2e/attach-rs";
    let digest = push_image(&reg, repo, "v1");
    let by_digest = reg.image_ref(repo, &digest);
    let (payload, bytes) = generate(&sb, &by_digest, "payload.json");
    let raw = key.sign_raw(&bytes);
    assert_eq!(raw.len(), 64);
    let signature = sb.write("payload.rs", &raw);

    attach(&sb, &payload, &signature)
        .arg("--key")
        .arg(&key.public)
        .arg(&by_digest)
        .run()
        .ok();
    // cosign only takes DER, so this also proves the signature was normalised.
    assert_cosign_accepts(&reg, &key, &by_digest);
    let layers = sig_layers(&reg, repo, &digest);
    let stored = unb64(layers[0]["annotations"][SIG_ANNOTATION].as_str().unwrap());
    assert_eq!(stored[0], 0x30, "stored as DER: {stored:02x?}");
}

#[test]
fn attach_from_stdin_without_key_warns_and_attaches() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let repo = "e2e/attach-stdin";
    let digest = push_image(&reg, repo, "v1");
    let by_digest = reg.image_ref(repo, &digest);
    let (payload, bytes) = generate(&sb, &by_digest, "payload.json");

    let out = sb
        .sigbridge()
        .arg("attach")
        .arg("--payload")
        .arg(&payload)
        .args(["--signature", "-"])
        .stdin(b64(&key.sign_der(&bytes)))
        .arg(&by_digest)
        .run()
        .ok();
    assert!(
        out.stderr().to_lowercase().contains("warn"),
        "attaching an unchecked signature should warn\n{}",
        out.describe()
    );
    assert_cosign_accepts(&reg, &key, &by_digest);
}

#[test]
fn attach_refuses_a_payload_for_another_image() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let repo = "e2e/attach-other-image";
    let digest_a = push_image(&reg, repo, "a");
    let digest_b = push_image(&reg, repo, "b");
    let (payload_b, bytes_b) = generate(&sb, &reg.image_ref(repo, &digest_b), "payload-b.json");
    let signature = sb.write("payload-b.sig", b64(&key.sign_der(&bytes_b)));
    let by_digest_a = reg.image_ref(repo, &digest_a);

    for with_key in [true, false] {
        let mut cmd = attach(&sb, &payload_b, &signature);
        if with_key {
            cmd = cmd.arg("--key").arg(&key.public);
        }
        cmd.arg(&by_digest_a).run().code_is(exit::NOT_VERIFIED);
        assert_no_sig_tag(&reg, repo, &digest_a);
    }
    assert_no_sig_tag(&reg, repo, &digest_b);
}

#[test]
fn attach_refuses_a_signature_from_another_key() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let (key, other) = (sb.pkcs8_key("signer"), sb.pkcs8_key("other"));
    let repo = "e2e/attach-other-key";
    let digest = push_image(&reg, repo, "v1");
    let by_digest = reg.image_ref(repo, &digest);
    let (payload, bytes) = generate(&sb, &by_digest, "payload.json");
    let signature = sb.write("payload.sig", b64(&other.sign_der(&bytes)));

    attach(&sb, &payload, &signature)
        .arg("--key")
        .arg(&key.public)
        .arg(&by_digest)
        .run()
        .code_is(exit::NOT_VERIFIED);
    assert_no_sig_tag(&reg, repo, &digest);
}

#[test]
fn attach_rejects_a_garbage_signature_file() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let repo = "e2e/attach-garbage";
    let digest = push_image(&reg, repo, "v1");
    let by_digest = reg.image_ref(repo, &digest);
    let (payload, _) = generate(&sb, &by_digest, "payload.json");
    // Neither base64 nor DER nor 64 bytes of r||s.
    let mut failures = Vec::new();
    for (name, content) in [
        ("garbage.sig", &b"this is not a signature at all!"[..]),
        ("empty.sig", &b""[..]),
        ("binary.sig", &[0xff; 40][..]),
        ("truncated-der.sig", &[0x30, 0x45, 0x02, 0x21, 0x00][..]),
    ] {
        let signature = sb.write(name, content);
        for with_key in [false, true] {
            let mut cmd = attach(&sb, &payload, &signature);
            if with_key {
                cmd = cmd.arg("--key").arg(&key.public);
            }
            let run = cmd.arg(&by_digest).run();
            if run.code() != Some(exit::INVALID_INPUT) {
                failures.push(run.describe());
            }
        }
    }
    let (status, _) = common::get_manifest_raw(&reg, repo, &common::sig_tag(&digest));
    assert!(
        failures.is_empty() && status == 404,
        "expected exit 3 and nothing written (.sig GET: {status})\n{}",
        failures.join("\n\n")
    );
}

/// A self-signed certificate for `key`, shaped like `openssl req -x509 -key`'s default.
fn certificate(sb: &Sandbox, key: &TestKey, name: &str) -> PathBuf {
    let private = std::fs::read_to_string(&key.private).expect("read private key");
    sb.write(
        name,
        sigbridge_testkit::certs::self_signed_for_key(&private, "sigbridge e2e"),
    )
}

#[test]
fn attach_with_a_certificate_checks_and_stores_it() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let (key, other) = (sb.pkcs8_key("signer"), sb.pkcs8_key("other"));
    let repo = "e2e/attach-cert";
    let digest = push_image(&reg, repo, "v1");
    let by_digest = reg.image_ref(repo, &digest);
    let (payload, bytes) = generate(&sb, &by_digest, "payload.json");
    let signature = sb.write("payload.sig", b64(&key.sign_der(&bytes)));

    // A certificate for another key: the signature does not verify with it.
    let wrong_cert = certificate(&sb, &other, "other.crt");
    attach(&sb, &payload, &signature)
        .arg("--certificate")
        .arg(&wrong_cert)
        .arg(&by_digest)
        .run()
        .code_is(exit::NOT_VERIFIED);
    assert_no_sig_tag(&reg, repo, &digest);

    let cert = certificate(&sb, &key, "signer.crt");
    attach(&sb, &payload, &signature)
        .arg("--certificate")
        .arg(&cert)
        .arg(&by_digest)
        .run()
        .ok();
    let layers = sig_layers(&reg, repo, &digest);
    assert_eq!(layers.len(), 1);
    assert_eq!(
        layers[0]["annotations"][CERT_ANNOTATION],
        std::fs::read_to_string(&cert).unwrap(),
        "{}",
        layers[0]
    );
    assert_cosign_accepts(&reg, &key, &by_digest);
    // The certificate also works as the verification key.
    sb.sigbridge()
        .arg("verify")
        .arg("--key")
        .arg(&cert)
        .arg(&by_digest)
        .run()
        .ok();
}
