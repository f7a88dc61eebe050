//! Load on one running `sigbridge serve`: N signing requests submitted at once from T tokens,
//! approved, completed, downloaded and verified (see driver.rs). benches/serve_load.sh starts
//! the service and runs this; run it yourself against any instance:
//!
//! ```text
//! serve-load --signer signpath+http://127.0.0.1:8080/ORG/PROJECT/POLICY \
//!   --tokens submitters.txt --approver-token approver.txt --public-key policy.pub \
//!   [--requests 200] [--payloads 3] [--db state.db]
//! ```
//!
//! `--tokens` holds one API token a line (request i uses line i mod T); `--db` (the service's
//! SQLite file) adds the check that it holds exactly N requests, all completed. Prints one
//! line `key=value ...` and exits 1 if any request was lost, failed or did not verify.

mod driver;

use std::path::PathBuf;
use std::process::ExitCode;

fn read(path: &PathBuf) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn main() -> ExitCode {
    match real_main() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("serve-load: {e}");
            ExitCode::from(2)
        }
    }
}

fn real_main() -> Result<bool, String> {
    let mut args = std::env::args().skip(1);
    let (mut signer, mut tokens, mut approver, mut key, mut db) = (None, None, None, None, None);
    let (mut requests, mut payloads) = (200usize, 3usize);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--signer" => signer = Some(value()?),
            "--tokens" => tokens = Some(PathBuf::from(value()?)),
            "--approver-token" => approver = Some(PathBuf::from(value()?)),
            "--public-key" => key = Some(PathBuf::from(value()?)),
            "--db" => db = Some(PathBuf::from(value()?)),
            "--requests" => requests = value()?.parse().map_err(|e| format!("--requests: {e}"))?,
            "--payloads" => payloads = value()?.parse().map_err(|e| format!("--payloads: {e}"))?,
            other => {
                return Err(format!(
                    "unknown argument {other:?}; see the top of examples/serve-load/main.rs"
                ))
            }
        }
    }
    let missing = |what: &str| format!("{what} is required");
    let tokens: Vec<String> = read(&tokens.ok_or_else(|| missing("--tokens"))?)?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    let approver_token = read(&approver.ok_or_else(|| missing("--approver-token"))?)?
        .trim()
        .to_string();
    let public_key =
        sigbridge_signer::PublicKey::from_pem(&read(&key.ok_or_else(|| missing("--public-key"))?)?)
            .map_err(|e| format!("--public-key: {e}"))?;
    let opts = driver::LoadOptions {
        signer_uri: signer.ok_or_else(|| missing("--signer"))?,
        submitter_tokens: tokens,
        approver_token,
        public_key,
        requests,
        payloads_per_request: payloads,
    };
    let token_count = opts.submitter_tokens.len();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let report = runtime.block_on(driver::run(opts))?;
    for f in report.failures.iter().take(20) {
        eprintln!("serve-load: {f}");
    }
    let mut ok = report.failures.is_empty()
        && report.completed == requests
        && report.signatures_verified == requests * payloads;
    let mut stored = String::new();
    if let Some(db) = db {
        let (total, completed) = driver::store_counts(&db)?;
        stored = format!(" stored={total} stored_completed={completed}");
        ok &= total == requests as u64 && completed == requests as u64;
    }
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    println!(
        "requests={requests} tokens={token_count} payloads={payloads} accepted={} submit_per_s={:.1} submit_p50_ms={:.1} submit_p99_ms={:.1} submit_max_ms={:.1} approved={} approve_per_s={:.1} completed={} complete_per_s={:.1} signatures_verified={} failures={}{stored}",
        report.accepted,
        report.submissions_per_sec(),
        ms(report.submit_quantile(0.50)),
        ms(report.submit_quantile(0.99)),
        ms(report.submit_quantile(1.0)),
        report.approved,
        report.approved as f64 / report.approve_wall.as_secs_f64().max(1e-9),
        report.completed,
        report.completions_per_sec(),
        report.signatures_verified,
        report.failures.len(),
    );
    Ok(ok)
}
