//! Turning a SIGNER argument into a [`Signer`]: a URI (`pkcs11:…`, `signpath://…`) or a key
//! file path. Secrets (passwords) come from a caller-supplied source, never from the argument.

use std::path::{Path, PathBuf};

use secrecy::SecretString;
use sigbridge_local::KeyFile;
use sigbridge_signer::{Signer, SignerError, SignerErrorKind};
use sigbridge_signpath::{ConfigError, SignPathConfig, SignPathOptions, SignPathSigner};

use crate::error::{Error, Result};

/// What a SIGNER argument names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignerSpec {
    /// A local key file (cosign encrypted key, PKCS#8, SEC1 or PKCS#1 PEM).
    KeyFile(PathBuf),
    /// A PKCS#11 URI (RFC 7512).
    Pkcs11(String),
    /// A SignPath-style remote signing service.
    SignPath(String),
}

impl SignerSpec {
    /// Classify a SIGNER argument by its scheme; a bare name that is not a file may name a
    /// profile in `sigbridge.toml`; anything else without a known scheme is a key file path.
    pub fn parse(spec: &str) -> Result<Self> {
        let resolved = crate::config::resolve_signer(spec)?;
        let spec = resolved.as_str();
        if spec.is_empty() {
            return Err(Error::InvalidInput(
                "the signer is empty: give a key file, a pkcs11: URI or a signpath:// URI".into(),
            ));
        }
        if spec.starts_with("pkcs11:") {
            return Ok(Self::Pkcs11(spec.to_string()));
        }
        if spec.starts_with("signpath://")
            || spec.starts_with("signpath+http://")
            || spec.starts_with("signpath+https://")
        {
            return Ok(Self::SignPath(spec.to_string()));
        }
        let path = spec.strip_prefix("file://").unwrap_or(spec);
        Ok(Self::KeyFile(PathBuf::from(path)))
    }
}

/// A SignPath signer for `uri`: the token comes from the environment or a file (never from
/// the URI), poll and wait settings from `SIGBRIDGE_SIGNPATH_*` on top of `options`.
pub fn open_signpath(uri: &str, options: &SignPathOptions) -> Result<SignPathSigner> {
    let wrap = |source: SignerError| Error::Signer {
        signer: "signpath".into(),
        source,
    };
    let env = |k: &str| std::env::var(k).ok();
    let config = SignPathConfig::from_uri(uri, &env).map_err(|e| {
        let kind = match e {
            ConfigError::Uri(_) => return Error::InvalidInput(e.to_string()),
            ConfigError::NoToken | ConfigError::TokenFile { .. } => SignerErrorKind::Credentials,
        };
        wrap(SignerError::new(kind, e.to_string()))
    })?;
    let options = options
        .clone()
        .with_env(&env)
        .map_err(Error::InvalidInput)?;
    SignPathSigner::new(config, options).map_err(wrap)
}

/// A PKCS#11 signer for `uri`. The PIN comes from, in order: `pin-value` in the URI (refused
/// unless `SIGBRIDGE_PKCS11_ALLOW_PIN_VALUE=1`, and then warned about: URIs end up in shell
/// history and process listings), `pin-source=FILE`,
/// `COSIGN_PKCS11_PIN`, and a terminal prompt only when the token requires login. The module,
/// token and key are opened on first use.
pub fn open_pkcs11(uri: &str) -> Result<sigbridge_pkcs11::Pkcs11Signer> {
    let parsed =
        sigbridge_pkcs11::Pkcs11Uri::parse(uri).map_err(|e| Error::InvalidInput(e.to_string()))?;
    let mut options = sigbridge_pkcs11::Pkcs11Options::from_env();
    if parsed.has_pin_value() && options.allow_pin_value {
        tracing::warn!(
            "the pkcs11: URI carries pin-value: other users can read it in process listings and it lands in shell history; put the PIN in a file (pin-source=FILE) or in COSIGN_PKCS11_PIN, and unset SIGBRIDGE_PKCS11_ALLOW_PIN_VALUE"
        );
    }
    options.pin_prompt = Some(std::sync::Arc::new(TerminalPinPrompt));
    sigbridge_pkcs11::Pkcs11Signer::new(parsed, options).map_err(|e| Error::Signer {
        signer: "pkcs11".into(),
        source: e.into(),
    })
}

/// Asks for a PKCS#11 PIN on the terminal; never when stdin or stderr is not a terminal.
pub struct TerminalPinPrompt;

impl sigbridge_pkcs11::PinPrompt for TerminalPinPrompt {
    fn prompt(&self, message: &str) -> std::result::Result<Option<SecretString>, String> {
        use std::io::IsTerminal as _;
        if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
            return Ok(None);
        }
        rpassword::prompt_password(message)
            .map(|p| Some(SecretString::from(p)))
            .map_err(|e| e.to_string())
    }
}

/// Where a key password comes from when a key turns out to be encrypted.
pub trait PasswordSource {
    /// The password for `key`, or `None` if there is no way to get one.
    fn password_for(&self, key: &Path) -> std::result::Result<Option<SecretString>, SignerError>;
}

/// Build the signer named by `spec`.
pub fn open_signer(spec: &SignerSpec, passwords: &dyn PasswordSource) -> Result<Box<dyn Signer>> {
    open_signer_with(spec, passwords, &SignPathOptions::default())
}

/// [`open_signer`], with how a SignPath signer submits and waits (`--no-wait`, `--resume`,
/// `--wait-timeout`); other signers ignore `signpath`.
pub fn open_signer_with(
    spec: &SignerSpec,
    passwords: &dyn PasswordSource,
    signpath: &SignPathOptions,
) -> Result<Box<dyn Signer>> {
    match spec {
        SignerSpec::KeyFile(path) => {
            let describe = format!("local key {}", path.display());
            let wrap = |source: SignerError| Error::Signer {
                signer: describe.clone(),
                source,
            };
            let file = KeyFile::read(path).map_err(|e| wrap(e.into()))?;
            let password = if file.is_encrypted() {
                let password = passwords.password_for(path).map_err(wrap)?;
                if password.is_none() {
                    return Err(wrap(SignerError::new(
                        SignerErrorKind::Credentials,
                        format!(
                            "{} is encrypted and no password was given: set COSIGN_PASSWORD (set but empty means an empty password), or run on a terminal to be prompted",
                            path.display()
                        ),
                    )));
                }
                password
            } else {
                None
            };
            let signer = file
                .decrypt(password.as_ref())
                .map_err(|e| wrap(e.into()))?;
            Ok(Box::new(signer))
        }
        SignerSpec::Pkcs11(uri) => Ok(Box::new(open_pkcs11(uri)?)),
        SignerSpec::SignPath(uri) => Ok(Box::new(open_signpath(uri, signpath)?)),
    }
}
