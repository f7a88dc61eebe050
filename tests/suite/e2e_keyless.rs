//! Keyless verification through the binary, against a real docker-registry: a self-made CA
//! standing in for Fulcio issues a leaf with Fulcio's extensions, real cosign 2.5 attaches the
//! signature with its certificate and chain, and `sigbridge verify` without `--key` checks it.
//!
//! The signing time is the integrated time of the signature's Rekor bundle, signed by the
//! self-made log of `sigstore_fixtures` and trusted through `--trusted-root` (a root naming only
//! the log; the CA comes from `--certificate-chain`, as cosign's flag): no seam. Without the
//! bundle keyless verification refuses the signature (tested below). Only the Sigstore bundle
//! test still uses the debug-only seam `SIGBRIDGE_TEST_KEYLESS_SIGNING_TIME`
//! (`src/keyless/signing_time.rs`, compiled out of release builds): `sigbridge attach --format
//! bundle` writes no `tlogEntries`, and bundle entries are covered in `src/tlog/tests.rs`.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::common;

use common::{b64, exit, Sandbox};
use sigbridge_testkit::{
    cosign_attach_signature, cosign_for, cosign_generate, push_image, OutputExt, Registry,
};

use crate::sigstore_fixtures::{
    hashedrekord, set_layer_annotation, trusted_root, LeafSpec, Log, TestCa, BUNDLE_ANNOTATION,
};

const SEAM: &str = "SIGBRIDGE_TEST_KEYLESS_SIGNING_TIME";
const IDENTITY: &str = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main";
const ISSUER: &str = "https://token.actions.githubusercontent.com";

/// An image signed keylessly: its reference, the chain file, the signing time, and the log
/// that integrated it.
struct Signed {
    image: String,
    repo: String,
    digest: String,
    chain: PathBuf,
    signed_at: i64,
    log: Log,
    /// A trusted_root.json naming only `log`.
    log_root: PathBuf,
    /// The hashedrekord body of the signature.
    body: Vec<u8>,
    payload: Vec<u8>,
    signature_b64: String,
}

impl Signed {
    /// Put a bundle for this signature integrated at `integrated` on its layer (or none).
    fn set_integrated(&self, reg: &Registry, integrated: Option<i64>) {
        let bundle = integrated.map(|t| self.log.bundle(&self.body, t, &self.log.id_hex()));
        set_layer_annotation(
            reg,
            &self.repo,
            &self.digest,
            BUNDLE_ANNOTATION,
            bundle.as_deref(),
        );
    }
}

/// Now, in whole seconds (certificates are made around it so cosign, which checks them
/// against the clock without a log entry, accepts them too; nothing asserts on time).
fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

fn sign_keyless(reg: &Registry, sb: &Sandbox, ca: &TestCa, repo: &str) -> Signed {
    let digest = push_image(reg, repo, "v1");
    let image = reg.image_ref(repo, &digest);
    let t0 = now() - 60;
    let leaf = ca.issue(&LeafSpec::github(t0));
    let payload_bytes = cosign_generate(reg, &image, &[]);
    let payload = sb.write(
        &format!("{}.payload", repo.replace('/', "_")),
        &payload_bytes,
    );
    let signature_b64 = b64(&leaf.sign(&payload_bytes));
    let signature = sb.write("sig.b64", &signature_b64);
    let cert = sb.write("leaf.pem", &leaf.pem);
    let chain = sb.write(
        &format!("{}-chain.pem", repo.replace('/', "_")),
        ca.chain_pem(),
    );
    let out = cosign_attach_signature(
        reg,
        &image,
        &payload,
        &signature,
        &[
            "--certificate",
            cert.to_str().unwrap(),
            "--certificate-chain",
            chain.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", out.describe());
    let log = Log::new(sb);
    let log_root = sb.write(
        &format!("{}-log-root.json", repo.replace('/', "_")),
        trusted_root(&[log.tlog_json("2020-01-01T00:00:00Z")], &[]).to_string(),
    );
    let signed = Signed {
        image,
        repo: repo.to_string(),
        digest,
        chain,
        signed_at: t0 + 30,
        log,
        log_root,
        body: hashedrekord(&payload_bytes, &signature_b64, &leaf.pem),
        payload: payload_bytes,
        signature_b64,
    };
    signed.set_integrated(reg, Some(signed.signed_at));
    signed
}

fn verify(sb: &Sandbox, s: &Signed, chain: &std::path::Path, extra: &[&str]) -> common::Run {
    sb.sigbridge()
        .arg("verify")
        .args([
            "--certificate-identity",
            IDENTITY,
            "--certificate-oidc-issuer",
            ISSUER,
        ])
        .arg("--certificate-chain")
        .arg(chain)
        .arg("--trusted-root")
        .arg(&s.log_root)
        .args(extra)
        .arg(&s.image)
        .env_remove(SEAM)
        .run()
}

#[test]
fn a_keyless_signature_attached_by_cosign_verifies_and_each_misuse_is_refused() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let ca = TestCa::new("fulcio-test", now() - 86400, now() + 86400);
    let s = sign_keyless(&reg, &sb, &ca, "e2e/keyless-good");

    let out = verify(
        &sb,
        &s,
        &s.chain,
        &["--certificate-github-workflow-trigger", "push"],
    )
    .ok();
    assert!(
        out.stderr().contains("The code-signing certificate was verified using trusted certificate authority certificates"),
        "{}",
        out.describe()
    );
    let verified: serde_json::Value = serde_json::from_str(out.stdout().trim()).unwrap();
    assert_eq!(
        verified.as_array().map(Vec::len),
        Some(1),
        "{}",
        out.describe()
    );

    let refused = |extra: &[&str], chain: &std::path::Path, wanted: &str| {
        let out = verify(&sb, &s, chain, extra).code_is(exit::NO_MATCHING_SIGNATURES);
        assert!(
            out.stderr().contains(wanted),
            "wanted {wanted:?}\n{}",
            out.describe()
        );
    };
    refused(
        &[
            "--certificate-identity-regexp",
            "^https://github.com/other/",
        ],
        &s.chain,
        "(the identity does not match --certificate-identity[-regexp])",
    );
    refused(
        &[
            "--certificate-oidc-issuer-regexp",
            "accounts\\.google\\.com",
        ],
        &s.chain,
        "(the OIDC issuer does not match --certificate-oidc-issuer[-regexp])",
    );
    refused(
        &["--certificate-github-workflow-repository", "acme/other"],
        &s.chain,
        "expected GitHub Workflow Repository not found in certificate",
    );
    let rogue = TestCa::new("rogue", now() - 86400, now() + 86400);
    let rogue_chain = sb.write("rogue-chain.pem", rogue.chain_pem());
    refused(
        &[],
        &rogue_chain,
        "certificate does not chain to a trusted Fulcio root",
    );

    // The log integrated it outside the ten-minute certificate.
    s.set_integrated(&reg, Some(s.signed_at + 3600));
    let late = verify(&sb, &s, &s.chain, &[]).code_is(exit::NO_MATCHING_SIGNATURES);
    s.set_integrated(&reg, Some(s.signed_at));
    assert!(
        late.stderr()
            .contains("certificate is not valid at the signing time"),
        "{}",
        late.describe()
    );

    // Another leaf's certificate given on the command line: the signature is not its key's.
    let other = ca.issue(&LeafSpec::github(now() - 60));
    let other_pem = sb.write("other.pem", &other.pem);
    // The log entry names the stored certificate, so it is refused there first...
    refused(
        &["--certificate", other_pem.to_str().unwrap()],
        &s.chain,
        "transparency log entry body does not match the public key",
    );
    // ...and with an entry naming the other certificate, by the signature check.
    let entry = hashedrekord(&s.payload, &s.signature_b64, &other.pem);
    let bundle = s.log.bundle(&entry, s.signed_at, &s.log.id_hex());
    set_layer_annotation(&reg, &s.repo, &s.digest, BUNDLE_ANNOTATION, Some(&bundle));
    refused(
        &["--certificate", other_pem.to_str().unwrap()],
        &s.chain,
        "signature does not verify with the certificate's key",
    );
    s.set_integrated(&reg, Some(s.signed_at));

    // Real cosign agrees on the good signature and on the wrong identity.
    let cosign = |identity: &str, chain: &std::path::Path| {
        let mut c = cosign_for(&reg);
        c.args(["verify", "--insecure-ignore-tlog", "--insecure-ignore-sct"])
            .args([
                "--certificate-identity",
                identity,
                "--certificate-oidc-issuer",
                ISSUER,
            ])
            .arg("--certificate-chain")
            .arg(chain)
            .args(reg.cosign_args())
            .arg(&s.image);
        c.run()
    };
    let ok = cosign(IDENTITY, &s.chain);
    assert!(ok.status.success(), "{}", ok.describe());
    // The same JSON as cosign prints: the payload with Subject, Issuer and the workflow values.
    let theirs: serde_json::Value = serde_json::from_str(ok.stdout_str().trim()).unwrap();
    assert_eq!(verified, theirs, "{}", ok.describe());
    assert_eq!(
        verified[0]["optional"]["githubWorkflowRepository"],
        "acme/app"
    );
    assert!(!cosign("someone@example.com", &s.chain).status.success());
    assert!(!cosign(IDENTITY, &rogue_chain).status.success());
}

#[test]
fn keyless_without_a_verified_log_entry_is_refused() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let ca = TestCa::new("fulcio-test", now() - 86400, now() + 86400);
    let s = sign_keyless(&reg, &sb, &ca, "e2e/keyless-no-tlog");
    verify(&sb, &s, &s.chain, &[]).ok();
    s.set_integrated(&reg, None);
    let out = verify(&sb, &s, &s.chain, &[]).code_is(exit::NO_MATCHING_SIGNATURES);
    assert!(
        out.stderr()
            .contains("keyless verification needs a verified transparency-log entry"),
        "{}",
        out.describe()
    );
}

#[test]
fn keyless_needs_an_identity_and_an_issuer_as_cosign_says() {
    let sb = Sandbox::new();
    let out = sb
        .sigbridge()
        .args([
            "verify",
            "--certificate-oidc-issuer",
            ISSUER,
            "localhost:1/x@sha256:0000000000000000000000000000000000000000000000000000000000000000",
        ])
        .run()
        .code_is(exit::INVALID_INPUT);
    assert!(
        out.stderr().contains("--certificate-identity or --certificate-identity-regexp is required for verification in keyless mode"),
        "{}",
        out.describe()
    );
    let out = sb
        .sigbridge()
        .args([
            "verify",
            "--certificate-identity",
            IDENTITY,
            "localhost:1/x:v1",
        ])
        .run()
        .code_is(exit::INVALID_INPUT);
    assert!(
        out.stderr().contains("--certificate-oidc-issuer or --certificate-oidc-issuer-regexp is required for verification in keyless mode"),
        "{}",
        out.describe()
    );
}

#[test]
fn a_keyless_sigstore_bundle_verifies_with_its_certificate() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let ca = TestCa::new("fulcio-test", now() - 86400, now() + 86400);
    let repo = "e2e/keyless-bundle";
    let digest = push_image(&reg, repo, "v1");
    let image = reg.image_ref(repo, &digest);
    let t0 = now() - 60;
    let leaf = ca.issue(&LeafSpec::github(t0));
    let pae = sb
        .sigbridge()
        .args(["generate", "--format", "bundle"])
        .arg(&image)
        .run()
        .ok()
        .out
        .stdout;
    let payload = sb.write("statement.pae", &pae);
    let signature = sb.write("pae.sig", b64(&leaf.sign(&pae)));
    let cert = sb.write("leaf.pem", &leaf.pem);
    let chain = sb.write("chain.pem", ca.chain_pem());
    sb.sigbridge()
        .args(["attach", "--format", "bundle", "--payload"])
        .arg(&payload)
        .arg("--signature")
        .arg(&signature)
        .arg("--certificate")
        .arg(&cert)
        .arg(&image)
        .run()
        .ok();
    // The seam stands in for the integrated time of a tlogEntries item (none is written here).
    let verify = |extra: &[&str]| {
        sb.sigbridge()
            .arg("verify")
            .args([
                "--certificate-identity",
                IDENTITY,
                "--certificate-oidc-issuer",
                ISSUER,
            ])
            .arg("--certificate-chain")
            .arg(&chain)
            .args(extra)
            .arg(&image)
            .env(SEAM, (t0 + 30).to_string())
            .run()
    };
    // No --format: the bundle among the referrers is what is verified, with its certificate.
    let out = verify(&[]).ok();
    let verified: serde_json::Value = serde_json::from_str(out.stdout().trim()).unwrap();
    assert_eq!(
        verified[0]["optional"]["Subject"],
        IDENTITY,
        "{}",
        out.describe()
    );
    let out = verify(&["--certificate-identity-regexp", "^mailto:"])
        .code_is(exit::NO_MATCHING_SIGNATURES);
    assert!(
        out.stderr().contains("(the identity does not match"),
        "{}",
        out.describe()
    );
}

/// Every keyless command-line error leaves with its documented code, before any registry
/// access: a flag missing, a malformed regexp or an unreadable certificate file is invalid input
/// (3); trust material missing or unreadable is exit 4 (as an unreadable key).
#[test]
fn keyless_command_line_errors_have_their_exit_codes() {
    let sb = Sandbox::new();
    let ca = TestCa::new("fulcio-test", now() - 86400, now() + 86400);
    let chain = sb.write("chain.pem", ca.chain_pem());
    let garbage = sb.write("garbage.pem", "not a certificate\n");
    let image =
        "127.0.0.1:1/e2e/never@sha256:0000000000000000000000000000000000000000000000000000000000000000";
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = sb.sigbridge().arg("verify").args(args).arg(image);
        for (k, v) in env {
            cmd = cmd.env(k, v);
        }
        cmd.run()
    };
    let who = [
        "--certificate-identity",
        IDENTITY,
        "--certificate-oidc-issuer",
        ISSUER,
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        who.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let chain_arg = chain.to_str().unwrap();
    let garbage_arg = garbage.to_str().unwrap();
    /// What is wrong, the arguments, the environment, the exit code, a text of the message.
    type Case<'a> = (&'a str, Vec<String>, Vec<(&'a str, &'a str)>, i32, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            "no identity flag",
            vec!["--certificate-oidc-issuer".into(), ISSUER.into()],
            vec![],
            exit::INVALID_INPUT,
            "--certificate-identity or --certificate-identity-regexp is required",
        ),
        (
            "no issuer flag",
            vec!["--certificate-identity".into(), IDENTITY.into()],
            vec![],
            exit::INVALID_INPUT,
            "--certificate-oidc-issuer or --certificate-oidc-issuer-regexp is required",
        ),
        (
            "malformed identity regexp",
            with(&[
                "--certificate-identity-regexp",
                "(",
                "--certificate-chain",
                chain_arg,
            ]),
            vec![],
            exit::INVALID_INPUT,
            "malformed --certificate-identity regexp",
        ),
        (
            "malformed issuer regexp",
            with(&[
                "--certificate-oidc-issuer-regexp",
                "[",
                "--certificate-chain",
                chain_arg,
            ]),
            vec![],
            exit::INVALID_INPUT,
            "malformed --certificate-oidc-issuer regexp",
        ),
        (
            "--certificate missing",
            with(&[
                "--certificate-chain",
                chain_arg,
                "--certificate",
                "missing.pem",
            ]),
            vec![],
            exit::INVALID_INPUT,
            "--certificate missing.pem",
        ),
        (
            "--certificate not a certificate",
            with(&[
                "--certificate-chain",
                chain_arg,
                "--certificate",
                garbage_arg,
            ]),
            vec![],
            exit::INVALID_INPUT,
            "--certificate ",
        ),
        (
            "--certificate-chain missing",
            with(&["--certificate-chain", "missing-chain.pem"]),
            vec![],
            exit::INVALID_INPUT,
            "--certificate-chain missing-chain.pem",
        ),
        (
            "--certificate-chain not a chain",
            with(&["--certificate-chain", garbage_arg]),
            vec![],
            exit::INVALID_INPUT,
            "--certificate-chain ",
        ),
        (
            "no trust material",
            with(&[]),
            vec![],
            exit::KEY,
            "keyless verification needs trust material",
        ),
        (
            "--trusted-root missing",
            with(&["--trusted-root", "missing-root.json"]),
            vec![],
            exit::KEY,
            "missing-root.json",
        ),
        (
            "--trusted-root not a trusted root",
            with(&["--trusted-root", garbage_arg]),
            vec![],
            exit::KEY,
            "garbage.pem",
        ),
        (
            "SIGSTORE_ROOT_FILE missing",
            with(&[]),
            vec![("SIGSTORE_ROOT_FILE", "missing-fulcio.pem")],
            exit::KEY,
            "missing-fulcio.pem",
        ),
    ];
    for (what, args, env, code, wanted) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(&args, &env);
        assert_eq!(out.code(), Some(code), "{what}: {}", out.describe());
        assert!(
            out.stderr().contains(wanted),
            "{what}: wanted {wanted:?}\n{}",
            out.describe()
        );
    }
}
