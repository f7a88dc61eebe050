//! Providers: the factories behind SIGNER arguments. Each claims URI schemes and opens a
//! [`Signer`] from a URI plus what the caller supplies generically (environment, prompts, log
//! format); nothing provider-specific crosses this boundary.

use std::path::Path;
use std::sync::Arc;

use secrecy::SecretString;

use crate::deferred::Ticket;
use crate::{Signer, SignerError};

/// Asks a person for a secret (a terminal prompt). Implementations decide whether they can ask.
pub trait SecretPrompt: Send + Sync {
    /// Ask with `message`; `Ok(None)` when nobody can be asked (no terminal).
    fn prompt(&self, message: &str) -> Result<Option<SecretString>, String>;
}

/// Where a key password comes from when a key turns out to be encrypted.
pub trait PasswordSource: Send + Sync {
    /// The password for `key`, or `None` if there is no way to get one.
    fn password_for(&self, key: &Path) -> Result<Option<SecretString>, SignerError>;
}

/// How the caller's log lines are written, so a provider's own progress lines match.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// What the caller hands every provider when opening a signer.
pub struct OpenContext<'a> {
    /// Environment lookup (tests and servers pass their own).
    pub env: &'a (dyn Fn(&str) -> Option<String> + Send + Sync),
    /// Passwords for encrypted key files.
    pub passwords: &'a dyn PasswordSource,
    /// A person to ask for a PIN, if one can be asked.
    pub prompt: Option<Arc<dyn SecretPrompt>>,
    /// How log lines are written.
    pub log_format: LogFormat,
    /// The SIGNER argument as the user gave it, quoted for a shell, for commands suggested in
    /// messages (`--signer 'signpath://…'`).
    pub signer_arg: Option<String>,
    /// The ticket the run will collect (`sign --resume`), so a signer whose key is tied to
    /// the pending job (a request's certificate) reads that key.
    pub resuming: Option<Ticket>,
}

/// Why a provider could not open a signer.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The URI itself is malformed; the message says what to fix.
    #[error("{0}")]
    Spec(String),
    /// The signer failed to open (key, credentials, service).
    #[error("{signer}")]
    Signer {
        /// Which signer, for the user.
        signer: String,
        /// What went wrong.
        #[source]
        source: SignerError,
    },
}

/// A signing provider: its name, the URI schemes it claims, and how to open one of its signers.
pub trait Provider: Send + Sync {
    /// Short stable name (`pkcs11`); also [`Ticket::provider`] for its tickets.
    fn name(&self) -> &'static str;

    /// URI prefixes it claims, with their separator (`pkcs11:`, `signpath://`). Empty for the
    /// fallback provider (key file paths).
    fn schemes(&self) -> &'static [&'static str];

    /// How its SIGNER form reads in help and errors (`a `pkcs11:` URI`).
    fn help(&self) -> &'static str;

    /// Whether its signers may answer pending (so `--no-wait` and `--resume` apply).
    fn can_defer(&self) -> bool {
        false
    }

    /// Open the signer `uri` names.
    fn open(&self, uri: &str, ctx: &OpenContext<'_>) -> Result<Box<dyn Signer>, OpenError>;
}
