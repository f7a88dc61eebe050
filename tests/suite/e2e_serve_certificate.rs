//! The policy certificate route of the real `sigbridge serve` with `certificate = "…"` in
//! serve.toml: it serves the X.509 certificate as DER (as SignPath does), the real
//! `sigbridge sign` takes the policy's key from it and cosign verifies the result, a client
//! whose configured key is another refuses before submitting, and the service refuses to start
//! with a certificate for another key than the policy's signer.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use sigbridge_testkit::{cosign_verify, push_image, OutputExt, Registry};

const ORG: &str = "cert-org";

/// The running service; killed on drop.
struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sigbridge_bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sigbridge"));
    cmd.env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .stdin(Stdio::null());
    cmd
}

fn write_config(dir: &Path, ci_hash: &str, certificate: &str) -> std::path::PathBuf {
    let path = dir.join("serve.toml");
    std::fs::write(
        &path,
        format!(
            r#"listen = "127.0.0.1:0"
database = "state.db"
organization_id = "{ORG}"

[[identities]]
name = "ci"
token_sha256 = "{ci_hash}"

[[policies]]
project = "p"
slug = "with-certificate"
signer = "service.pem"
certificate = "{certificate}"
approvals_required = 0
submitters = ["ci"]

[[policies]]
project = "p"
slug = "key-only"
signer = "service.pem"
approvals_required = 0
submitters = ["ci"]
"#
        ),
    )
    .unwrap();
    path
}

#[test]
fn the_policy_certificate_is_served_as_der_the_client_uses_it_and_a_certificate_for_another_key_is_refused(
) {
    let dir = tempfile::Builder::new()
        .prefix("sigbridge-serve-cert-")
        .tempdir()
        .unwrap();
    let d = dir.path();
    let ours = sigbridge_testkit::certs::self_signed_p256("release-signing");
    let other = sigbridge_testkit::certs::self_signed_p256("someone-else");
    std::fs::write(d.join("service.pem"), &ours.key_pem).unwrap();
    std::fs::write(d.join("policy.crt"), &ours.cert_pem).unwrap();
    std::fs::write(d.join("other.crt"), &other.cert_pem).unwrap();
    let key = sigbridge_signer::PublicKey::from_pem(&ours.cert_pem).unwrap();
    let other_key = sigbridge_signer::PublicKey::from_pem(&other.cert_pem).unwrap();
    std::fs::write(d.join("service.pub"), key.to_pem()).unwrap();
    std::fs::write(d.join("other.pub"), other_key.to_pem()).unwrap();
    let (token, hash) = sigbridge_serve::token::new_token();
    std::fs::write(d.join("ci.token"), &token).unwrap();

    // A certificate for another key than the signer's: the service does not start.
    let config = write_config(d, &hash.to_string(), "other.crt");
    let out = sigbridge_bin()
        .args(["serve", "--config"])
        .arg(&config)
        .current_dir(d)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", out.describe());
    let err = out.stderr_str();
    assert!(
        err.contains("policy p/with-certificate") && err.contains("for another key"),
        "{}",
        out.describe()
    );
    // Checked before the port is bound: it never claimed to be listening.
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("listening on"),
        "{}",
        out.describe()
    );

    let config = write_config(d, &hash.to_string(), "policy.crt");
    let mut child = sigbridge_bin()
        .args(["serve", "--config"])
        .arg(&config)
        .current_dir(d)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(d.join("serve.log")).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _service = Service(child);
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("no listening line: {line:?}"))
        .to_string();

    let reg = Registry::shared_plain();
    let http = reg.blocking_client();
    let route = |policy: &str| {
        let resp = http
            .get(format!(
                "http://{addr}/API/v1/{ORG}/Projects/p/SigningPolicies/{policy}/Certificate/X509Certificate"
            ))
            .bearer_auth(&token)
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{policy}");
        let ctype = resp.headers()["content-type"].to_str().unwrap().to_string();
        (ctype, resp.bytes().unwrap().to_vec())
    };
    let (ctype, body) = route("with-certificate");
    assert_eq!(ctype, "application/pkix-cert");
    assert_eq!(
        sigbridge_signer::PublicKey::from_certificate_der(&body).unwrap(),
        key
    );
    // Without `certificate` the route keeps serving the public key.
    let (_, body) = route("key-only");
    assert_eq!(String::from_utf8(body).unwrap(), key.to_pem());

    let sign = |uri: &str, image: &str| {
        sigbridge_bin()
            .args(["sign", "--signer", uri, image])
            .env("HOME", d)
            .env("SIGBRIDGE_SIGNPATH_TOKEN_FILE", d.join("ci.token"))
            .env("SIGBRIDGE_SIGNPATH_POLL_INTERVAL_MS", "20")
            .current_dir(d)
            .output()
            .unwrap()
    };
    let uri = format!(
        "signpath+http://{addr}/{ORG}/p/with-certificate?artifact-configuration=cosign-raw"
    );
    let repo = format!("serve-cert-{}", std::process::id());
    let image = reg.image_ref(&repo, &push_image(&reg, &repo, "1.0"));

    // The client expects another key: refused before anything is submitted.
    let out = sign(
        &format!("{uri}&public-key={}", d.join("other.pub").display()),
        &image,
    );
    assert!(!out.status.success(), "{}", out.describe());
    assert!(
        out.stderr_str()
            .contains("is not the key of the signing policy's certificate"),
        "{}",
        out.describe()
    );

    // No key configured: the client takes it from the DER certificate, and cosign agrees.
    let out = sign(&uri, &image);
    assert!(out.status.success(), "{}", out.describe());
    let v = cosign_verify(&reg, &d.join("service.pub"), &image, &[]);
    assert!(v.status.success(), "cosign verify:\n{}", v.describe());

    let export = sigbridge_bin()
        .args(["serve", "audit", "export", "--config"])
        .arg(&config)
        .current_dir(d)
        .output()
        .unwrap();
    assert!(export.status.success(), "{}", export.describe());
    let submits = export.stdout_str().matches("\"action\":\"submit\"").count();
    assert_eq!(
        submits,
        1,
        "the refused client submitted:\n{}",
        export.stdout_str()
    );
}
