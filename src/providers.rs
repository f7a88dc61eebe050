//! The provider table, and turning a SIGNER argument into a [`Signer`]. Adding a provider is
//! one line in [`PROVIDERS`]; parsing, opening and the help text for SIGNER all come from it.
//! Profile names (`sigbridge.toml`) are resolved before this, at the CLI's edge
//! ([`crate::config::resolve_signer`]): parsing here is pure.

use secrecy::SecretString;
use sigbridge_signer::{OpenContext, OpenError, Provider, SecretPrompt, Signer};

use crate::error::{Error, Result};

/// Every provider, by URI scheme; the last one has no scheme and takes everything else (key
/// file paths).
pub static PROVIDERS: &[&dyn Provider] = &[
    &sigbridge_pkcs11::Pkcs11Provider,
    &sigbridge_signpath::SignPathProvider,
    &sigbridge_local::LocalProvider,
];

/// A SIGNER argument (after profile resolution): which provider, and the URI it opens.
#[derive(Clone, Copy)]
pub struct SignerSpec<'a> {
    provider: &'static dyn Provider,
    uri: &'a str,
}

impl std::fmt::Debug for SignerSpec<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignerSpec")
            .field("provider", &self.provider.name())
            .field("uri", &self.uri)
            .finish()
    }
}

impl<'a> SignerSpec<'a> {
    /// Classify `uri` by its scheme; anything without a known scheme is a key file path.
    pub fn parse(uri: &'a str) -> Result<Self> {
        if uri.is_empty() {
            return Err(Error::InvalidInput(format!(
                "the signer is empty: give {}",
                signer_forms(" or ")
            )));
        }
        let provider = PROVIDERS
            .iter()
            .copied()
            .find(|p| p.schemes().iter().any(|s| uri.starts_with(s)))
            .or_else(|| PROVIDERS.iter().copied().find(|p| p.schemes().is_empty()))
            .ok_or_else(|| {
                Error::InvalidInput(format!(
                    "no provider takes {uri:?}: give {}",
                    signer_forms(" or ")
                ))
            })?;
        Ok(Self { provider, uri })
    }

    /// The provider that opens it.
    pub fn provider(&self) -> &'static dyn Provider {
        self.provider
    }

    /// The URI (or path) as given.
    pub fn uri(&self) -> &'a str {
        self.uri
    }

    /// Whether this is a URI a provider claims by scheme (not a key file path).
    pub fn is_uri(&self) -> bool {
        !self.provider.schemes().is_empty()
    }

    /// Open the signer.
    pub fn open(&self, ctx: &OpenContext<'_>) -> Result<Box<dyn Signer>> {
        self.provider.open(self.uri, ctx).map_err(open_error)
    }
}

/// A provider's open failure as the library's error (exit codes by kind).
pub fn open_error(e: OpenError) -> Error {
    match e {
        OpenError::Spec(message) => Error::InvalidInput(message),
        OpenError::Signer { signer, source } => Error::Signer { signer, source },
    }
}

/// The SIGNER forms, from the table: "a key file path, a `pkcs11:` URI, …", with `last_sep`
/// before the last form.
pub fn signer_forms(last_sep: &str) -> String {
    signer_forms_with(last_sep, "")
}

/// [`signer_forms`] with each scheme quoted by `quote` (help text uses backticks).
pub fn signer_forms_with(last_sep: &str, quote: &str) -> String {
    let mut forms = vec!["a key file path".to_string()];
    forms.extend(
        PROVIDERS
            .iter()
            .filter_map(|p| p.schemes().first())
            .map(|s| format!("a {quote}{s}{quote} URI")),
    );
    match forms.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{}{last_sep}{last}", rest.join(", ")),
        _ => forms.join(""),
    }
}

/// Asks for a secret on the terminal; never when stdin or stderr is not a terminal.
pub struct TerminalPinPrompt;

impl SecretPrompt for TerminalPinPrompt {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_pick_providers_and_the_rest_are_key_files() {
        for provider in PROVIDERS {
            for scheme in provider.schemes() {
                let uri = format!("{scheme}x");
                let spec = SignerSpec::parse(&uri).unwrap();
                assert_eq!(spec.provider().name(), provider.name(), "{uri}");
                assert!(spec.is_uri());
            }
        }
        let key = SignerSpec::parse("./cosign.key").unwrap();
        assert_eq!(key.provider().name(), "local");
        assert!(!key.is_uri());
        assert!(SignerSpec::parse("").is_err());
    }

    #[test]
    fn parsing_reads_no_configuration() {
        // A bare name may be a profile, but resolving profiles (reading sigbridge.toml) is the
        // CLI's job, done once before parsing: parsing itself never looks for files.
        let spec = SignerSpec::parse("no-such-profile-or-file-7f3a").unwrap();
        assert_eq!(spec.provider().name(), "local");
        assert_eq!(spec.uri(), "no-such-profile-or-file-7f3a");
    }

    #[test]
    fn help_comes_from_the_table() {
        let forms = signer_forms_with(" or ", "`");
        assert!(forms.starts_with("a key file path, a `"), "{forms}");
        for provider in PROVIDERS {
            if let Some(scheme) = provider.schemes().first() {
                assert!(forms.contains(&format!("a `{scheme}` URI")), "{forms}");
            }
        }
        assert_eq!(forms.matches(" or ").count(), 1, "{forms}");
    }
}
