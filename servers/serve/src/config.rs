//! `serve.toml`: where to listen, where the state lives, who may do what, and which signer each
//! signing policy uses.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::token::TokenHash;

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the serve configuration {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("the serve configuration {path} is malformed: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What toml/serde said.
        message: String,
    },
    /// The values do not fit together.
    #[error("the serve configuration is invalid: {0}")]
    Invalid(String),
}

fn default_expire_after() -> String {
    "24h".into()
}

fn default_max_artifact_bytes() -> u64 {
    64 * 1024 * 1024
}

fn default_max_requests_per_minute() -> u32 {
    600
}

/// The whole file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// `127.0.0.1:8080`, or any address (`0.0.0.0:8443`) when `tls_cert` and `tls_key` are set.
    pub listen: SocketAddr,
    /// PEM certificate chain (server certificate first) to serve HTTPS with.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (unencrypted) of `tls_cert`.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// The SQLite database (created when missing; relative paths are relative to the file).
    pub database: PathBuf,
    /// The organisation id clients put in their paths.
    pub organization_id: String,
    /// How long a request may wait for approval before it is canceled (`30m`, `24h`, `7d`).
    #[serde(default = "default_expire_after")]
    pub expire_after: String,
    /// Largest accepted artifact upload, in bytes.
    #[serde(default = "default_max_artifact_bytes")]
    pub max_artifact_bytes: u64,
    /// API calls each identity may make per minute (bursts up to this many); more get 429
    /// with `Retry-After`.
    #[serde(default = "default_max_requests_per_minute")]
    pub max_requests_per_minute: u32,
    /// Everyone who may call the API.
    #[serde(default)]
    pub identities: Vec<Identity>,
    /// The signing policies.
    #[serde(default)]
    pub policies: Vec<Policy>,
}

/// A caller: a name and the SHA-256 of its API token.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// Shown in the audit log.
    pub name: String,
    /// `sha256:HEX` of the token (`sigbridge serve new-token` prints both).
    pub token_sha256: TokenHash,
}

/// A project's signing policy.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The project slug in requests.
    pub project: String,
    /// The signing policy slug in requests.
    pub slug: String,
    /// A sigbridge SIGNER: key file, `pkcs11:` URI or profile name.
    pub signer: String,
    /// How many distinct approvers must approve (0: signed on submit).
    #[serde(default = "one")]
    pub approvals_required: u32,
    /// Identities that may submit.
    pub submitters: Vec<String>,
    /// Identities that may approve or deny.
    #[serde(default)]
    pub approvers: Vec<String>,
    /// A PEM X.509 certificate issued for `signer`'s key, served at the policy's
    /// `…/Certificate/X509Certificate` route (relative to this file). Checked at start-up
    /// against the signer's key ([`crate::certificate`]); without it the route serves the
    /// public key.
    #[serde(default)]
    pub certificate: Option<PathBuf>,
}

fn one() -> u32 {
    1
}

impl ServeConfig {
    /// Read and check `path`; relative `database`, `tls_cert`, `tls_key` and policy
    /// `certificate` paths become relative to its directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config: Self = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        if let Some(dir) = path.parent() {
            for p in [
                Some(&mut config.database),
                config.tls_cert.as_mut(),
                config.tls_key.as_mut(),
            ]
            .into_iter()
            .chain(config.policies.iter_mut().map(|p| p.certificate.as_mut()))
            .flatten()
            {
                if p.is_relative() {
                    *p = dir.join(&*p);
                }
            }
        }
        config.check()?;
        Ok(config)
    }

    /// The request lifetime.
    pub fn expire_after(&self) -> Result<Duration, ConfigError> {
        sigbridge_signer::parse_duration(&self.expire_after)
            .map_err(|e| ConfigError::Invalid(format!("expire_after: {e}")))
    }

    /// The policy for `project`/`slug` (slugs compare case-insensitively, as SignPath's do).
    pub fn policy(&self, project: &str, slug: &str) -> Option<&Policy> {
        self.policies
            .iter()
            .find(|p| p.project.eq_ignore_ascii_case(project) && p.slug.eq_ignore_ascii_case(slug))
    }

    fn check(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        self.expire_after()?;
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return bad("tls_cert and tls_key go together: set both (HTTPS) or neither (plain HTTP on loopback)".into());
        }
        if self.max_requests_per_minute == 0 {
            return bad("max_requests_per_minute is 0, which would refuse every call; leave it out for the default of 600".into());
        }
        if self.organization_id.trim().is_empty() {
            return bad("organization_id is empty".into());
        }
        let mut names = BTreeSet::new();
        let mut hashes = BTreeSet::new();
        for i in &self.identities {
            if !names.insert(i.name.as_str()) {
                return bad(format!("identity {:?} is listed twice", i.name));
            }
            if !hashes.insert(i.token_sha256.clone()) {
                return bad(format!(
                    "identity {:?} shares its token with another identity; give each its own token",
                    i.name
                ));
            }
        }
        let mut seen = BTreeSet::new();
        for p in &self.policies {
            let key = (p.project.to_ascii_lowercase(), p.slug.to_ascii_lowercase());
            if !seen.insert(key) {
                return bad(format!("policy {}/{} is listed twice", p.project, p.slug));
            }
            for who in p.submitters.iter().chain(&p.approvers) {
                if !names.contains(who.as_str()) {
                    return bad(format!(
                        "policy {}/{} names {who:?}, which is not an identity",
                        p.project, p.slug
                    ));
                }
            }
            // The submitter never counts, so N approvals need N approvers besides any submitter.
            if (p.approvers.len() as u64) < u64::from(p.approvals_required) {
                return bad(format!(
                    "policy {}/{} needs {} approvals but names only {} approvers",
                    p.project,
                    p.slug,
                    p.approvals_required,
                    p.approvers.len()
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

    fn parse(text: &str) -> Result<ServeConfig, ConfigError> {
        let c: ServeConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: "t".into(),
            message: e.to_string(),
        })?;
        c.check()?;
        Ok(c)
    }

    #[test]
    fn a_policy_needing_more_approvers_than_it_names_is_refused() {
        let text = format!(
            r#"listen = "127.0.0.1:0"
database = "s.db"
organization_id = "org"
[[identities]]
name = "ci"
token_sha256 = "{HASH}"
[[policies]]
project = "p"
slug = "s"
signer = "k.pem"
approvals_required = 2
submitters = ["ci"]
approvers = ["ci"]
"#
        );
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains("needs 2 approvals but names only 1"), "{e}");
    }

    #[test]
    fn unknown_identities_are_refused() {
        let text = r#"listen = "127.0.0.1:0"
database = "s.db"
organization_id = "org"
[[policies]]
project = "p"
slug = "s"
signer = "k.pem"
submitters = ["nobody"]
approvers = []
approvals_required = 0
"#;
        let e = parse(text).unwrap_err().to_string();
        assert!(e.contains("\"nobody\", which is not an identity"), "{e}");
    }

    #[test]
    fn tls_cert_without_tls_key_and_a_zero_rate_are_refused() {
        let base = "listen = \"0.0.0.0:8443\"\ndatabase = \"s.db\"\norganization_id = \"org\"\n";
        let e = parse(&format!("{base}tls_cert = \"c.pem\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("tls_cert and tls_key go together"), "{e}");
        let e = parse(&format!("{base}max_requests_per_minute = 0\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_requests_per_minute is 0"), "{e}");
        let c = parse(&format!(
            "{base}tls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n"
        ))
        .unwrap();
        assert_eq!(c.max_requests_per_minute, 600);
    }
}
