//! Helpers shared by the `reliability_*` tests: in-process keys, the binary with a clean
//! environment, a start barrier for many processes, and a registry consistency checker.
#![allow(dead_code)] // each test crate uses a different part

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use p256::ecdsa::signature::Verifier as _;
use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use sigbridge_testkit::Registry;

pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// No process in these tests should come close to this; it only stops a hung test.
pub const HANG_GUARD: Duration = Duration::from_secs(240);

/// An unencrypted P-256 PKCS#8 key written to `dir/name.pem` with `dir/name.pub`.
pub struct Key {
    pub private: PathBuf,
    pub public: PathBuf,
    pub verifying: p256::ecdsa::VerifyingKey,
}

pub fn p256_key(dir: &Path, name: &str) -> Key {
    let secret = p256::SecretKey::random(&mut rand_core::OsRng);
    let private = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub"));
    let pem = secret.to_pkcs8_pem(LineEnding::LF).expect("PKCS#8 PEM");
    std::fs::write(&private, pem.as_bytes()).expect("write key");
    let pub_pem = secret
        .public_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("public PEM");
    std::fs::write(&public, pub_pem).expect("write public key");
    Key {
        private,
        public,
        verifying: p256::ecdsa::VerifyingKey::from(secret.public_key()),
    }
}

/// The binary with a cleared environment (PATH, LANG, HOME = `home`).
pub fn sigbridge(home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sigbridge"));
    cmd.env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LANG", "C.UTF-8")
        .env("HOME", home)
        .env("TMPDIR", std::env::temp_dir())
        .stdin(Stdio::null());
    cmd
}

/// Runs `cmd` to completion with both streams collected; kills it after [`HANG_GUARD`].
pub fn run(cmd: &mut Command) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    wait_output(child)
}

/// Collects a spawned child's piped stdout/stderr and waits, killing it after [`HANG_GUARD`].
pub fn wait_output(mut child: Child) -> Output {
    let mut stdout = child.stdout.take().expect("stdout piped");
    let mut stderr = child.stderr.take().expect("stderr piped");
    let out = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stdout.read_to_end(&mut b);
        b
    });
    let err = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stderr.read_to_end(&mut b);
        b
    });
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if started.elapsed() > HANG_GUARD {
            let _ = child.kill();
            let _ = child.wait();
            panic!("process {} hung; killed it", child.id());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

pub fn describe(out: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Starts every command at (nearly) the same moment: each is spawned as
/// `sh -c 'read _; exec "$0" "$@"'`, blocked on its stdin, and all are released together once
/// every process exists. Returns their outputs in order.
pub fn run_together(cmds: Vec<Command>) -> Vec<Output> {
    let mut children: Vec<Child> = cmds
        .into_iter()
        .map(|c| {
            let mut sh = Command::new("/bin/sh");
            sh.arg("-c").arg("read _ ; exec \"$0\" \"$@\"");
            sh.arg(c.get_program()).args(c.get_args());
            sh.env_clear();
            for (k, v) in c.get_envs() {
                if let Some(v) = v {
                    sh.env(k, v);
                }
            }
            if let Some(dir) = c.get_current_dir() {
                sh.current_dir(dir);
            }
            sh.stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn behind the barrier")
        })
        .collect();
    let mut gates: Vec<_> = children
        .iter_mut()
        .map(|c| c.stdin.take().expect("stdin piped"))
        .collect();
    for g in &mut gates {
        g.write_all(b"go\n").expect("release");
    }
    drop(gates);
    let handles: Vec<_> = children
        .into_iter()
        .map(|c| std::thread::spawn(move || wait_output(c)))
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("waiter"))
        .collect()
}

/// `sha256-<hex>.sig` for `sha256:<hex>`.
pub fn sig_tag(digest: &str) -> String {
    format!("{}.sig", digest.replace(':', "-"))
}

fn authorize(
    reg: &Registry,
    repo: &str,
    req: reqwest::blocking::RequestBuilder,
) -> reqwest::blocking::RequestBuilder {
    match reg.authorization(repo) {
        Some(a) => req.header("Authorization", a),
        None => req,
    }
}

/// `GET /v2/REPO/manifests/REF`: (status, body).
pub fn get_manifest(reg: &Registry, repo: &str, reference: &str) -> (u16, Vec<u8>) {
    let client = reg.blocking_client();
    let url = format!("{}/v2/{repo}/manifests/{reference}", reg.url());
    let resp = authorize(reg, repo, client.get(url).header("Accept", MANIFEST_ACCEPT))
        .send()
        .expect("GET manifest");
    let status = resp.status().as_u16();
    (status, resp.bytes().expect("body").to_vec())
}

/// `GET /v2/REPO/blobs/DIGEST` body; panics unless 200.
pub fn get_blob(reg: &Registry, repo: &str, digest: &str) -> Vec<u8> {
    let client = reg.blocking_client();
    let url = format!("{}/v2/{repo}/blobs/{digest}", reg.url());
    let resp = authorize(reg, repo, client.get(url))
        .send()
        .expect("GET blob");
    assert_eq!(resp.status().as_u16(), 200, "GET blob {repo}@{digest}");
    resp.bytes().expect("blob body").to_vec()
}

/// `HEAD /v2/REPO/blobs/DIGEST` status.
pub fn head_blob(reg: &Registry, repo: &str, digest: &str) -> u16 {
    let client = reg.blocking_client();
    let url = format!("{}/v2/{repo}/blobs/{digest}", reg.url());
    authorize(reg, repo, client.head(url))
        .send()
        .expect("HEAD blob")
        .status()
        .as_u16()
}

/// One layer of a signature manifest, with its payload fetched.
pub struct SigLayer {
    pub digest: String,
    pub payload: Vec<u8>,
    pub signature: Vec<u8>,
}

impl SigLayer {
    /// Whether this layer's signature verifies with `key` over its payload.
    pub fn verifies_with(&self, key: &p256::ecdsa::VerifyingKey) -> bool {
        p256::ecdsa::Signature::from_der(&self.signature)
            .is_ok_and(|s| key.verify(&self.payload, &s).is_ok())
    }
}

/// Checks the signature manifest of `digest` in `repo` is consistent (parses, its config and
/// every layer blob exist, payload digests match) and returns its layers; empty if the tag
/// does not exist.
pub fn checked_sig_layers(reg: &Registry, repo: &str, digest: &str) -> Vec<SigLayer> {
    let tag = sig_tag(digest);
    let (status, body) = get_manifest(reg, repo, &tag);
    if status == 404 {
        return Vec::new();
    }
    assert_eq!(
        status,
        200,
        "GET {repo}:{tag}: {}",
        String::from_utf8_lossy(&body)
    );
    let manifest: serde_json::Value = serde_json::from_slice(&body).expect("manifest JSON");
    let config = manifest["config"]["digest"]
        .as_str()
        .expect("config digest");
    assert_eq!(
        head_blob(reg, repo, config),
        200,
        "config blob {config} missing"
    );
    let layers = manifest["layers"].as_array().expect("layers array");
    layers
        .iter()
        .map(|l| {
            let d = l["digest"].as_str().expect("layer digest").to_string();
            assert_eq!(
                head_blob(reg, repo, &d),
                200,
                "layer blob {d} missing in {repo}:{tag}"
            );
            let payload = get_blob(reg, repo, &d);
            assert_eq!(
                sigbridge_testkit::sha256_digest(&payload),
                d,
                "payload digest"
            );
            let b64 = l["annotations"]["dev.cosignproject.cosign/signature"]
                .as_str()
                .expect("signature annotation");
            let signature = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .expect("base64 signature");
            SigLayer {
                digest: d,
                payload,
                signature,
            }
        })
        .collect()
}

/// How many of `keys` have at least one layer verifying with them.
pub fn keys_present(layers: &[SigLayer], keys: &[&p256::ecdsa::VerifyingKey]) -> usize {
    keys.iter()
        .filter(|k| layers.iter().any(|l| l.verifies_with(k)))
        .count()
}
