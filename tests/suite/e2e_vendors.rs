//! The verify commands vendors publish, run with `sigbridge` in place of `cosign` (issue 17):
//! each command line as printed by the vendor, with only the registry host and the key location
//! changed, against images these tests make and sign (Kong Mesh's keylessly, with the self-made
//! Sigstore deployment of `sigstore_fixtures`, its trusted root added with `--trusted-root`
//! because sigbridge is offline). An https key is served by
//! a local TLS server whose CA is passed with `--registry-cacert`, as a user passes a registry's.
//! And `sigbridge verify`'s output, byte for byte against cosign 2.5's on the same image.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::common::{self, exit, Sandbox, TestKey};
use crate::sigstore_fixtures::{
    ca_json, hashedrekord, set_layer_annotation, trusted_root, with_bad_set, LeafSpec, Log, TestCa,
    BUNDLE_ANNOTATION,
};
use sigbridge_testkit::certs::tls_chain;
use sigbridge_testkit::{
    cosign_for, cosign_generate, cosign_verify, push_image, OutputExt, Registry,
};

/// The cap on a key URL's body (`MAX_KEY_URL_BODY` in src/cli/key_source.rs).
const MAX_KEY_URL_BODY: usize = 64 * 1024;

/// What the key server answers on a path.
#[derive(Clone)]
enum Answer {
    /// 200 with this body.
    Body(Vec<u8>),
    /// 302 to this location.
    Redirect(String),
}

/// A small HTTPS server on 127.0.0.1 (certificate from a test CA) that answers GETs from a
/// table and 404 otherwise; it stops when dropped.
struct KeyServer {
    port: u16,
    routes: Arc<Mutex<HashMap<String, Answer>>>,
    ca: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl KeyServer {
    fn start(sb: &Sandbox) -> Self {
        let routes: Arc<Mutex<HashMap<String, Answer>>> = Arc::default();
        let chain = tls_chain("sigbridge-e2e-key-server-ca");
        let ca = sb.write("key-server-ca.pem", &chain.ca.cert_pem);
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs = vec![
            CertificateDer::from_pem_slice(chain.server.cert_pem.as_bytes())
                .expect("server certificate PEM"),
        ];
        let key =
            PrivateKeyDer::from_pem_slice(chain.server.key_pem.as_bytes()).expect("server key PEM");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server TLS config");
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind key server");
        listener.set_nonblocking(true).expect("non-blocking accept");
        let port = listener.local_addr().expect("local address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let table = routes.clone();
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((tcp, _)) => {
                        let routes = table.lock().expect("routes").clone();
                        serve_one(tcp, &config, &routes)
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Err(_) => return,
                }
            }
        });
        Self {
            port,
            routes,
            ca,
            stop,
            thread: Some(thread),
        }
    }

    fn route(&self, path: &str, answer: Answer) {
        self.routes
            .lock()
            .expect("routes")
            .insert(path.to_string(), answer);
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for KeyServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answer one request on `tcp` (a failed handshake, e.g. a client that does not trust the CA,
/// just ends the connection).
fn serve_one(tcp: TcpStream, config: &Arc<rustls::ServerConfig>, routes: &HashMap<String, Answer>) {
    let _ = tcp.set_nonblocking(false);
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
        return;
    };
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
        match tls.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&request);
    let path = text.split_whitespace().nth(1).unwrap_or("/").to_string();
    let (status, extra, body) = match routes.get(&path) {
        Some(Answer::Body(b)) => ("200 OK", String::new(), b.clone()),
        Some(Answer::Redirect(to)) => ("302 Found", format!("Location: {to}\r\n"), Vec::new()),
        None => ("404 Not Found", String::new(), b"not found".to_vec()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\n{extra}Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = tls.write_all(head.as_bytes());
    let _ = tls.write_all(&body);
    let _ = tls.flush();
    tls.conn.send_close_notify();
    let _ = tls.flush();
}

/// An image `repo:v1` in the shared plain registry, signed with sigbridge by `key`; its digest.
fn signed_image(reg: &Registry, sb: &Sandbox, key: &TestKey, repo: &str, extra: &[&str]) -> String {
    let digest = push_image(reg, repo, "v1");
    sb.sigbridge()
        .arg("sign")
        .signer(key)
        .args(extra)
        .arg(reg.image_ref(repo, &digest))
        .run()
        .ok();
    digest
}

/// `sigbridge ARGS` split on spaces, as a vendor prints the command (no quoting needed).
fn vendor_command(sb: &Sandbox, line: &str) -> common::Run {
    sb.sigbridge().args(line.split(' ')).run()
}

#[test]
fn true_connector_verify_command_works_with_sigbridge() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let repo = "e2e/vendors/trueconn";
    let digest = signed_image(&reg, &sb, &key, repo, &[]);
    // The vendor ships trueconn.pub; the user runs the command next to it.
    sb.write("trueconn.pub", key.public_pem());
    let image = reg.image_ref(repo, "v1");

    for line in [
        format!("verify --key trueconn.pub {image}"),
        format!("verify --key trueconn.pub {image} --insecure-ignore-tlog"),
    ] {
        let out = vendor_command(&sb, &line).ok();
        let payloads = common::verified_payloads(&out.out.stdout);
        assert_eq!(payloads.len(), 1, "{}", out.describe());
        assert_eq!(
            payloads[0]["critical"]["image"]["docker-manifest-digest"],
            digest
        );
    }

    // Failing variant: the key of someone else.
    sb.write("trueconn.pub", sb.pkcs8_key("other").public_pem());
    let out = vendor_command(&sb, &format!("verify --key trueconn.pub {image}"))
        .code_is(exit::NO_MATCHING_SIGNATURES);
    assert!(out.stdout().trim().is_empty(), "{}", out.describe());
}

#[test]
fn spectro_cloud_verify_command_fetches_the_key_over_https() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let other = sb.pkcs8_key("other");
    let repo = "e2e/vendors/spectro";
    let digest = signed_image(&reg, &sb, &key, repo, &[]);
    let image = reg.image_ref(repo, "v1");
    let server = KeyServer::start(&sb);
    server.route(
        "/static/cosign.pub",
        Answer::Body(key.public_pem().into_bytes()),
    );
    server.route(
        "/static/other.pub",
        Answer::Body(other.public_pem().into_bytes()),
    );
    // One byte over the cap, a PEM that would verify if it were read whole.
    let mut oversized = key.public_pem().into_bytes();
    oversized.resize(MAX_KEY_URL_BODY + 1, b'\n');
    server.route("/static/big.pub", Answer::Body(oversized));
    // To the same key on the same server, but over plain HTTP.
    server.route(
        "/static/moved.pub",
        Answer::Redirect(format!(
            "http://127.0.0.1:{}/static/cosign.pub",
            server.port
        )),
    );
    let ca = server.ca.display().to_string();
    let run = |path: &str| {
        let line = format!("verify --key {} {image}", server.url(path));
        // The CA is passed as for a registry on a private CA.
        sb.sigbridge()
            .args(line.split(' '))
            .args(["--registry-cacert", &ca])
            .run()
    };

    let out = run("/static/cosign.pub").ok();
    let payloads = common::verified_payloads(&out.out.stdout);
    assert_eq!(payloads.len(), 1, "{}", out.describe());
    assert_eq!(
        payloads[0]["critical"]["image"]["docker-manifest-digest"],
        digest
    );

    // The same through the environment variable a user sets once.
    sb.sigbridge()
        .args(["verify", "--key", &server.url("/static/cosign.pub"), &image])
        .env("SIGBRIDGE_REGISTRY_CACERT", &ca)
        .run()
        .ok();

    // Wrong key: fetched fine, verifies nothing.
    run("/static/other.pub").code_is(exit::NO_MATCHING_SIGNATURES);

    // A key URL that is not there: a key problem, naming the URL and the status.
    let out = run("/static/missing.pub").code_is(exit::KEY);
    let err = out.stderr();
    assert!(
        err.contains(&server.url("/static/missing.pub")) && err.contains("HTTP 404"),
        "{}",
        out.describe()
    );

    // A redirect to plain HTTP is not followed, even to this machine.
    let out = run("/static/moved.pub").code_is(exit::KEY);
    let err = out.stderr();
    assert!(
        err.contains(&server.url("/static/moved.pub"))
            && err.contains("redirect refused")
            && err.contains("is not https://"),
        "{}",
        out.describe()
    );

    // More than the cap is refused, not read.
    let out = run("/static/big.pub").code_is(exit::KEY);
    assert!(
        out.stderr().contains("larger than the 65536-byte limit"),
        "{}",
        out.describe()
    );

    // Without the CA, the server is not trusted: the message says which flag to pass.
    let out = vendor_command(
        &sb,
        &format!("verify --key {} {image}", server.url("/static/cosign.pub")),
    )
    .code_is(exit::KEY);
    assert!(
        out.stderr().contains("certificate was not accepted")
            && out.stderr().contains("--registry-cacert"),
        "{}",
        out.describe()
    );
}

/// Kong Mesh's identity: the workflow that signs its releases (the SAN of Fulcio's leaf).
const KONG_SAN: &str =
    "https://github.com/Kong/kong-mesh/.github/workflows/kong-mesh.yaml@refs/tags/v2.9.0";
const KONG_ISSUER: &str = "https://token.actions.githubusercontent.com";
/// When the self-made log integrated Kong's signature (Unix seconds, 2025-06-15); the leaf is
/// valid from a minute before to nine minutes after, the log key and the CA from `TRUST_START`.
const KONG_INTEGRATED: i64 = 1_750_000_000;
const TRUST_START: &str = "2025-01-01T00:00:00Z";
/// 2025-01-01T00:00:00Z and 2035-01-01T00:00:00Z.
const CA_SPAN: (i64, i64) = (1_735_689_600, 2_051_222_400);

/// Kong's command line as Kong prints it (`cosign` replaced by `sigbridge`), with `--trusted-root`
/// added: the issuer and the identity regexp in `--flag=value` form, then the two annotations.
fn kong_line(image: &str) -> Vec<String> {
    [
        "verify",
        image,
        "--certificate-oidc-issuer=https://token.actions.githubusercontent.com",
        "--certificate-identity-regexp=https://github.com/Kong/kong-mesh/.github/workflows/kong-mesh.yaml",
        "-a",
        "repo=Kong/kong-mesh",
        "-a",
        "workflow=kong-mesh",
    ]
    .map(String::from)
    .to_vec()
}

/// A Kong-like release: an image signed keylessly (legacy `.sig`, `-a repo=… -a workflow=…`)
/// with a leaf from the self-made Fulcio, its hashedrekord entry signed by the self-made log,
/// the signature kept in `<host>/kong/notary` as Kong keeps it in `kong/notary`.
struct KongRelease {
    image: String,
    digest: String,
    /// `<host>/kong/notary`, the value of COSIGN_REPOSITORY.
    cosign_repository: String,
    /// trusted_root.json naming the log and the CA.
    root: PathBuf,
    log: Log,
    /// The hashedrekord body of the signature (with the leaf certificate).
    body: Vec<u8>,
    /// The good bundle annotation.
    bundle: String,
}

/// The signature repository inside the registry (COSIGN_REPOSITORY without the host).
const KONG_NOTARY: &str = "kong/notary";

fn kong_release(reg: &Registry, sb: &Sandbox) -> KongRelease {
    let repo = "e2e/vendors/kong/kuma-cp";
    let digest = push_image(reg, repo, "2.9.0");
    let image = reg.image_ref(repo, &digest);
    let ca = TestCa::new("fulcio-kong", CA_SPAN.0, CA_SPAN.1);
    let leaf = ca.issue(&LeafSpec {
        san_uri: KONG_SAN.into(),
        workflow_repository: Some("Kong/kong-mesh".into()),
        ..LeafSpec::github(KONG_INTEGRATED - 60)
    });
    let log = Log::new(sb);
    let root = sb.write(
        "kong-trusted-root.json",
        trusted_root(&[log.tlog_json(TRUST_START)], &[ca_json(&ca, TRUST_START)]).to_string(),
    );

    // What Kong's pipeline does with `cosign sign -a repo=… -a workflow=…`, in its parts.
    let payload = cosign_generate(
        reg,
        &image,
        &[("repo", "Kong/kong-mesh"), ("workflow", "kong-mesh")],
    );
    let signature = common::b64(&leaf.sign(&payload));
    let body = hashedrekord(&payload, &signature, &leaf.pem);
    let bundle = log.bundle(&body, KONG_INTEGRATED, &log.id_hex());
    let cosign_repository = format!("{}/{KONG_NOTARY}", reg.host());
    let mut attach = cosign_for(reg);
    attach
        .env("COSIGN_REPOSITORY", &cosign_repository)
        .args(["attach", "signature", "--payload"])
        .arg(sb.write("kong.payload", &payload))
        .arg("--signature")
        .arg(sb.write("kong.sig", &signature))
        .arg("--certificate")
        .arg(sb.write("kong-leaf.pem", &leaf.pem))
        .arg("--certificate-chain")
        .arg(sb.write("kong-chain.pem", ca.chain_pem()))
        .args(reg.cosign_args())
        .arg(&image);
    let out = attach.run();
    assert!(out.status.success(), "{}", out.describe());
    // The entry as `cosign sign` stores it; cosign 2.5's `attach signature --rekor-response`
    // expects a Rekor API response, so the annotation is added to the manifest instead.
    assert!(
        common::sig_manifest(reg, KONG_NOTARY, &digest).is_some(),
        "the signature is in kong/notary"
    );
    set_layer_annotation(reg, KONG_NOTARY, &digest, BUNDLE_ANNOTATION, Some(&bundle));
    common::assert_no_sig_tag(reg, repo, &digest);
    KongRelease {
        image,
        digest,
        cosign_repository,
        root,
        log,
        body,
        bundle,
    }
}

impl KongRelease {
    /// `COSIGN_REPOSITORY=… sigbridge LINE --trusted-root FILE`, without the debug-only
    /// signing-time seam: the signing time is the verified entry's.
    fn sigbridge(&self, sb: &Sandbox, line: &[String]) -> common::Run {
        sb.sigbridge()
            .env("COSIGN_REPOSITORY", &self.cosign_repository)
            .env_remove("SIGBRIDGE_TEST_KEYLESS_SIGNING_TIME")
            .args(line)
            .arg("--trusted-root")
            .arg(&self.root)
            .run()
    }

    /// cosign 3.1.1, offline: `--trusted-root` for the CA and the log, `--offline` so the legacy
    /// bundle is the tlog evidence, `--insecure-ignore-sct` as the self-made CA embeds no SCT.
    fn cosign3(&self, reg: &Registry, line: &[String]) -> std::process::Output {
        let mut cosign = sigbridge_testkit::Tools::cosign3();
        reg.write_docker_config(&cosign.home().join(".docker"));
        cosign
            .env("COSIGN_REPOSITORY", &self.cosign_repository)
            .args(line)
            .arg("--trusted-root")
            .arg(&self.root)
            .args(["--offline", "--insecure-ignore-sct"])
            .args(reg.cosign_args());
        cosign.run()
    }

    fn set_bundle(&self, reg: &Registry, bundle: Option<&str>) {
        set_layer_annotation(reg, KONG_NOTARY, &self.digest, BUNDLE_ANNOTATION, bundle);
    }
}

/// Kong Mesh's published keyless command, run against a self-made Sigstore deployment (a CA
/// standing in for Fulcio, a log standing in for Rekor, a trusted_root.json naming both) with
/// `--trusted-root` added, as a user offline pins the public-good root: it passes with no
/// debug seam (the signing time is the verified log entry's integrated time), and each way the
/// release could be wrong is refused with exit 12 and what failed. cosign 3.1.1 runs the same
/// line offline (`--trusted-root FILE --offline --insecure-ignore-sct`) and agrees on the pass
/// and on every variant (exit 12 each time).
#[test]
fn kong_mesh_keyless_command_verifies_offline_and_refuses_each_wrong_release() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let kong = kong_release(&reg, &sb);
    let line = kong_line(&kong.image);

    let out = kong.sigbridge(&sb, &line).ok();
    let err = out.stderr();
    assert!(
        err.contains("  - The specified annotations were verified.\n  - The cosign claims were validated\n  - Existence of the claims in the transparency log was verified offline\n  - The code-signing certificate was verified using trusted certificate authority certificates"),
        "{}",
        out.describe()
    );
    let ours: serde_json::Value = serde_json::from_str(out.stdout().trim()).expect("JSON");
    assert_eq!(
        ours[0]["critical"]["image"]["docker-manifest-digest"],
        kong.digest
    );
    assert_eq!(ours[0]["optional"]["Subject"], KONG_SAN, "{ours}");
    assert_eq!(ours[0]["optional"]["Issuer"], KONG_ISSUER, "{ours}");
    assert_eq!(ours[0]["optional"]["workflow"], "kong-mesh", "{ours}");
    assert_eq!(
        ours[0]["optional"]["githubWorkflowRepository"], "Kong/kong-mesh",
        "{ours}"
    );
    let theirs = kong.cosign3(&reg, &line);
    assert!(
        theirs.status.success(),
        "cosign 3.1.1: {}",
        theirs.describe()
    );
    assert_eq!(
        ours,
        serde_json::from_slice::<serde_json::Value>(&theirs.stdout).expect("cosign JSON"),
        "the same verified payloads as cosign 3.1.1"
    );

    let with = |from: &str, to: &str| -> Vec<String> {
        line.iter()
            .map(|a| if a == from { to.to_string() } else { a.clone() })
            .collect()
    };
    let expired = kong
        .log
        .bundle(&kong.body, KONG_INTEGRATED + 3600, &kong.log.id_hex());
    let bad_set = with_bad_set(&kong.bundle);
    let variants: Vec<(&str, Vec<String>, Option<&str>, &str)> = vec![
        (
            "wrong issuer",
            with(
                "--certificate-oidc-issuer=https://token.actions.githubusercontent.com",
                "--certificate-oidc-issuer=https://accounts.google.com",
            ),
            Some(&kong.bundle),
            "(the OIDC issuer does not match --certificate-oidc-issuer[-regexp])",
        ),
        (
            "identity regexp not matching",
            with(
                "--certificate-identity-regexp=https://github.com/Kong/kong-mesh/.github/workflows/kong-mesh.yaml",
                "--certificate-identity-regexp=https://github.com/Kong/kuma/",
            ),
            Some(&kong.bundle),
            "(the identity does not match --certificate-identity[-regexp])",
        ),
        (
            "wrong -a",
            with("workflow=kong-mesh", "workflow=kuma"),
            Some(&kong.bundle),
            "missing or incorrect annotation",
        ),
        (
            "no tlog entry",
            line.clone(),
            None,
            "keyless verification needs a verified transparency-log entry",
        ),
        (
            "tampered SET",
            line.clone(),
            Some(&bad_set),
            "signed entry timestamp is invalid",
        ),
        (
            "certificate expired at the integrated time",
            line.clone(),
            Some(&expired),
            "certificate is not valid at the signing time",
        ),
    ];
    for (what, variant, bundle, reason) in variants {
        kong.set_bundle(&reg, bundle);
        let ours = kong
            .sigbridge(&sb, &variant)
            .code_is(exit::NO_MATCHING_SIGNATURES);
        assert!(
            ours.stderr().contains(reason),
            "{what}: wanted {reason:?}\n{}",
            ours.describe()
        );
        assert!(
            ours.stdout().trim().is_empty(),
            "{what}: {}",
            ours.describe()
        );
        let theirs = kong.cosign3(&reg, &variant);
        assert_eq!(
            theirs.status.code(),
            Some(exit::NO_MATCHING_SIGNATURES),
            "{what}: cosign 3.1.1: {}",
            theirs.describe()
        );
        eprintln!(
            "{what}: sigbridge: {:?}; cosign 3.1.1: {:?}",
            ours.stderr().lines().last().unwrap_or_default(),
            String::from_utf8_lossy(&theirs.stderr)
                .lines()
                .last()
                .unwrap_or_default()
        );
    }
    kong.set_bundle(&reg, Some(&kong.bundle));
}

/// Kong's line without trust material: refused before any registry access, as trust material
/// unavailable (exit 4), naming what to give.
#[test]
fn kong_mesh_keyless_command_without_trust_material_says_what_to_give() {
    let sb = Sandbox::new();
    let out = sb
        .sigbridge()
        .env("COSIGN_REPOSITORY", "127.0.0.1:1/kong/notary")
        .args(kong_line(
            "127.0.0.1:1/kong/kuma-cp@sha256:0000000000000000000000000000000000000000000000000000000000000000",
        ))
        .run()
        .code_is(exit::KEY);
    assert!(
        out.stderr()
            .contains("keyless verification needs trust material: give --trusted-root FILE"),
        "{}",
        out.describe()
    );
}

#[test]
fn key_references_sigbridge_does_not_read_are_refused_with_what_to_do() {
    let sb = Sandbox::new();
    for (spec, what) in [
        ("k8s://cosign-system/cosign-pub", "Kubernetes secrets"),
        ("awskms:///alias/release", "AWS KMS"),
        (
            "gcpkms://projects/p/locations/global/keyRings/r/cryptoKeys/k",
            "Google Cloud KMS",
        ),
        (
            "azurekms://release.vault.azure.net/cosign",
            "Azure Key Vault",
        ),
        ("hashivault://release", "HashiCorp Vault"),
    ] {
        let out = sb
            .sigbridge()
            .args(["verify", "--key", spec, "127.0.0.1:1/e2e/never:v1"])
            .run()
            .code_is(exit::KEY);
        let err = out.stderr();
        assert!(
            err.contains(what) && err.contains("Export the public key to a file"),
            "{}",
            out.describe()
        );
    }
    // Plain HTTP is refused unless asked for, and then only on loopback.
    let out = sb
        .sigbridge()
        .args([
            "verify",
            "--key",
            "http://127.0.0.1:1/cosign.pub",
            "127.0.0.1:1/e2e/never:v1",
        ])
        .run()
        .code_is(exit::KEY);
    assert!(
        out.stderr().contains("--allow-http-key-url"),
        "{}",
        out.describe()
    );
}

/// stderr from cosign's "Verification for" header on (before it: cosign's tlog warning and
/// sigbridge's tag warning, which differ by design).
fn check_list(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let at = text
        .find("\nVerification for ")
        .unwrap_or_else(|| panic!("no check list in stderr:\n{text}"));
    text[at..].to_string()
}

#[test]
fn verify_output_is_byte_identical_to_cosign_for_tags_digests_annotations_and_text() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let repo = "e2e/vendors/parity";
    let digest = signed_image(&reg, &sb, &key, repo, &["-a", "team=e2e", "-a", "build=42"]);
    // A second repository whose signature carries no annotations (`"optional":null`).
    let bare_repo = "e2e/vendors/parity-bare";
    let bare_digest = signed_image(&reg, &sb, &key, bare_repo, &[]);

    // A third whose payload (attached, not made by `sign -a`) carries what Go's encoder writes
    // its own way: HTML characters, U+2028, float64 numbers (big, tiny, -0, 1.0).
    let odd_repo = "e2e/vendors/parity-odd";
    let odd_digest = push_image(&reg, odd_repo, "v1");
    let odd_ref = reg.image_ref(odd_repo, &odd_digest);
    let generated = sb.sigbridge().arg("generate").arg(&odd_ref).run().ok();
    let payload = generated.stdout().trim_end().replacen(
        r#""optional":null"#,
        r#""optional":{"url":"https://ci.example/b?x=1&y=<2>","sep":"a\u2028b","n":1.0,"big":12345678901234567890,"tiny":0.0000001,"edge":0.000001,"huge":1e21,"neg":-0.0,"arr":[2.50,{"b":1,"a":2}]}"#,
        1,
    );
    assert!(payload.contains(r#""big""#), "{payload}");
    let payload_file = sb.write("odd-payload.json", &payload);
    let signature_file = sb.write("odd-payload.sig", key.sign_der(payload.as_bytes()));
    sb.sigbridge()
        .arg("attach")
        .arg("--payload")
        .arg(&payload_file)
        .arg("--signature")
        .arg(&signature_file)
        .arg(&odd_ref)
        .run()
        .ok();

    let mut cases = Vec::new();
    cases.push((reg.image_ref(odd_repo, &odd_digest), &[][..], &[][..]));
    for (repo, digest) in [(repo, &digest), (bare_repo, &bare_digest)] {
        for reference in [reg.image_ref(repo, "v1"), reg.image_ref(repo, digest)] {
            for output in [&[][..], &["-o", "text"][..], &["--output", "json"][..]] {
                cases.push((reference.clone(), output, &[][..]));
                if repo != bare_repo {
                    cases.push((reference.clone(), output, &["-a", "team=e2e"][..]));
                }
            }
        }
    }
    for (reference, output, annotations) in cases {
        let extra: Vec<&str> = output.iter().chain(annotations).copied().collect();
        let theirs = cosign_verify(&reg, &key.public, &reference, &extra);
        assert!(theirs.status.success(), "{}", theirs.describe());
        let ours = sb
            .sigbridge()
            .args(["verify", "--key"])
            .arg(&key.public)
            .arg("--insecure-ignore-tlog")
            .args(&extra)
            .arg(&reference)
            .run()
            .ok();
        let what = format!(
            "{reference} {extra:?}\nours: {}\ncosign: {}",
            ours.describe(),
            theirs.describe()
        );
        assert_eq!(
            String::from_utf8_lossy(&ours.out.stdout),
            String::from_utf8_lossy(&theirs.stdout),
            "stdout differs for {what}"
        );
        assert_eq!(
            check_list(&ours.out.stderr),
            check_list(&theirs.stderr),
            "check list differs for {what}"
        );
    }
}
