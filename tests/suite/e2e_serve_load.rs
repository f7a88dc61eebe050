//! Load, end to end: 200 signing requests submitted at once from 20 API tokens to one real
//! `sigbridge serve` (a child process with SQLite state), each approved by an approver,
//! completed, downloaded and every signature verified; then nothing may be missing from the
//! store or the audit log. The driver is the one `examples/serve-load` (and with it
//! benches/serve_load.sh) runs. Nothing here asserts on time.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};

use sigbridge_testkit::OutputExt;

#[allow(dead_code)] // the example's reporting helpers
#[path = "../../examples/serve-load/driver.rs"]
mod driver;

const ORG: &str = "load-org";
const REQUESTS: usize = 200;
const TOKENS: usize = 20;
const PAYLOADS: usize = 2;

/// The running service; killed on drop.
struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sigbridge_bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sigbridge"))
}

#[test]
fn two_hundred_concurrent_submissions_from_twenty_tokens_are_all_signed_and_audited() {
    // The rate limit is not what this test is about (e2e_serve tests it): high enough for
    // every call of 10 concurrent requests per token.
    let log = run(1_000_000);
    assert!(
        !log.contains("rate limit: refused"),
        "the limit was meant to stay out of the way:\n{log}"
    );
}

/// Run the scenario against a fresh service with `max_requests_per_minute = rate`, check that
/// nothing was lost, and return the service's log.
fn run(rate: u32) -> String {
    use p256::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
    let dir = tempfile::Builder::new()
        .prefix("sigbridge-serve-load-")
        .tempdir()
        .unwrap();
    let secret = p256::SecretKey::random(&mut rand_core::OsRng);
    std::fs::write(
        dir.path().join("service.pem"),
        secret.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes(),
    )
    .unwrap();
    let public_pem = secret
        .public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();

    let submitters: Vec<(String, String)> = (0..TOKENS)
        .map(|_| sigbridge_serve::token::new_token())
        .map(|(t, h)| (t, h.to_string()))
        .collect();
    let (approver_token, approver_hash) = sigbridge_serve::token::new_token();
    let mut config = format!(
        "listen = \"127.0.0.1:0\"\ndatabase = \"state.db\"\norganization_id = \"{ORG}\"\n\
         max_requests_per_minute = {rate}\n\n\
         [[identities]]\nname = \"approver\"\ntoken_sha256 = \"{approver_hash}\"\n"
    );
    for (i, (_, hash)) in submitters.iter().enumerate() {
        config.push_str(&format!(
            "\n[[identities]]\nname = \"ci-{i}\"\ntoken_sha256 = \"{hash}\"\n"
        ));
    }
    let names: Vec<String> = (0..TOKENS).map(|i| format!("\"ci-{i}\"")).collect();
    config.push_str(&format!(
        "\n[[policies]]\nproject = \"load\"\nslug = \"release\"\nsigner = \"service.pem\"\n\
         approvals_required = 1\nsubmitters = [{}]\napprovers = [\"approver\"]\n",
        names.join(", ")
    ));
    let config_path = dir.path().join("serve.toml");
    std::fs::write(&config_path, config).unwrap();

    let log_path = dir.path().join("serve.log");
    let mut child = sigbridge_bin()
        .args(["serve", "--config"])
        .arg(&config_path)
        .env("SIGBRIDGE_LOG", "sigbridge_serve=info")
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let service = Service(child);
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("no listening line: {line:?}\n{}", log()))
        .to_string();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = runtime
        .block_on(driver::run(driver::LoadOptions {
            signer_uri: format!("signpath+http://{addr}/{ORG}/load/release"),
            submitter_tokens: submitters.iter().map(|(t, _)| t.clone()).collect(),
            approver_token,
            public_key: sigbridge_signer::PublicKey::from_pem(&public_pem).unwrap(),
            requests: REQUESTS,
            payloads_per_request: PAYLOADS,
        }))
        .unwrap();
    assert!(
        report.failures.is_empty(),
        "{} failures, first: {:?}\n{}",
        report.failures.len(),
        report.failures.iter().take(5).collect::<Vec<_>>(),
        log()
    );
    assert_eq!(report.accepted, REQUESTS);
    assert_eq!(report.approved, REQUESTS);
    assert_eq!(report.completed, REQUESTS);
    assert_eq!(report.signatures_verified, REQUESTS * PAYLOADS);
    assert_eq!(
        driver::store_counts(&dir.path().join("state.db")).unwrap(),
        (REQUESTS as u64, REQUESTS as u64)
    );

    let serve = |args: &[&str]| {
        sigbridge_bin()
            .arg("serve")
            .args(args)
            .arg("--config")
            .arg(&config_path)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    // Checked while the service still runs, as an operator would.
    let verify = serve(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", verify.describe());
    drop(service);
    let export = serve(&["audit", "export"]);
    assert!(export.status.success(), "{}", export.describe());
    let entries: Vec<serde_json::Value> = export
        .stdout_str()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut ids_by_action = std::collections::BTreeMap::<String, Vec<String>>::new();
    for e in &entries {
        ids_by_action
            .entry(e["action"].as_str().unwrap().to_string())
            .or_default()
            .push(e["request_id"].as_str().unwrap().to_string());
    }
    for action in ["submit", "approve", "sign", "download"] {
        let mut ids = ids_by_action.remove(action).unwrap_or_default();
        assert_eq!(ids.len(), REQUESTS, "{action} entries");
        ids.sort();
        ids.dedup();
        assert_eq!(
            ids.len(),
            REQUESTS,
            "{action} entries for distinct requests"
        );
    }
    assert!(
        ids_by_action.is_empty(),
        "unexpected audit actions: {:?}",
        ids_by_action.keys()
    );
    log()
}
