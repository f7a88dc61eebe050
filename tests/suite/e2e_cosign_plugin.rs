//! The cosign KMS plugin end to end: real cosign 2.5 (legacy) and cosign 3.1.1 (bundle, and
//! `--new-bundle-format=false`) run `sigstore-kms-sigbridge` from PATH for `--key
//! sigbridge://...`, against a real docker-registry, a SoftHSM token and the SignPath-compatible
//! server; cosign verifies with the exported PEM. Each plugin call appends its method name to a
//! trace file (`SIGBRIDGE_PLUGIN_TRACE`), which counts the calls per `cosign sign`.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use sigbridge_testkit::{
    push_image, OutputExt, Registry, SharedRegistry, SoftHsm, StandardToken, ToolCommand, Tools,
    SOFTHSM_USER_PIN,
};
use signpath_compatible_server::{Approval, Behaviour, Faults, ServerConfig, SignPathServer};

use crate::common::Sandbox;

const ORG: &str = "c2099ac1-b2d4-4a41-9d2b-3ae8b4a2e3b1";
const TOKEN: &str = "test-api-token-0123456789abcdef";

/// The cosign a test drives, and the format it writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cosign {
    /// cosign 2.5: legacy `.sig` only, `digest: null`.
    V2Legacy,
    /// cosign 3.1.1, default format: a Sigstore bundle referrer, digest sent.
    V3Bundle,
    /// cosign 3.1.1 with `--new-bundle-format=false --use-signing-config=false
    /// --tlog-upload=false`: legacy `.sig`, digest sent.
    V3Legacy,
}

const ALL: [Cosign; 3] = [Cosign::V2Legacy, Cosign::V3Bundle, Cosign::V3Legacy];

struct Fixture {
    sandbox: Sandbox,
    reg: SharedRegistry,
    trace: PathBuf,
    signing_config: PathBuf,
    env: Vec<(String, String)>,
}

/// The plugin binary's folder first, so cosign's `exec.LookPath` finds it.
fn plugin_path() -> String {
    let bin = Path::new(env!("CARGO_BIN_EXE_sigstore-kms-sigbridge"));
    let dir = bin.parent().expect("the plugin binary has a folder");
    format!("{}:/usr/local/bin:/usr/bin:/bin", dir.display())
}

impl Fixture {
    fn new() -> Self {
        let sandbox = Sandbox::new();
        let trace = sandbox.join("plugin-trace");
        let signing_config = sandbox.join("signing-config.json");
        Tools::cosign3_signing_config(&signing_config);
        Self {
            sandbox,
            reg: Registry::shared_plain(),
            trace,
            signing_config,
            env: Vec::new(),
        }
    }

    fn env(mut self, key: &str, value: impl AsRef<Path>) -> Self {
        self.env
            .push((key.to_string(), value.as_ref().display().to_string()));
        self
    }

    fn cosign(&self, which: Cosign) -> ToolCommand {
        let mut cmd = match which {
            Cosign::V2Legacy => Tools::cosign(),
            Cosign::V3Bundle | Cosign::V3Legacy => Tools::cosign3(),
        };
        self.reg.write_docker_config(&cmd.home().join(".docker"));
        cmd.env("PATH", plugin_path())
            .env("SIGBRIDGE_PLUGIN_TRACE", &self.trace)
            .current_dir(self.sandbox.path());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    fn image(&self, repo: &str) -> (String, String) {
        let digest = push_image(&self.reg, repo, "1.0");
        (self.reg.image_ref(repo, &digest), digest)
    }

    /// `cosign sign --key KEY` in `which`'s mode, without any transparency log.
    fn sign(&self, which: Cosign, key: &str, image: &str) -> Output {
        let mut cmd = self.cosign(which);
        cmd.args(["sign", "--key", key, "-y"]);
        match which {
            Cosign::V2Legacy => {
                cmd.arg("--tlog-upload=false");
            }
            Cosign::V3Bundle => {
                cmd.arg("--signing-config").arg(&self.signing_config);
            }
            Cosign::V3Legacy => {
                // cosign 3.1.1 refuses the legacy format together with a signing config.
                cmd.args([
                    "--use-signing-config=false",
                    "--tlog-upload=false",
                    "--new-bundle-format=false",
                ]);
            }
        }
        cmd.args(self.reg.cosign_args()).arg(image);
        std::fs::write(&self.trace, "").expect("reset the trace");
        cmd.run()
    }

    /// `cosign public-key --key KEY` (cosign 3.1.1), the PEM it prints.
    fn public_key(&self, key: &str) -> String {
        let mut cmd = self.cosign(Cosign::V3Bundle);
        cmd.args(["public-key", "--key", key]);
        let out = cmd.run_ok();
        out.stdout_str().to_string()
    }

    /// `cosign verify --key PEM --insecure-ignore-tlog` with the cosign that signed.
    fn verify(&self, which: Cosign, public_pem: &str, image: &str) -> Output {
        let pem = self.sandbox.write("exported.pub", public_pem);
        let mut cmd = self.cosign(which);
        cmd.args(["verify", "--key"])
            .arg(pem)
            .arg("--insecure-ignore-tlog")
            .args(self.reg.cosign_args());
        if which == Cosign::V3Legacy {
            cmd.arg("--new-bundle-format=false");
        }
        cmd.arg(image);
        cmd.run()
    }

    /// The plugin calls since the last [`Fixture::sign`], by method name.
    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(&self.trace)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn sign_calls(&self) -> usize {
        self.calls().iter().filter(|m| *m == "signMessage").count()
    }
}

#[track_caller]
fn assert_ok(out: &Output, what: &str) {
    assert!(out.status.success(), "{what} failed:\n{}", out.describe());
}

#[track_caller]
fn assert_fails_saying(out: &Output, needles: &[&str]) {
    assert!(
        !out.status.success(),
        "cosign should have failed:\n{}",
        out.describe()
    );
    let err = out.stderr_str();
    assert!(
        err.contains("plugin returned error"),
        "not a plugin error:\n{}",
        out.describe()
    );
    for needle in needles {
        assert!(
            err.contains(needle),
            "missing {needle:?}:\n{}",
            out.describe()
        );
    }
}

fn normalise_pem(pem: &str) -> String {
    pem.trim().replace("\r\n", "\n")
}

#[test]
fn local_key_in_an_awkward_folder_signs_with_every_cosign_and_verifies() {
    let fx = Fixture::new();
    // `;`, `?`, `%` and a space in the path: the key reference is taken verbatim after the scheme.
    let key = fx.sandbox.pkcs8_key("odd dir;v=1?x%41/key");
    let reference = format!("sigbridge://{}", key.private.display());
    let expected = std::fs::read_to_string(&key.public).unwrap();
    assert_eq!(
        normalise_pem(&fx.public_key(&reference)),
        normalise_pem(&expected)
    );

    for which in ALL {
        let (image, _) = fx.image(&format!("plugin/local-{which:?}").to_lowercase());
        let out = fx.sign(which, &reference, &image);
        assert_ok(&out, &format!("cosign sign ({which:?})"));
        let calls = fx.calls();
        eprintln!("{which:?}: plugin calls for one cosign sign: {calls:?}");
        assert_eq!(fx.sign_calls(), 1, "{which:?}: {calls:?}");
        assert!(
            calls.iter().all(|m| m == "signMessage" || m == "publicKey"),
            "{calls:?}"
        );
        let out = fx.verify(which, &expected, &image);
        assert_ok(&out, &format!("cosign verify ({which:?})"));
    }
}

#[test]
fn encrypted_cosign_key_takes_its_password_from_the_environment() {
    let fx = Fixture::new();
    let key = fx.sandbox.cosign_key("enc", "correct horse");
    let fx = fx.env("COSIGN_PASSWORD", "correct horse");
    let reference = format!("sigbridge://{}", key.private.display());
    let (image, _) = fx.image("plugin/encrypted");
    let out = fx.sign(Cosign::V3Bundle, &reference, &image);
    assert_ok(&out, "cosign sign");
    assert!(!out.stderr_str().contains("correct horse"));
    let expected = std::fs::read_to_string(&key.public).unwrap();
    assert_ok(
        &fx.verify(Cosign::V3Bundle, &expected, &image),
        "cosign verify",
    );
}

#[test]
fn profiles_resolve_and_an_unknown_profile_says_so() {
    let fx = Fixture::new();
    let key = fx.sandbox.pkcs8_key("profiled");
    let config = fx.sandbox.write(
        "sigbridge.toml",
        format!(
            "[profiles.release]\nsigner = {:?}\n",
            key.private.display().to_string()
        ),
    );
    let fx = fx.env("SIGBRIDGE_CONFIG", &config);
    let (image, _) = fx.image("plugin/profile");
    let out = fx.sign(Cosign::V3Bundle, "sigbridge://release", &image);
    assert_ok(&out, "cosign sign with a profile");
    let expected = std::fs::read_to_string(&key.public).unwrap();
    assert_ok(
        &fx.verify(Cosign::V3Bundle, &expected, &image),
        "cosign verify",
    );

    let out = fx.sign(Cosign::V3Bundle, "sigbridge://no-such-profile", &image);
    assert_fails_saying(
        &out,
        &["no profile \"no-such-profile\"", "profiles there: release"],
    );
    let out = fx.sign(Cosign::V2Legacy, "sigbridge://no-such-profile", &image);
    assert_fails_saying(&out, &["no profile \"no-such-profile\""]);
}

/// A PIN file whose path has a space and a `%`, as a `pin-source=` value: the `pkcs11:` URI
/// nests verbatim, so its own RFC 7512 escapes apply (`%20`, `%25`) and reach its parser.
fn pin_source(fx: &Fixture, pin: &str) -> String {
    let path = fx
        .sandbox
        .write(&format!("pins/pin {}%.txt", pin.len()), format!("{pin}\n"));
    path.display()
        .to_string()
        .replace('%', "%25")
        .replace(' ', "%20")
}

#[test]
fn softhsm_token_signs_through_the_plugin_and_a_wrong_pin_says_so() {
    let fx = Fixture::new();
    let token = StandardToken::create("plugin token;1", fx.sandbox.path());
    let (k, v) = SoftHsm::shared().env();
    let fx = fx.env(k, v);
    let uri = format!(
        "{}&pin-source={}",
        token.token.uri(&token.p256),
        pin_source(&fx, SOFTHSM_USER_PIN)
    );
    let reference = format!("sigbridge://{uri}");
    let exported = fx.public_key(&reference);
    assert!(exported.contains("BEGIN PUBLIC KEY"), "{exported}");

    for which in ALL {
        let (image, _) = fx.image(&format!("plugin/hsm-{which:?}").to_lowercase());
        let out = fx.sign(which, &reference, &image);
        assert_ok(&out, &format!("cosign sign ({which:?})"));
        assert_eq!(fx.sign_calls(), 1, "{:?}", fx.calls());
        assert_ok(&fx.verify(which, &exported, &image), "cosign verify");
        assert!(!out.stderr_str().contains(SOFTHSM_USER_PIN));
    }

    let bad = format!(
        "sigbridge://{}&pin-source={}",
        token.token.uri(&token.p256),
        pin_source(&fx, "000000")
    );
    let (image, _) = fx.image("plugin/hsm-wrong-pin");
    let out = fx.sign(Cosign::V3Bundle, &bad, &image);
    assert_fails_saying(&out, &["PIN"]);
    assert!(!out.stderr_str().contains("000000"), "{}", out.describe());
}

fn signpath_server(approval: Approval, dir: &Path) -> (SignPathServer, String) {
    use p256::pkcs8::EncodePrivateKey as _;
    let secret = p256::SecretKey::random(&mut rand_core::OsRng);
    let private = dir.join("service.pem");
    std::fs::write(
        &private,
        secret
            .to_pkcs8_pem(p256::pkcs8::LineEnding::LF)
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    let signer = sigbridge_local::KeyFile::read(&private)
        .unwrap()
        .decrypt(None)
        .unwrap();
    let server = SignPathServer::start(ServerConfig {
        signer: Arc::new(signer),
        token: SecretString::from(TOKEN),
        organization_id: Some(ORG.into()),
        approval,
        faults: Faults::default(),
        behaviour: Behaviour::default(),
    })
    .unwrap();
    let uri = format!(
        "{}?artifact-configuration=cosign-raw&param.release=1.4.2",
        server.signer_uri(ORG, "my-images", "release-signing")
    );
    (server, uri)
}

fn signpath_fixture() -> (Fixture, SignPathServer, String) {
    let fx = Fixture::new();
    let (server, uri) = signpath_server(Approval::Manual, fx.sandbox.path());
    let token = fx.sandbox.write("token", format!("{TOKEN}\n"));
    let fx = fx
        .env("SIGBRIDGE_SIGNPATH_TOKEN_FILE", token)
        .env("SIGBRIDGE_SIGNPATH_POLL_INTERVAL_MS", "20");
    (fx, server, format!("sigbridge://{uri}"))
}

#[test]
fn signpath_approval_signs_once_per_cosign_sign() {
    let (fx, server, reference) = signpath_fixture();
    let exported = fx.public_key(&reference);
    assert_eq!(server.submits(), 0, "publicKey must not submit anything");
    assert_eq!(
        normalise_pem(&exported),
        normalise_pem(&server.public_key_pem())
    );

    for (n, which) in ALL.into_iter().enumerate() {
        let (image, _) = fx.image(&format!("plugin/signpath-{which:?}").to_lowercase());
        let out = std::thread::scope(|s| {
            let approver = s.spawn(|| {
                let reqs = server.wait_for_requests(n + 1, Duration::from_secs(120));
                assert!(reqs.len() > n, "no signing request arrived");
                server.approve(&reqs[n].id).unwrap();
            });
            let out = fx.sign(which, &reference, &image);
            approver.join().unwrap();
            out
        });
        assert_ok(&out, &format!("cosign sign ({which:?})"));
        assert!(
            out.stderr_str().contains("waiting up to"),
            "no word about the wait:\n{}",
            out.describe()
        );
        assert!(!out.stderr_str().contains(TOKEN), "the token leaked");
        eprintln!(
            "{which:?}: plugin calls {:?}; service submits so far {}",
            fx.calls(),
            server.submits()
        );
        assert_eq!(
            server.submits(),
            n + 1,
            "exactly one signing request per cosign sign"
        );
        assert_eq!(fx.sign_calls(), 1);
        assert_ok(&fx.verify(which, &exported, &image), "cosign verify");
    }
}

#[test]
fn a_denied_signpath_request_is_a_cosign_error_that_says_so() {
    let (fx, server, reference) = signpath_fixture();
    let (image, _) = fx.image("plugin/signpath-denied");
    let out = std::thread::scope(|s| {
        let denier = s.spawn(|| {
            let reqs = server.wait_for_requests(1, Duration::from_secs(120));
            server.deny(&reqs[0].id).unwrap();
        });
        let out = fx.sign(Cosign::V3Bundle, &reference, &image);
        denier.join().unwrap();
        out
    });
    assert_fails_saying(&out, &["denied by an approver"]);
    assert_eq!(server.submits(), 1);
}

#[test]
fn a_short_cosign_timeout_says_how_to_raise_it() {
    let (fx, server, reference) = signpath_fixture();
    let (image, _) = fx.image("plugin/signpath-timeout");
    let mut cmd = fx.cosign(Cosign::V3Bundle);
    cmd.env("COSIGN_TIMEOUT", "15s")
        .args(["sign", "--key", &reference, "-y", "--signing-config"])
        .arg(&fx.signing_config)
        .args(fx.reg.cosign_args())
        .arg(&image);
    let out = cmd.run();
    assert_fails_saying(&out, &["COSIGN_TIMEOUT"]);
    assert_eq!(server.submits(), 1);
}

#[test]
fn nerdctl_style_sign_stays_off_rekor_with_cosign_env_vars() {
    // nerdctl runs exactly `cosign sign --key K --yes REF@DIGEST` with its own environment; the
    // registry flags and the Rekor opt-out can only come from COSIGN_* variables.
    let fx = Fixture::new();
    let key = fx.sandbox.pkcs8_key("nerdctl");
    let reference = format!("sigbridge://{}", key.private.display());
    let (image, _) = fx.image("plugin/nerdctl");
    let mut cmd = fx.cosign(Cosign::V3Bundle);
    cmd.env("COSIGN_USE_SIGNING_CONFIG", "false")
        .env("COSIGN_TLOG_UPLOAD", "false")
        .env("COSIGN_ALLOW_HTTP_REGISTRY", "true")
        .env("COSIGN_ALLOW_INSECURE_REGISTRY", "true")
        .args(["sign", "--key", &reference, "--yes", &image]);
    std::fs::write(&fx.trace, "").unwrap();
    let out = cmd.run();
    assert_ok(&out, "nerdctl-style cosign sign");
    assert_eq!(fx.sign_calls(), 1);
    let expected = std::fs::read_to_string(&key.public).unwrap();
    assert_ok(
        &fx.verify(Cosign::V3Bundle, &expected, &image),
        "cosign verify",
    );
}
