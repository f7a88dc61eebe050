//! The PKCS#11 signer end to end: a SoftHSM token store the tests initialise themselves, the
//! real sigbridge binary, a real docker-registry, and real cosign 2.5 and skopeo 1.18 as
//! verifiers.
//!
//! Every sigbridge process gets SOFTHSM2_CONF (the store lives in a temp dir of this test
//! process) and a PIN from a file or COSIGN_PKCS11_PIN, never from argv (one test checks that
//! cosign's `pin-value` form is refused unless SIGBRIDGE_PKCS11_ALLOW_PIN_VALUE=1 opts in, and
//! then works with a warning).

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use sigbridge_testkit::{
    cosign_for, cosign_generate_key_pair, cosign_verify, push_image, skopeo_verify, HsmKeyType,
    IdentityRule, OutputExt, Registry, SoftHsm, StandardToken, SOFTHSM_MODULE, SOFTHSM_USER_PIN,
};
use tempfile::TempDir;

const CERT_ANNOTATION: &str = "dev.sigstore.cosign/certificate";
const CHAIN_ANNOTATION: &str = "dev.sigstore.cosign/chain";

/// A test's private files (PIN file, exported keys) and its sigbridge commands.
struct Sandbox {
    dir: TempDir,
}

impl Sandbox {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A file holding `pin`, for pin-source=.
    fn pin_file(&self, pin: &str) -> PathBuf {
        let path = self.path(&format!("pin-{}", pin.len()));
        std::fs::write(&path, format!("{pin}\n")).expect("write PIN file");
        path
    }

    /// `sigbridge ARGS` with the SoftHSM store, no PIN, an empty docker config.
    fn sigbridge(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sigbridge"));
        let (k, v) = SoftHsm::shared().env();
        let docker = self.path("docker");
        std::fs::create_dir_all(&docker).expect("docker config dir");
        cmd.env(k, v)
            .env("DOCKER_CONFIG", docker)
            .env_remove("COSIGN_PKCS11_PIN")
            .env_remove("COSIGN_PKCS11_MODULE_PATH")
            .env_remove("COSIGN_PKCS11_IGNORE_CERTIFICATE")
            .env_remove("SIGBRIDGE_PKCS11_CERT_CHAIN")
            .env_remove("SIGBRIDGE_SIGNER")
            .env_remove("SIGBRIDGE_LOG")
            .env_remove("SIGBRIDGE_PKCS11_ALLOW_PIN_VALUE")
            .env_remove("SIGBRIDGE_CONFIG")
            .stdin(Stdio::null());
        cmd
    }

    /// The slot-id a fresh process sees for the token labelled `label`, from
    /// `sigbridge pkcs11 tokens -o json` (SoftHSM numbers slots per process).
    fn slot_of(&self, label: &str) -> u64 {
        let out = ok(self.sigbridge().args([
            "pkcs11",
            "tokens",
            "--module-path",
            SOFTHSM_MODULE,
            "-o",
            "json",
        ]));
        let tokens: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("JSON");
        tokens
            .iter()
            .find(|t| t["label"] == label)
            .and_then(|t| t["slotId"].as_u64())
            .unwrap_or_else(|| panic!("token {label} listed: {}", out.stdout_str()))
    }

    /// `sigbridge public-key --signer URI` into a file; returns its path.
    fn export_public_key(&self, uri: &str, name: &str) -> PathBuf {
        let out_path = self.path(name);
        let out = self
            .sigbridge()
            .env("COSIGN_PKCS11_PIN", SOFTHSM_USER_PIN)
            .args(["public-key", "--signer", uri, "--outfile"])
            .arg(&out_path)
            .output()
            .expect("run sigbridge");
        assert!(out.status.success(), "{}", out.describe());
        out_path
    }
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run sigbridge")
}

fn ok(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert!(out.status.success(), "{}", out.describe());
    out
}

/// The signature manifest of `digest` in `repo`, by raw HTTP; `None` on 404.
fn signature_manifest(reg: &Registry, repo: &str, digest: &str) -> Option<serde_json::Value> {
    let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
    let url = format!("{}/v2/{repo}/manifests/sha256-{hex}.sig", reg.url());
    let resp = reg
        .blocking_client()
        .get(url)
        .header(
            "Accept",
            "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
        )
        .send()
        .expect("GET signature manifest");
    if resp.status().as_u16() == 404 {
        return None;
    }
    assert!(resp.status().is_success(), "GET .sig: {}", resp.status());
    Some(resp.json().expect("manifest JSON"))
}

fn layer_annotations(
    manifest: &serde_json::Value,
) -> Vec<serde_json::Map<String, serde_json::Value>> {
    manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["annotations"].as_object().cloned().unwrap_or_default())
        .collect()
}

/// The base64 body of a PEM text, whitespace removed (for comparing certificates).
fn pem_body(text: &str) -> String {
    text.lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<String>()
}

#[test]
fn p256_p384_and_rsa_keys_sign_and_cosign_and_skopeo_verify() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let std_token = StandardToken::create("e2e-interop", sb.dir.path());
    let token = &std_token.token;
    let pin_file = sb.pin_file(SOFTHSM_USER_PIN);

    // A signature cosign made first must survive ours (nothing already there is dropped).
    let (cosign_key, cosign_pub) = cosign_generate_key_pair(sb.dir.path(), "cosign-pass");

    for (key, name) in [
        (&std_token.p256, "p256"),
        (&std_token.p384, "p384"),
        (&std_token.rsa, "rsa2048"),
    ] {
        let repo = format!("e2e/pkcs11-{name}");
        let digest = push_image(&reg, &repo, "v1");
        let by_digest = reg.image_ref(&repo, &digest);
        let by_tag = reg.image_ref(&repo, "v1");
        let uri = token.uri(key);
        let public = sb.export_public_key(&uri, &format!("{name}.pub"));

        if name == "p256" {
            let mut cosign = cosign_for(&reg);
            cosign
                .env("COSIGN_PASSWORD", "cosign-pass")
                .arg("sign")
                .arg("--key")
                .arg(&cosign_key)
                .args(["--tlog-upload=false", "-y"])
                .args(reg.cosign_args())
                .arg(&by_digest);
            cosign.run_ok();
        }

        // The PIN from a pin-source file in the URI.
        let signer = format!("{uri}&pin-source={}", pin_file.display());
        let out = ok(sb
            .sigbridge()
            .args(["sign", "--signer", &signer, "--identity", &by_tag])
            .arg(&by_digest));
        assert!(
            out.stdout_str().contains(&digest),
            "sign prints the digest: {}",
            out.describe()
        );

        let verified = cosign_verify(&reg, &public, &by_tag, &[]);
        assert!(
            verified.status.success(),
            "cosign, {name}: {}",
            verified.describe()
        );
        let verdict = skopeo_verify(&reg, &public, &by_tag, IdentityRule::MatchRepoDigestOrExact);
        assert!(verdict.accepted, "skopeo, {name}: {}", verdict.stderr);
        ok(sb
            .sigbridge()
            .args(["verify", "--key"])
            .arg(&public)
            .arg(&by_digest));

        if name == "p256" {
            let theirs = cosign_verify(&reg, &cosign_pub, &by_digest, &[]);
            assert!(
                theirs.status.success(),
                "cosign's own signature survived: {}",
                theirs.describe()
            );
            let manifest = signature_manifest(&reg, &repo, &digest).expect("signatures");
            assert_eq!(layer_annotations(&manifest).len(), 2);
        }
    }
}

#[test]
fn the_certificate_on_the_token_is_attached_with_a_chain_and_cosign_still_verifies() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let std_token = StandardToken::create("e2e-cert", sb.dir.path());
    let uri = std_token.token.uri(&std_token.p256);
    let public = sb.export_public_key(&uri, "p256.pub");

    let repo = "e2e/pkcs11-cert";
    let digest = push_image(&reg, repo, "v1");
    let by_digest = reg.image_ref(repo, &digest);
    ok(sb
        .sigbridge()
        .env("COSIGN_PKCS11_PIN", SOFTHSM_USER_PIN)
        .env("SIGBRIDGE_PKCS11_CERT_CHAIN", &std_token.certificate.ca_pem)
        .args(["sign", "--signer", &uri])
        .arg(&by_digest));

    let manifest = signature_manifest(&reg, repo, &digest).expect("signature manifest");
    let annotations = layer_annotations(&manifest);
    assert_eq!(annotations.len(), 1);
    let cert = annotations[0][CERT_ANNOTATION]
        .as_str()
        .expect("certificate annotation");
    let expected = std::fs::read_to_string(&std_token.certificate.certificate_pem).unwrap();
    assert_eq!(pem_body(cert), pem_body(&expected));
    let chain = annotations[0][CHAIN_ANNOTATION]
        .as_str()
        .expect("chain annotation");
    let ca = std::fs::read_to_string(&std_token.certificate.ca_pem).unwrap();
    assert_eq!(pem_body(chain), pem_body(&ca));

    // cosign 2.5 given --key checks the signature against the key and does not insist on the
    // certificate's chain or SCT.
    let verified = cosign_verify(&reg, &public, &by_digest, &[]);
    assert!(verified.status.success(), "{}", verified.describe());
    // containers/image with a keyData policy accepts it too.
    let verdict = skopeo_verify(&reg, &public, &by_digest, IdentityRule::MatchRepository);
    assert!(verdict.accepted, "{}", verdict.stderr);

    // Turned off the way cosign does it: no certificate annotation.
    let digest2 = push_image(&reg, repo, "v2");
    ok(sb
        .sigbridge()
        .env("COSIGN_PKCS11_PIN", SOFTHSM_USER_PIN)
        .env("COSIGN_PKCS11_IGNORE_CERTIFICATE", "1")
        .args(["sign", "--signer", &uri])
        .arg(reg.image_ref(repo, &digest2)));
    let manifest = signature_manifest(&reg, repo, &digest2).expect("signature manifest");
    assert!(!layer_annotations(&manifest)[0].contains_key(CERT_ANNOTATION));

    // ... and with the URI attribute.
    let digest3 = push_image(&reg, repo, "v3");
    ok(sb
        .sigbridge()
        .env("COSIGN_PKCS11_PIN", SOFTHSM_USER_PIN)
        .args([
            "sign",
            "--signer",
            &format!("{uri}&x-ignore-certificate=true"),
        ])
        .arg(reg.image_ref(repo, &digest3)));
    let manifest = signature_manifest(&reg, repo, &digest3).expect("signature manifest");
    assert!(!layer_annotations(&manifest)[0].contains_key(CERT_ANNOTATION));
}

#[test]
fn a_batch_logs_in_once_and_uses_one_session() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let token = SoftHsm::shared().init_token("e2e-batch");
    let key = token.generate(HsmKeyType::P256, "batch", &[0x42]);
    let uri = token.uri(&key);
    let public = sb.export_public_key(&uri, "batch.pub");

    let repo = "e2e/pkcs11-batch";
    let refs: Vec<String> = (0..4)
        .map(|i| {
            let digest = push_image(&reg, repo, &format!("v{i}"));
            reg.image_ref(repo, &digest)
        })
        .collect();
    let out = ok(sb
        .sigbridge()
        .env("COSIGN_PKCS11_PIN", SOFTHSM_USER_PIN)
        .args(["-vv", "sign", "--signer", &uri])
        .args(&refs));
    let log = out.stderr_str();
    assert_eq!(log.matches("pkcs11: logged in").count(), 1, "{log}");
    assert_eq!(log.matches("pkcs11: opened session").count(), 1, "{log}");
    assert_eq!(log.matches("pkcs11: module loaded").count(), 1, "{log}");
    assert!(!log.contains(SOFTHSM_USER_PIN), "the PIN is never logged");
    for r in &refs {
        let verified = cosign_verify(&reg, &public, r, &[]);
        assert!(verified.status.success(), "{r}: {}", verified.describe());
    }
}

/// Runs a failing `sign`, checks the exit code and that nothing was attached.
fn sign_fails(
    sb: &Sandbox,
    reg: &Registry,
    repo: &str,
    signer: &str,
    pin: Option<&str>,
    code: i32,
) -> String {
    let digest = push_image(reg, repo, "v1");
    let mut cmd = sb.sigbridge();
    if let Some(pin) = pin {
        cmd.env("COSIGN_PKCS11_PIN", pin);
    }
    let out = run(cmd
        .args(["sign", "--signer", signer])
        .arg(reg.image_ref(repo, &digest)));
    assert_eq!(out.status.code(), Some(code), "{}", out.describe());
    assert!(
        signature_manifest(reg, repo, &digest).is_none(),
        "nothing may be attached after a failure"
    );
    out.stderr_str()
}

#[test]
fn failures_are_specific_and_attach_nothing() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let token = SoftHsm::shared().init_token("e2e-errors");
    let key = token.generate(HsmKeyType::P256, "present", &[0x07]);
    let uri = token.uri(&key);

    // Wrong PIN: exit 4, reported as such, never the PIN itself.
    let err = sign_fails(
        &sb,
        &reg,
        "e2e/pkcs11-wrong-pin",
        &uri,
        Some("9999-wrong"),
        4,
    );
    assert!(err.contains("CKR_PIN_INCORRECT"), "{err}");
    assert!(!err.contains("9999-wrong"), "{err}");

    // No PIN and no terminal: exit 4, saying how to give one.
    let err = sign_fails(&sb, &reg, "e2e/pkcs11-no-pin", &uri, None, 4);
    assert!(err.contains("requires login"), "{err}");
    assert!(err.contains("COSIGN_PKCS11_PIN"), "{err}");

    // Missing key: exit 4, listing the keys that are there.
    let missing = format!("pkcs11:token=e2e-errors;object=absent?module-path={SOFTHSM_MODULE}");
    let err = sign_fails(
        &sb,
        &reg,
        "e2e/pkcs11-missing-key",
        &missing,
        Some(SOFTHSM_USER_PIN),
        4,
    );
    assert!(
        err.contains("no private key with label \"absent\""),
        "{err}"
    );
    assert!(err.contains("\"present\", id 07"), "{err}");

    // Missing module: exit 8.
    let no_module = "pkcs11:token=e2e-errors;object=present?module-path=/nonexistent/libpkcs11.so";
    let err = sign_fails(
        &sb,
        &reg,
        "e2e/pkcs11-no-module",
        no_module,
        Some(SOFTHSM_USER_PIN),
        8,
    );
    assert!(err.contains("/nonexistent/libpkcs11.so not found"), "{err}");

    // A file that is not a PKCS#11 module: exit 8.
    let not_module = format!(
        "pkcs11:token=e2e-errors;object=present?module-path={}",
        SoftHsm::shared().conf().display()
    );
    let err = sign_fails(
        &sb,
        &reg,
        "e2e/pkcs11-bad-module",
        &not_module,
        Some(SOFTHSM_USER_PIN),
        8,
    );
    assert!(err.contains("could not be loaded"), "{err}");

    // Missing token: exit 8, listing the tokens that are there.
    let no_token = format!("pkcs11:token=e2e-nope;object=present?module-path={SOFTHSM_MODULE}");
    let err = sign_fails(
        &sb,
        &reg,
        "e2e/pkcs11-no-token",
        &no_token,
        Some(SOFTHSM_USER_PIN),
        8,
    );
    assert!(
        err.contains("no token matching token=\"e2e-nope\""),
        "{err}"
    );
    assert!(err.contains("\"e2e-errors\""), "{err}");

    // A token whose only key is of a type sigbridge does not sign with (secp256k1): exit 4.
    let odd = SoftHsm::shared().init_token("e2e-k256-only");
    let k256 = odd.generate(HsmKeyType::Secp256k1, "k256", &[0x09]);
    let err = sign_fails(
        &sb,
        &reg,
        "e2e/pkcs11-unsupported",
        &odd.uri(&k256),
        Some(SOFTHSM_USER_PIN),
        4,
    );
    assert!(err.contains("unsupported key"), "{err}");

    // A malformed URI: exit 3.
    let err = sign_fails(
        &sb,
        &reg,
        "e2e/pkcs11-bad-uri",
        "pkcs11:token=e2e-errors;slot-id=abc",
        None,
        3,
    );
    assert!(err.contains("slot-id"), "{err}");
}

#[test]
fn tokens_and_keys_are_listed_and_listed_uris_sign_unchanged() {
    let sb = Sandbox::new();
    let std_token = StandardToken::create("e2e-list", sb.dir.path());

    let out = ok(sb
        .sigbridge()
        .args(["pkcs11", "tokens", "--module-path", SOFTHSM_MODULE]));
    let text = out.stdout_str();
    assert!(text.contains("Label: e2e-list"), "{text}");
    let slot = sb.slot_of("e2e-list");
    assert!(text.contains(&format!("Token in slot {slot}")), "{text}");

    // Listing keys needs login on SoftHSM; without a PIN that is a clear error.
    let out = run(sb.sigbridge().args([
        "pkcs11",
        "keys",
        "--module-path",
        SOFTHSM_MODULE,
        "--token",
        "e2e-list",
    ]));
    assert_eq!(out.status.code(), Some(4), "{}", out.describe());
    assert!(out.stderr_str().contains("requires login"));

    let pin_file = sb.pin_file(SOFTHSM_USER_PIN);
    let out = ok(sb
        .sigbridge()
        .args([
            "pkcs11",
            "keys",
            "--module-path",
            SOFTHSM_MODULE,
            "--token",
            "e2e-list",
            "--pin-source",
        ])
        .arg(&pin_file)
        .args(["-o", "json"]));
    let keys: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("JSON list");
    assert_eq!(keys.len(), 3, "{}", out.stdout_str());
    assert!(!out.stdout_str().contains(SOFTHSM_USER_PIN));
    let by_label = |l: &str| {
        keys.iter()
            .find(|k| k["label"] == l)
            .unwrap_or_else(|| panic!("{l} listed"))
            .clone()
    };
    assert_eq!(by_label("p256")["type"], "ECDSA P-256");
    assert_eq!(by_label("p256")["certificate"], true);
    assert_eq!(by_label("p384")["type"], "ECDSA P-384");
    assert_eq!(by_label("rsa2048")["type"], "RSA-2048");

    // A listed URI is a signer as it is (with the PIN from the environment).
    let listed = by_label("p384")["uri"].as_str().unwrap().to_string();
    assert!(listed.contains(&format!("slot-id={slot}")), "{listed}");
    let from_listing = sb.export_public_key(&listed, "listed.pub");
    let from_fixture = sb.export_public_key(&std_token.token.uri(&std_token.p384), "fixture.pub");
    assert_eq!(
        std::fs::read(from_listing).unwrap(),
        std::fs::read(from_fixture).unwrap()
    );

    // Text output, by slot id.
    let out = ok(sb
        .sigbridge()
        .env("COSIGN_PKCS11_PIN", SOFTHSM_USER_PIN)
        .args([
            "pkcs11",
            "keys",
            "--module-path",
            SOFTHSM_MODULE,
            "--slot-id",
        ])
        .arg(slot.to_string()));
    let text = out.stdout_str();
    assert!(text.contains("\tLabel: rsa2048"), "{text}");
    assert!(
        text.contains("\tURI: pkcs11:token=e2e-list;slot-id="),
        "{text}"
    );
}

#[test]
fn cosigns_printed_uri_with_pin_value_is_refused_unless_opted_in() {
    let sb = Sandbox::new();
    let token = SoftHsm::shared().init_token("e2e cosign form");
    let key = token.generate(HsmKeyType::P256, "key label", b"key_id");
    // Exactly the shape `cosign pkcs11-tool list-keys-uris` prints.
    let slot = sb.slot_of("e2e cosign form");
    let uri = format!(
        "pkcs11:token=e2e%20cosign%20form;slot-id={slot};id=%6b%65%79%5f%69%64;object=key%20label?module-path={SOFTHSM_MODULE}&pin-value={SOFTHSM_USER_PIN}"
    );
    // By default a PIN in argv is refused (a key problem, 4), saying what to do instead.
    let out = run(sb.sigbridge().args(["public-key", "--signer", &uri]));
    assert_eq!(out.status.code(), Some(4), "{}", out.describe());
    let err = out.stderr_str();
    for hint in [
        "pin-source",
        "COSIGN_PKCS11_PIN",
        "SIGBRIDGE_PKCS11_ALLOW_PIN_VALUE=1",
    ] {
        assert!(err.contains(hint), "{hint}: {}", out.describe());
    }
    assert!(!err.contains(SOFTHSM_USER_PIN), "{err}");
    assert!(out.stdout.is_empty(), "{}", out.describe());

    // Opted in (cosign compatibility): it works, with a warning that never shows the PIN.
    let out = ok(sb
        .sigbridge()
        .env("SIGBRIDGE_PKCS11_ALLOW_PIN_VALUE", "1")
        .args(["public-key", "--signer", &uri]));
    assert!(out.stdout_str().starts_with("-----BEGIN PUBLIC KEY-----"));
    let err = out.stderr_str();
    assert!(err.contains("pin-value"), "a warning: {err}");
    assert!(!err.contains(SOFTHSM_USER_PIN), "{err}");
    let _ = key;

    // The module path from COSIGN_PKCS11_MODULE_PATH, as cosign reads it.
    let bare = "pkcs11:token=e2e%20cosign%20form;object=key%20label";
    let out = ok(sb
        .sigbridge()
        .env("COSIGN_PKCS11_MODULE_PATH", SOFTHSM_MODULE)
        .env("COSIGN_PKCS11_PIN", SOFTHSM_USER_PIN)
        .args(["public-key", "--signer", bare]));
    assert!(out.stdout_str().starts_with("-----BEGIN PUBLIC KEY-----"));
}

#[test]
fn malformed_percent_escapes_in_a_uri_exit_3() {
    let sb = Sandbox::new();
    for bad in ["%+1", "%G0", "%"] {
        let uri = format!("pkcs11:token=e2e{bad};object=k?module-path={SOFTHSM_MODULE}");
        let out = run(sb
            .sigbridge()
            .env("COSIGN_PKCS11_PIN", SOFTHSM_USER_PIN)
            .args(["public-key", "--signer", &uri]));
        assert_eq!(out.status.code(), Some(3), "{bad}: {}", out.describe());
        assert!(
            out.stderr_str().contains("not followed by two hex digits"),
            "{bad}: {}",
            out.describe()
        );
    }
}

#[test]
fn verify_key_accepts_a_pkcs11_uri_and_a_profile() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let token = SoftHsm::shared().init_token("e2e-verify-uri");
    let key = token.generate(HsmKeyType::P256, "verify-key", b"vk");
    let uri = token.uri(&key);
    let repo = "e2e/pkcs11-verify-uri";
    let digest = push_image(&reg, repo, "v1");
    let by_digest = reg.image_ref(repo, &digest);
    ok(sb
        .sigbridge()
        .env("COSIGN_PKCS11_PIN", SOFTHSM_USER_PIN)
        .args(["sign", "--signer", &uri])
        .arg(&by_digest));

    let out = ok(sb
        .sigbridge()
        .env("COSIGN_PKCS11_PIN", SOFTHSM_USER_PIN)
        .args(["verify", "--key", &uri])
        .arg(&by_digest));
    let verified: serde_json::Value =
        serde_json::from_str(out.stdout_str().trim()).expect("verify JSON");
    assert_eq!(
        verified[0]["critical"]["image"]["docker-manifest-digest"],
        digest.as_str()
    );

    // A profile naming the same key works as --key too.
    let config = sb.path("sigbridge.toml");
    std::fs::write(
        &config,
        format!("[profiles.hsm-verify]\nsigner = \"{uri}\"\n"),
    )
    .expect("write config");
    ok(sb
        .sigbridge()
        .env("SIGBRIDGE_CONFIG", &config)
        .env("COSIGN_PKCS11_PIN", SOFTHSM_USER_PIN)
        .args(["verify", "--key", "hsm-verify"])
        .arg(&by_digest));

    // Another key on the token does not verify it (12: no matching signatures).
    let other = token.generate(HsmKeyType::P256, "other-key", b"ok");
    let out = run(sb
        .sigbridge()
        .env("COSIGN_PKCS11_PIN", SOFTHSM_USER_PIN)
        .args(["verify", "--key", &token.uri(&other)])
        .arg(&by_digest));
    assert_eq!(out.status.code(), Some(12), "{}", out.describe());
}

// --- Batches: the signer is opened once per run (issue 10, HSM safety) ---

use crate::common;

/// pkcs11-spy from OpenSC: a module that logs every call and forwards it to `PKCS11SPY`.
const PKCS11_SPY: &str = "/usr/lib/x86_64-linux-gnu/pkcs11-spy.so";

#[test]
fn a_wrong_pin_reaches_the_token_once_per_run_and_no_registry_is_touched() {
    let reg = Registry::plain();
    let sb = Sandbox::new();
    let token = SoftHsm::shared().init_token("e2e-wrong-pin");
    let key = token.generate(HsmKeyType::P256, "wrong-pin", &[0x57]);
    let wrong_pin = sb.pin_file("000000000");
    let spy_log = sb.path("spy.log");
    // The module is the spy, which forwards to SoftHSM and logs every call it sees.
    let signer = format!(
        "{}&pin-source={}",
        token.uri(&key).replace(SOFTHSM_MODULE, PKCS11_SPY),
        wrong_pin.display()
    );
    // More than one batch of 256: a signer opened per batch would log in twice.
    let repo = "e2e/wrong-pin";
    let refs = common::push_distinct_images(&reg, repo, 300);
    let list = sb.path("images.txt");
    std::fs::write(&list, refs.join("\n")).expect("write list");
    let requests_before = reg.log().lines().count();

    let out = run(sb
        .sigbridge()
        .env("PKCS11SPY", SOFTHSM_MODULE)
        .env("PKCS11SPY_OUTPUT", &spy_log)
        .args(["sign", "--signer", &signer, "--images-from"])
        .arg(&list)
        .args(["-o", "json"]));
    assert_eq!(out.status.code(), Some(4), "{}", out.describe());

    let spy = std::fs::read_to_string(&spy_log).expect("pkcs11-spy log");
    let logins = spy.lines().filter(|l| l.ends_with(" C_Login")).count();
    assert_eq!(logins, 1, "C_Login calls seen by pkcs11-spy:\n{spy}");
    assert!(spy.contains("CKR_PIN_INCORRECT"), "{spy}");

    let stderr = out.stderr_str();
    assert_eq!(
        stderr.matches("incorrect").count(),
        1,
        "one error for the run, not one per image:\n{stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "no image was tried, so no per-image lines: {}",
        out.stdout_str()
    );
    assert_eq!(
        reg.log().lines().count(),
        requests_before,
        "the registry was contacted although the signer could not be opened:\n{}",
        reg.log()
    );
    for r in refs.iter().take(3) {
        let digest = r
            .rsplit_once('@')
            .map(|(_, d)| d)
            .expect("digest reference");
        assert!(signature_manifest(&reg, repo, digest).is_none());
    }
}
