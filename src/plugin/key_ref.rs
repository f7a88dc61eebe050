//! What follows `sigbridge://` in `--key sigbridge://REF`. cosign splits the key reference at
//! the first `://` and passes the rest verbatim as `keyResourceID`, so REF is taken verbatim
//! too: a profile name from sigbridge.toml, or a SIGNER exactly as `sigbridge sign --signer`
//! takes it (`pkcs11:token=…;object=…?pin-source=…`, `signpath://host/org/project/policy`, a key
//! file path). Nothing is percent-decoded here: a `pkcs11:` URI keeps its own `%20` escapes for
//! its own parser, and `;`, `?`, `/` and `%` reach the provider untouched.

use crate::error::{Error, Result};

/// The scheme cosign dispatches to this plugin.
pub const SCHEME: &str = "sigbridge://";

/// The SIGNER that `key_resource_id` names (a profile resolved through sigbridge.toml).
pub fn signer_uri(key_resource_id: &str) -> Result<String> {
    let reference = strip_scheme(key_resource_id);
    if reference.is_empty() {
        return Err(Error::InvalidInput(format!(
            "the key reference {SCHEME} names no signer: give {SCHEME}PROFILE or {SCHEME}SIGNER, e.g. {SCHEME}pkcs11:token=T;object=K or {SCHEME}/path/to/cosign.key"
        )));
    }
    crate::config::resolve_signer(reference)
}

/// cosign passes only the part after `://`; tolerate the whole reference too (a hand-run call).
fn strip_scheme(id: &str) -> &str {
    id.strip_prefix(SCHEME).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::SignerSpec;

    #[test]
    fn awkward_characters_pass_through_verbatim() {
        for (reference, provider) in [
            (
                "pkcs11:token=my%20token;object=key%2F1;id=%01?pin-source=/run/pin%20file&module-path=/usr/lib/softhsm/libsofthsm2.so",
                "pkcs11",
            ),
            ("signpath://127.0.0.1:8443/org/project/policy?x=1;y", "signpath"),
            ("/tmp/dir with space/cosign;v1?.key", "local"),
            ("./keys/100%.key", "local"),
        ] {
            let uri = signer_uri(reference).unwrap();
            assert_eq!(uri, reference);
            assert_eq!(SignerSpec::parse(&uri).unwrap().provider().name(), provider);
            assert_eq!(signer_uri(&format!("{SCHEME}{reference}")).unwrap(), reference);
        }
    }

    #[test]
    fn an_empty_reference_says_what_to_give() {
        let err = signer_uri("").unwrap_err().to_string();
        assert!(err.contains("names no signer"), "{err}");
        assert!(signer_uri(SCHEME).is_err());
    }
}
