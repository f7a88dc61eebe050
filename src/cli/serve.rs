//! `sigbridge serve --config serve.toml`: run the self-hosted signing service (the
//! sigbridge-serve crate); `serve audit verify|export` check and export its audit log;
//! `serve new-token` makes an API token and the hash the configuration holds; `serve
//! hash-password` turns an approver's password (read from stdin) into its argon2id line.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sigbridge::{Error, ExitCode};
use sigbridge_serve::{policy_key, ServeConfig, Signers};

use super::LogFormat;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The service's configuration file (see docs/serve.md).
    #[arg(
        long,
        value_name = "FILE",
        global = true,
        env = "SIGBRIDGE_SERVE_CONFIG"
    )]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Sub>,
}

#[derive(Debug, clap::Subcommand)]
pub enum Sub {
    /// The audit log: `verify` checks its hash chain, `export` writes it as JSON lines.
    Audit(AuditArgs),
    /// Print a new random API token and the `token_sha256` line for an identity in serve.toml.
    /// The token is shown only here; the service keeps only its hash.
    NewToken,
    /// Read an approver's password from stdin (one line; never from the command line) and print
    /// the `password_argon2` line for their identity in serve.toml (argon2id, 19 MiB, t=2, p=1).
    HashPassword,
}

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditSub,
}

#[derive(Debug, clap::Subcommand)]
pub enum AuditSub {
    /// Check every entry's hash and link; names the first entry that does not fit (exit 5).
    Verify,
    /// Write every entry as one JSON object per line.
    Export {
        /// Write here instead of stdout.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

fn load(config: Option<&Path>) -> anyhow::Result<ServeConfig> {
    let path = config.ok_or_else(|| {
        Error::InvalidInput("give the service configuration with --config FILE".into())
    })?;
    Ok(ServeConfig::load(path).map_err(|e| Error::InvalidInput(e.to_string()))?)
}

/// Run the subcommand.
pub async fn run(args: Args, log_format: LogFormat) -> anyhow::Result<ExitCode> {
    match args.command {
        None => serve(&load(args.config.as_deref())?, log_format).await,
        Some(Sub::NewToken) => {
            let (token, hash) = sigbridge_serve::token::new_token();
            let mut out = std::io::stdout().lock();
            writeln!(out, "{token}")?;
            writeln!(out, "token_sha256 = \"{hash}\"")?;
            Ok(ExitCode::Success)
        }
        Some(Sub::HashPassword) => hash_password(),
        Some(Sub::Audit(a)) => {
            let config = load(args.config.as_deref())?;
            audit(&config, a.command)
        }
    }
}

/// Longest stdin read for a password line (the hasher refuses more than 1024 bytes anyway).
const MAX_PASSWORD_INPUT: u64 = 4096;

fn hash_password() -> anyhow::Result<ExitCode> {
    use std::io::{BufRead as _, IsTerminal as _, Read as _};
    let stdin = std::io::stdin();
    let line = if stdin.is_terminal() {
        // On a terminal: a prompt without echo (on the terminal, not stdout, which stays the
        // one line for serve.toml).
        rpassword::prompt_password("password: ")
            .map_err(|e| Error::InvalidInput(format!("cannot read the password: {e}")))?
    } else {
        let mut line = String::new();
        stdin
            .lock()
            .take(MAX_PASSWORD_INPUT)
            .read_line(&mut line)
            .map_err(|e| {
                Error::InvalidInput(format!("cannot read the password from stdin: {e}"))
            })?;
        line
    };
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    let hash = sigbridge_serve::web::password::hash(password).map_err(|e| {
        Error::InvalidInput(format!(
            "{e}; give the password on stdin, e.g. from a password manager"
        ))
    })?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "password_argon2 = \"{}\"", hash.as_str())?;
    Ok(ExitCode::Success)
}

async fn serve(config: &ServeConfig, log_format: LogFormat) -> anyhow::Result<ExitCode> {
    let mut signers = Signers::new();
    for p in &config.policies {
        let signer = super::signer::open(&p.signer, log_format)?;
        // Approvers and submitters are other people: a signer with a timing side channel
        // must not sign for them.
        sigbridge_signer::require_safe_for_remote_callers(signer.as_ref())?;
        signers.insert(policy_key(&p.project, &p.slug), Arc::from(signer));
    }
    // Everything is checked and opened before the port is bound, so "listening on" means the
    // service is ready.
    let prepared = sigbridge_serve::prepare(config.clone(), signers).await?;
    let bound = sigbridge_serve::bind(config).await?;
    let addr = bound.local_addr()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {}://{addr}", bound.scheme())?;
        out.flush()?;
    }
    sigbridge_serve::run(bound, prepared, shutdown_signal()).await?;
    Ok(ExitCode::Success)
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn audit(config: &ServeConfig, command: AuditSub) -> anyhow::Result<ExitCode> {
    if !config.database.exists() {
        anyhow::bail!(Error::InvalidInput(format!(
            "the state database {} does not exist (check `database` in the configuration)",
            config.database.display()
        )));
    }
    let store = sigbridge_serve::open_store(&config.database)?;
    let entries = store.audit_entries()?;
    match command {
        AuditSub::Verify => match sigbridge_serve::audit::verify_entries(&entries) {
            Ok(()) => {
                let last = entries.last().map_or("none", |e| e.hash.as_str());
                println!(
                    "audit log intact: {} entries, last hash {last}",
                    entries.len()
                );
                Ok(ExitCode::Success)
            }
            Err(e) => {
                eprintln!("audit log broken at entry {}: {e}", e.seq());
                Ok(ExitCode::SignatureMismatch)
            }
        },
        AuditSub::Export { output } => {
            let mut text = String::new();
            for e in &entries {
                text.push_str(&serde_json::to_string(e)?);
                text.push('\n');
            }
            match output {
                Some(path) => std::fs::write(&path, text).map_err(|e| {
                    Error::InvalidInput(format!("cannot write {}: {e}", path.display()))
                })?,
                None => std::io::stdout().lock().write_all(text.as_bytes())?,
            }
            Ok(ExitCode::Success)
        }
    }
}
