//! `sigbridge pkcs11 tokens|keys`: what a PKCS#11 module offers, and the URIs to sign with.
//!
//! Listed URIs never carry a PIN. Listing keys may need a login: the PIN comes from
//! `--pin-source FILE`, `COSIGN_PKCS11_PIN`, or a terminal prompt, never from argv.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;
use sigbridge::providers::TerminalPinPrompt;
use sigbridge::{Error, ExitCode};
use sigbridge_pkcs11::{list_keys, list_tokens, PinSources, Pkcs11Error, TokenSelector};

use super::OutputFormat;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Pkcs11Command,
}

#[derive(Debug, Subcommand)]
enum Pkcs11Command {
    /// List the initialised tokens of a PKCS#11 module.
    Tokens(TokensArgs),
    /// List the signing keys on a token, with the pkcs11: URI of each (never with a PIN).
    Keys(KeysArgs),
}

#[derive(Debug, clap::Args)]
struct TokensArgs {
    /// Absolute path of the PKCS#11 module (.so).
    #[arg(long, value_name = "MODULE", env = "COSIGN_PKCS11_MODULE_PATH")]
    module_path: PathBuf,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
}

#[derive(Debug, clap::Args)]
struct KeysArgs {
    /// Absolute path of the PKCS#11 module (.so).
    #[arg(long, value_name = "MODULE", env = "COSIGN_PKCS11_MODULE_PATH")]
    module_path: PathBuf,

    /// The token's label (needed when the module has several tokens).
    #[arg(long, value_name = "LABEL")]
    token: Option<String>,

    /// The token's slot number (wins over --token, as in cosign).
    #[arg(long, value_name = "N")]
    slot_id: Option<u64>,

    /// A file whose first line is the user PIN (else COSIGN_PKCS11_PIN, else a prompt on a
    /// terminal when the token requires login).
    #[arg(long, value_name = "FILE")]
    pin_source: Option<PathBuf>,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
}

fn signer_error(e: Pkcs11Error) -> anyhow::Error {
    Error::Signer {
        signer: "pkcs11".into(),
        source: e.into(),
    }
    .into()
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Pkcs11Error> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| anyhow::anyhow!("PKCS#11 worker: {e}"))?
        .map_err(signer_error)
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Pkcs11Command::Tokens(a) => tokens(a).await,
        Pkcs11Command::Keys(a) => keys(a).await,
    }
}

async fn tokens(args: TokensArgs) -> anyhow::Result<ExitCode> {
    let module = args.module_path.clone();
    let tokens = blocking(move || list_tokens(&module)).await?;
    match args.output {
        OutputFormat::Json => {
            let list: Vec<_> = tokens
                .iter()
                .map(|t| {
                    json!({
                        "slotId": t.slot.id(),
                        "label": t.label,
                        "manufacturer": t.manufacturer,
                        "model": t.model,
                        "serial": t.serial,
                        "loginRequired": t.login_required,
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&list)?);
        }
        OutputFormat::Text => {
            println!(
                "Listing tokens of PKCS11 module '{}'",
                args.module_path.display()
            );
            for t in &tokens {
                println!("Token in slot {}", t.slot.id());
                println!("\tLabel: {}", t.label);
                println!("\tManufacturer: {}", t.manufacturer);
                println!("\tModel: {}", t.model);
                println!("\tS/N: {}", t.serial);
                println!(
                    "\tLogin required: {}",
                    if t.login_required { "yes" } else { "no" }
                );
            }
        }
    }
    Ok(ExitCode::Success)
}

async fn keys(args: KeysArgs) -> anyhow::Result<ExitCode> {
    let module = args.module_path.clone();
    let selector = TokenSelector {
        slot_id: args.slot_id,
        label: args.token.clone(),
        ..TokenSelector::default()
    };
    let pins = PinSources {
        value: None,
        file: args.pin_source.clone(),
        use_env: true,
        prompt: Some(std::sync::Arc::new(TerminalPinPrompt)),
    };
    let (token, keys) = blocking(move || list_keys(&module, &selector, &pins)).await?;
    match args.output {
        OutputFormat::Json => {
            let list: Vec<_> = keys
                .iter()
                .map(|k| {
                    json!({
                        "label": k.label,
                        "id": hex::encode(&k.id),
                        "type": k.kind,
                        "usable": k.usable,
                        "certificate": k.has_certificate,
                        "uri": k.uri.to_string(),
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&list)?);
        }
        OutputFormat::Text => {
            println!(
                "Listing URIs of keys in slot '{}' (token '{}') of PKCS11 module '{}'",
                token.slot.id(),
                token.label,
                args.module_path.display()
            );
            for (i, k) in keys.iter().enumerate() {
                println!("Object {i}");
                println!("\tLabel: {}", k.label);
                println!("\tID: {}", hex::encode(&k.id));
                println!("\tType: {}", k.kind);
                println!(
                    "\tCertificate: {}",
                    if k.has_certificate { "yes" } else { "no" }
                );
                println!("\tURI: {}", k.uri);
            }
        }
    }
    Ok(ExitCode::Success)
}
