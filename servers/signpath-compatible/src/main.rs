//! `signpath-compatible-server`: the SignPath-compatible service for the demo and manual tests.
//!
//! ```text
//! signpath-compatible-server --listen 127.0.0.1:8443 --key cosign.key --token-file token \
//!     [--approval manual|auto] [--organization ORG-ID] [--fail-429 N] [--fail-503 N]
//!     [--retry-after SECONDS] [--drop N] [--fault-target all|gets|submits]
//!     [--slow-download-ms MS] [--signature der|raw|base64|garbage] [--processing-delay-ms MS]
//!     [--fail-processing] [--zip normal|traversal|absolute|huge|missing|extra|modified|garbage]
//! ```
//! An encrypted key's password comes from COSIGN_PASSWORD. Approve or deny a waiting request
//! with `curl -X POST -H "Authorization: Bearer $TOKEN" -d '{}' \
//! http://HOST/API/v1/ORG/SigningRequests/ID/Approve` (or `/Deny`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use signpath_compatible_server::{
    Approval, Behaviour, FaultTarget, Faults, RetryAfter, ServerConfig, SignPathServer,
    SignatureFormat, SignedZip,
};

struct Opts {
    listen: String,
    key: PathBuf,
    token_file: PathBuf,
    config_rest: (Approval, Option<String>, Faults, Behaviour),
}

fn usage() -> String {
    "usage: signpath-compatible-server --listen ADDR --key KEYFILE --token-file FILE [--approval manual|auto] [--organization ORG] [--fail-429 N] [--fail-503 N] [--retry-after S] [--drop N] [--fault-target all|gets|submits] [--slow-download-ms MS] [--signature der|raw|base64|garbage] [--zip normal|traversal|absolute|huge|missing|extra|modified|garbage] [--processing-delay-ms MS] [--fail-processing]".into()
}

fn parse(args: Vec<String>) -> Result<Opts, String> {
    let mut listen = "127.0.0.1:8443".to_string();
    let mut key = None;
    let mut token_file = None;
    let mut approval = Approval::Manual;
    let mut org = None;
    let mut faults = Faults::default();
    let mut behaviour = Behaviour::default();
    let mut it = args.into_iter();
    let num = |v: Option<String>, flag: &str| -> Result<u64, String> {
        v.ok_or(format!("{flag} needs a value"))?
            .parse::<u64>()
            .map_err(|_| format!("{flag} needs a number"))
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--listen" => listen = it.next().ok_or("--listen needs ADDR")?,
            "--key" => key = it.next().map(PathBuf::from),
            "--token-file" => token_file = it.next().map(PathBuf::from),
            "--organization" => org = it.next(),
            "--approval" => {
                approval = match it.next().as_deref() {
                    Some("manual") => Approval::Manual,
                    Some("auto") => Approval::Auto,
                    _ => return Err("--approval is manual or auto".into()),
                }
            }
            "--fail-429" => faults.too_many_requests = num(it.next(), &arg)? as u32,
            "--fail-503" => faults.service_unavailable = num(it.next(), &arg)? as u32,
            "--drop" => faults.drop_connections = num(it.next(), &arg)? as u32,
            "--retry-after" => faults.retry_after = RetryAfter::Seconds(num(it.next(), &arg)?),
            "--fault-target" => {
                faults.target = match it.next().as_deref() {
                    Some("all") => FaultTarget::All,
                    Some("gets") => FaultTarget::Gets,
                    Some("submits") => FaultTarget::Submits,
                    _ => return Err("--fault-target is all, gets or submits".into()),
                }
            }
            "--slow-download-ms" => {
                faults.slow_download = Some(Duration::from_millis(num(it.next(), &arg)?))
            }
            "--processing-delay-ms" => {
                behaviour.processing_delay = Duration::from_millis(num(it.next(), &arg)?)
            }
            "--fail-processing" => behaviour.fail_processing = true,
            "--signature" => {
                behaviour.signature = match it.next().as_deref() {
                    Some("der") => SignatureFormat::Der,
                    Some("raw") => SignatureFormat::RawRs,
                    Some("base64") => SignatureFormat::Base64,
                    Some("garbage") => SignatureFormat::Garbage,
                    _ => return Err("--signature is der, raw, base64 or garbage".into()),
                }
            }
            "--zip" => {
                behaviour.zip = match it.next().as_deref() {
                    Some("normal") => SignedZip::Normal,
                    Some("traversal") => SignedZip::Traversal,
                    Some("absolute") => SignedZip::Absolute,
                    Some("huge") => SignedZip::HugeEntry,
                    Some("missing") => SignedZip::MissingSignature,
                    Some("extra") => SignedZip::ExtraEntry,
                    Some("modified") => SignedZip::ModifiedPayload,
                    Some("garbage") => SignedZip::Garbage,
                    _ => return Err("unknown --zip mode".into()),
                }
            }
            "-h" | "--help" => return Err(usage()),
            other => return Err(format!("unknown argument {other:?}\n{}", usage())),
        }
    }
    Ok(Opts {
        listen,
        key: key.ok_or("--key is required")?,
        token_file: token_file.ok_or("--token-file is required")?,
        config_rest: (approval, org, faults, behaviour),
    })
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("signpath-compatible-server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let opts = parse(std::env::args().skip(1).collect())?;
    let token = std::fs::read_to_string(&opts.token_file)
        .map_err(|e| format!("{}: {e}", opts.token_file.display()))?;
    let token = token.lines().next().unwrap_or("").trim().to_string();
    if token.is_empty() {
        return Err(format!("{} is empty", opts.token_file.display()));
    }
    let file = sigbridge_local::KeyFile::read(&opts.key).map_err(|e| e.to_string())?;
    let password = std::env::var("COSIGN_PASSWORD")
        .ok()
        .map(SecretString::from);
    if file.is_encrypted() && password.is_none() {
        return Err(format!(
            "{} is encrypted: set COSIGN_PASSWORD",
            opts.key.display()
        ));
    }
    let signer = file.decrypt(password.as_ref()).map_err(|e| e.to_string())?;
    let (approval, organization_id, faults, behaviour) = opts.config_rest;
    let config = ServerConfig {
        signer: Arc::new(signer),
        token: SecretString::from(token),
        organization_id,
        approval,
        faults,
        behaviour,
    };
    let addr = opts
        .listen
        .parse()
        .map_err(|e| format!("--listen {}: {e}", opts.listen))?;
    let server = SignPathServer::start_on(addr, config).map_err(|e| e.to_string())?;
    println!("listening on {}", server.base_url());
    println!("API base: {}/API", server.base_url());
    print!("{}", server.public_key_pem());
    // Serve until killed.
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
