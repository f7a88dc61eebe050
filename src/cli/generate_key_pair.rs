//! `sigbridge generate-key-pair`: an encrypted P-256 key pair every cosign-format verifier loads.

use std::io::{IsTerminal, Write as _};
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use sigbridge::{Error, ExitCode};

use super::common::NotUtf8;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// File name prefix: writes PREFIX.key (mode 0600) and PREFIX.pub.
    #[arg(long, default_value = "cosign", value_name = "PREFIX")]
    pub output_key_prefix: String,

    /// Replace existing key files.
    #[arg(long)]
    pub force: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let key_path = PathBuf::from(format!("{}.key", args.output_key_prefix));
    let pub_path = PathBuf::from(format!("{}.pub", args.output_key_prefix));
    if !args.force {
        for p in [&key_path, &pub_path] {
            if p.exists() {
                anyhow::bail!(exists(p, true));
            }
        }
    }
    let password = new_password()?;
    let pair = sigbridge_local::generate_key_pair(&password).map_err(|e| Error::Signer {
        signer: "generate-key-pair".into(),
        source: e.into(),
    })?;
    replace_file(&key_path, pair.private_pem.as_bytes(), 0o600, args.force)?;
    eprintln!("Private key written to {}", key_path.display());
    replace_file(&pub_path, pair.public_pem.as_bytes(), 0o644, args.force)?;
    eprintln!("Public key written to {}", pub_path.display());
    Ok(ExitCode::Success)
}

/// `COSIGN_PASSWORD` (set but empty means no password), else ask twice on a terminal.
fn new_password() -> anyhow::Result<SecretString> {
    if let Some(p) = super::common::cosign_password_env() {
        return p.map_err(|NotUtf8| {
            Error::InvalidInput("COSIGN_PASSWORD is not valid UTF-8".into()).into()
        });
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(Error::InvalidInput(
            "no password for the new key: set COSIGN_PASSWORD (empty for none) or run on a terminal".into()
        ));
    }
    let first = SecretString::from(rpassword::prompt_password(
        "Enter password for private key: ",
    )?);
    let second = SecretString::from(rpassword::prompt_password(
        "Enter password for private key again: ",
    )?);
    if first.expose_secret() != second.expose_secret() {
        anyhow::bail!(Error::InvalidInput("passwords do not match".into()));
    }
    Ok(first)
}

/// Write `bytes` to a fresh file next to `path`, then rename it into place, so a crash never
/// leaves a half-written key.
fn replace_file(path: &Path, bytes: &[u8], mode: u32, force: bool) -> anyhow::Result<()> {
    if !force && path.exists() {
        anyhow::bail!(exists(path, true));
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("key"),
        std::process::id()
    ));
    write_new_file(&tmp, bytes, mode)?;
    std::fs::rename(&tmp, path).map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        Error::Io {
            path: path.display().to_string(),
            source,
        }
    })?;
    Ok(())
}

/// `path` already exists (exit 14, not "malformed input"); `force_flag` adds the --force hint.
fn exists(path: &Path, force_flag: bool) -> Error {
    Error::FileExists {
        path: path.display().to_string(),
        hint: if force_flag {
            " (--output-key-prefix names another; --force replaces it)".into()
        } else {
            String::new()
        },
    }
}

/// Create `path` (failing if it exists) with `mode`, write and sync it.
pub fn write_new_file(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| match e.kind() {
            // Someone else's file: say so plainly instead of quoting EEXIST.
            std::io::ErrorKind::AlreadyExists => exists(path, false),
            _ => io(e),
        })?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    Ok(())
}
