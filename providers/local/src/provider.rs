//! [`LocalProvider`]: key files (cosign encrypted keys, PKCS#8, SEC1, PKCS#1 PEM), the SIGNER
//! form for anything without a scheme.

use std::path::Path;

use sigbridge_signer::{OpenContext, OpenError, Provider, Signer, SignerError, SignerErrorKind};

use crate::KeyFile;

/// Opens key files; `file://PATH` and bare paths.
#[derive(Clone, Copy, Debug, Default)]
pub struct LocalProvider;

impl Provider for LocalProvider {
    fn name(&self) -> &'static str {
        "local"
    }

    fn schemes(&self) -> &'static [&'static str] {
        &[]
    }

    fn help(&self) -> &'static str {
        "a key file path (cosign encrypted key, PKCS#8, SEC1 or PKCS#1 PEM; the password comes from COSIGN_PASSWORD or a prompt)"
    }

    fn open(&self, uri: &str, ctx: &OpenContext<'_>) -> Result<Box<dyn Signer>, OpenError> {
        let path = Path::new(uri.strip_prefix("file://").unwrap_or(uri));
        let describe = format!("local key {}", path.display());
        let wrap = |source: SignerError| OpenError::Signer {
            signer: describe.clone(),
            source,
        };
        let file = KeyFile::read(path).map_err(|e| wrap(e.into()))?;
        let password = if file.is_encrypted() {
            let password = ctx.passwords.password_for(path).map_err(wrap)?;
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
}
