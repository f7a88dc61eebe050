//! `sigbridge public-key --signer SIGNER`: the PEM public key verifiers need.

use std::path::PathBuf;

use sigbridge::{Error, ExitCode};

use super::generate_key_pair::write_new_file;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(
        long,
        help = super::signer::signer_help(),
        visible_alias = "key",
        value_name = "SIGNER",
        env = "SIGBRIDGE_SIGNER"
    )]
    pub signer: String,

    /// Write the key to this file (created new, never overwritten) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub outfile: Option<PathBuf>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let signer = super::signer::open(&args.signer, super::LogFormat::Text)?;
    let key = signer.public_key().await.map_err(|source| Error::Signer {
        signer: signer.describe(),
        source,
    })?;
    let pem = key.to_pem();
    match &args.outfile {
        Some(path) => {
            write_new_file(path, pem.as_bytes(), 0o644)?;
            eprintln!("Public key written to {}", path.display());
        }
        None => print!("{pem}"),
    }
    Ok(ExitCode::Success)
}
