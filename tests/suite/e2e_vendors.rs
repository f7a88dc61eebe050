//! The verify commands vendors publish, run with `sigbridge` in place of `cosign` (issue 17):
//! each command line as printed by the vendor, with only the registry host and the key location
//! changed, against images these tests make and sign with sigbridge. An https key is served by
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
use sigbridge_testkit::certs::tls_chain;
use sigbridge_testkit::{cosign_verify, push_image, OutputExt, Registry};

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

#[test]
fn kong_mesh_keyless_command_without_trust_material_says_what_to_give() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let repo = "e2e/vendors/kong";
    let digest = signed_image(&reg, &sb, &key, repo, &[]);
    let image = reg.image_ref(repo, &digest);
    let out = sb
        .sigbridge()
        .env("COSIGN_REPOSITORY", format!("{}/kong/notary", reg.host()))
        .args([
            "verify",
            &image,
            "--certificate-oidc-issuer=https://token.actions.githubusercontent.com",
            "--certificate-identity-regexp=https://github.com/Kong/kong-mesh/.github/workflows/kong-mesh.yaml",
            "-a",
            "repo=Kong/kong-mesh",
            "-a",
            "workflow=kong-mesh",
        ])
        .run();
    // The flags are known (keyless verification); without trust material it says what to give.
    assert_ne!(out.code(), Some(0), "{}", out.describe());
    assert!(
        out.stderr()
            .contains("keyless verification needs trust material"),
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
