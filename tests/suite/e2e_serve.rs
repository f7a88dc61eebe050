//! End to end: the real `sigbridge serve` (a child process with a temp config, a key file and
//! SQLite state), real `sigbridge sign` against it over a shared docker-registry, approvals
//! through the API as other identities, and real cosign 2.5 verifying the result.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use sigbridge_testkit::{cosign_verify, push_image, OutputExt, Registry, SharedRegistry};

const ORG: &str = "9f0c6a52-3b1e-4d7a-8c2f-5e4b3a291807";
const WAIT: Duration = Duration::from_secs(120);

struct Identity {
    token: String,
    hash_line: String,
}

/// A temp directory with a key, three identities (ci submits; alice and bob approve; ci is an
/// approver of `release-signing` too, to show that does not let it approve its own request),
/// a registry, and the service.
struct Fixture {
    dir: tempfile::TempDir,
    reg: SharedRegistry,
    ci: Identity,
    alice: Identity,
    bob: Identity,
    public_key: PathBuf,
    service: Option<Service>,
    port: u16,
    /// Extra top-level lines for serve.toml.
    top: String,
    /// The CA that issued the service's TLS certificate, when it serves HTTPS.
    ca: Option<PathBuf>,
}

/// The running `sigbridge serve`; killed on drop.
struct Service {
    child: Child,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sigbridge_bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sigbridge"))
}

fn new_identity(dir: &Path) -> Identity {
    let out = sigbridge_bin()
        .args(["serve", "new-token"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", out.describe());
    let text = out.stdout_str();
    let mut lines = text.lines();
    let token = lines.next().unwrap().to_string();
    let hash_line = lines.next().unwrap().to_string();
    assert_eq!(token.len(), 64, "{text}");
    assert!(hash_line.starts_with("token_sha256 = \"sha256:"), "{text}");
    Identity { token, hash_line }
}

impl Fixture {
    fn new() -> Self {
        use p256::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
        let dir = tempfile::Builder::new()
            .prefix("sigbridge-serve-")
            .tempdir()
            .unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        let secret = p256::SecretKey::random(&mut rand_core::OsRng);
        std::fs::write(
            dir.path().join("service.pem"),
            secret.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes(),
        )
        .unwrap();
        let public_key = dir.path().join("service.pub");
        std::fs::write(
            &public_key,
            secret
                .public_key()
                .to_public_key_pem(LineEnding::LF)
                .unwrap(),
        )
        .unwrap();
        let (ci, alice, bob) = (
            new_identity(dir.path()),
            new_identity(dir.path()),
            new_identity(dir.path()),
        );
        let fx = Self {
            dir,
            reg: Registry::shared_plain(),
            ci,
            alice,
            bob,
            public_key,
            service: None,
            port: 0,
            top: String::new(),
            ca: None,
        };
        fx.write_config("serve.toml", "127.0.0.1:0");
        fx
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("serve.toml")
    }

    fn write_config(&self, name: &str, listen: &str) -> PathBuf {
        let text = format!(
            r#"listen = "{listen}"
database = "state.db"
organization_id = "{ORG}"
expire_after = "1h"
{}

[[identities]]
name = "ci"
{}

[[identities]]
name = "alice"
{}

[[identities]]
name = "bob"
{}

[[policies]]
project = "my-images"
slug = "release-signing"
signer = "service.pem"
approvals_required = 1
submitters = ["ci"]
approvers = ["ci", "alice", "bob"]

[[policies]]
project = "my-images"
slug = "two-person"
signer = "service.pem"
approvals_required = 2
submitters = ["ci"]
approvers = ["alice", "bob"]

[[policies]]
project = "my-images"
slug = "unattended"
signer = "service.pem"
approvals_required = 0
submitters = ["ci"]
"#,
            self.top, self.ci.hash_line, self.alice.hash_line, self.bob.hash_line
        );
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Start (or restart, on the same port) the service.
    fn start(&mut self) {
        self.service = None;
        if self.port != 0 {
            self.write_config("serve.toml", &format!("127.0.0.1:{}", self.port));
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("serve.log"))
            .unwrap();
        let mut child = sigbridge_bin()
            .args(["serve", "--config"])
            .arg(self.config())
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", self.dir.path().join("home"))
            .env("SIGBRIDGE_LOG", "sigbridge_serve=info")
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let service = Service { child };
        let prefix = format!("listening on {}://", self.scheme());
        let addr = line
            .trim()
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("no {prefix:?} line: {line:?}\n{}", self.log()));
        self.port = addr.rsplit(':').next().unwrap().parse().unwrap();
        self.service = Some(service);
    }

    fn scheme(&self) -> &'static str {
        if self.ca.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// Serve HTTPS with a server certificate from a fresh test CA.
    fn use_tls(&mut self) {
        let chain = sigbridge_testkit::certs::tls_chain("sigbridge-e2e-serve-ca");
        let dir = self.dir.path();
        std::fs::write(dir.join("tls.crt"), &chain.server.cert_pem).unwrap();
        std::fs::write(dir.join("tls.key"), &chain.server.key_pem).unwrap();
        std::fs::write(dir.join("ca.pem"), &chain.ca.cert_pem).unwrap();
        self.ca = Some(dir.join("ca.pem"));
        self.top = "tls_cert = \"tls.crt\"\ntls_key = \"tls.key\"".into();
        self.write_config("serve.toml", "127.0.0.1:0");
    }

    /// The signer URI without `public-key=`: the client fetches the policy's key from the
    /// service.
    fn uri_fetching_key(&self, policy: &str) -> String {
        format!(
            "signpath+{}://127.0.0.1:{}/{ORG}/my-images/{policy}?artifact-configuration=cosign-raw",
            self.scheme(),
            self.port,
        )
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    /// Stop the service like a crash (SIGKILL, no shutdown).
    fn kill(&mut self) {
        self.service = None;
    }

    fn uri(&self, policy: &str) -> String {
        format!(
            "signpath+http://127.0.0.1:{}/{ORG}/my-images/{policy}?artifact-configuration=cosign-raw&public-key={}",
            self.port,
            self.public_key.display()
        )
    }

    fn images(&self, n: usize) -> Vec<(String, String, String)> {
        (0..n)
            .map(|i| {
                let repo = format!("serve-{}-{i}", rand_suffix());
                let digest = push_image(&self.reg, &repo, "1.0");
                (self.reg.image_ref(&repo, &digest), repo, digest)
            })
            .collect()
    }

    /// `sigbridge sign` in the background, as CI runs it.
    fn spawn_sign(&self, policy: &str, images: &[(String, String, String)]) -> Child {
        self.spawn_sign_uri(&self.uri(policy), images)
    }

    /// `sigbridge sign --signer URI` (a private CA goes in the URI as `ca-file=`).
    fn spawn_sign_uri(&self, uri: &str, images: &[(String, String, String)]) -> Child {
        let list: String = images.iter().map(|(r, _, _)| format!("{r}\n")).collect();
        let file = self
            .dir
            .path()
            .join(format!("images-{}.txt", rand_suffix()));
        std::fs::write(&file, list).unwrap();
        let token_file = self.dir.path().join("ci.token");
        std::fs::write(&token_file, &self.ci.token).unwrap();
        let mut cmd = sigbridge_bin();
        cmd.env_clear();
        cmd.args(["sign", "--signer", uri, "--images-from"])
            .arg(&file)
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", self.dir.path().join("home"))
            .env("SIGBRIDGE_SIGNPATH_TOKEN_FILE", &token_file)
            .env("SIGBRIDGE_SIGNPATH_POLL_INTERVAL_MS", "20")
            .env("SIGBRIDGE_SIGNPATH_POLL_MAX_MS", "200")
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn api(&self, method: &str, who: &Identity, path: &str, body: Option<&str>) -> (u16, String) {
        let url = format!("http://127.0.0.1:{}/API/v1/{ORG}/{path}", self.port);
        let client = self.reg.blocking_client();
        let mut req = match method {
            "GET" => client.get(url),
            _ => client.post(url),
        }
        .bearer_auth(&who.token);
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().unwrap();
        let code = resp.status().as_u16();
        (code, resp.text().unwrap())
    }

    /// The one waiting request `who` can see, once it exists.
    fn wait_for_request(&self, who: &Identity) -> String {
        let start = Instant::now();
        loop {
            let (code, body) = self.api("GET", who, "SigningRequests", None);
            assert_eq!(code, 200, "{body}");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            if let Some(r) = v["signingRequests"].as_array().and_then(|a| a.first()) {
                return r["id"].as_str().unwrap().to_string();
            }
            assert!(start.elapsed() < WAIT, "no request arrived\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn serve_cmd(&self, args: &[&str]) -> Output {
        sigbridge_bin()
            .arg("serve")
            .args(args)
            .arg("--config")
            .arg(self.config())
            .current_dir(self.dir.path())
            .output()
            .unwrap()
    }
}

fn rand_suffix() -> String {
    let mut b = [0u8; 4];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn finish(child: Child) -> Output {
    child.wait_with_output().unwrap()
}

#[test]
fn three_images_approved_by_another_identity_verify_with_cosign_and_the_audit_log_detects_tampering(
) {
    let mut fx = Fixture::new();
    fx.start();
    let images = fx.images(3);
    let sign = fx.spawn_sign("release-signing", &images);
    let id = fx.wait_for_request(&fx.alice);

    // ci is an approver of this policy but submitted the request: refused.
    let (code, body) = fx.api(
        "POST",
        &fx.ci,
        &format!("SigningRequests/{id}/Approve"),
        None,
    );
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("cannot approve"), "{body}");

    let (code, body) = fx.api(
        "POST",
        &fx.alice,
        &format!("SigningRequests/{id}/Approve"),
        None,
    );
    assert_eq!(code, 200, "{body}");

    let out = finish(sign);
    assert!(
        out.status.success(),
        "sign failed:\n{}\n{}",
        out.describe(),
        fx.log()
    );
    for (image, _, _) in &images {
        let v = cosign_verify(&fx.reg, &fx.public_key, image, &[]);
        assert!(
            v.status.success(),
            "cosign verify {image}:\n{}",
            v.describe()
        );
    }

    // The request's data names who submitted and who approved.
    let (code, body) = fx.api("GET", &fx.alice, &format!("SigningRequests/{id}"), None);
    assert_eq!(code, 200, "{body}");
    let data: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(data["status"], "Completed");
    assert_eq!(data["submitter"], "ci");
    assert_eq!(data["approvals"], serde_json::json!(["alice"]));

    let verify = fx.serve_cmd(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", verify.describe());
    let export = fx.serve_cmd(&["audit", "export"]);
    assert!(export.status.success(), "{}", export.describe());
    let entries: Vec<serde_json::Value> = export
        .stdout_str()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["submit", "approve", "sign", "download"],
        "{entries:?}"
    );
    let submitted: serde_json::Value =
        serde_json::from_str(entries[0]["detail"].as_str().unwrap()).unwrap();
    assert_eq!(
        submitted["payloads"].as_array().unwrap().len(),
        3,
        "{submitted}"
    );

    // Someone with the database file rewrites who approved.
    fx.kill();
    let db = rusqlite::Connection::open(fx.dir.path().join("state.db")).unwrap();
    db.execute_batch(
        "DROP TRIGGER audit_no_update; UPDATE audit SET actor = 'mallory' WHERE seq = 2;",
    )
    .unwrap();
    drop(db);
    let verify = fx.serve_cmd(&["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(5), "{}", verify.describe());
    assert!(
        verify.stderr_str().contains("audit log broken at entry 2"),
        "{}",
        verify.describe()
    );
}

#[test]
fn a_denial_with_a_reason_makes_the_client_exit_7_and_a_non_loopback_listen_is_refused() {
    let mut fx = Fixture::new();
    fx.start();
    let images = fx.images(1);
    let sign = fx.spawn_sign("release-signing", &images);
    let id = fx.wait_for_request(&fx.bob);

    let (code, body) = fx.api("POST", &fx.bob, &format!("SigningRequests/{id}/Deny"), None);
    assert_eq!(code, 400, "a denial without a reason: {body}");
    let (code, body) = fx.api(
        "POST",
        &fx.bob,
        &format!("SigningRequests/{id}/Deny"),
        Some(r#"{"reason":"not a release build"}"#),
    );
    assert_eq!(code, 200, "{body}");

    let out = finish(sign);
    assert_eq!(out.status.code(), Some(7), "{}", out.describe());
    let (_, repo, digest) = &images[0];
    let tag = format!("{}.sig", digest.replacen("sha256:", "sha256-", 1));
    let resp = fx
        .reg
        .blocking_client()
        .get(format!("{}/v2/{repo}/manifests/{tag}", fx.reg.url()))
        .header("Accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404, "a signature was attached");
    let (_, body) = fx.api("GET", &fx.bob, &format!("SigningRequests/{id}"), None);
    assert!(body.contains("not a release build"), "{body}");

    let other = fx.write_config("open.toml", "0.0.0.0:0");
    let out = sigbridge_bin()
        .args(["serve", "--config"])
        .arg(other)
        .current_dir(fx.dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", out.describe());
    assert!(
        out.stderr_str().contains("refusing to listen on 0.0.0.0:0"),
        "{}",
        out.describe()
    );
}

#[test]
fn a_restart_while_a_request_waits_loses_nothing() {
    let mut fx = Fixture::new();
    fx.start();
    let images = fx.images(2);
    let sign = fx.spawn_sign("two-person", &images);
    let id = fx.wait_for_request(&fx.alice);
    let (code, body) = fx.api(
        "POST",
        &fx.alice,
        &format!("SigningRequests/{id}/Approve"),
        None,
    );
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"complete\":false"), "{body}");

    fx.kill();
    fx.start();

    assert_eq!(fx.wait_for_request(&fx.bob), id);
    let (code, body) = fx.api(
        "POST",
        &fx.bob,
        &format!("SigningRequests/{id}/Approve"),
        None,
    );
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"complete\":true"), "{body}");

    let out = finish(sign);
    assert!(
        out.status.success(),
        "sign failed:\n{}\n{}",
        out.describe(),
        fx.log()
    );
    for (image, _, _) in &images {
        let v = cosign_verify(&fx.reg, &fx.public_key, image, &[]);
        assert!(
            v.status.success(),
            "cosign verify {image}:\n{}",
            v.describe()
        );
    }
    let verify = fx.serve_cmd(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", verify.describe());
}

#[test]
fn over_tls_from_a_test_ca_the_client_fetches_the_policy_key_and_cosign_verifies() {
    let mut fx = Fixture::new();
    fx.use_tls();
    fx.start();
    let images = fx.images(1);
    let uri = fx.uri_fetching_key("unattended");

    // Without the CA the client must refuse the service's certificate, and say what to add.
    let out = finish(fx.spawn_sign_uri(&uri, &images));
    assert!(!out.status.success(), "{}", out.describe());
    assert!(
        out.stderr_str().contains("certificate") && out.stderr_str().contains("ca-file="),
        "not a certificate error with the ca-file= hint:\n{}",
        out.describe()
    );

    // ca-file= adds the test CA to the system's roots (percent-encoded like any URI value).
    let ca = fx.ca.clone().unwrap();
    let uri = format!(
        "{uri}&ca-file={}",
        ca.display()
            .to_string()
            .replace('%', "%25")
            .replace(' ', "%20")
    );
    let out = finish(fx.spawn_sign_uri(&uri, &images));
    assert!(
        out.status.success(),
        "sign over TLS failed:\n{}\n{}",
        out.describe(),
        fx.log()
    );
    let v = cosign_verify(&fx.reg, &fx.public_key, &images[0].0, &[]);
    assert!(v.status.success(), "cosign verify:\n{}", v.describe());
}

#[test]
fn a_burst_over_the_rate_limit_gets_429_with_retry_after_and_the_client_still_completes() {
    let mut fx = Fixture::new();
    // One call every 3 s after a burst of 20.
    fx.top = "max_requests_per_minute = 20".into();
    fx.write_config("serve.toml", "127.0.0.1:0");
    fx.start();
    let client = fx.reg.blocking_client();
    let url = format!("http://127.0.0.1:{}/API/v1/{ORG}/SigningRequests", fx.port);
    let mut refused = None;
    for _ in 0..100 {
        let resp = client.get(&url).bearer_auth(&fx.ci.token).send().unwrap();
        if resp.status().as_u16() == 429 {
            refused = Some(resp);
            break;
        }
        assert_eq!(resp.status().as_u16(), 200);
    }
    let resp = refused.expect("100 calls in a row were never limited");
    let retry_after: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3).contains(&retry_after), "Retry-After {retry_after}");
    assert!(resp.text().unwrap().contains("max_requests_per_minute"));
    // Another identity has its own allowance.
    let (code, body) = fx.api("GET", &fx.alice, "SigningRequests", None);
    assert_eq!(code, 200, "{body}");

    let images = fx.images(1);
    let out = finish(fx.spawn_sign_uri(&fx.uri_fetching_key("unattended"), &images));
    assert!(
        out.status.success(),
        "sign under the rate limit failed:\n{}\n{}",
        out.describe(),
        fx.log()
    );
    let v = cosign_verify(&fx.reg, &fx.public_key, &images[0].0, &[]);
    assert!(v.status.success(), "cosign verify:\n{}", v.describe());
    // The burst was refused once; the client, which starts with an empty allowance and needs
    // several calls, was refused too and waited.
    let refusals = fx.log().matches("rate limit: refused a call").count();
    assert!(refusals >= 2, "the client was never limited:\n{}", fx.log());
}
