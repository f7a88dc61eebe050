//! Command-line interface: one file per subcommand, all thin over the library.

mod attach;
mod common;
mod formats;
mod generate;
mod generate_key_pair;
mod go_json;
mod key_source;
mod pkcs11;
mod public_key;
mod serve;
mod sign;
mod signer;
mod signpath;
mod verify;

use clap::{Parser, Subcommand, ValueEnum};

pub use common::exit_code_for;

use sigbridge::ExitCode;

const EXIT_CODES: &str = "\
Exit codes:
   0  success
   1  other error
   2  command-line usage error
   3  malformed input (reference, annotation, payload, signature or certificate file)
   4  key or trust material problem (unreadable, malformed, unsupported, missing or
      wrong password/PIN; verify: no or unreadable trusted root for keyless or the log)
   5  a signature does not verify against the key, or a payload is for another image;
      nothing was attached
   6  registry error (network, TLS, authentication, unexpected answer)
   7  the signing request was denied
   8  the signer is unreachable or failed (including a signing request that failed)
   9  the signing request was canceled, or the wait for it timed out
  10  verify: no signatures found (as cosign)
  11  image not found (as cosign)
  12  verify: no matching signatures (as cosign)
  14  nothing was changed: an output file already exists (generate-key-pair,
      public-key --outfile), or the signing request is already final (a provider's cancel)";

/// Sign container images in cosign's format with keys that live elsewhere, and verify them.
#[derive(Debug, Parser)]
#[command(name = "sigbridge", version, about, after_help = EXIT_CODES, propagate_version = true)]
pub struct Cli {
    /// More logging on stderr (-v info, -vv debug, -vvv trace). SIGBRIDGE_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Log line format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "SIGBRIDGE_LOG_FORMAT")]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Machine-readable or human output on stdout.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum OutputFormat {
    /// JSON.
    Json,
    /// Plain text.
    Text,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the simple-signing payload for an image, byte-identical to `cosign generate`.
    Generate(generate::Args),
    /// Sign images: build payloads, sign them with SIGNER, check, and attach to the registry.
    ///
    /// SIGNER is a key file path, a URI a provider claims (see `--signer`), or the name of a
    /// profile in sigbridge.toml ($SIGBRIDGE_CONFIG, ./sigbridge.toml, or
    /// ~/.config/sigbridge/sigbridge.toml).
    Sign(sign::Args),
    /// Attach a payload and a signature made elsewhere (the manual / air-gapped flow).
    /// cosign's spelling `attach signature --payload P --signature S IMAGE` works too.
    Attach(attach::Args),
    /// Verify an image's signatures against a public key, as `cosign verify --key` does.
    Verify(verify::Args),
    /// Generate an encrypted key pair that cosign 1.x/2.x and containers/image load.
    GenerateKeyPair(generate_key_pair::Args),
    /// Print the PEM public key of a signer.
    PublicKey(public_key::Args),
    /// PKCS#11 helpers: list a module's tokens, and the URIs of a token's signing keys.
    #[command(name = "pkcs11")]
    Pkcs11(pkcs11::Args),
    /// SignPath signing requests: `status ID`, `cancel ID`.
    Signpath(signpath::Args),
    /// Run the self-hosted signing service with approvals (`--config serve.toml`), check or
    /// export its audit log (`audit verify|export`), or make an API token (`new-token`).
    Serve(serve::Args),
}

/// Run the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Generate(a) => generate::run(a).await,
        Command::Sign(a) => sign::run(a, cli.log_format).await,
        Command::Attach(a) => attach::run(a).await,
        Command::Verify(a) => verify::run(a).await,
        Command::GenerateKeyPair(a) => generate_key_pair::run(a).await,
        Command::PublicKey(a) => public_key::run(a).await,
        Command::Pkcs11(a) => pkcs11::run(a).await,
        Command::Signpath(a) => signpath::run(a).await,
        Command::Serve(a) => serve::run(a, cli.log_format).await,
    }
}
