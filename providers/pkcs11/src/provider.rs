//! [`Pkcs11Provider`]: `pkcs11:` URIs (RFC 7512).

use sigbridge_signer::{OpenContext, OpenError, Provider, Signer};

use crate::{Pkcs11Options, Pkcs11Signer, Pkcs11Uri};

/// Opens keys on PKCS#11 tokens. The PIN comes from, in order: `pin-value` in the URI (refused
/// unless `SIGBRIDGE_PKCS11_ALLOW_PIN_VALUE=1`, and then warned about: URIs end up in shell
/// history and process listings), `pin-source=FILE`, `COSIGN_PKCS11_PIN`, and the caller's
/// prompt only when the token requires login. The module, token and key are opened on first
/// use.
#[derive(Clone, Copy, Debug, Default)]
pub struct Pkcs11Provider;

impl Provider for Pkcs11Provider {
    fn name(&self) -> &'static str {
        "pkcs11"
    }

    fn schemes(&self) -> &'static [&'static str] {
        &["pkcs11:"]
    }

    fn help(&self) -> &'static str {
        "a key on an HSM or token (RFC 7512 URI; the PIN comes from pin-source=FILE, COSIGN_PKCS11_PIN or a prompt)"
    }

    fn open(&self, uri: &str, ctx: &OpenContext<'_>) -> Result<Box<dyn Signer>, OpenError> {
        let parsed = Pkcs11Uri::parse(uri).map_err(|e| OpenError::Spec(e.to_string()))?;
        let mut options = Pkcs11Options::from_env();
        if parsed.has_pin_value() && options.allow_pin_value {
            tracing::warn!(
                "the pkcs11: URI carries pin-value: other users can read it in process listings and it lands in shell history; put the PIN in a file (pin-source=FILE) or in COSIGN_PKCS11_PIN, and unset SIGBRIDGE_PKCS11_ALLOW_PIN_VALUE"
            );
        }
        options.pin_prompt = ctx.prompt.clone();
        let signer = Pkcs11Signer::new(parsed, options).map_err(|e| OpenError::Signer {
            signer: "pkcs11".into(),
            source: e.into(),
        })?;
        Ok(Box::new(signer))
    }
}
