//! What the end-to-end tests of `sigbridge serve` share (e2e_serve, e2e_serve_browser): the
//! real service as a child process with a temp config, a key file and SQLite state; identities
//! with API tokens and, where a test needs them, web passwords; `sigbridge sign` as CI runs it.

use std::io::{BufRead as _, BufReader, Read, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use sigbridge_testkit::{push_image, OutputExt, Registry, SharedRegistry};

pub(crate) const ORG: &str = "9f0c6a52-3b1e-4d7a-8c2f-5e4b3a291807";
pub(crate) const WAIT: Duration = Duration::from_secs(120);

pub(crate) struct Identity {
    pub(crate) token: String,
    hash_line: String,
    /// `password_argon2 = "…"` once [`Fixture::add_password`] gave it a web password.
    password_line: Option<String>,
}

/// A temp directory with a key, three identities (ci submits; alice and bob approve; ci is an
/// approver of `release-signing` too, to show that does not let it approve its own request),
/// a registry, and the service.
pub(crate) struct Fixture {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) reg: SharedRegistry,
    pub(crate) ci: Identity,
    pub(crate) alice: Identity,
    pub(crate) bob: Identity,
    pub(crate) public_key: PathBuf,
    service: Option<Service>,
    pub(crate) port: u16,
    /// Extra top-level lines for serve.toml.
    pub(crate) top: String,
    /// The CA that issued the service's TLS certificate, when it serves HTTPS.
    pub(crate) ca: Option<PathBuf>,
    /// Extra sections appended to serve.toml (`[[groups]]`, more `[[policies]]`).
    pub(crate) extra: String,
}

/// The running `sigbridge serve`; killed on drop.
pub(crate) struct Service {
    child: Child,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Identity {
    /// Its credential lines for serve.toml.
    fn lines(&self) -> String {
        match &self.password_line {
            Some(p) => format!("{}\n{p}", self.hash_line),
            None => self.hash_line.clone(),
        }
    }
}

pub(crate) fn sigbridge_bin() -> Command {
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
    Identity {
        token,
        hash_line,
        password_line: None,
    }
}

impl Fixture {
    pub(crate) fn new() -> Self {
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
            extra: String::new(),
        };
        fx.write_config("serve.toml", "127.0.0.1:0");
        fx
    }

    pub(crate) fn config(&self) -> PathBuf {
        self.dir.path().join("serve.toml")
    }

    pub(crate) fn write_config(&self, name: &str, listen: &str) -> PathBuf {
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
            self.top,
            self.ci.lines(),
            self.alice.lines(),
            self.bob.lines(),
        );
        let text = format!("{text}\n{}", self.extra);
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Gives `who` (ci, alice or bob) a fresh random web password, hashed by `sigbridge serve
    /// hash-password` from stdin as an operator would, rewrites serve.toml (call before
    /// [`Fixture::start`]) and returns the password.
    pub(crate) fn add_password(&mut self, who: &str) -> String {
        let password = format!("pw-{}-{}-{}", rand_suffix(), rand_suffix(), rand_suffix());
        let mut child = sigbridge_bin()
            .args(["serve", "hash-password"])
            .current_dir(self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{password}").unwrap();
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", out.describe());
        let line = out.stdout_str().trim_end().to_string();
        assert!(
            line.starts_with("password_argon2 = \"$argon2id$") && !line.contains(&password),
            "{line}"
        );
        let identity = match who {
            "ci" => &mut self.ci,
            "alice" => &mut self.alice,
            "bob" => &mut self.bob,
            other => panic!("no identity {other} in the fixture"),
        };
        identity.password_line = Some(line);
        self.write_config("serve.toml", "127.0.0.1:0");
        password
    }

    /// The approvers' web page's address.
    pub(crate) fn web(&self, path: &str) -> String {
        format!("{}://127.0.0.1:{}{path}", self.scheme(), self.port)
    }

    /// Start (or restart, on the same port) the service.
    pub(crate) fn start(&mut self) {
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
    pub(crate) fn use_tls(&mut self) {
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
    pub(crate) fn uri_fetching_key(&self, policy: &str) -> String {
        format!(
            "signpath+{}://127.0.0.1:{}/{ORG}/my-images/{policy}?artifact-configuration=cosign-raw",
            self.scheme(),
            self.port,
        )
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    /// Stop the service like a crash (SIGKILL, no shutdown).
    pub(crate) fn kill(&mut self) {
        self.service = None;
    }

    pub(crate) fn uri(&self, policy: &str) -> String {
        format!(
            "signpath+http://127.0.0.1:{}/{ORG}/my-images/{policy}?artifact-configuration=cosign-raw&public-key={}",
            self.port,
            self.public_key.display()
        )
    }

    pub(crate) fn images(&self, n: usize) -> Vec<(String, String, String)> {
        (0..n)
            .map(|i| {
                let repo = format!("serve-{}-{i}", rand_suffix());
                let digest = push_image(&self.reg, &repo, "1.0");
                (self.reg.image_ref(&repo, &digest), repo, digest)
            })
            .collect()
    }

    /// `sigbridge sign` in the background, as CI runs it.
    pub(crate) fn spawn_sign(&self, policy: &str, images: &[(String, String, String)]) -> Child {
        self.spawn_sign_uri(&self.uri(policy), images)
    }

    /// `sigbridge sign --signer URI` (a private CA goes in the URI as `ca-file=`).
    pub(crate) fn spawn_sign_uri(&self, uri: &str, images: &[(String, String, String)]) -> Child {
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

    pub(crate) fn api(
        &self,
        method: &str,
        who: &Identity,
        path: &str,
        body: Option<&str>,
    ) -> (u16, String) {
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
    pub(crate) fn wait_for_request(&self, who: &Identity) -> String {
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

    pub(crate) fn serve_cmd(&self, args: &[&str]) -> Output {
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

pub(crate) fn rand_suffix() -> String {
    let mut b = [0u8; 4];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub(crate) fn finish(child: Child) -> Output {
    child.wait_with_output().unwrap()
}

/// Waits for a `sigbridge sign` that was spawned before the test acted elsewhere (in a browser).
/// `guard` only keeps a hung client from hanging the test run: on expiry the child is killed
/// and the test fails with what it printed.
pub(crate) fn finish_within(mut child: Child, guard: Duration) -> Output {
    fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut bytes);
            }
            bytes
        })
    }
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + guard;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let err = String::from_utf8_lossy(&stderr.join().unwrap_or_default()).into_owned();
            panic!("sigbridge sign was still running after {guard:?} (deadlock guard); killed it. stderr:\n{err}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}
