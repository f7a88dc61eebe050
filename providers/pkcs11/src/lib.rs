//! The PKCS#11 signer: keys that never leave an HSM, named by RFC 7512 `pkcs11:` URIs.
//!
//! - [`uri`]: parse and print `pkcs11:` URIs (cosign's printed URIs parse unchanged).
//! - [`module`]: load and initialise a module once per process; find the token.
//! - [`session`]: where the PIN comes from; log in once per process, never retry a wrong PIN.
//! - [`keys`]: find the private key, its public key and its certificate.
//! - [`sign`]: SHA-256 on the host + `CKM_ECDSA`; `CKM_SHA256_RSA_PKCS` (or `CKM_RSA_PKCS`).
//!
//! cryptoki calls block, so the [`Signer`] runs them under `tokio::task::spawn_blocking`, one
//! at a time, over one session that lives as long as the signer: a batch of payloads is signed
//! with one login and one session. The module is loaded and the user logged in on first use
//! (callers open it before any other work by asking for the public key); if that fails, the
//! failure is remembered and returned by every later call, so a wrong PIN reaches the token once.

#![forbid(unsafe_code)]

mod error;
pub mod keys;
pub mod module;
mod provider;
pub mod session;
pub mod sign;
pub mod uri;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use cryptoki::session::Session;
use sigbridge_signer::pem;
use sigbridge_signer::{
    CertificateMaterial, PublicKey, SignOutcome, SignRequest, Signer, SignerError, SignerErrorKind,
};

pub use error::Pkcs11Error;
pub use keys::KeyName;
pub use module::{TokenSelector, TokenSlot, MODULE_PATH_ENV};
pub use provider::Pkcs11Provider;
pub use session::{login_count, read_pin_file, PinPrompt, PinSources, PIN_ENV};
pub use uri::{ObjectType, Pkcs11Uri, UriError};

use keys::KeyObject;
use sign::Scheme;

/// cosign's switch to leave the token's certificate out (`=1`).
pub const IGNORE_CERTIFICATE_ENV: &str = "COSIGN_PKCS11_IGNORE_CERTIFICATE";
/// Opt-in (`=1`) to use a URI's `pin-value`. Off by default: a PIN in a URI lands in argv
/// (readable by other users in process listings) and in shell history.
pub const ALLOW_PIN_VALUE_ENV: &str = "SIGBRIDGE_PKCS11_ALLOW_PIN_VALUE";
/// A PEM file with the certificate chain to attach as `dev.sigstore.cosign/chain`.
pub const CERT_CHAIN_ENV: &str = "SIGBRIDGE_PKCS11_CERT_CHAIN";

/// Largest certificate chain file read.
const MAX_CHAIN_FILE: u64 = 1024 * 1024;

/// Settings that do not come from the URI.
#[derive(Clone, Default)]
pub struct Pkcs11Options {
    /// Read the PIN from `COSIGN_PKCS11_PIN` when the URI gives none.
    pub use_pin_env: bool,
    /// Ask for the PIN (e.g. on a terminal) when nothing else gave one.
    pub pin_prompt: Option<Arc<dyn PinPrompt>>,
    /// Leave the token's certificate out.
    pub ignore_certificate: bool,
    /// A PEM chain file (the URI's `x-cert-chain` wins).
    pub cert_chain: Option<PathBuf>,
    /// Use the URI's `pin-value` instead of refusing the URI.
    pub allow_pin_value: bool,
}

impl std::fmt::Debug for Pkcs11Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Options")
            .field("use_pin_env", &self.use_pin_env)
            .field("pin_prompt", &self.pin_prompt.is_some())
            .field("ignore_certificate", &self.ignore_certificate)
            .field("cert_chain", &self.cert_chain)
            .field("allow_pin_value", &self.allow_pin_value)
            .finish()
    }
}

impl Pkcs11Options {
    /// cosign's environment: `COSIGN_PKCS11_PIN`, `COSIGN_PKCS11_IGNORE_CERTIFICATE=1`, plus
    /// `SIGBRIDGE_PKCS11_CERT_CHAIN` and `SIGBRIDGE_PKCS11_ALLOW_PIN_VALUE=1`.
    pub fn from_env() -> Self {
        Self {
            use_pin_env: true,
            pin_prompt: None,
            ignore_certificate: std::env::var(IGNORE_CERTIFICATE_ENV).is_ok_and(|v| v == "1"),
            cert_chain: std::env::var_os(CERT_CHAIN_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            allow_pin_value: std::env::var(ALLOW_PIN_VALUE_ENV).is_ok_and(|v| v == "1"),
        }
    }
}

/// A signer whose key lives on a PKCS#11 token.
pub struct Pkcs11Signer {
    inner: Arc<Inner>,
}

struct Inner {
    uri: Pkcs11Uri,
    module: PathBuf,
    key_name: KeyName,
    pins: PinSources,
    ignore_certificate: bool,
    cert_chain: Option<PathBuf>,
    state: Mutex<State>,
}

/// Where opening the token stands. A failure is kept for the life of the signer: opening again
/// would log in again, and a wrong PIN retried once per batch locks a token that allows only a
/// few tries.
enum State {
    /// Not tried yet.
    Closed,
    Opened(Box<Opened>),
    /// The first try failed; every later use reports the same failure without touching the token.
    Failed(SignerErrorKind, String),
}

/// Everything the first use establishes; the session is reused for every later call.
struct Opened {
    session: Session,
    key: KeyObject,
    public: PublicKey,
    scheme: Scheme,
    certificate: Option<CertificateMaterial>,
}

impl std::fmt::Debug for Pkcs11Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Signer")
            .field("uri", &self.inner.uri.to_string())
            .finish_non_exhaustive()
    }
}

impl Pkcs11Signer {
    /// A signer for the key `uri` names. Nothing is loaded yet; the module, token, login and
    /// key are resolved on first use (on a blocking thread).
    pub fn new(uri: Pkcs11Uri, options: Pkcs11Options) -> Result<Self, Pkcs11Error> {
        if uri.has_pin_value() && !options.allow_pin_value {
            return Err(Pkcs11Error::PinValueRefused);
        }
        if matches!(
            uri.object_type,
            Some(ObjectType::SecretKey | ObjectType::Data)
        ) {
            return Err(Pkcs11Error::UnsupportedKey(
                "type=secret-key and type=data objects cannot make signatures: name a private key (type=private)".into(),
            ));
        }
        let key_name = match (&uri.id, &uri.object) {
            (Some(id), _) => KeyName::Id(id.clone()),
            (None, Some(label)) => KeyName::Label(label.clone()),
            (None, None) => return Err(Pkcs11Error::NoKeyNamed),
        };
        if uri.id.is_some() && uri.object.is_some() {
            tracing::debug!(
                "pkcs11: the URI has both id and object; the key is found by id, as cosign does"
            );
        }
        let module = module::module_path_for(&uri)?;
        let pins = PinSources {
            value: uri.pin_value.clone(),
            file: uri.pin_source.clone(),
            use_env: options.use_pin_env,
            prompt: options.pin_prompt,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                ignore_certificate: uri.ignore_certificate || options.ignore_certificate,
                cert_chain: uri.cert_chain.clone().or(options.cert_chain),
                uri,
                module,
                key_name,
                pins,
                state: Mutex::new(State::Closed),
            }),
        })
    }

    /// Parse `uri` and build the signer.
    pub fn from_uri(uri: &str, options: Pkcs11Options) -> Result<Self, Pkcs11Error> {
        Self::new(Pkcs11Uri::parse(uri)?, options)
    }

    /// The module this signer uses.
    pub fn module_path(&self) -> &Path {
        &self.inner.module
    }

    /// Run `f` on the opened state on a blocking thread, opening it first if needed.
    async fn with_opened<R, F>(&self, f: F) -> Result<R, SignerError>
    where
        R: Send + 'static,
        F: FnOnce(&Opened) -> Result<R, Pkcs11Error> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let mut state = inner.state.lock().map_err(|_| {
                SignerError::from(Pkcs11Error::Internal("signer state poisoned".into()))
            })?;
            if matches!(*state, State::Closed) {
                *state = match inner.open() {
                    Ok(opened) => State::Opened(Box::new(opened)),
                    Err(e) => State::Failed(e.kind(), e.to_string()),
                };
            }
            match &*state {
                State::Opened(opened) => f(opened).map_err(SignerError::from),
                State::Failed(kind, message) => Err(SignerError::new(*kind, message.clone())),
                State::Closed => Err(Pkcs11Error::Internal("signer state missing".into()).into()),
            }
        })
        .await
        .map_err(|e| SignerError::from(Pkcs11Error::Internal(format!("PKCS#11 worker: {e}"))))?
    }
}

impl Inner {
    fn open(&self) -> Result<Opened, Pkcs11Error> {
        let ctx = module::load(&self.module)?;
        let token = module::find_token(&ctx, &self.module, &TokenSelector::from_uri(&self.uri))?;
        let session = session::open_session(&ctx, &token)?;
        session::login(
            &session,
            &token,
            &self.pins,
            &format!("'{}'", self.key_name_for_prompt()),
        )?;
        let key = keys::find_private_key(&session, &self.key_name, &token.label)?;
        if !key.can_sign {
            return Err(Pkcs11Error::UnsupportedKey(format!(
                "key {} may not sign (CKA_SIGN is false)",
                key.summary()
            )));
        }
        let public = keys::public_key(&session, &key)?;
        // C_GetMechanismInfo per mechanism, not C_GetMechanismList: the list holds vendor
        // mechanisms cryptoki cannot name, and it logs an error for each.
        let has = |m| ctx.get_mechanism_info(token.slot, m).is_ok();
        let scheme = Scheme::choose(public.kind(), has, &token.label)?;
        tracing::debug!(key = %key.summary(), kind = %public.kind(), ?scheme, "pkcs11: key found");
        let certificate = if self.ignore_certificate {
            None
        } else {
            self.certificate(&session, &key, &public)?
        };
        Ok(Opened {
            session,
            key,
            public,
            scheme,
            certificate,
        })
    }

    fn key_name_for_prompt(&self) -> String {
        match &self.key_name {
            KeyName::Label(l) => l.clone(),
            KeyName::Id(id) => self
                .uri
                .object
                .clone()
                .unwrap_or_else(|| format!("id {}", hex::encode(id))),
        }
    }

    fn certificate(
        &self,
        session: &Session,
        key: &KeyObject,
        public: &PublicKey,
    ) -> Result<Option<CertificateMaterial>, Pkcs11Error> {
        let Some(der) = keys::certificate_der(session, key)? else {
            if let Some(chain) = &self.cert_chain {
                return Err(Pkcs11Error::Certificate(format!(
                    "a certificate chain ({}) was given, but the token has no certificate for key {}",
                    chain.display(),
                    key.summary()
                )));
            }
            return Ok(None);
        };
        let cert_key = PublicKey::from_certificate_der(&der).map_err(|e| {
            Pkcs11Error::Certificate(format!(
                "the token's certificate for key {}: {e}",
                key.summary()
            ))
        })?;
        if cert_key != *public {
            return Err(Pkcs11Error::Certificate(format!(
                "the token's certificate with the same id/label as key {} is for another key; fix the token, or set {IGNORE_CERTIFICATE_ENV}=1",
                key.summary()
            )));
        }
        let chain_pem = match &self.cert_chain {
            Some(path) => Some(read_chain(path)?),
            None => None,
        };
        tracing::debug!(key = %key.summary(), chain = chain_pem.is_some(), "pkcs11: certificate found");
        Ok(Some(CertificateMaterial {
            certificate_pem: pem::encode("CERTIFICATE", &der),
            chain_pem,
        }))
    }
}

/// Read a PEM chain file: one or more CERTIFICATE blocks, returned as they are.
fn read_chain(path: &Path) -> Result<String, Pkcs11Error> {
    use std::io::Read as _;
    let err = |m: String| Pkcs11Error::Certificate(format!("chain {}: {m}", path.display()));
    let file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    let mut text = String::new();
    file.take(MAX_CHAIN_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| err(e.to_string()))?;
    if text.len() as u64 > MAX_CHAIN_FILE {
        return Err(err(format!("larger than {MAX_CHAIN_FILE} bytes")));
    }
    let blocks = pem::decode_all(text.as_bytes()).map_err(|e| err(e.to_string()))?;
    for block in &blocks {
        if block.label() != "CERTIFICATE" {
            return Err(err(format!(
                "holds a {:?} block; only CERTIFICATE blocks belong in a chain",
                block.label()
            )));
        }
        PublicKey::from_certificate_der(block.contents())
            .map(|_| ())
            .or_else(|e| match e {
                // A CA may have a key type sigbridge does not sign with; it is still a certificate.
                sigbridge_signer::SignatureError::UnsupportedKey { .. }
                | sigbridge_signer::SignatureError::RsaKeyTooSmall { .. } => Ok(()),
                other => Err(err(other.to_string())),
            })?;
    }
    Ok(blocks
        .iter()
        .map(|b| pem::encode("CERTIFICATE", b.contents()))
        .collect())
}

#[async_trait]
impl Signer for Pkcs11Signer {
    fn describe(&self) -> String {
        format!("PKCS#11 key {}", self.inner.uri)
    }

    async fn public_key(&self) -> Result<PublicKey, SignerError> {
        self.with_opened(|o| Ok(o.public.clone())).await
    }

    async fn certificate(&self) -> Result<Option<CertificateMaterial>, SignerError> {
        self.with_opened(|o| Ok(o.certificate.clone())).await
    }

    async fn sign(
        &self,
        payloads: &[Vec<u8>],
        _request: &SignRequest,
    ) -> Result<SignOutcome, SignerError> {
        let payloads = payloads.to_vec();
        self.with_opened(move |o| {
            let signatures = payloads
                .iter()
                .map(|p| o.scheme.sign(&o.session, o.key.handle, p))
                .collect::<Result<Vec<_>, _>>()?;
            tracing::debug!(count = signatures.len(), key = %o.key.summary(), "pkcs11: signed in one session");
            Ok(SignOutcome::Signed(signatures))
        })
        .await
    }
}

/// One signing key on a token, as `sigbridge pkcs11 keys` lists it.
#[derive(Clone, Debug)]
pub struct KeyListing {
    /// CKA_LABEL.
    pub label: String,
    /// CKA_ID.
    pub id: Vec<u8>,
    /// `ECDSA P-256`, `RSA-2048`, or why it cannot be used.
    pub kind: String,
    /// Whether sigbridge can sign with it.
    pub usable: bool,
    /// Whether a certificate is stored with it.
    pub has_certificate: bool,
    /// The URI naming it (never with a PIN).
    pub uri: Pkcs11Uri,
}

/// Every initialised token of the module at `module` (blocking).
pub fn list_tokens(module: &Path) -> Result<Vec<TokenSlot>, Pkcs11Error> {
    let ctx = module::load(module)?;
    module::tokens(&ctx)
}

/// The signing keys on the token `selector` names, logging in if the token requires it
/// (blocking).
pub fn list_keys(
    module_path: &Path,
    selector: &TokenSelector,
    pins: &PinSources,
) -> Result<(TokenSlot, Vec<KeyListing>), Pkcs11Error> {
    let ctx = module::load(module_path)?;
    let token = module::find_token(&ctx, module_path, selector)?;
    let session = session::open_session(&ctx, &token)?;
    session::login(&session, &token, pins, "listing")?;
    let mut out = Vec::new();
    for key in keys::private_keys(&session)? {
        if !key.can_sign {
            continue;
        }
        let (kind, usable) = match keys::public_key(&session, &key) {
            Ok(public) => (public.kind().to_string(), true),
            Err(e) => (format!("not usable: {e}"), false),
        };
        let has_certificate = keys::certificate_der(&session, &key)?.is_some();
        let uri = Pkcs11Uri {
            token: Some(token.label.clone()),
            slot_id: Some(token.slot.id()),
            id: (!key.id.is_empty()).then(|| key.id.clone()),
            object: (!key.label.is_empty()).then(|| key.label.clone()),
            module_path: Some(module_path.to_path_buf()),
            ..Pkcs11Uri::default()
        };
        out.push(KeyListing {
            label: key.label,
            id: key.id,
            kind,
            usable,
            has_certificate,
            uri,
        });
    }
    Ok((token, out))
}
