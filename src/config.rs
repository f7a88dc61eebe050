//! Profiles from `sigbridge.toml`: named signers, so a pipeline says `--signer release` and the
//! URI (HSM module, token, key; service, project, policy) lives in one reviewed file.
//!
//! ```toml
//! [profiles.release]
//! signer = "pkcs11:token=prod;object=release-2026?module-path=/usr/lib/libCryptoki2_64.so"
//! description = "Release key in the Luna HSM"
//! ```
//!
//! Where the file is looked for, first match wins: `$SIGBRIDGE_CONFIG` (must exist),
//! `./sigbridge.toml`, `$XDG_CONFIG_HOME/sigbridge/sigbridge.toml` (or
//! `~/.config/sigbridge/sigbridge.toml`). Secrets never belong in it: PINs and tokens come from
//! the environment or files named by the URI.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Largest configuration file read.
const MAX_CONFIG_FILE: u64 = 1024 * 1024;

/// The parsed configuration file.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Named signers.
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

/// One named signer.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// A SIGNER: a key file path or a URI a provider claims (see [`crate::providers`]).
    pub signer: String,
    /// Free text for humans.
    #[serde(default)]
    pub description: Option<String>,
    /// The signature format `sign` writes with this signer unless `--format` says otherwise.
    #[serde(default)]
    pub format: Option<ProfileFormat>,
}

/// A profile's `format`: `"legacy"`, `"bundle"` or `"both"` (as `sign --format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProfileFormat {
    /// cosign's `.sig` signature.
    Legacy,
    /// cosign 3's Sigstore bundle referrer.
    Bundle,
    /// Both.
    Both,
}

/// The `format` of the profile `arg` names, if `arg` is a profile that sets one.
pub fn profile_format(arg: &str) -> Result<Option<ProfileFormat>> {
    let is_name = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !Path::new(arg).exists();
    if !is_name {
        return Ok(None);
    }
    let Some(path) = config_path()? else {
        return Ok(None);
    };
    Ok(load(&path)?.profiles.get(arg).and_then(|p| p.format))
}

/// The configuration file in effect, if any.
pub fn config_path() -> Result<Option<PathBuf>> {
    if let Some(explicit) = std::env::var_os("SIGBRIDGE_CONFIG") {
        let path = PathBuf::from(explicit);
        if !path.is_file() {
            return Err(Error::InvalidInput(format!(
                "SIGBRIDGE_CONFIG={} does not name a file",
                path.display()
            )));
        }
        return Ok(Some(path));
    }
    Ok(default_paths().into_iter().find(|p| p.is_file()))
}

/// Where the configuration file is looked for when `SIGBRIDGE_CONFIG` is unset, in order.
fn default_paths() -> Vec<PathBuf> {
    let mut paths = vec![PathBuf::from("sigbridge.toml")];
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
    if let Some(base) = base {
        paths.push(base.join("sigbridge").join("sigbridge.toml"));
    }
    paths
}

/// Read and parse a configuration file.
pub fn load(path: &Path) -> Result<ConfigFile> {
    use std::io::Read as _;
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let mut text = String::new();
    std::fs::File::open(path)
        .map_err(io)?
        .take(MAX_CONFIG_FILE + 1)
        .read_to_string(&mut text)
        .map_err(io)?;
    if text.len() as u64 > MAX_CONFIG_FILE {
        return Err(Error::InvalidInput(format!(
            "{} is larger than {MAX_CONFIG_FILE} bytes",
            path.display()
        )));
    }
    toml::from_str(&text)
        .map_err(|e| Error::InvalidInput(format!("{}: {}", path.display(), e.message())))
}

/// If `arg` names a profile (and is not an existing file or a URI), the profile's SIGNER;
/// otherwise `arg` itself. The CLI calls this once per SIGNER argument, before
/// [`crate::providers::SignerSpec::parse`].
/// A bare name that is neither an existing file nor a profile is refused here, naming the
/// profiles and configuration files searched, since "cannot read key file NAME" would hide
/// that profiles exist.
pub fn resolve_signer(arg: &str) -> Result<String> {
    let could_be_profile = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !Path::new(arg).exists();
    if !could_be_profile {
        return Ok(arg.to_string());
    }
    let searched = match config_path()? {
        Some(path) => {
            let config = load(&path)?;
            if let Some(profile) = config.profiles.get(arg) {
                tracing::info!(profile = arg, config = %path.display(), "using signer profile");
                return Ok(profile.signer.clone());
            }
            let names: Vec<&str> = config.profiles.keys().map(String::as_str).collect();
            format!(
                "no profile {arg:?} in {} (profiles there: {})",
                path.display(),
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            )
        }
        None => {
            let looked: Vec<String> = default_paths()
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            format!(
                "no configuration file with profiles was found (SIGBRIDGE_CONFIG is unset; looked for {})",
                looked.join(", ")
            )
        }
    };
    Err(Error::KeyUnavailable(format!(
        "signer {arg:?} is not a file, a URI or a profile: there is no file {arg:?}, and {searched}. {}",
        signer_forms()
    )))
}

/// What a SIGNER may be, for error messages (the forms come from the provider table).
pub fn signer_forms() -> String {
    format!(
        "A SIGNER is {}, or the name of a profile in sigbridge.toml ($SIGBRIDGE_CONFIG, ./sigbridge.toml or ~/.config/sigbridge/sigbridge.toml)",
        crate::providers::signer_forms(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_profiles_and_refuses_unknown_keys() {
        let c: ConfigFile = toml::from_str(
            "[profiles.release]\nsigner = \"pkcs11:token=a;object=b\"\ndescription = \"x\"\n",
        )
        .unwrap();
        assert_eq!(c.profiles["release"].signer, "pkcs11:token=a;object=b");
        assert!(
            toml::from_str::<ConfigFile>("[profiles.r]\nsigner = \"k\"\npin = \"1\"\n").is_err()
        );
        assert!(toml::from_str::<ConfigFile>("colour = 1\n").is_err());
    }

    #[test]
    fn uris_and_paths_are_never_profiles() {
        assert_eq!(resolve_signer("pkcs11:token=a").unwrap(), "pkcs11:token=a");
        assert_eq!(resolve_signer("./cosign.key").unwrap(), "./cosign.key");
    }
}
