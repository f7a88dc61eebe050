//! [`SignPathProvider`]: `signpath://` URIs (and `signpath+http(s)://` for other base URLs).

use sigbridge_signer::{
    LogFormat, OpenContext, OpenError, Provider, Signer, SignerError, SignerErrorKind,
};

use crate::config::{ConfigError, SignPathConfig};
use crate::progress::Reporter;
use crate::signer::{ticket_id, SignPathOptions, SignPathSigner, PROVIDER_NAME};

/// Opens signers over SignPath-style services; their signing requests may wait for a person,
/// so they can answer pending.
#[derive(Clone, Copy, Debug, Default)]
pub struct SignPathProvider;

impl Provider for SignPathProvider {
    fn name(&self) -> &'static str {
        PROVIDER_NAME
    }

    fn schemes(&self) -> &'static [&'static str] {
        &["signpath://", "signpath+http://", "signpath+https://"]
    }

    fn help(&self) -> &'static str {
        "a SignPath-style signing service (the token comes from SIGNPATH_API_TOKEN or a token file, never the URI)"
    }

    fn can_defer(&self) -> bool {
        true
    }

    fn open(&self, uri: &str, ctx: &OpenContext<'_>) -> Result<Box<dyn Signer>, OpenError> {
        Ok(Box::new(open_signpath(uri, ctx)?))
    }
}

/// A SignPath signer for `uri`: the token comes from the environment or a file (never from
/// the URI), wait and poll settings from `SIGBRIDGE_SIGNPATH_*`.
pub fn open_signpath(uri: &str, ctx: &OpenContext<'_>) -> Result<SignPathSigner, OpenError> {
    let wrap = |source: SignerError| OpenError::Signer {
        signer: PROVIDER_NAME.into(),
        source,
    };
    let config = SignPathConfig::from_uri(uri, ctx.env).map_err(|e| {
        let kind = match e {
            ConfigError::Uri(_) => return OpenError::Spec(e.to_string()),
            ConfigError::NoToken | ConfigError::TokenFile { .. } => SignerErrorKind::Credentials,
            // Trust material, like an unusable public-key=: exit 4 with the file named.
            ConfigError::CaFile { .. } => SignerErrorKind::InvalidKey,
        };
        wrap(SignerError::wrap(kind, e))
    })?;
    let mut options = SignPathOptions::default()
        .with_env(ctx.env)
        .map_err(OpenError::Spec)?;
    options.signer_arg = ctx.signer_arg.clone();
    if ctx.log_format == LogFormat::Json {
        options.reporter = Reporter::Json;
    }
    if let Some(ticket) = &ctx.resuming {
        options.resume = Some(ticket_id(ticket).map_err(|e| OpenError::Spec(e.to_string()))?);
    }
    SignPathSigner::new(config, options).map_err(wrap)
}
