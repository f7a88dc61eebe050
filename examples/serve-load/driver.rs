//! The load driver behind `examples/serve-load` and `tests/suite/e2e_serve_load.rs`: N signing
//! requests submitted at once from T tokens to one `sigbridge serve`, each approved by an
//! approver identity, polled to `Completed`, downloaded, and every signature verified against
//! the policy's key. Artifacts are built and read with sigbridge's own SignPath client code
//! (`build_artifact`, `extract_signatures`, `SignPathClient`), so the service sees exactly
//! what `sigbridge sign --signer signpath+…` sends.
//!
//! Nothing here panics on a failed request: every failure is counted and described, so a run
//! reports what was lost instead of stopping at the first loss.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sigbridge_signer::{normalise_signature, PublicKey};
use sigbridge_signpath::{
    build_artifact, extract_signatures, Artifact, ExtractLimits, RequestId, RetryPolicy,
    SignPathClient, SignPathConfig, Status,
};

/// What to run.
pub struct LoadOptions {
    /// `signpath+http://127.0.0.1:PORT/ORG/PROJECT/POLICY` (or `signpath://` for HTTPS).
    pub signer_uri: String,
    /// One API token per submitting identity; request `i` is sent with token `i % len`.
    pub submitter_tokens: Vec<String>,
    /// An approver of the policy (not one of the submitters).
    pub approver_token: String,
    /// The policy's public key: every signature must verify with it.
    pub public_key: PublicKey,
    /// How many signing requests.
    pub requests: usize,
    /// Payloads (images) in each request.
    pub payloads_per_request: usize,
}

/// What happened.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Requests the service accepted (201 with a request id).
    pub accepted: usize,
    /// Wall time from the first submission to the last answer.
    pub submit_wall: Duration,
    /// Each accepted submission's latency (including any waits the client made on 429).
    pub submit_latencies: Vec<Duration>,
    /// Approvals the service accepted.
    pub approved: usize,
    /// Wall time of all approvals.
    pub approve_wall: Duration,
    /// Requests that reached `Completed` and whose signed artifact was downloaded.
    pub completed: usize,
    /// Signatures that verified against the policy's key.
    pub signatures_verified: usize,
    /// Wall time from the first approval to the last verified download.
    pub complete_wall: Duration,
    /// Each failure, described.
    pub failures: Vec<String>,
}

impl LoadReport {
    /// Accepted submissions per second over the submission phase.
    pub fn submissions_per_sec(&self) -> f64 {
        self.accepted as f64 / self.submit_wall.as_secs_f64().max(1e-9)
    }

    /// Completed requests per second from the first approval to the last download.
    pub fn completions_per_sec(&self) -> f64 {
        self.completed as f64 / self.complete_wall.as_secs_f64().max(1e-9)
    }

    /// The `q`-quantile (0..=1) of the submit latencies (nearest rank), zero if none.
    pub fn submit_quantile(&self, q: f64) -> Duration {
        let mut v = self.submit_latencies.clone();
        v.sort();
        if v.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v[rank - 1]
    }
}

/// A cosign simple-signing payload for a made-up image with a random digest: distinct
/// payloads, so no two requests are alike.
fn payload(n: usize, k: usize) -> Vec<u8> {
    let mut b = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    let digest: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"registry.example/load/app-{n}-{k}"}},"image":{{"docker-manifest-digest":"sha256:{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#
    )
    .into_bytes()
}

fn client(uri: &str, token: &str) -> Result<SignPathClient, String> {
    let token = token.to_string();
    let env = move |name: &str| (name == "SIGNPATH_API_TOKEN").then(|| token.clone());
    let config = SignPathConfig::from_uri(uri, &env).map_err(|e| e.to_string())?;
    SignPathClient::new(config, RetryPolicy::default()).map_err(|e| e.to_string())
}

/// `POST …/SigningRequests/{id}/Approve`, waiting out 429 `Retry-After` for up to 10 minutes
/// (one approver approving every request is what a rate limit refuses first).
async fn approve(http: &reqwest::Client, url: &str, token: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(600);
    while Instant::now() < deadline {
        let resp = http
            .post(url)
            .bearer_auth(token)
            .header("Content-Type", "application/json")
            .body("{}")
            .send()
            .await
            .map_err(|e| format!("approve: {}", sigbridge_signer::error_chain(&e)))?;
        let code = resp.status().as_u16();
        if code == 429 {
            let wait = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(1);
            tokio::time::sleep(Duration::from_secs(wait)).await;
            continue;
        }
        if code != 200 {
            let body = resp.text().await.unwrap_or_default();
            return Err(format!("approve answered HTTP {code}: {body}"));
        }
        return Ok(());
    }
    Err("approve: still rate-limited after 10 minutes".into())
}

/// Poll until final (backing off from 50 ms to 500 ms), then download and verify.
async fn collect(
    client: &SignPathClient,
    id: &RequestId,
    artifact: &Artifact,
    key: &PublicKey,
) -> Result<usize, String> {
    let mut interval = Duration::from_millis(50);
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let s = client.get_status(id).await.map_err(|e| e.to_string())?;
        if s.status == Status::Completed {
            break;
        }
        if s.is_final {
            return Err(format!("ended {}", s.status.as_str()));
        }
        if Instant::now() > deadline {
            return Err(format!("still {} after 10 minutes", s.status.as_str()));
        }
        tokio::time::sleep(interval).await;
        interval = (interval * 2).min(Duration::from_millis(500));
    }
    let zip = client
        .download_signed(id, 64 * 1024 * 1024)
        .await
        .map_err(|e| e.to_string())?;
    let sigs = extract_signatures(&zip, &artifact.entries, &ExtractLimits::default())
        .map_err(|e| e.to_string())?;
    for ((name, payload), sig) in artifact.entries.iter().zip(&sigs) {
        let der = normalise_signature(key, sig).map_err(|e| format!("{name}: {e}"))?;
        key.verify(payload, &der)
            .map_err(|e| format!("{name}: the signature does not verify: {e}"))?;
    }
    Ok(sigs.len())
}

/// Run the whole scenario.
pub async fn run(opts: LoadOptions) -> Result<LoadReport, String> {
    if opts.submitter_tokens.is_empty() || opts.requests == 0 || opts.payloads_per_request == 0 {
        return Err("need at least one token, one request and one payload per request".into());
    }
    let clients: Vec<Arc<SignPathClient>> = opts
        .submitter_tokens
        .iter()
        .map(|t| client(&opts.signer_uri, t).map(Arc::new))
        .collect::<Result<_, _>>()?;
    let artifacts: Vec<Arc<Artifact>> = (0..opts.requests)
        .map(|n| {
            let payloads: Vec<Vec<u8>> = (0..opts.payloads_per_request)
                .map(|k| payload(n, k))
                .collect();
            build_artifact(&payloads)
                .map(Arc::new)
                .map_err(|e| e.to_string())
        })
        .collect::<Result<_, _>>()?;
    let key = Arc::new(opts.public_key);
    let mut report = LoadReport::default();

    // Submit all at once: one task per request, so requests from one token overlap too.
    let start = Instant::now();
    let tasks: Vec<_> = artifacts
        .iter()
        .enumerate()
        .map(|(n, artifact)| {
            let client = clients[n % clients.len()].clone();
            let artifact = artifact.clone();
            tokio::spawn(async move {
                let t0 = Instant::now();
                let id = client
                    .submit(&artifact, Some(&format!("load request {n}")))
                    .await;
                (id, t0.elapsed())
            })
        })
        .collect();
    let mut submitted = Vec::new();
    for (n, task) in tasks.into_iter().enumerate() {
        match task.await {
            Ok((Ok(id), latency)) => {
                report.submit_latencies.push(latency);
                submitted.push((n, id));
            }
            Ok((Err(e), _)) => report.failures.push(format!("submit {n}: {e}")),
            Err(e) => report
                .failures
                .push(format!("submit {n}: task failed: {e}")),
        }
    }
    report.submit_wall = start.elapsed();
    report.accepted = submitted.len();

    // Approve each, all at once, as one approver.
    let http = reqwest::Client::new();
    let approver = Arc::new(opts.approver_token.clone());
    let start = Instant::now();
    let tasks: Vec<_> = submitted
        .iter()
        .map(|(n, id)| {
            let url = clients[n % clients.len()]
                .config()
                .api_url(&format!("SigningRequests/{id}/Approve"));
            let (http, approver) = (http.clone(), approver.clone());
            tokio::spawn(async move { approve(&http, &url, &approver).await })
        })
        .collect();
    let mut approved = Vec::new();
    for ((n, id), task) in submitted.into_iter().zip(tasks) {
        match task.await {
            Ok(Ok(())) => approved.push((n, id)),
            Ok(Err(e)) => report.failures.push(format!("request {n} ({id}): {e}")),
            Err(e) => report
                .failures
                .push(format!("request {n}: task failed: {e}")),
        }
    }
    report.approve_wall = start.elapsed();
    report.approved = approved.len();

    // Each submitter polls its own requests to Completed, downloads and verifies.
    let tasks: Vec<_> = approved
        .iter()
        .map(|(n, id)| {
            let client = clients[n % clients.len()].clone();
            let (artifact, key, id) = (artifacts[*n].clone(), key.clone(), id.clone());
            tokio::spawn(async move { collect(&client, &id, &artifact, &key).await })
        })
        .collect();
    for ((n, id), task) in approved.into_iter().zip(tasks) {
        match task.await {
            Ok(Ok(sigs)) => {
                report.completed += 1;
                report.signatures_verified += sigs;
            }
            Ok(Err(e)) => report.failures.push(format!("request {n} ({id}): {e}")),
            Err(e) => report
                .failures
                .push(format!("request {n}: task failed: {e}")),
        }
    }
    report.complete_wall = start.elapsed();
    Ok(report)
}

/// `(requests, completed)` rows in the service's database (read while it runs: WAL).
pub fn store_counts(db: &std::path::Path) -> Result<(u64, u64), String> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| format!("cannot open {}: {e}", db.display()))?;
    conn.query_row(
        "SELECT COUNT(*), COALESCE(SUM(status = 'Completed'), 0) FROM requests",
        [],
        |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
    )
    .map_err(|e| format!("cannot count the requests in {}: {e}", db.display()))
}
