//! cosign 3's format end to end, against a real docker-registry (no referrers API, so the
//! `sha256-<hex>` fallback index) and real cosign 3.1.1 and 2.5: sigbridge's bundles verify with
//! cosign 3, cosign 3's verify with sigbridge, and bad ones are refused with exit 12.

use std::process::Output;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};
use sigbridge_testkit::{
    cosign_verify, push_image, sha256_digest, OutputExt, Registry, ToolCommand, Tools,
};

use crate::common::{
    self, assert_no_sig_tag, get_blob, get_manifest_raw, put_blob, Sandbox, TestKey,
};

const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

fn cosign3(reg: &Registry) -> ToolCommand {
    let cmd = Tools::cosign3();
    reg.write_docker_config(&cmd.home().join(".docker"));
    cmd
}

/// `cosign verify --key PUB --insecure-ignore-tlog` with cosign 3.1.1 (default flags).
fn cosign3_verify(reg: &Registry, public: &std::path::Path, image: &str) -> Output {
    let mut cmd = cosign3(reg);
    cmd.args(["verify", "--key"])
        .arg(public)
        .arg("--insecure-ignore-tlog")
        .args(reg.cosign_args())
        .arg(image);
    cmd.run()
}

/// `cosign sign --key` with cosign 3.1.1 and a signing config without any log or TSA.
fn cosign3_sign(reg: &Registry, sb: &Sandbox, key: &TestKey, image: &str, extra: &[&str]) {
    let config = sb.join("signing-config.json");
    Tools::cosign3_signing_config(&config);
    let mut sign = cosign3(reg);
    sign.args(["sign", "-y", "--key"])
        .arg(&key.private)
        .arg("--signing-config")
        .arg(&config)
        .args(extra)
        .args(reg.cosign_args())
        .env("COSIGN_PASSWORD", key.password.as_deref().unwrap_or(""))
        .arg(image);
    sign.run_ok();
}

/// The fallback index at `sha256-<hex>` (docker-registry has no referrers API).
fn fallback_index(reg: &Registry, repo: &str, digest: &str) -> Value {
    let tag = digest.replace(':', "-");
    let mut req = reg
        .blocking_client()
        .get(format!("{}/v2/{repo}/manifests/{tag}", reg.url()))
        .header("Accept", "application/vnd.oci.image.index.v1+json");
    if let Some(a) = reg.authorization(repo) {
        req = req.header("Authorization", a);
    }
    let resp = req.send().expect("GET the fallback index");
    let status = resp.status().as_u16();
    let body = resp.bytes().expect("read the index").to_vec();
    assert_eq!(
        status,
        200,
        "GET {repo}:{tag}: {}",
        String::from_utf8_lossy(&body)
    );
    serde_json::from_slice(&body).unwrap()
}

fn put_manifest(reg: &Registry, repo: &str, reference: &str, media_type: &str, body: &[u8]) {
    let mut req = reg
        .blocking_client()
        .put(format!("{}/v2/{repo}/manifests/{reference}", reg.url()))
        .header("Content-Type", media_type)
        .body(body.to_vec());
    if let Some(a) = reg.authorization(repo) {
        req = req.header("Authorization", a);
    }
    let resp = req.send().expect("PUT manifest");
    assert_eq!(resp.status().as_u16(), 201, "PUT {repo}:{reference}");
}

fn sign_bundle(sb: &Sandbox, reg: &Registry, key: &TestKey, image: &str, format: &str) {
    sb.sigbridge()
        .arg("sign")
        .signer(key)
        .args(["--format", format])
        .registry(reg)
        .arg(image)
        .run()
        .ok();
}

#[test]
fn a_sigbridge_bundle_verifies_with_cosign_3_and_sigbridge_prints_what_cosign_3_prints() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let repo = "e2e/bundle-sign";
    let digest = push_image(&reg, repo, "v1");
    let image = reg.image_ref(repo, &digest);

    sign_bundle(&sb, &reg, &key, &image, "bundle");
    assert_no_sig_tag(&reg, repo, &digest);
    let index = fallback_index(&reg, repo, &digest);
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(
        index["manifests"][0]["artifactType"],
        "application/vnd.oci.empty.v1+json"
    );

    let cosign = cosign3_verify(&reg, &key.public, &image);
    assert!(cosign.status.success(), "{}", cosign.describe());
    let cosign_json: Value =
        serde_json::from_str(cosign.stdout_str().trim()).expect("cosign prints JSON");
    assert_eq!(
        cosign_json[0]["critical"]["image"]["docker-manifest-digest"],
        digest
    );

    let ours = sb
        .sigbridge()
        .arg("verify")
        .arg("--key")
        .arg(&key.public)
        .registry(&reg)
        .arg(&image)
        .run()
        .ok();
    let ours_json: Value = serde_json::from_str(ours.stdout().trim()).unwrap();
    assert_eq!(
        ours_json, cosign_json,
        "sigbridge prints what cosign 3.1.1 prints"
    );
}

#[test]
fn a_cosign_3_bundle_verifies_with_sigbridge_and_fails_with_a_wrong_key_or_annotation() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.cosign_key("cosign3", "pw-3");
    let repo = "e2e/bundle-cosign3";
    let digest = push_image(&reg, repo, "v1");
    let image = reg.image_ref(repo, &digest);
    cosign3_sign(&reg, &sb, &key, &image, &["-a", "team=blue"]);

    let verify = |public: &std::path::Path, extra: &[&str]| {
        sb.sigbridge()
            .arg("verify")
            .arg("--key")
            .arg(public)
            .args(extra)
            .registry(&reg)
            .arg(&image)
            .run()
    };
    let ok = verify(&key.public, &["-a", "team=blue"]).ok();
    let printed: Value = serde_json::from_str(ok.stdout().trim()).unwrap();
    let cosign = cosign3_verify(&reg, &key.public, &image);
    assert!(cosign.status.success(), "{}", cosign.describe());
    let cosign_json: Value = serde_json::from_str(cosign.stdout_str().trim()).unwrap();
    assert_eq!(printed, cosign_json);
    assert_eq!(printed[0]["optional"], json!({"team": "blue"}));

    verify(&key.public, &["-a", "team=red"]).code_is(12);
    let other = sb.pkcs8_key("other");
    verify(&other.public, &[]).code_is(12);
    // Restricted to legacy, there is nothing: cosign 3 wrote no `.sig`.
    verify(&key.public, &["--format", "legacy"]).code_is(10);
}

#[test]
fn a_bundle_whose_statement_names_another_digest_is_refused_even_when_signed() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let repo = "e2e/bundle-tampered";
    let digest = push_image(&reg, repo, "v1");
    let other_digest = push_image(&reg, repo, "v2");
    let image = reg.image_ref(repo, &digest);
    sign_bundle(&sb, &reg, &key, &image, "bundle");

    // Rewrite the stored bundle: a statement naming v2, properly signed with the same key.
    let index = fallback_index(&reg, repo, &digest);
    let entry = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, manifest) = get_manifest_raw(&reg, repo, &entry);
    let mut manifest: Value = serde_json::from_slice(&manifest).unwrap();
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let mut bundle: Value = serde_json::from_slice(&get_blob(&reg, repo, &layer)).unwrap();
    let statement = String::from_utf8(
        STANDARD
            .decode(bundle["dsseEnvelope"]["payload"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap()
    .replace(
        digest.trim_start_matches("sha256:"),
        other_digest.trim_start_matches("sha256:"),
    );
    let payload_type = "application/vnd.in-toto+json";
    let pae = format!(
        "DSSEv1 {} {payload_type} {} {statement}",
        payload_type.len(),
        statement.len()
    );
    bundle["dsseEnvelope"]["payload"] = json!(STANDARD.encode(&statement));
    bundle["dsseEnvelope"]["signatures"][0]["sig"] =
        json!(STANDARD.encode(key.sign_der(pae.as_bytes())));
    let blob = serde_json::to_vec(&bundle).unwrap();
    let blob_digest = put_blob(&reg, repo, &blob);
    manifest["layers"][0] = json!({"mediaType": BUNDLE, "size": blob.len(), "digest": blob_digest});
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let manifest_digest = sha256_digest(&manifest);
    put_manifest(
        &reg,
        repo,
        &manifest_digest,
        "application/vnd.oci.image.manifest.v1+json",
        &manifest,
    );
    let mut index = index;
    index["manifests"][0]["digest"] = json!(manifest_digest);
    index["manifests"][0]["size"] = json!(manifest.len());
    put_manifest(
        &reg,
        repo,
        &digest.replace(':', "-"),
        "application/vnd.oci.image.index.v1+json",
        &serde_json::to_vec(&index).unwrap(),
    );

    let run = sb
        .sigbridge()
        .arg("verify")
        .arg("--key")
        .arg(&key.public)
        .registry(&reg)
        .arg(&image)
        .run()
        .code_is(12);
    assert!(
        run.stderr().contains("invalid or missing digest in claim"),
        "{}",
        run.describe()
    );
    let cosign = cosign3_verify(&reg, &key.public, &image);
    assert!(
        !cosign.status.success(),
        "cosign 3 accepted it too:\n{}",
        cosign.describe()
    );
}

#[test]
fn format_both_verifies_with_cosign_2_legacy_and_cosign_3_bundle() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let repo = "e2e/bundle-both";
    let digest = push_image(&reg, repo, "v1");
    let image = reg.image_ref(repo, &digest);
    sign_bundle(&sb, &reg, &key, &image, "both");

    assert_eq!(common::sig_layers(&reg, repo, &digest).len(), 1);
    let cosign2 = cosign_verify(&reg, &key.public, &image, &[]);
    assert!(cosign2.status.success(), "{}", cosign2.describe());
    let cosign3 = cosign3_verify(&reg, &key.public, &image);
    assert!(cosign3.status.success(), "{}", cosign3.describe());
    let printed: Value = serde_json::from_str(cosign3.stdout_str().trim()).unwrap();
    assert_eq!(
        printed[0]["critical"]["type"],
        "https://sigstore.dev/cosign/sign/v1"
    );
    for format in ["legacy", "bundle"] {
        sb.sigbridge()
            .arg("verify")
            .arg("--key")
            .arg(&key.public)
            .args(["--format", format])
            .registry(&reg)
            .arg(&image)
            .run()
            .ok();
    }
}

#[test]
fn generate_format_bundle_prints_the_exact_bytes_cosign_3_signed() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.cosign_key("cosign3", "pw-3");
    let repo = "e2e/bundle-generate";
    let digest = push_image(&reg, repo, "v1");
    let image = reg.image_ref(repo, &digest);
    cosign3_sign(&reg, &sb, &key, &image, &["-a", "team=blue"]);

    let index = fallback_index(&reg, repo, &digest);
    let entry = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, manifest) = get_manifest_raw(&reg, repo, &entry);
    let manifest: Value = serde_json::from_slice(&manifest).unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let bundle: Value = serde_json::from_slice(&get_blob(&reg, repo, layer)).unwrap();
    let statement = STANDARD
        .decode(bundle["dsseEnvelope"]["payload"].as_str().unwrap())
        .unwrap();
    let payload_type = bundle["dsseEnvelope"]["payloadType"].as_str().unwrap();
    let mut pae = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        statement.len()
    )
    .into_bytes();
    pae.extend_from_slice(&statement);

    // Offline (a digest reference): no registry flags needed.
    let generated = sb
        .sigbridge()
        .args(["generate", "--format", "bundle", "-a", "team=blue"])
        .arg(&image)
        .run()
        .ok();
    assert_eq!(generated.stdout().as_bytes(), pae.as_slice());
}

#[test]
fn sixteen_concurrent_bundle_signers_keep_sixteen_fallback_index_entries() {
    let reg = Registry::plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let repo = "e2e/bundle-concurrent";
    let digest = push_image(&reg, repo, "v1");
    let image = reg.image_ref(repo, &digest);
    // Distinct statements (the local signer's ECDSA is deterministic, so the same statement
    // in the same second would be the same signature, stored once).
    let children: Vec<_> = (0..16)
        .map(|i| {
            let mut cmd = sb
                .sigbridge()
                .env_remove(common::DELAY_SCALE_VAR)
                .arg("sign")
                .signer(&key)
                .args(["--format", "bundle", "-a", &format!("signer={i}")])
                .registry(&reg)
                .arg(&image)
                .command();
            cmd.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            cmd.spawn().expect("start sigbridge")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait for sigbridge");
        assert!(out.status.success(), "{}", out.describe());
    }
    let index = fallback_index(&reg, repo, &digest);
    assert_eq!(index["manifests"].as_array().unwrap().len(), 16, "{index}");
    for i in [0, 15] {
        sb.sigbridge()
            .arg("verify")
            .arg("--key")
            .arg(&key.public)
            .args(["-a", &format!("signer={i}")])
            .registry(&reg)
            .arg(&image)
            .run()
            .ok();
    }
}

#[test]
fn a_profile_format_applies_unless_the_flag_overrides_it() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let config = sb.write(
        "sigbridge.toml",
        format!(
            "[profiles.release]\nsigner = {:?}\nformat = \"bundle\"\n",
            key.private.display().to_string()
        ),
    );
    let repo = "e2e/bundle-profile";
    let digest = push_image(&reg, repo, "v1");
    let image = reg.image_ref(repo, &digest);
    let sign = |extra: &[&str]| {
        sb.sigbridge()
            .env("SIGBRIDGE_CONFIG", &config)
            .args(["sign", "--signer", "release"])
            .args(extra)
            .registry(&reg)
            .arg(&image)
            .run()
            .ok();
    };
    sign(&[]);
    assert_no_sig_tag(&reg, repo, &digest);
    assert_eq!(
        fallback_index(&reg, repo, &digest)["manifests"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    sign(&["--format", "legacy"]);
    assert_eq!(common::sig_layers(&reg, repo, &digest).len(), 1);

    let bad = sb.write(
        "bad.toml",
        "[profiles.release]\nsigner = \"k.pem\"\nformat = \"cbor\"\n",
    );
    let run = sb
        .sigbridge()
        .env("SIGBRIDGE_CONFIG", &bad)
        .args(["sign", "--signer", "release"])
        .registry(&reg)
        .arg(&image)
        .run();
    assert_ne!(run.code(), Some(0), "{}", run.describe());
    assert!(run.stderr().contains("cbor"), "{}", run.describe());
}

/// `openssl dgst -sha256 -sign` over `file` (ASN.1 DER ECDSA), as an offline signer would.
fn openssl_sign(
    sb: &Sandbox,
    key: &TestKey,
    file: &std::path::Path,
    name: &str,
) -> std::path::PathBuf {
    let out = sb.join(name);
    let status = std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(&key.private)
        .arg("-out")
        .arg(&out)
        .arg(file)
        .status()
        .expect("run openssl");
    assert!(status.success(), "openssl dgst -sign failed");
    out
}

#[test]
fn air_gapped_bundle_generate_sign_with_openssl_attach_then_cosign_3_verifies() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("offline");
    let wrong = sb.pkcs8_key("wrong");
    let repo = "e2e/bundle-attach";
    let digest = push_image(&reg, repo, "v1");
    let other_digest = push_image(&reg, repo, "v2");
    let image = reg.image_ref(repo, &digest);
    let pae_for = |image: &str, name: &str| {
        let bytes = sb
            .sigbridge()
            .args(["generate", "--format", "bundle", "-a", "release=1.4.2"])
            .arg(image)
            .run()
            .ok()
            .out
            .stdout;
        sb.write(name, &bytes)
    };
    let pae = pae_for(&image, "image.pae");
    let other_pae = pae_for(&reg.image_ref(repo, &other_digest), "other.pae");
    let signature = openssl_sign(&sb, &key, &pae, "image.pae.sig");
    let attach = |pae: &std::path::Path,
                  signature: &std::path::Path,
                  public: &std::path::Path,
                  extra: &[&str]| {
        sb.sigbridge()
            .args(["attach", "--format", "bundle", "--payload"])
            .arg(pae)
            .arg("--signature")
            .arg(signature)
            .arg("--key")
            .arg(public)
            .args(extra)
            .registry(&reg)
            .arg(&image)
            .run()
    };
    let nothing_written = || {
        let (status, _) = get_manifest_raw(&reg, repo, &digest.replace(':', "-"));
        assert_eq!(status, 404, "a refused attach wrote the fallback index");
        assert_no_sig_tag(&reg, repo, &digest);
    };

    // A PAE for another digest, properly signed: refused as a payload for another image.
    let other_signature = openssl_sign(&sb, &key, &other_pae, "other.pae.sig");
    attach(
        &other_pae,
        &other_signature,
        &key.public,
        &["-a", "release=1.4.2"],
    )
    .code_is(common::exit::NOT_VERIFIED);
    nothing_written();
    // The right PAE checked with another key: the signature does not verify.
    attach(&pae, &signature, &wrong.public, &["-a", "release=1.4.2"])
        .code_is(common::exit::NOT_VERIFIED);
    nothing_written();
    // The right digest but other annotations than the PAE was built with.
    attach(&pae, &signature, &key.public, &["-a", "release=9"])
        .code_is(common::exit::INVALID_INPUT);
    nothing_written();
    // No key to name in the bundle and check with.
    sb.sigbridge()
        .args(["attach", "--format", "bundle", "--payload"])
        .arg(&pae)
        .arg("--signature")
        .arg(&signature)
        .registry(&reg)
        .arg(&image)
        .run()
        .code_is(common::exit::INVALID_INPUT);
    nothing_written();

    attach(&pae, &signature, &key.public, &["-a", "release=1.4.2"]).ok();
    assert_no_sig_tag(&reg, repo, &digest);
    let index = fallback_index(&reg, repo, &digest);
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);

    let cosign = cosign3_verify(&reg, &key.public, &image);
    assert!(cosign.status.success(), "{}", cosign.describe());
    let cosign_json: Value = serde_json::from_str(cosign.stdout_str().trim()).unwrap();
    assert_eq!(
        cosign_json[0]["critical"]["image"]["docker-manifest-digest"],
        digest
    );
    assert_eq!(cosign_json[0]["optional"], json!({"release": "1.4.2"}));
    sb.sigbridge()
        .arg("verify")
        .arg("--key")
        .arg(&key.public)
        .args(["-a", "release=1.4.2"])
        .registry(&reg)
        .arg(&image)
        .run()
        .ok();
}

#[test]
fn a_pkcs11_key_with_a_certificate_signs_a_bundle_cosign_3_verifies_with_the_key_once_the_certificate_is_left_out(
) {
    use sigbridge_testkit::{SoftHsm, StandardToken, SOFTHSM_USER_PIN};

    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let std_token = StandardToken::create("e2e-bundle-cert", sb.path());
    let uri = std_token.token.uri(&std_token.p256);
    let (hsm_var, hsm_conf) = SoftHsm::shared().env();
    let with_token = |cmd: common::Sigbridge| {
        cmd.env(hsm_var, &hsm_conf)
            .env("COSIGN_PKCS11_PIN", SOFTHSM_USER_PIN)
    };
    let public = sb.join("p256.pub");
    with_token(sb.sigbridge())
        .args(["public-key", "--signer", &uri, "--outfile"])
        .arg(&public)
        .run()
        .ok();

    let repo = "e2e/bundle-pkcs11-cert";
    let digest = push_image(&reg, repo, "v1");
    let image = reg.image_ref(repo, &digest);
    with_token(sb.sigbridge())
        .args(["sign", "--format", "bundle", "--signer", &uri])
        .registry(&reg)
        .arg(&image)
        .run()
        .ok();
    assert_no_sig_tag(&reg, repo, &digest);

    // The token's certificate is the bundle's verification material (not a key hint).
    let index = fallback_index(&reg, repo, &digest);
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    let entry = index["manifests"][0]["digest"].as_str().unwrap();
    let (_, manifest) = get_manifest_raw(&reg, repo, entry);
    let manifest: Value = serde_json::from_slice(&manifest).unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let bundle: Value = serde_json::from_slice(&get_blob(&reg, repo, layer)).unwrap();
    let pem = std::fs::read_to_string(&std_token.certificate.certificate_pem).unwrap();
    let pem_body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<String>();
    assert_eq!(
        bundle["verificationMaterial"]["certificate"]["rawBytes"],
        json!(pem_body),
        "the bundle carries the token's certificate"
    );
    assert!(bundle["verificationMaterial"].get("publicKey").is_none());

    // sigbridge checks the signature with the key, as cosign 2 does for `.sig` signatures.
    sb.sigbridge()
        .arg("verify")
        .arg("--key")
        .arg(&public)
        .registry(&reg)
        .arg(&image)
        .run()
        .ok();
    // cosign 3.1.1 refuses a certificate bundle under --key (and --certificate under the new
    // bundle format); it would need a trusted root. Pinned so a change in cosign shows here.
    let refused = cosign3_verify(&reg, &public, &image);
    assert!(!refused.status.success(), "{}", refused.describe());
    assert!(
        refused
            .stderr_str()
            .contains("expected key signature, not certificate"),
        "{}",
        refused.describe()
    );

    // With the certificate left out as cosign does it, the bundle names the key, and cosign
    // 3.1.1 verifies it with the exported public key.
    let digest2 = push_image(&reg, repo, "v2");
    let image2 = reg.image_ref(repo, &digest2);
    with_token(sb.sigbridge())
        .env("COSIGN_PKCS11_IGNORE_CERTIFICATE", "1")
        .args(["sign", "--format", "bundle", "--signer", &uri])
        .registry(&reg)
        .arg(&image2)
        .run()
        .ok();
    let cosign = cosign3_verify(&reg, &public, &image2);
    assert!(cosign.status.success(), "{}", cosign.describe());
    let cosign_json: Value = serde_json::from_str(cosign.stdout_str().trim()).unwrap();
    assert_eq!(
        cosign_json[0]["critical"]["image"]["docker-manifest-digest"],
        digest2
    );
}
