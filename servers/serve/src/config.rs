//! `serve.toml`: where to listen, where the state lives, who may do what, and which signer each
//! signing policy uses.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::token::TokenHash;
use crate::web::password::PasswordHash;

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
    /// Named sets of identities that policies name as `group:NAME`.
    #[serde(default)]
    pub groups: Vec<Group>,
    /// The approvers' web page.
    #[serde(default)]
    pub web: WebConfig,
}

/// A caller: a name with the SHA-256 of its API token, an argon2 password hash for the web
/// page, or both.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// Shown in the audit log.
    pub name: String,
    /// `sha256:HEX` of the API token (`sigbridge serve new-token` prints both).
    #[serde(default)]
    pub token_sha256: Option<TokenHash>,
    /// `$argon2id$…` PHC string of the web password (`sigbridge serve hash-password`).
    #[serde(default)]
    pub password_argon2: Option<PasswordHash>,
}

/// A named set of identities.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// Policies name it as `group:NAME`.
    pub name: String,
    /// Identity names.
    pub members: Vec<String>,
}

/// How the web page learns who is using it.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum WebAuth {
    /// A login form checks the identity's `password_argon2`.
    #[default]
    Password,
    /// A reverse proxy in `trusted_proxies` authenticates and names the identity in `header`.
    ProxyHeader,
}

fn default_user_header() -> String {
    "X-Forwarded-User".into()
}

fn default_session_lifetime() -> String {
    "8h".into()
}

fn default_max_login_failures_per_minute() -> u32 {
    10
}

/// `[web]`: the approvers' page.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// `password` (default) or `proxy-header`.
    #[serde(default)]
    pub auth: WebAuth,
    /// With `proxy-header`: the request header naming the identity.
    #[serde(default = "default_user_header")]
    pub header: String,
    /// With `proxy-header`: the peer addresses whose header is believed.
    #[serde(default)]
    pub trusted_proxies: Vec<IpAddr>,
    /// How long a web session lasts (`8h`, `30m`).
    #[serde(default = "default_session_lifetime")]
    pub session_lifetime: String,
    /// Failed logins allowed per name and per client address each minute.
    #[serde(default = "default_max_login_failures_per_minute")]
    pub max_login_failures_per_minute: u32,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            auth: WebAuth::default(),
            header: default_user_header(),
            trusted_proxies: Vec::new(),
            session_lifetime: default_session_lifetime(),
            max_login_failures_per_minute: default_max_login_failures_per_minute(),
        }
    }
}

/// What a policy's `submitters` or `approvers` entry prefixes a group name with.
pub const GROUP_PREFIX: &str = "group:";

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
    /// Identities (or `group:NAME`) that may submit.
    pub submitters: Vec<String>,
    /// Identities (or `group:NAME`) that may approve or deny.
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

    /// The identity names `list` (names and `group:NAME`s) stands for.
    pub fn members<'a>(&'a self, list: &'a [String]) -> BTreeSet<&'a str> {
        let mut out = BTreeSet::new();
        for entry in list {
            match entry.strip_prefix(GROUP_PREFIX) {
                Some(group) => {
                    for g in self.groups.iter().filter(|g| g.name == group) {
                        out.extend(g.members.iter().map(String::as_str));
                    }
                }
                None => {
                    out.insert(entry.as_str());
                }
            }
        }
        out
    }

    /// Whether `who` may approve or deny requests of `policy` (its submitter still may not).
    pub fn may_approve(&self, policy: &Policy, who: &str) -> bool {
        self.members(&policy.approvers).contains(who)
    }

    /// Whether `who` may submit to `policy`.
    pub fn may_submit(&self, policy: &Policy, who: &str) -> bool {
        self.members(&policy.submitters).contains(who)
    }

    /// The identity called `name`.
    pub fn identity(&self, name: &str) -> Option<&Identity> {
        self.identities.iter().find(|i| i.name == name)
    }

    /// The web session lifetime.
    pub fn session_lifetime(&self) -> Result<Duration, ConfigError> {
        sigbridge_signer::parse_duration(&self.web.session_lifetime)
            .map_err(|e| ConfigError::Invalid(format!("[web] session_lifetime: {e}")))
    }

    /// Identities, groups and `[web]`: credentials present, names known, proxy mode complete.
    fn check_accounts(&self) -> Result<BTreeSet<&str>, ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        let mut names = BTreeSet::new();
        let mut hashes = BTreeSet::new();
        for i in &self.identities {
            if !names.insert(i.name.as_str()) {
                return bad(format!("identity {:?} is listed twice", i.name));
            }
            if i.name.starts_with(GROUP_PREFIX) || i.name.trim().is_empty() {
                return bad(format!(
                    "identity name {:?} is empty or starts with {GROUP_PREFIX:?}, which names groups",
                    i.name
                ));
            }
            if let Some(h) = &i.token_sha256 {
                if !hashes.insert(h.clone()) {
                    return bad(format!(
                        "identity {:?} shares its token with another identity; give each its own token",
                        i.name
                    ));
                }
            }
            if i.token_sha256.is_none()
                && i.password_argon2.is_none()
                && self.web.auth == WebAuth::Password
            {
                return bad(format!(
                    "identity {:?} has neither token_sha256 (API) nor password_argon2 (web page); give it one (sigbridge serve new-token / hash-password)",
                    i.name
                ));
            }
        }
        let mut groups = BTreeSet::new();
        for g in &self.groups {
            if !groups.insert(g.name.as_str()) {
                return bad(format!("group {:?} is listed twice", g.name));
            }
            for m in &g.members {
                if !names.contains(m.as_str()) {
                    return bad(format!(
                        "group {:?} names member {m:?}, which is not an identity",
                        g.name
                    ));
                }
            }
        }
        for p in &self.policies {
            for who in p.submitters.iter().chain(&p.approvers) {
                if let Some(group) = who.strip_prefix(GROUP_PREFIX) {
                    if !groups.contains(group) {
                        return bad(format!(
                            "policy {}/{} names group {group:?}, which is not defined in [[groups]]",
                            p.project, p.slug
                        ));
                    }
                }
            }
        }
        self.session_lifetime()?;
        if self.web.max_login_failures_per_minute == 0 {
            return bad("[web] max_login_failures_per_minute is 0, which would refuse every login; leave it out for the default of 10".into());
        }
        if self.web.auth == WebAuth::ProxyHeader {
            if self.web.trusted_proxies.is_empty() {
                return bad("[web] auth = \"proxy-header\" needs trusted_proxies: the addresses of the reverse proxies whose header is believed".into());
            }
            if axum::http::HeaderName::from_bytes(self.web.header.as_bytes()).is_err() {
                return bad(format!(
                    "[web] header {:?} is not a valid header name",
                    self.web.header
                ));
            }
        }
        Ok(names)
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
        let names = self.check_accounts()?;
        let mut seen = BTreeSet::new();
        for p in &self.policies {
            let key = (p.project.to_ascii_lowercase(), p.slug.to_ascii_lowercase());
            if !seen.insert(key) {
                return bad(format!("policy {}/{} is listed twice", p.project, p.slug));
            }
            for who in p.submitters.iter().chain(&p.approvers) {
                if !who.starts_with(GROUP_PREFIX) && !names.contains(who.as_str()) {
                    return bad(format!(
                        "policy {}/{} names {who:?}, which is not an identity",
                        p.project, p.slug
                    ));
                }
            }
            // The submitter never counts, so N approvals need N approvers besides any submitter.
            let approvers = self.members(&p.approvers).len();
            if (approvers as u64) < u64::from(p.approvals_required) {
                return bad(format!(
                    "policy {}/{} needs {} approvals but names only {} approvers",
                    p.project, p.slug, p.approvals_required, approvers
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

    const ACCOUNTS: &str = r#"listen = "127.0.0.1:0"
database = "s.db"
organization_id = "org"
[[identities]]
name = "ci"
token_sha256 = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
[[identities]]
name = "alice"
password_argon2 = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$0Jc0sEEGWPjdbtL3zQ1m0hXwcbl+iXe0ndE+xt+vNz4"
[[identities]]
name = "bob"
password_argon2 = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$0Jc0sEEGWPjdbtL3zQ1m0hXwcbl+iXe0ndE+xt+vNz4"
"#;

    #[test]
    fn groups_stand_for_their_members_in_policies() {
        let text = format!(
            r#"{ACCOUNTS}
[[groups]]
name = "release-managers"
members = ["alice", "bob"]
[[policies]]
project = "p"
slug = "s"
signer = "k.pem"
approvals_required = 2
submitters = ["ci"]
approvers = ["group:release-managers"]
"#
        );
        let c = parse(&text).unwrap();
        let p = c.policy("p", "s").unwrap();
        assert!(c.may_approve(p, "alice") && c.may_approve(p, "bob"));
        assert!(!c.may_approve(p, "ci"));
        assert!(c.may_submit(p, "ci") && !c.may_submit(p, "alice"));
        // Two members, so three required approvals are refused.
        let e = parse(&text.replace("approvals_required = 2", "approvals_required = 3"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs 3 approvals but names only 2"), "{e}");
    }

    #[test]
    fn unknown_groups_members_and_identities_without_credentials_are_refused() {
        let policy = "[[policies]]\nproject = \"p\"\nslug = \"s\"\nsigner = \"k\"\nsubmitters = [\"ci\"]\napprovers = [\"group:nope\"]\n";
        let e = parse(&format!("{ACCOUNTS}{policy}"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("names group \"nope\", which is not defined"),
            "{e}"
        );
        let group = "[[groups]]\nname = \"g\"\nmembers = [\"carol\"]\n";
        let e = parse(&format!("{ACCOUNTS}{group}"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("member \"carol\", which is not an identity"),
            "{e}"
        );
        let bare = "[[identities]]\nname = \"dave\"\n";
        let e = parse(&format!("{ACCOUNTS}{bare}")).unwrap_err().to_string();
        assert!(e.contains("neither token_sha256"), "{e}");
        let bad_hash = ACCOUNTS.replace("$argon2id$v=19$m=19456", "$argon2i$v=19$m=19456");
        let e = parse(&bad_hash).unwrap_err().to_string();
        assert!(e.contains("not argon2id"), "{e}");
    }

    #[test]
    fn proxy_header_mode_needs_trusted_proxies() {
        let e = parse(&format!("{ACCOUNTS}[web]\nauth = \"proxy-header\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs trusted_proxies"), "{e}");
        let c = parse(&format!(
            "{ACCOUNTS}[web]\nauth = \"proxy-header\"\ntrusted_proxies = [\"127.0.0.1\"]\n"
        ))
        .unwrap();
        assert_eq!(c.web.header, "X-Forwarded-User");
        assert_eq!(c.session_lifetime().unwrap().as_secs(), 8 * 3600);
    }
}
