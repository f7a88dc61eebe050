//! End to end: `sigbridge` (the real binary) against the in-process SignPath-compatible server
//! and a real docker-registry, verified with real cosign 2.5.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use sigbridge_testkit::{cosign_verify, push_image, OutputExt, Registry, SharedRegistry};
use signpath_compatible_server::{
    Approval, Behaviour, FaultTarget, Faults, RetryAfter, ServerConfig, SignPathServer,
    SignatureFormat, SignedZip,
};

const ORG: &str = "c2099ac1-b2d4-4a41-9d2b-3ae8b4a2e3b1";
const TOKEN: &str = "test-api-token-0123456789abcdef";
const WAIT: Duration = Duration::from_secs(120);

/// A SignPath-compatible server, a registry and the sigbridge command set up for both (also
/// used by e2e_signpath_bundle).
pub(crate) struct Fixture {
    dir: tempfile::TempDir,
    pub(crate) reg: SharedRegistry,
    pub(crate) server: SignPathServer,
    pub(crate) public_key: PathBuf,
    token_file: PathBuf,
}

fn local_key(dir: &Path, name: &str) -> (sigbridge_local::LocalSigner, PathBuf) {
    use p256::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
    let secret = p256::SecretKey::random(&mut rand_core::OsRng);
    let private = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub"));
    std::fs::write(
        &private,
        secret.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes(),
    )
    .unwrap();
    std::fs::write(
        &public,
        secret
            .public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap(),
    )
    .unwrap();
    let signer = sigbridge_local::KeyFile::read(&private)
        .unwrap()
        .decrypt(None)
        .unwrap();
    (signer, public)
}

impl Fixture {
    pub(crate) fn new(approval: Approval) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("sigbridge-signpath-")
            .tempdir()
            .unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        let (signer, public_key) = local_key(dir.path(), "service");
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
        let server = SignPathServer::start(ServerConfig {
            signer: Arc::new(signer),
            token: SecretString::from(TOKEN),
            organization_id: Some(ORG.into()),
            approval,
            faults: Faults::default(),
            behaviour: Behaviour::default(),
        })
        .unwrap();
        Self {
            dir,
            reg: Registry::shared_plain(),
            server,
            public_key,
            token_file,
        }
    }

    pub(crate) fn uri(&self) -> String {
        format!(
            "{}?artifact-configuration=cosign-raw&param.release=1.4.2",
            self.server.signer_uri(ORG, "my-images", "release-signing")
        )
    }

    pub(crate) fn image(&self, repo: &str) -> (String, String) {
        let digest = push_image(&self.reg, repo, "1.0");
        (self.reg.image_ref(repo, &digest), digest)
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sigbridge"));
        cmd.env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", self.dir.path().join("home"))
            .env("SIGBRIDGE_SIGNPATH_TOKEN_FILE", &self.token_file)
            .env("SIGBRIDGE_SIGNPATH_POLL_INTERVAL_MS", "20")
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        cmd
    }

    pub(crate) fn sigbridge(&self, args: &[&str]) -> Output {
        let out = self.command().args(args).output().unwrap();
        let all = format!("{}{}", out.stdout_str(), out.stderr_str());
        assert!(!all.contains(TOKEN), "the token leaked:\n{all}");
        out
    }

    pub(crate) fn sign(&self, extra: &[&str], images: &[&str]) -> Output {
        let uri = self.uri();
        let mut args = vec!["sign", "--signer", uri.as_str()];
        args.extend_from_slice(extra);
        args.extend_from_slice(images);
        self.sigbridge(&args)
    }

    pub(crate) fn verify_with_cosign(&self, image: &str) {
        let out = cosign_verify(&self.reg, &self.public_key, image, &[]);
        assert!(
            out.status.success(),
            "cosign verify failed:\n{}",
            out.describe()
        );
    }

    pub(crate) fn assert_nothing_attached(&self, repo: &str, digest: &str) {
        let tag = format!("{}.sig", digest.replacen("sha256:", "sha256-", 1));
        let url = format!("{}/v2/{repo}/manifests/{tag}", self.reg.url());
        let resp = self
            .reg
            .blocking_client()
            .get(url)
            .header("Accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
            .unwrap();
        assert_eq!(
            resp.status().as_u16(),
            404,
            "a signature was attached to {repo}"
        );
    }

    /// Approve the `n`-th request (1-based) once it exists.
    pub(crate) fn approve_nth(&self, n: usize) -> String {
        let reqs = self.server.wait_for_requests(n, WAIT);
        assert!(reqs.len() >= n, "no signing request arrived");
        let id = reqs[n - 1].id.clone();
        self.server.approve(&id).unwrap();
        id
    }
}

#[track_caller]
pub(crate) fn assert_code(out: &Output, code: i32) {
    assert_eq!(out.status.code(), Some(code), "{}", out.describe());
}

#[test]
fn approved_request_is_attached_and_verifies_with_cosign() {
    let fx = Fixture::new(Approval::Manual);
    let (image, digest) = fx.image("team/app");
    let out = std::thread::scope(|s| {
        let approver = s.spawn(|| fx.approve_nth(1));
        let out = fx.sign(&[], &[&image]);
        approver.join().unwrap();
        out
    });
    assert_code(&out, 0);
    assert!(out.stdout_str().contains(&digest), "{}", out.describe());
    assert!(
        out.stderr_str()
            .contains("Submitted SignPath signing request"),
        "{}",
        out.describe()
    );
    fx.verify_with_cosign(&image);

    let reqs = fx.server.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(
        r.fields.get("projectslug").map(String::as_str),
        Some("my-images")
    );
    assert_eq!(
        r.fields.get("signingpolicyslug").map(String::as_str),
        Some("release-signing")
    );
    assert_eq!(
        r.fields
            .get("artifactconfigurationslug")
            .map(String::as_str),
        Some("cosign-raw")
    );
    assert_eq!(
        r.fields.get("parameters.release").map(String::as_str),
        Some("1.4.2")
    );
    assert!(r
        .fields
        .get("description")
        .is_some_and(|d| d.contains(&digest)));
    assert_eq!(r.artifact_name, "payload.json.zip");

    // status shows the final state; cancel of a final request is refused clearly.
    let uri = fx.uri();
    let st = fx.sigbridge(&["signpath", "status", &r.id, "--signer", &uri, "-o", "json"]);
    assert_code(&st, 0);
    let v: serde_json::Value = serde_json::from_str(st.stdout_str().trim()).unwrap();
    assert_eq!(v["status"], "Completed");
    assert_eq!(v["id"], r.id.as_str());
    let c = fx.sigbridge(&["signpath", "cancel", &r.id, "--signer", &uri]);
    // 14 (nothing changed: already final), not 8 (signer unavailable).
    assert_code(&c, 14);
    assert!(
        c.stderr_str().contains("already Completed"),
        "{}",
        c.describe()
    );
}

#[test]
fn denied_request_exits_7_and_attaches_nothing() {
    let fx = Fixture::new(Approval::Manual);
    let (image, digest) = fx.image("team/denied");
    let out = std::thread::scope(|s| {
        s.spawn(|| {
            let reqs = fx.server.wait_for_requests(1, WAIT);
            fx.server.deny(&reqs[0].id).unwrap();
        });
        fx.sign(&[], &[&image])
    });
    assert_code(&out, 7);
    assert!(
        out.stderr_str().contains("denied by an approver"),
        "{}",
        out.describe()
    );
    fx.assert_nothing_attached("team/denied", &digest);
}

#[test]
fn canceled_request_exits_9_and_status_says_canceled() {
    let fx = Fixture::new(Approval::Manual);
    let (image, digest) = fx.image("team/canceled");
    let uri = fx.uri();
    let out = std::thread::scope(|s| {
        s.spawn(|| {
            let reqs = fx.server.wait_for_requests(1, WAIT);
            let c = fx.sigbridge(&["signpath", "cancel", &reqs[0].id, "--signer", &uri]);
            assert_code(&c, 0);
            assert!(c.stdout_str().contains("Canceled"), "{}", c.describe());
        });
        fx.sign(&[], &[&image])
    });
    assert_code(&out, 9);
    assert!(
        out.stderr_str().contains("was canceled"),
        "{}",
        out.describe()
    );
    fx.assert_nothing_attached("team/canceled", &digest);
    let id = fx.server.requests()[0].id.clone();
    let st = fx.sigbridge(&["signpath", "status", &id, "--signer", &uri]);
    assert_code(&st, 0);
    assert!(
        st.stdout_str().contains("Status:          Canceled"),
        "{}",
        st.describe()
    );
}

#[test]
fn wait_timeout_keeps_the_request_and_resume_finishes_it() {
    let fx = Fixture::new(Approval::Manual);
    let (image, digest) = fx.image("team/slow-approver");
    let out = fx.sign(&["--wait-timeout", "1s"], &[&image]);
    assert_code(&out, 9);
    let id = fx.server.requests()[0].id.clone();
    assert!(
        out.stderr_str().contains("gave up waiting"),
        "{}",
        out.describe()
    );
    assert!(
        out.stderr_str().contains(&format!("--resume {id}")),
        "{}",
        out.describe()
    );
    fx.assert_nothing_attached("team/slow-approver", &digest);
    assert_eq!(fx.server.requests()[0].status, "WaitingForApproval");

    fx.server.approve(&id).unwrap();
    let out = fx.sign(&["--resume", &id], &[&image]);
    assert_code(&out, 0);
    fx.verify_with_cosign(&image);
    assert_eq!(fx.server.submits(), 1, "resume must not submit again");
}

#[test]
fn no_wait_prints_the_id_and_resume_attaches() {
    let fx = Fixture::new(Approval::Manual);
    let (image, digest) = fx.image("team/async");
    let out = fx.sign(&["--no-wait"], &[&image]);
    assert_code(&out, 0);
    let id = out.stdout_str().trim().to_string();
    assert_eq!(fx.server.requests()[0].id, id, "{}", out.describe());
    fx.assert_nothing_attached("team/async", &digest);

    // Resuming with other images is refused before anything is attached.
    let (other, other_digest) = fx.image("team/other");
    fx.server.approve(&id).unwrap();
    let out = fx.sign(&["--resume", &id], &[&other]);
    assert_code(&out, 5);
    assert!(
        out.stderr_str().contains("same images"),
        "{}",
        out.describe()
    );
    fx.assert_nothing_attached("team/other", &other_digest);

    let out = fx.sign(&["--resume", &id], &[&image]);
    assert_code(&out, 0);
    fx.verify_with_cosign(&image);
    assert_eq!(fx.server.submits(), 1);
}

#[test]
fn resume_after_the_client_was_killed_mid_wait() {
    let fx = Fixture::new(Approval::Manual);
    let (image, _) = fx.image("team/killed");
    let uri = fx.uri();
    let mut child = fx
        .command()
        .args(["sign", "--signer", &uri, &image])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let reqs = fx.server.wait_for_requests(1, WAIT);
    assert_eq!(reqs.len(), 1);
    // Let it poll a little, then kill it like a stopped CI job.
    let polls = fx
        .server
        .counters()
        .status_reads
        .load(std::sync::atomic::Ordering::SeqCst);
    let start = std::time::Instant::now();
    while fx
        .server
        .counters()
        .status_reads
        .load(std::sync::atomic::Ordering::SeqCst)
        <= polls
        && start.elapsed() < WAIT
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let id = reqs[0].id.clone();
    fx.server.approve(&id).unwrap();
    let out = fx.sign(&["--resume", &id], &[&image]);
    assert_code(&out, 0);
    fx.verify_with_cosign(&image);
    assert_eq!(fx.server.submits(), 1, "no second signing request");
    assert_eq!(fx.server.requests().len(), 1);
}

#[test]
fn storm_of_429_503_drops_and_a_slow_download_still_succeeds() {
    let fx = Fixture::new(Approval::Auto);
    let (image, _) = fx.image("team/storm");
    fx.server.set_faults(Faults {
        too_many_requests: 3,
        service_unavailable: 3,
        retry_after: RetryAfter::Seconds(1),
        drop_connections: 2,
        target: FaultTarget::Gets,
        slow_download: Some(Duration::from_millis(5)),
    });
    let out = fx.sign(&[], &[&image]);
    assert_code(&out, 0);
    fx.verify_with_cosign(&image);
    assert_eq!(fx.server.faults_served(), 8);
    assert_eq!(fx.server.submits(), 1);
}

#[test]
fn refused_submits_are_retried_once_accepted() {
    let fx = Fixture::new(Approval::Auto);
    let (image, _) = fx.image("team/submit-storm");
    fx.server.set_faults(Faults {
        too_many_requests: 2,
        service_unavailable: 2,
        retry_after: RetryAfter::HttpDate(1),
        target: FaultTarget::Submits,
        ..Faults::default()
    });
    let out = fx.sign(&[], &[&image]);
    assert_code(&out, 0);
    assert_eq!(fx.server.faults_served(), 4);
    assert_eq!(fx.server.requests().len(), 1, "exactly one signing request");
    fx.verify_with_cosign(&image);
}

#[test]
fn a_lost_submit_answer_is_not_retried_blindly() {
    let fx = Fixture::new(Approval::Auto);
    let (image, digest) = fx.image("team/lost-answer");
    fx.server.set_faults(Faults {
        drop_connections: 1,
        target: FaultTarget::Submits,
        ..Faults::default()
    });
    let out = fx.sign(&[], &[&image]);
    assert_code(&out, 8);
    let err = out.stderr_str();
    assert!(
        err.contains("may have created a signing request"),
        "{}",
        out.describe()
    );
    assert!(err.contains("--resume"), "{}", out.describe());
    assert_eq!(fx.server.submits(), 1, "the submit must not be repeated");
    fx.assert_nothing_attached("team/lost-answer", &digest);
}

#[test]
fn a_batch_of_images_is_one_request_and_one_approval() {
    let fx = Fixture::new(Approval::Manual);
    let images: Vec<(String, String)> = ["rel/api", "rel/web", "rel/worker", "rel/db"]
        .iter()
        .map(|r| fx.image(r))
        .collect();
    let refs: Vec<&str> = images.iter().map(|(i, _)| i.as_str()).collect();
    let out = std::thread::scope(|s| {
        s.spawn(|| fx.approve_nth(1));
        fx.sign(&["-o", "json"], &refs)
    });
    assert_code(&out, 0);
    assert_eq!(fx.server.submits(), 1);
    assert_eq!(fx.server.requests().len(), 1);
    assert_eq!(fx.server.requests()[0].artifact_name, "payloads.zip");
    assert_eq!(out.stdout_str().lines().count(), 4, "{}", out.describe());
    for (image, _) in &images {
        fx.verify_with_cosign(image);
    }
}

#[test]
fn raw_and_base64_signatures_are_normalised() {
    let fx = Fixture::new(Approval::Auto);
    for (i, format) in [SignatureFormat::RawRs, SignatureFormat::Base64]
        .into_iter()
        .enumerate()
    {
        let repo = format!("team/encoding{i}");
        let (image, _) = fx.image(&repo);
        fx.server.set_behaviour(Behaviour {
            signature: format,
            ..Behaviour::default()
        });
        let out = fx.sign(&[], &[&image]);
        assert_code(&out, 0);
        fx.verify_with_cosign(&image);
    }
}

#[test]
fn configured_public_key_is_used() {
    let fx = Fixture::new(Approval::Auto);
    let (image, _) = fx.image("team/configured-key");
    let uri = format!("{}&public-key={}", fx.uri(), fx.public_key.display());
    let out = fx.sigbridge(&["sign", "--signer", &uri, &image]);
    assert_code(&out, 0);
    fx.verify_with_cosign(&image);

    // A configured key that is not the service's: the signature is refused.
    let (_, wrong) = local_key(fx.dir.path(), "wrong");
    let (image, digest) = fx.image("team/configured-wrong");
    let uri = format!("{}&public-key={}", fx.uri(), wrong.display());
    let out = fx.sigbridge(&["sign", "--signer", &uri, &image]);
    assert_code(&out, 5);
    fx.assert_nothing_attached("team/configured-wrong", &digest);
}

#[test]
fn malicious_or_broken_results_are_refused_and_nothing_is_attached() {
    let fx = Fixture::new(Approval::Auto);
    let (other, _) = local_key(fx.dir.path(), "other");
    let other = Arc::new(other);
    let cases: Vec<(&str, Behaviour, i32, &str)> = vec![
        (
            "traversal",
            Behaviour {
                zip: SignedZip::Traversal,
                ..Behaviour::default()
            },
            5,
            "unsafe entry name \"../escape.sig\"",
        ),
        (
            "absolute",
            Behaviour {
                zip: SignedZip::Absolute,
                ..Behaviour::default()
            },
            5,
            "absolute path",
        ),
        (
            "huge",
            Behaviour {
                zip: SignedZip::HugeEntry,
                ..Behaviour::default()
            },
            5,
            "zip bomb",
        ),
        (
            "missing",
            Behaviour {
                zip: SignedZip::MissingSignature,
                ..Behaviour::default()
            },
            5,
            "lacks payload.json.sig",
        ),
        (
            "extra",
            Behaviour {
                zip: SignedZip::ExtraEntry,
                ..Behaviour::default()
            },
            5,
            "unexpected entry \"README.txt\"",
        ),
        (
            "modified",
            Behaviour {
                zip: SignedZip::ModifiedPayload,
                ..Behaviour::default()
            },
            5,
            "differs from the payload",
        ),
        (
            "garbage-zip",
            Behaviour {
                zip: SignedZip::Garbage,
                ..Behaviour::default()
            },
            5,
            "not a readable zip",
        ),
        (
            "other-key",
            Behaviour {
                signature: SignatureFormat::OtherKey(other.clone()),
                ..Behaviour::default()
            },
            5,
            "does not verify",
        ),
        (
            "garbage-signature",
            Behaviour {
                signature: SignatureFormat::Garbage,
                ..Behaviour::default()
            },
            5,
            "signature",
        ),
        (
            "failed",
            Behaviour {
                fail_processing: true,
                ..Behaviour::default()
            },
            8,
            "failed on the signing service",
        ),
    ];
    let (image, digest) = fx.image("team/target");
    for (name, behaviour, code, message) in cases {
        fx.server.set_behaviour(behaviour);
        let out = fx.sign(&[], &[&image]);
        assert_eq!(out.status.code(), Some(code), "{name}:\n{}", out.describe());
        assert!(
            out.stderr_str().contains(message),
            "{name}: expected {message:?}\n{}",
            out.describe()
        );
        fx.assert_nothing_attached("team/target", &digest);
    }
}

#[test]
fn bad_token_and_bad_ids_are_clear_errors() {
    let fx = Fixture::new(Approval::Auto);
    let (image, digest) = fx.image("team/token");
    let wrong = fx.dir.path().join("wrong-token");
    std::fs::write(&wrong, "not-the-token\n").unwrap();
    let out = fx
        .command()
        .env("SIGBRIDGE_SIGNPATH_TOKEN_FILE", &wrong)
        .args(["sign", "--signer", &fx.uri(), &image])
        .output()
        .unwrap();
    assert_code(&out, 4);
    assert!(out.stderr_str().contains("HTTP 401"), "{}", out.describe());
    assert!(!out.stderr_str().contains("not-the-token"));
    fx.assert_nothing_attached("team/token", &digest);

    let out = fx
        .command()
        .env_remove("SIGBRIDGE_SIGNPATH_TOKEN_FILE")
        .args(["sign", "--signer", &fx.uri(), &image])
        .output()
        .unwrap();
    assert_code(&out, 4);
    assert!(
        out.stderr_str().contains("SIGNPATH_API_TOKEN"),
        "{}",
        out.describe()
    );

    let uri = fx.uri();
    let out = fx.sigbridge(&["signpath", "status", "../../etc", "--signer", &uri]);
    assert_code(&out, 3);
    let uri_with_token = format!("{uri}&token={TOKEN}x");
    let out = fx
        .command()
        .args(["sign", "--signer", &uri_with_token, &image])
        .output()
        .unwrap();
    assert_code(&out, 3);
    assert!(!out.stderr_str().contains(TOKEN), "{}", out.describe());
}

/// The command between backticks in `text` that starts with `prefix`, split as a shell would.
fn pasted_command(text: &str, prefix: &str) -> Vec<String> {
    let start = text
        .find(&format!("`{prefix}"))
        .unwrap_or_else(|| panic!("no `{prefix}…` command in:\n{text}"));
    let rest = &text[start + 1..];
    let end = rest.find('`').expect("closing backtick");
    shlex::split(&rest[..end]).expect("a command a shell can split")
}

#[test]
fn a_denied_batch_is_one_error_for_the_run_not_one_per_image() {
    let fx = Fixture::new(Approval::Manual);
    let images: Vec<(String, String)> = ["deny/a", "deny/b", "deny/c"]
        .iter()
        .map(|r| fx.image(r))
        .collect();
    let refs: Vec<&str> = images.iter().map(|(i, _)| i.as_str()).collect();
    let out = std::thread::scope(|s| {
        s.spawn(|| {
            let reqs = fx.server.wait_for_requests(1, WAIT);
            fx.server.deny(&reqs[0].id).unwrap();
        });
        fx.sign(&["-o", "json"], &refs)
    });
    assert_code(&out, 7);
    let stderr = out.stderr_str();
    assert_eq!(
        stderr.matches("denied by an approver").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("3 image(s) not signed"), "{stderr}");
    let lines: Vec<serde_json::Value> = out
        .stdout_str()
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 1, "{}", out.describe());
    assert_eq!(lines[0]["imagesNotSigned"], 3);
    assert_eq!(lines[0]["exitCode"], 7);
    for ((_, digest), repo) in images.iter().zip(["deny/a", "deny/b", "deny/c"]) {
        fx.assert_nothing_attached(repo, digest);
    }
}

#[test]
fn a_wrong_configured_public_key_is_refused_before_anything_is_submitted() {
    let fx = Fixture::new(Approval::Auto);
    let (_, wrong) = local_key(fx.dir.path(), "not-the-policy-key");
    let (image, digest) = fx.image("team/wrong-key-early");
    let uri = format!("{}&public-key={}", fx.uri(), wrong.display());
    let out = fx.sigbridge(&["sign", "--signer", &uri, &image]);
    assert_code(&out, 5);
    assert!(
        out.stderr_str().contains("nothing was submitted"),
        "{}",
        out.describe()
    );
    assert_eq!(
        fx.server.submits(),
        0,
        "an approval was spent on a wrong key"
    );
    fx.assert_nothing_attached("team/wrong-key-early", &digest);
}

#[test]
fn suggested_commands_paste_as_they_are() {
    let fx = Fixture::new(Approval::Manual);
    let (image, digest) = fx.image("team/paste");
    let out = fx.sign(&["--wait-timeout", "1s"], &[&image]);
    assert_code(&out, 9);
    let stderr = out.stderr_str();
    let status = pasted_command(&stderr, "sigbridge signpath status");
    let out = fx.sigbridge(&status[1..].iter().map(String::as_str).collect::<Vec<_>>());
    assert_code(&out, 0);
    assert!(
        out.stdout_str().contains("WaitingForApproval"),
        "{}",
        out.describe()
    );
    let resume = pasted_command(&stderr, "sigbridge sign");
    assert!(resume.contains(&"--signer".to_string()), "{resume:?}");
    assert!(resume.contains(&fx.uri()), "{resume:?}");
    fx.assert_nothing_attached("team/paste", &digest);
}

#[test]
fn no_wait_json_gives_the_images_in_order_and_resume_order_matters() {
    let fx = Fixture::new(Approval::Manual);
    let images: Vec<(String, String)> = ["order/a", "order/b", "order/c"]
        .iter()
        .map(|r| fx.image(r))
        .collect();
    let refs: Vec<&str> = images.iter().map(|(i, _)| i.as_str()).collect();
    let out = fx.sign(&["--no-wait", "-o", "json"], &refs);
    assert_code(&out, 0);
    let json: serde_json::Value =
        serde_json::from_str(out.stdout_str().trim()).expect("one JSON object");
    let id = json["signingRequestId"].as_str().expect("id").to_string();
    let listed: Vec<&str> = json["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|v| v.as_str().expect("string"))
        .collect();
    assert_eq!(listed, refs, "pinned images in submission order");
    fx.server.approve(&id).unwrap();

    // The same images in another order: refused, saying order matters and giving the order.
    let reordered = [refs[2], refs[0], refs[1]];
    let out = fx.sign(&["--resume", &id], &reordered);
    assert_code(&out, 5);
    let stderr = out.stderr_str();
    assert!(stderr.contains("the order matters"), "{stderr}");
    let a = stderr.find(&images[0].1).expect("first digest listed");
    let c = stderr.rfind(&images[2].1).expect("last digest listed");
    assert!(a < c, "{stderr}");
    for (_, d) in &images {
        let repo =
            ["order/a", "order/b", "order/c"][images.iter().position(|(_, x)| x == d).unwrap()];
        fx.assert_nothing_attached(repo, d);
    }

    // The printed command finishes the run.
    let resume = shlex::split(json["resumeCommand"].as_str().expect("resumeCommand"))
        .expect("a command a shell can split");
    let out = fx.sigbridge(&resume[1..].iter().map(String::as_str).collect::<Vec<_>>());
    assert_code(&out, 0);
    for (image, _) in &images {
        fx.verify_with_cosign(image);
    }
    assert_eq!(fx.server.submits(), 1);
}

#[test]
fn log_format_json_makes_the_wait_lines_json() {
    let fx = Fixture::new(Approval::Auto);
    let (image, _) = fx.image("team/json-log");
    let uri = fx.uri();
    let out = fx.sigbridge(&["--log-format", "json", "sign", "--signer", &uri, &image]);
    assert_code(&out, 0);
    let stderr = out.stderr_str();
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Submitted SignPath signing request"))),
        "{stderr}"
    );
    fx.verify_with_cosign(&image);
}
