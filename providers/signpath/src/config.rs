//! `signpath://` URIs and the API token.
//!
//! ```text
//! signpath://app.signpath.io/ORG-ID/PROJECT-SLUG/SIGNING-POLICY-SLUG
//!     ?artifact-configuration=SLUG&param.NAME=VALUE&description=TEXT
//!     &public-key=FILE&token-file=FILE&api-path=/Api&ca-file=FILE
//! ```
//! `signpath://` and `signpath+https://` talk HTTPS; `signpath+http://` is plain HTTP and only
//! for a loopback host (a test server). HTTPS trusts the system's roots plus the PEM
//! certificates of every `ca-file=` (repeatable), for a service with a private CA. The API base is `https://HOST[:PORT]{api-path}`
//! (default `/Api`, SignPath's), so requests go to `{base}/v1/{ORG-ID}/…`.
//!
//! The token never comes from the URI (the URI is a command-line argument): it is read from
//! `token-file=FILE`, else the file named by `SIGBRIDGE_SIGNPATH_TOKEN_FILE`, else the
//! variable `SIGNPATH_API_TOKEN`.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret as _, SecretString};
use url::Url;

/// Environment variable holding the API token.
pub const TOKEN_ENV: &str = "SIGNPATH_API_TOKEN";
/// Environment variable naming a file whose first line is the API token.
pub const TOKEN_FILE_ENV: &str = "SIGBRIDGE_SIGNPATH_TOKEN_FILE";
/// Environment variable naming a PEM public key or certificate to verify signatures with.
pub const PUBLIC_KEY_ENV: &str = "SIGBRIDGE_SIGNPATH_PUBLIC_KEY";
/// The most a `ca-file=` may hold: CA bundles are kilobytes, so more is the wrong file.
pub const MAX_CA_FILE_SIZE: u64 = 1024 * 1024;

/// Why a `signpath://` URI or its token could not be used. Never contains the token.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The URI is malformed.
    #[error("invalid SignPath URI: {0}; expected signpath://HOST/ORG-ID/PROJECT-SLUG/SIGNING-POLICY-SLUG?artifact-configuration=SLUG")]
    Uri(String),
    /// No token was found.
    #[error("no SignPath API token: set {TOKEN_ENV}, or {TOKEN_FILE_ENV} (or token-file= in the URI) to a file holding it")]
    NoToken,
    /// The token file could not be read.
    #[error("cannot read the SignPath API token file {path}: {reason}")]
    TokenFile {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A `ca-file=` could not be used.
    #[error("cannot use the SignPath ca-file {path}: {detail}")]
    CaFile {
        /// The file.
        path: String,
        /// Why, and what to do.
        detail: String,
    },
}

/// Where the token came from (for messages; never the token itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSource {
    /// `SIGNPATH_API_TOKEN`.
    Env,
    /// A file.
    File(PathBuf),
}

/// Everything needed to talk to one signing policy.
#[derive(Clone)]
pub struct SignPathConfig {
    /// `https://HOST[:PORT]/Api` (no trailing slash).
    pub api_base: Url,
    /// The organisation id (path segment after `v1`).
    pub organization_id: String,
    /// `projectSlug`.
    pub project_slug: String,
    /// `signingPolicySlug`.
    pub signing_policy_slug: String,
    /// `artifactConfigurationSlug` (the project default when absent).
    pub artifact_configuration_slug: Option<String>,
    /// `parameters.<name>` form fields.
    pub parameters: BTreeMap<String, String>,
    /// `description` shown to approvers.
    pub description: Option<String>,
    /// A PEM public key or certificate to verify with, instead of fetching the certificate.
    pub public_key_file: Option<PathBuf>,
    /// Where the token came from.
    pub token_source: TokenSource,
    /// `ca-file=` files whose certificates are trusted besides the system's roots.
    pub ca_files: Vec<PathBuf>,
    /// Their certificates, read and parsed when the URI was.
    pub(crate) ca_certificates: Vec<reqwest::Certificate>,
    token: SecretString,
}

impl fmt::Debug for SignPathConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignPathConfig")
            .field("api_base", &self.api_base.as_str())
            .field("organization_id", &self.organization_id)
            .field("project_slug", &self.project_slug)
            .field("signing_policy_slug", &self.signing_policy_slug)
            .field(
                "artifact_configuration_slug",
                &self.artifact_configuration_slug,
            )
            .field("parameters", &self.parameters)
            .field("description", &self.description)
            .field("public_key_file", &self.public_key_file)
            .field("token_source", &self.token_source)
            .field("ca_files", &self.ca_files)
            .field("token", &"[redacted]")
            .finish()
    }
}

fn is_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && s != "."
        && s != ".."
}

fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
        url::Host::Ipv6(ip) => IpAddr::V6(*ip).is_loopback(),
    }
}

impl SignPathConfig {
    /// Parse a `signpath://` URI, reading the token as described in the module docs. `env`
    /// looks up environment variables (injectable for tests).
    pub fn from_uri(uri: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let bad = |m: &str| ConfigError::Uri(m.to_string());
        let (scheme, rest) = uri
            .split_once("://")
            .ok_or_else(|| bad("missing signpath://"))?;
        let web_scheme = match scheme {
            "signpath" | "signpath+https" => "https",
            "signpath+http" => "http",
            _ => {
                return Err(bad(
                    "the scheme must be signpath, signpath+https or signpath+http",
                ))
            }
        };
        let url = Url::parse(&format!("{web_scheme}://{rest}"))
            .map_err(|e| ConfigError::Uri(format!("cannot parse it ({e})")))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad(
                "it must not contain credentials (user@host); give the API token in SIGNPATH_API_TOKEN or a token file",
            ));
        }
        let host = url.host().ok_or_else(|| bad("it has no host"))?;
        if web_scheme == "http" && !is_loopback(&host) {
            return Err(bad(
                "signpath+http:// (plain HTTP) is only allowed for a loopback host; use signpath:// (HTTPS)",
            ));
        }
        if url.fragment().is_some() {
            return Err(bad("it must not have a #fragment"));
        }
        let segments: Vec<&str> = url
            .path_segments()
            .map(|s| s.filter(|p| !p.is_empty()).collect())
            .unwrap_or_default();
        let [org, project, policy] = segments.as_slice() else {
            return Err(bad(
                "the path must be exactly /ORG-ID/PROJECT-SLUG/SIGNING-POLICY-SLUG",
            ));
        };
        for (what, s) in [
            ("organisation id", org),
            ("project slug", project),
            ("signing policy slug", policy),
        ] {
            if !is_segment(s) {
                return Err(ConfigError::Uri(format!(
                    "the {what} {s:?} may only contain letters, digits, '-', '_' and '.'"
                )));
            }
        }

        let mut api_path = "/Api".to_string();
        let mut artifact_configuration_slug = None;
        let mut parameters = BTreeMap::new();
        let mut description = None;
        let mut public_key_file = None;
        let mut token_file = None;
        let mut ca_files = Vec::new();
        for (key, value) in url.query_pairs() {
            let value = value.into_owned();
            match key.as_ref() {
                "artifact-configuration" => {
                    if !is_segment(&value) {
                        return Err(bad("artifact-configuration must be a slug"));
                    }
                    artifact_configuration_slug = Some(value);
                }
                "description" => description = Some(value),
                "public-key" => public_key_file = Some(PathBuf::from(value)),
                "token-file" => token_file = Some(PathBuf::from(value)),
                "ca-file" => ca_files.push(PathBuf::from(value)),
                "api-path" => {
                    let trimmed = value.trim_matches('/');
                    if !trimmed.split('/').all(is_segment) {
                        return Err(bad("api-path must be a path such as /Api"));
                    }
                    api_path = format!("/{trimmed}");
                }
                "token" | "api-token" | "apitoken" => {
                    return Err(bad(
                        "the API token must not be in the URI (command lines are visible to other users and end up in logs); use SIGNPATH_API_TOKEN or token-file=",
                    ))
                }
                k => {
                    if let Some(name) = k.strip_prefix("param.") {
                        if name.is_empty()
                            || !name
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                        {
                            return Err(bad("param.NAME needs a name of letters, digits, '_' or '-'"));
                        }
                        parameters.insert(name.to_string(), value);
                    } else {
                        return Err(ConfigError::Uri(format!(
                            "unknown option {k:?} (known: artifact-configuration, param.NAME, description, public-key, token-file, api-path, ca-file)"
                        )));
                    }
                }
            }
        }
        if public_key_file.is_none() {
            public_key_file = env(PUBLIC_KEY_ENV)
                .filter(|s| !s.is_empty())
                .map(PathBuf::from);
        }

        if web_scheme == "http" && !ca_files.is_empty() {
            return Err(bad(
                "ca-file= only applies to HTTPS; use signpath+https:// or drop ca-file=",
            ));
        }
        let mut ca_certificates = Vec::new();
        for path in &ca_files {
            ca_certificates.extend(read_ca_file(path)?);
        }

        let mut api_base = url.clone();
        api_base.set_query(None);
        api_base.set_path(&api_path);

        let token_file = token_file.or_else(|| {
            env(TOKEN_FILE_ENV)
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
        });
        let (token, token_source) = match token_file {
            Some(path) => (read_token_file(&path)?, TokenSource::File(path)),
            None => match env(TOKEN_ENV) {
                Some(t) if !t.trim().is_empty() => {
                    (SecretString::from(t.trim().to_string()), TokenSource::Env)
                }
                _ => return Err(ConfigError::NoToken),
            },
        };

        Ok(Self {
            api_base,
            organization_id: (*org).to_string(),
            project_slug: (*project).to_string(),
            signing_policy_slug: (*policy).to_string(),
            artifact_configuration_slug,
            parameters,
            description,
            public_key_file,
            token_source,
            ca_files,
            ca_certificates,
            token,
        })
    }

    /// `{api_base}/v1/{org}/` + `rest`.
    pub fn api_url(&self, rest: &str) -> String {
        self.versioned_url("v1", rest)
    }

    /// `{api_base}/{version}/{org}/` + `rest`.
    pub fn versioned_url(&self, version: &str, rest: &str) -> String {
        format!(
            "{}/{version}/{}/{rest}",
            self.api_base.as_str().trim_end_matches('/'),
            self.organization_id
        )
    }

    /// `Bearer TOKEN`, for the Authorization header only.
    pub(crate) fn bearer(&self) -> String {
        format!("Bearer {}", self.token.expose_secret())
    }

    /// A short description without secrets: `signpath https://host/Api org/project/policy`.
    pub fn describe(&self) -> String {
        format!(
            "SignPath {} (organisation {}, project {}, signing policy {})",
            self.api_base.as_str().trim_end_matches('/'),
            self.organization_id,
            self.project_slug,
            self.signing_policy_slug
        )
    }
}

/// The PEM certificates in `path`, read bounded by [`MAX_CA_FILE_SIZE`].
fn read_ca_file(path: &Path) -> Result<Vec<reqwest::Certificate>, ConfigError> {
    let fail = |detail: String| ConfigError::CaFile {
        path: path.display().to_string(),
        detail,
    };
    let file = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
    let mut pem = Vec::new();
    file.take(MAX_CA_FILE_SIZE + 1)
        .read_to_end(&mut pem)
        .map_err(|e| fail(e.to_string()))?;
    if pem.len() as u64 > MAX_CA_FILE_SIZE {
        return Err(fail(format!(
            "it is larger than {MAX_CA_FILE_SIZE} bytes: that is not a PEM CA bundle (pass the CA certificate file itself)"
        )));
    }
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| fail(format!("not a PEM certificate bundle ({e})")))?;
    if certs.is_empty() {
        return Err(fail(
            "no PEM certificates in it (expected -----BEGIN CERTIFICATE----- blocks)".into(),
        ));
    }
    Ok(certs)
}

fn read_token_file(path: &Path) -> Result<SecretString, ConfigError> {
    let fail = |reason: String| ConfigError::TokenFile {
        path: path.display().to_string(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
    let mut buf = String::new();
    file.take(64 * 1024)
        .read_to_string(&mut buf)
        .map_err(|e| fail(e.to_string()))?;
    let first = buf.lines().next().unwrap_or("").trim().to_string();
    // Wipe the copy with the rest of the file before dropping it.
    buf.clear();
    if first.is_empty() {
        return Err(fail("it is empty".into()));
    }
    Ok(SecretString::from(first))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "s3cr3t-t0ken-value";

    fn env_with_token(k: &str) -> Option<String> {
        (k == TOKEN_ENV).then(|| TOKEN.to_string())
    }

    #[test]
    fn full_uri() {
        let c = SignPathConfig::from_uri(
            "signpath://app.signpath.io/c2099ac1-b2d4-4a41-9d2b-3ae8b4a2e3b1/my-images/release-signing?artifact-configuration=cosign-raw&param.productVersion=1.2.0&description=release%201.2",
            &env_with_token,
        )
        .unwrap();
        assert_eq!(c.api_base.as_str(), "https://app.signpath.io/Api");
        assert_eq!(c.project_slug, "my-images");
        assert_eq!(c.signing_policy_slug, "release-signing");
        assert_eq!(c.artifact_configuration_slug.as_deref(), Some("cosign-raw"));
        assert_eq!(
            c.parameters.get("productVersion").map(String::as_str),
            Some("1.2.0")
        );
        assert_eq!(c.description.as_deref(), Some("release 1.2"));
        assert_eq!(
            c.api_url("SigningRequests/SubmitWithArtifact"),
            "https://app.signpath.io/Api/v1/c2099ac1-b2d4-4a41-9d2b-3ae8b4a2e3b1/SigningRequests/SubmitWithArtifact"
        );
        assert_eq!(c.token_source, TokenSource::Env);
    }

    #[test]
    fn loopback_http_and_api_path() {
        let c = SignPathConfig::from_uri(
            "signpath+http://127.0.0.1:8080/org/p/pol?api-path=/API/",
            &env_with_token,
        )
        .unwrap();
        assert_eq!(c.api_url("x"), "http://127.0.0.1:8080/API/v1/org/x");
        let e = SignPathConfig::from_uri(
            "signpath+http://signing.example.com/org/p/pol",
            &env_with_token,
        )
        .unwrap_err();
        assert!(e.to_string().contains("loopback"), "{e}");
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "signpath://host/org/project",
            "signpath://host/org/project/policy/extra",
            "signpath://host/org/../policy",
            "signpath://user:pw@host/o/p/s",
            "signpath://host/o/p/s?token=abc",
            "signpath://host/o/p/s?unknown=1",
            "signpath://host/o/p/s?param.=1",
            "https://host/o/p/s",
            "signpath://host/o%2Fx/p/s",
        ] {
            assert!(
                SignPathConfig::from_uri(bad, &env_with_token).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn token_sources_and_secrecy() {
        let dir =
            std::env::temp_dir().join(format!("sigbridge-signpath-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        std::fs::write(&file, format!("{TOKEN}\nignored\n")).unwrap();
        let uri = format!("signpath://h/o/p/s?token-file={}", file.display());
        let c = SignPathConfig::from_uri(&uri, &|_| None).unwrap();
        assert_eq!(c.bearer(), format!("Bearer {TOKEN}"));
        assert_eq!(c.token_source, TokenSource::File(file.clone()));
        let debug = format!("{c:?}");
        assert!(!debug.contains(TOKEN), "{debug}");
        assert!(!c.describe().contains(TOKEN));

        let env_file = |k: &str| (k == TOKEN_FILE_ENV).then(|| file.display().to_string());
        let c = SignPathConfig::from_uri("signpath://h/o/p/s", &env_file).unwrap();
        assert!(!format!("{c:?}").contains(TOKEN));

        let e = SignPathConfig::from_uri("signpath://h/o/p/s", &|_| None).unwrap_err();
        assert!(matches!(e, ConfigError::NoToken));
        let e = SignPathConfig::from_uri("signpath://h/o/p/s?token=abc", &|_| None).unwrap_err();
        assert!(!e.to_string().contains("abc"));
        std::fs::write(&file, "\n").unwrap();
        assert!(SignPathConfig::from_uri(&uri, &|_| None).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    const CA_URI: &str = "signpath+https://127.0.0.1:8443/org/proj/pol?ca-file=";

    fn ca_error(uri: &str) -> String {
        match SignPathConfig::from_uri(uri, &env_with_token) {
            Err(e @ ConfigError::CaFile { .. }) => e.to_string(),
            other => panic!("expected a ca-file error, got {other:?}"),
        }
    }

    #[test]
    fn ca_file_is_percent_decoded_repeatable_and_parsed() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("my ca.pem");
        let b = dir.path().join("b.pem");
        std::fs::write(&a, include_str!("testdata/test-ca.pem")).unwrap();
        // Two certificates in one bundle count as two.
        std::fs::write(&b, include_str!("testdata/test-ca.pem").repeat(2)).unwrap();
        let encoded = a.display().to_string().replace(' ', "%20");
        let c = SignPathConfig::from_uri(
            &format!("{CA_URI}{encoded}&ca-file={}", b.display()),
            &env_with_token,
        )
        .unwrap();
        assert_eq!(c.ca_files, vec![a, b]);
        assert_eq!(c.ca_certificates.len(), 3);
        assert!(format!("{c:?}").contains("my ca.pem"));
    }

    #[test]
    fn without_ca_file_nothing_extra_is_trusted() {
        let c = SignPathConfig::from_uri("signpath://h/o/p/s", &env_with_token).unwrap();
        assert!(c.ca_files.is_empty());
        assert!(c.ca_certificates.is_empty());
    }

    #[test]
    fn a_missing_ca_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let msg = ca_error(&format!("{CA_URI}{}", missing.display()));
        assert!(msg.contains(&missing.display().to_string()), "{msg}");
        assert!(msg.contains("ca-file"), "{msg}");
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("key.pem");
        std::fs::write(
            &empty,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let msg = ca_error(&format!("{CA_URI}{}", empty.display()));
        assert!(msg.contains("key.pem"), "{msg}");
        assert!(msg.contains("no PEM certificates"), "{msg}");
    }

    #[test]
    fn an_oversized_ca_file_is_refused_without_reading_it_all() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.pem");
        let mut bundle = include_str!("testdata/test-ca.pem").to_string();
        while (bundle.len() as u64) <= MAX_CA_FILE_SIZE {
            bundle.push_str(include_str!("testdata/test-ca.pem"));
        }
        std::fs::write(&big, bundle).unwrap();
        let msg = ca_error(&format!("{CA_URI}{}", big.display()));
        assert!(
            msg.contains("big.pem") && msg.contains("larger than"),
            "{msg}"
        );
    }

    #[test]
    fn ca_file_on_plain_http_is_a_uri_error() {
        let r = SignPathConfig::from_uri(
            "signpath+http://127.0.0.1:1/o/p/s?ca-file=/x.pem",
            &env_with_token,
        );
        assert!(matches!(r, Err(ConfigError::Uri(m)) if m.contains("ca-file")));
    }
}
