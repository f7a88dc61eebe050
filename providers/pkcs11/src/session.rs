//! Sessions and login: where the PIN comes from, and logging in once per process.
//!
//! PKCS#11 login state belongs to the application, not the session: once one session of this
//! process has logged in to a token, every session to it is logged in. So sigbridge logs in at
//! most once per token and process, and a wrong PIN (`CKR_PIN_INCORRECT`) is reported at once
//! and never retried: a few wrong tries lock a token.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use cryptoki::context::Pkcs11;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::{Session, SessionState, UserType};
use secrecy::{ExposeSecret as _, SecretString};
use zeroize::Zeroizing;

use crate::error::Pkcs11Error;
use crate::module::TokenSlot;

/// The environment variable cosign reads the PIN from.
pub const PIN_ENV: &str = "COSIGN_PKCS11_PIN";

/// Largest PIN file read.
const MAX_PIN_FILE: u64 = 4096;

static LOGIN_CALLS: AtomicUsize = AtomicUsize::new(0);

/// How many times this process has called C_Login (for tests and benchmarks).
pub fn login_count() -> usize {
    LOGIN_CALLS.load(Ordering::SeqCst)
}

/// Asks a person for a PIN: the generic prompt every provider gets from its caller.
pub use sigbridge_signer::SecretPrompt as PinPrompt;

/// Where a PIN comes from, in order: `pin-value` in the URI, `pin-source` (a file), the
/// `COSIGN_PKCS11_PIN` environment variable, and last a prompt, only if the token requires
/// login.
#[derive(Clone, Default)]
pub struct PinSources {
    /// `pin-value` from the URI.
    pub value: Option<SecretString>,
    /// `pin-source` from the URI (or a command-line file).
    pub file: Option<PathBuf>,
    /// Read `COSIGN_PKCS11_PIN`.
    pub use_env: bool,
    /// Ask a person as a last resort.
    pub prompt: Option<Arc<dyn PinPrompt>>,
}

impl std::fmt::Debug for PinSources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinSources")
            .field("value", &self.value.as_ref().map(|_| "<redacted>"))
            .field("file", &self.file)
            .field("use_env", &self.use_env)
            .field("prompt", &self.prompt.is_some())
            .finish()
    }
}

impl PinSources {
    /// The PIN, or `None` if no source has one.
    pub fn resolve(&self, prompt_message: &str) -> Result<Option<SecretString>, Pkcs11Error> {
        if let Some(pin) = &self.value {
            return Ok(Some(pin.clone()));
        }
        if let Some(path) = &self.file {
            return read_pin_file(path).map(Some);
        }
        if self.use_env {
            if let Some(value) = std::env::var_os(PIN_ENV) {
                let value = value
                    .into_string()
                    .map_err(|_| Pkcs11Error::Pin(format!("{PIN_ENV} is not valid UTF-8")))?;
                return Ok(Some(SecretString::from(value)));
            }
        }
        match &self.prompt {
            Some(prompt) => prompt.prompt(prompt_message).map_err(Pkcs11Error::Pin),
            None => Ok(None),
        }
    }
}

/// The first line of `path` (without its line end) as a PIN.
pub fn read_pin_file(path: &Path) -> Result<SecretString, Pkcs11Error> {
    let io = |e: std::io::Error| Pkcs11Error::Pin(format!("pin-source {}: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(io)?;
    // Sized up front so reading never reallocates and leaves a copy behind.
    let mut buf = Zeroizing::new(Vec::with_capacity(MAX_PIN_FILE as usize + 1));
    file.take(MAX_PIN_FILE + 1)
        .read_to_end(&mut buf)
        .map_err(io)?;
    if buf.len() as u64 > MAX_PIN_FILE {
        return Err(Pkcs11Error::Pin(format!(
            "pin-source {} is larger than {MAX_PIN_FILE} bytes: it is not a PIN file",
            path.display()
        )));
    }
    let line = buf.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = std::str::from_utf8(line)
        .map_err(|_| Pkcs11Error::Pin(format!("pin-source {} is not UTF-8", path.display())))?;
    Ok(SecretString::from(text.to_string()))
}

/// Open a read-only session on `token`.
pub fn open_session(ctx: &Pkcs11, token: &TokenSlot) -> Result<Session, Pkcs11Error> {
    let session = ctx.open_ro_session(token.slot).map_err(|e| {
        Pkcs11Error::call(format!("opening a session on token {:?}", token.label), e)
    })?;
    tracing::debug!(token = %token.label, slot = token.slot.id(), "pkcs11: opened session");
    Ok(session)
}

/// Log the user in to `token` through `session` unless this process already is, or the token
/// does not require it. `key` names the key in the prompt.
pub fn login(
    session: &Session,
    token: &TokenSlot,
    pins: &PinSources,
    key: &str,
) -> Result<(), Pkcs11Error> {
    if !token.login_required {
        tracing::debug!(token = %token.label, "pkcs11: token does not require login");
        return Ok(());
    }
    let state = session
        .get_session_info()
        .map_err(|e| Pkcs11Error::call("reading the session state", e))?
        .session_state();
    if matches!(state, SessionState::RoUser | SessionState::RwUser) {
        tracing::debug!(token = %token.label, "pkcs11: already logged in");
        return Ok(());
    }
    if token.pin_locked {
        return Err(Pkcs11Error::PinLocked {
            token: token.label.clone(),
        });
    }
    let message = format!(
        "Enter PIN for key {key} in PKCS11 token '{}': ",
        token.label
    );
    let pin = pins.resolve(&message)?;
    let result = match &pin {
        Some(pin) => {
            if pin.expose_secret().is_empty() {
                tracing::warn!(token = %token.label, "the PIN given is empty");
            }
            LOGIN_CALLS.fetch_add(1, Ordering::SeqCst);
            session.login(UserType::User, Some(pin))
        }
        None if token.protected_auth_path => {
            eprintln!(
                "Enter the PIN for token '{}' on the device's PIN pad",
                token.label
            );
            LOGIN_CALLS.fetch_add(1, Ordering::SeqCst);
            session.login(UserType::User, None)
        }
        None => {
            return Err(Pkcs11Error::LoginRequired {
                token: token.label.clone(),
            })
        }
    };
    drop(pin);
    match result {
        Ok(()) => tracing::debug!(token = %token.label, "pkcs11: logged in"),
        Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {
            tracing::debug!(token = %token.label, "pkcs11: already logged in");
        }
        Err(CkError::Pkcs11(RvError::PinIncorrect, _)) => {
            let warning = if token.pin_final_try {
                "; the token said this was the final try: the PIN may now be locked".to_string()
            } else if token.pin_count_low {
                "; the token says few tries are left".to_string()
            } else {
                String::new()
            };
            return Err(Pkcs11Error::PinIncorrect {
                token: token.label.clone(),
                warning,
            });
        }
        Err(CkError::Pkcs11(RvError::PinLocked, _)) => {
            return Err(Pkcs11Error::PinLocked {
                token: token.label.clone(),
            })
        }
        Err(CkError::Pkcs11(rv @ (RvError::PinLenRange | RvError::PinInvalid), _)) => {
            return Err(Pkcs11Error::Pin(format!(
                "token {:?} refused the PIN's form ({rv:?}): check the PIN file or variable",
                token.label
            )))
        }
        Err(e) => {
            return Err(Pkcs11Error::call(
                format!("logging in to token {:?}", token.label),
                e,
            ))
        }
    }
    Ok(())
}
