//! Opening the signer a SIGNER argument names, the same way for every subcommand: the profile is
//! resolved once, here, then the provider table parses the URI and the provider opens it with
//! what the CLI supplies (environment, prompts, log format).

use sigbridge::providers::{SignerSpec, TerminalPinPrompt};
use sigbridge_signer::{LogFormat as SignerLogFormat, OpenContext, Signer, Ticket};

use super::common::CosignPasswords;
use super::LogFormat;

fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The SIGNER argument with a profile name replaced by the profile's signer (reads
/// `sigbridge.toml` when the argument could be a profile name).
pub(super) fn resolve(arg: &str) -> anyhow::Result<String> {
    Ok(sigbridge::config::resolve_signer(arg)?)
}

/// What every provider gets when the CLI opens a signer. `arg` is the SIGNER as the user gave
/// it, for commands suggested in messages.
pub(super) fn context(
    arg: &str,
    log_format: LogFormat,
    resuming: Option<Ticket>,
) -> OpenContext<'static> {
    OpenContext {
        env: &process_env,
        passwords: &CosignPasswords,
        prompt: Some(std::sync::Arc::new(TerminalPinPrompt)),
        log_format: match log_format {
            LogFormat::Text => SignerLogFormat::Text,
            LogFormat::Json => SignerLogFormat::Json,
        },
        signer_arg: Some(
            shlex::try_quote(arg)
                .map(|q| q.into_owned())
                .unwrap_or_else(|_| arg.to_string()),
        ),
        resuming,
    }
}

/// Resolve, parse and open `arg` with the default context.
pub(super) fn open(arg: &str, log_format: LogFormat) -> anyhow::Result<Box<dyn Signer>> {
    let uri = resolve(arg)?;
    let spec = SignerSpec::parse(&uri)?;
    Ok(spec.open(&context(arg, log_format, None))?)
}

/// The help line for a `--signer` flag, from the provider table.
pub(super) fn signer_help() -> String {
    format!(
        "The signer: {}.",
        sigbridge::providers::signer_forms_with(" or ", "`")
    )
}
