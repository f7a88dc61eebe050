//! Shared helpers for the end-to-end tests of the `sigbridge` binary.
//!
//! Every test gets its own [`Sandbox`] (a temporary folder that is the binary's working
//! directory and HOME) and its own repositories, in a registry from `sigbridge-testkit` (shared
//! by the process, or its own when it reads the registry's log or counts its tokens). The binary
//! runs with a cleared environment, so nothing from the caller (COSIGN_*, SIGBRIDGE_*,
//! DOCKER_CONFIG, proxies) leaks in, and with stdin closed, so it can never wait for a prompt.

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use p256::ecdsa::signature::Signer as _;
use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use sigbridge_testkit::{cosign_for, cosign_generate_key_pair, sha256_digest, OutputExt, Registry};

/// Exit codes of the CLI contract.
pub mod exit {
    pub const OK: i32 = 0;
    pub const USAGE: i32 = 2;
    pub const INVALID_INPUT: i32 = 3;
    pub const KEY: i32 = 4;
    pub const NOT_VERIFIED: i32 = 5;
    pub const REGISTRY: i32 = 6;
    pub const NO_SIGNATURES: i32 = 10;
    pub const IMAGE_NOT_FOUND: i32 = 11;
    pub const NO_MATCHING_SIGNATURES: i32 = 12;
}

/// `sigbridge::test_knobs::DELAY_SCALE_VAR`.
pub const DELAY_SCALE_VAR: &str = "SIGBRIDGE_TEST_DELAY_SCALE";

/// Manifest media types accepted when reading manifests over raw HTTP.
const MANIFEST_ACCEPT: &str =
    "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// Only a guard against a hung process (the test fails instead of blocking the suite); no test
/// asserts on how long anything takes.
const HANG_GUARD: Duration = Duration::from_secs(900);

/// A private folder for one test: working directory and HOME of every sigbridge run.
pub struct Sandbox {
    dir: tempfile::TempDir,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("sigbridge-e2e-")
            .tempdir()
            .expect("create sandbox");
        std::fs::create_dir_all(dir.path().join("home")).expect("create sandbox HOME");
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `bytes` to `name` inside the sandbox and returns the path.
    pub fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent folder");
        }
        std::fs::write(&path, bytes).expect("write sandbox file");
        path
    }

    /// A new (empty) sub-folder.
    pub fn subdir(&self, name: &str) -> PathBuf {
        let path = self.join(name);
        std::fs::create_dir_all(&path).expect("create sandbox sub-folder");
        path
    }

    /// `sigbridge` with a cleared environment (PATH, LANG, HOME only), cwd = the sandbox.
    pub fn sigbridge(&self) -> Sigbridge {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sigbridge"));
        cmd.env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("LANG", "C.UTF-8")
            .env("HOME", self.join("home"))
            .env("TMPDIR", std::env::temp_dir())
            // Test-only (read by debug builds only): short lost-update settle delays, since
            // these tests run one writer at a time. Tests of concurrent writers remove it.
            .env(DELAY_SCALE_VAR, "0.1")
            .current_dir(self.path())
            .stdin(Stdio::null());
        Sigbridge {
            cmd,
            sandbox: self.path().to_path_buf(),
            stdin: None,
        }
    }

    /// An unencrypted P-256 PKCS#8 key made in-process (fast: no scrypt), with its public key.
    pub fn pkcs8_key(&self, name: &str) -> TestKey {
        let secret = p256::SecretKey::random(&mut rand_core::OsRng);
        let private_pem = secret
            .to_pkcs8_pem(LineEnding::LF)
            .expect("encode PKCS#8 PEM");
        let public_pem = secret
            .public_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("encode public key PEM");
        TestKey {
            private: self.write(&format!("{name}.pem"), private_pem.as_bytes()),
            public: self.write(&format!("{name}.pub"), public_pem.as_bytes()),
            password: None,
            secret: Some(secret),
        }
    }

    /// A key pair made by the real `cosign generate-key-pair` (encrypted, scrypt N=32768).
    pub fn cosign_key(&self, name: &str, password: &str) -> TestKey {
        let dir = self.subdir(name);
        let (private, public) = cosign_generate_key_pair(&dir, password);
        TestKey {
            private,
            public,
            password: Some(password.to_owned()),
            secret: None,
        }
    }
}

/// A private key file (for `--signer`) and its public key PEM (for `--key`).
#[derive(Clone)]
pub struct TestKey {
    pub private: PathBuf,
    pub public: PathBuf,
    /// The password for encrypted keys (passed as COSIGN_PASSWORD).
    pub password: Option<String>,
    /// The key itself, for keys made in-process.
    pub secret: Option<p256::SecretKey>,
}

impl TestKey {
    /// ECDSA P-256 / SHA-256 over `data`, as ASN.1 DER (needs an in-process key).
    pub fn sign_der(&self, data: &[u8]) -> Vec<u8> {
        self.sign(data).to_der().as_bytes().to_vec()
    }

    /// ECDSA P-256 / SHA-256 over `data`, as raw `r||s` (64 bytes).
    pub fn sign_raw(&self, data: &[u8]) -> Vec<u8> {
        self.sign(data).to_bytes().to_vec()
    }

    fn sign(&self, data: &[u8]) -> p256::ecdsa::Signature {
        let secret = self.secret.as_ref().expect("an in-process key");
        p256::ecdsa::SigningKey::from(secret).sign(data)
    }

    pub fn public_pem(&self) -> String {
        std::fs::read_to_string(&self.public).expect("read public key")
    }
}

/// A `sigbridge` command being built. Registry flags must come after the subcommand.
pub struct Sigbridge {
    cmd: Command,
    sandbox: PathBuf,
    stdin: Option<Vec<u8>>,
}

impl Sigbridge {
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.cmd.arg(arg);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        self.cmd.env(key, value);
        self
    }

    pub fn env_remove(mut self, key: &str) -> Self {
        self.cmd.env_remove(key);
        self
    }

    /// Feeds these bytes on stdin instead of closing it.
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    /// `--signer PRIVATE` plus COSIGN_PASSWORD for encrypted keys.
    pub fn signer(self, key: &TestKey) -> Self {
        let me = self.arg("--signer").arg(&key.private);
        match &key.password {
            Some(pw) => me.env("COSIGN_PASSWORD", pw),
            None => me,
        }
    }

    /// What this registry needs: `--registry-cacert` for TLS, and for Basic/bearer modes a
    /// config.json the kit writes, passed with `--docker-config`. Plain loopback HTTP needs
    /// no flag at all.
    pub fn registry(self, reg: &Registry) -> Self {
        let me = self.registry_tls(reg);
        if reg.credentials().is_some() {
            let dir = me.sandbox.join(format!("docker-config-{}", reg.port()));
            let config = reg.write_docker_config(&dir);
            me.arg("--docker-config").arg(config)
        } else {
            me
        }
    }

    /// Only the TLS part of [`Sigbridge::registry`] (no credentials).
    pub fn registry_tls(self, reg: &Registry) -> Self {
        match reg.ca_pem_path() {
            Some(ca) => self.arg("--registry-cacert").arg(ca),
            None => self,
        }
    }

    /// The command itself, for tests that watch a running process (stdin closed).
    pub fn command(self) -> Command {
        self.cmd
    }

    /// Runs to completion (stdin closed unless [`Sigbridge::stdin`] was used).
    pub fn run(mut self) -> Run {
        let what = describe(&self.cmd);
        let mut child = self
            .cmd
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let writer = self.stdin.take().map(|bytes| {
            let mut pipe = child.stdin.take().expect("stdin is piped");
            std::thread::spawn(move || {
                use std::io::Write;
                // The binary may legitimately stop reading early.
                let _ = pipe.write_all(&bytes);
            })
        });
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let out_reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = stdout.read_to_end(&mut buf);
            buf
        });
        let err_reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = stderr.read_to_end(&mut buf);
            buf
        });
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for sigbridge") {
                break status;
            }
            if started.elapsed() > HANG_GUARD {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what} did not finish; killed it");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        if let Some(w) = writer {
            let _ = w.join();
        }
        let out = Output {
            status,
            stdout: out_reader.join().expect("stdout reader"),
            stderr: err_reader.join().expect("stderr reader"),
        };
        Run { out, what }
    }
}

fn describe(cmd: &Command) -> String {
    let mut s = String::from("sigbridge");
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    s
}

/// A finished sigbridge run.
pub struct Run {
    pub out: Output,
    pub what: String,
}

impl Run {
    pub fn code(&self) -> Option<i32> {
        self.out.status.code()
    }

    pub fn stdout(&self) -> String {
        self.out.stdout_str()
    }

    pub fn stderr(&self) -> String {
        self.out.stderr_str()
    }

    /// Command, status and both streams, for assertion messages.
    pub fn describe(&self) -> String {
        format!("$ {}\n{}", self.what, self.out.describe())
    }

    /// Panics (with both streams) unless it exited 0.
    #[track_caller]
    pub fn ok(self) -> Self {
        self.code_is(exit::OK)
    }

    /// Panics (with both streams) unless it exited with `code`.
    #[track_caller]
    pub fn code_is(self, code: i32) -> Self {
        assert_eq!(
            self.code(),
            Some(code),
            "expected exit code {code}\n{}",
            self.describe()
        );
        self
    }

    /// stdout parsed as one JSON object per non-empty line (`sign -o json`).
    #[track_caller]
    pub fn stdout_json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("line {l:?} is not JSON ({e})\n{}", self.describe()))
            })
            .collect()
    }
}

/// `sha256-<hex>.sig`, cosign's signature tag for `digest`.
pub fn sig_tag(digest: &str) -> String {
    format!(
        "{}.sig",
        digest
            .strip_prefix("sha256:")
            .map(|hex| format!("sha256-{hex}"))
            .expect("a sha256 digest")
    )
}

/// `HOST/REPO`, the repository-only identity cosign writes by default.
pub fn repo_name(reg: &Registry, repo: &str) -> String {
    format!("{}/{repo}", reg.host())
}

/// Raw `GET /v2/REPO/manifests/REFERENCE`: `(status, body)`.
pub fn get_manifest_raw(reg: &Registry, repo: &str, reference: &str) -> (u16, Vec<u8>) {
    let url = format!("{}/v2/{repo}/manifests/{reference}", reg.url());
    let auth = reg.authorization(repo);
    let client = reg.blocking_client();
    let mut req = client.get(url).header("Accept", MANIFEST_ACCEPT);
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    let resp = req.send().expect("GET manifest");
    let status = resp.status().as_u16();
    (status, resp.bytes().expect("read manifest body").to_vec())
}

/// The signature manifest at `sha256-<hex>.sig` in `repo`, or `None` when the tag is absent
/// (404). Panics on any other answer.
pub fn sig_manifest(reg: &Registry, repo: &str, digest: &str) -> Option<serde_json::Value> {
    let (status, body) = get_manifest_raw(reg, repo, &sig_tag(digest));
    match status {
        200 => Some(serde_json::from_slice(&body).expect("signature manifest is JSON")),
        404 => None,
        other => panic!(
            "GET {repo}:{} answered {other}: {}",
            sig_tag(digest),
            String::from_utf8_lossy(&body)
        ),
    }
}

/// The layers of the signature manifest (empty when there is none).
pub fn sig_layers(reg: &Registry, repo: &str, digest: &str) -> Vec<serde_json::Value> {
    sig_manifest(reg, repo, digest)
        .map(|m| m["layers"].as_array().cloned().unwrap_or_default())
        .unwrap_or_default()
}

/// Asserts that no signature tag exists for `digest` in `repo` (GET answers 404).
#[track_caller]
pub fn assert_no_sig_tag(reg: &Registry, repo: &str, digest: &str) {
    let (status, body) = get_manifest_raw(reg, repo, &sig_tag(digest));
    assert_eq!(
        status,
        404,
        "expected no {repo}:{}, got {status}: {}",
        sig_tag(digest),
        String::from_utf8_lossy(&body)
    );
}

/// Raw `GET /v2/REPO/blobs/DIGEST`.
pub fn get_blob(reg: &Registry, repo: &str, digest: &str) -> Vec<u8> {
    let url = format!("{}/v2/{repo}/blobs/{digest}", reg.url());
    let auth = reg.authorization(repo);
    let client = reg.blocking_client();
    let mut req = client.get(url);
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    let resp = req.send().expect("GET blob");
    assert_eq!(resp.status().as_u16(), 200, "GET blob {digest}");
    resp.bytes().expect("read blob").to_vec()
}

/// Raw monolithic blob upload (POST + PUT); returns the digest.
pub fn put_blob(reg: &Registry, repo: &str, bytes: &[u8]) -> String {
    let digest = sha256_digest(bytes);
    let auth = reg.authorization(repo);
    let client = reg.blocking_client();
    let mut start = client.post(format!("{}/v2/{repo}/blobs/uploads/", reg.url()));
    if let Some(a) = &auth {
        start = start.header("Authorization", a.as_str());
    }
    let start = start.send().expect("start blob upload");
    assert_eq!(start.status().as_u16(), 202, "start blob upload");
    let location = start.headers()["Location"]
        .to_str()
        .expect("Location is ASCII")
        .to_owned();
    let location = if location.starts_with('/') {
        format!("{}{location}", reg.url())
    } else {
        location
    };
    let sep = if location.contains('?') { '&' } else { '?' };
    let mut put = client
        .put(format!("{location}{sep}digest={digest}"))
        .header("Content-Type", "application/octet-stream")
        .body(bytes.to_vec());
    if let Some(a) = &auth {
        put = put.header("Authorization", a.as_str());
    }
    let put = put.send().expect("finish blob upload");
    assert_eq!(put.status().as_u16(), 201, "finish blob upload");
    digest
}

/// Raw `PUT /v2/REPO/manifests/REFERENCE`.
pub fn put_manifest(reg: &Registry, repo: &str, reference: &str, body: &[u8], media_type: &str) {
    let auth = reg.authorization(repo);
    let client = reg.blocking_client();
    let mut req = client
        .put(format!("{}/v2/{repo}/manifests/{reference}", reg.url()))
        .header("Content-Type", media_type)
        .body(body.to_vec());
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    let resp = req.send().expect("PUT manifest");
    assert_eq!(resp.status().as_u16(), 201, "PUT manifest {reference}");
}

/// `cosign sign-blob --key KEY --tlog-upload=false` over `payload`: the base64 signature text.
pub fn cosign_sign_blob(key: &TestKey, payload: &Path) -> String {
    let mut cosign = sigbridge_testkit::Tools::cosign();
    let sig_file = cosign.home().join("blob.sig");
    cosign
        .env("COSIGN_PASSWORD", key.password.as_deref().unwrap_or(""))
        .arg("sign-blob")
        .arg("--key")
        .arg(&key.private)
        .args(["--tlog-upload=false", "-y", "--output-signature"])
        .arg(&sig_file)
        .arg(payload);
    cosign.run_ok();
    std::fs::read_to_string(&sig_file).expect("read cosign signature")
}

/// `cosign verify --key PUB --insecure-ignore-tlog REF` with extra environment variables
/// (e.g. COSIGN_REPOSITORY). Does not panic on failure.
pub fn cosign_verify_env(
    reg: &Registry,
    public_key: &Path,
    image_ref: &str,
    envs: &[(&str, &str)],
) -> Output {
    let mut cosign = cosign_for(reg);
    for (k, v) in envs {
        cosign.env(k, v);
    }
    cosign
        .arg("verify")
        .arg("--key")
        .arg(public_key)
        .arg("--insecure-ignore-tlog")
        .args(reg.cosign_args())
        .arg(image_ref);
    cosign.run()
}

/// The payloads `cosign verify` (or `sigbridge verify`) printed as a JSON array.
pub fn verified_payloads(stdout: &[u8]) -> Vec<serde_json::Value> {
    let text = String::from_utf8_lossy(stdout);
    let value: serde_json::Value = serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("verify stdout is not a JSON array ({e}): {text}"));
    value.as_array().expect("a JSON array").clone()
}

/// Base64 (standard, padded) as cosign stores signatures.
pub fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

pub fn unb64(text: &str) -> Vec<u8> {
    STANDARD.decode(text.trim()).expect("valid base64")
}

/// The base64 body of the first PEM block, whitespace removed (compares keys regardless of
/// line wrapping).
pub fn pem_body(pem: &str) -> String {
    pem.lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<String>()
        .split_whitespace()
        .collect()
}

/// `n` distinct images in `repo` (one shared config and layer, manifests that differ by an
/// annotation), pushed over raw HTTP because hundreds of skopeo pushes would be slow; returns
/// their digest references.
pub fn push_distinct_images(reg: &Registry, repo: &str, n: usize) -> Vec<String> {
    const CONFIG: &[u8] =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    const LAYER: &[u8] = b"layer";
    let config = put_blob(reg, repo, CONFIG);
    let layer = put_blob(reg, repo, LAYER);
    (0..n)
        .map(|i| {
            let manifest = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": CONFIG.len()},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": LAYER.len()}],
                "annotations": {"n": i.to_string()},
            });
            let body = serde_json::to_vec(&manifest).expect("JSON");
            let digest = sha256_digest(&body);
            put_manifest(
                reg,
                repo,
                &digest,
                &body,
                "application/vnd.oci.image.manifest.v1+json",
            );
            reg.image_ref(repo, &digest)
        })
        .collect()
}
