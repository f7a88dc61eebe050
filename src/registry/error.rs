//! What can go wrong talking to a registry, worded so the user knows what to do next.
//!
//! No variant ever holds a password, token or `Authorization` value, and URLs are shown
//! without their query strings (upload state and pre-signed redirect URLs carry credentials).

/// The flag that adds a trusted CA (keep in step with the CLI's registry flags).
pub(crate) const CA_FLAG: &str = "--registry-cacert";
/// The flag that turns off certificate checks (keep in step with the CLI's registry flags).
pub(crate) const INSECURE_FLAG: &str = "--allow-insecure-registry";
/// The flag that allows plain HTTP to non-loopback registries.
pub(crate) const HTTP_FLAG: &str = "--allow-http-registry";

/// Everything the registry client can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The registry (or its token server) refused our credentials, or wants some and we have
    /// none (HTTP 401).
    #[error("authentication to {registry} failed ({detail}): run `{login}` or set SIGBRIDGE_REGISTRY_USERNAME/SIGBRIDGE_REGISTRY_PASSWORD")]
    Unauthorized {
        /// The registry host.
        registry: String,
        /// Which credentials were used and what the registry said.
        detail: String,
        /// The login command to suggest.
        login: String,
    },
    /// The credentials were accepted but do not allow the operation (HTTP 403).
    #[error("{registry} denied {action} access to {repository} ({detail}): log in as a user who may {action} there (`{login}`), or ask the registry's administrator for access")]
    Forbidden {
        /// The registry host.
        registry: String,
        /// The repository path.
        repository: String,
        /// `pull` or `push`.
        action: &'static str,
        /// Which credentials were used and what the registry said.
        detail: String,
        /// The login command to suggest.
        login: String,
    },
    /// The TLS handshake failed because the registry's certificate is not trusted.
    #[error("TLS certificate of {registry} was not accepted ({detail}): pass {CA_FLAG} with the CA that signed it or, only if you must, {INSECURE_FLAG}")]
    Certificate {
        /// The registry (or token server) host.
        registry: String,
        /// The TLS library's reason.
        detail: String,
    },
    /// The TLS handshake failed for a reason other than the certificate (often: the server
    /// speaks plain HTTP).
    #[error(
        "TLS connection to {registry} failed ({detail}): if it serves plain HTTP, pass {HTTP_FLAG}"
    )]
    Tls {
        /// The registry (or token server) host.
        registry: String,
        /// The TLS library's reason.
        detail: String,
    },
    /// No TCP connection could be made.
    #[error("could not connect to {url} ({detail}): check the registry address and that it is running and reachable")]
    Connect {
        /// The URL (without query).
        url: String,
        /// Why.
        detail: String,
    },
    /// Neither HTTPS nor the plain HTTP fallback worked.
    #[error("could not reach {registry} over HTTPS ({https}) nor over plain HTTP ({http}): check the registry address and that it is running and reachable")]
    Unreachable {
        /// The registry host.
        registry: String,
        /// Why HTTPS failed.
        https: String,
        /// Why plain HTTP failed.
        http: String,
    },
    /// The connection failed after it was made (reset, timeout, malformed HTTP).
    #[error("{method} {url} failed: {detail}")]
    Network {
        /// The HTTP method.
        method: String,
        /// The URL (without query).
        url: String,
        /// Why.
        detail: String,
    },
    /// The registry answered with an unexpected HTTP status.
    #[error("{method} {url}: registry answered {status}{detail}")]
    Status {
        /// The HTTP method.
        method: String,
        /// The URL (without query).
        url: String,
        /// The status code.
        status: u16,
        /// `: CODE: message` from the registry's error JSON, or a text excerpt; may be empty.
        detail: String,
        /// The error codes of the registry's error JSON, in order (empty when it sent none).
        codes: Vec<ErrorCode>,
    },
    /// A manifest or blob is not in the registry.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for.
        what: String,
    },
    /// Content does not hash to the digest it should have.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}; refusing to use it")]
    DigestMismatch {
        /// What was checked.
        what: String,
        /// The digest asked for or announced.
        expected: String,
        /// The digest of the bytes.
        actual: String,
    },
    /// Content is larger than we are willing to read or write.
    #[error("{what} is larger than the limit of {limit} bytes; refusing it")]
    TooLarge {
        /// What it was.
        what: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// A blob's body is not as long as its descriptor declares.
    #[error("{what} is not the {declared} bytes its descriptor declares ({detail}); refusing it")]
    SizeMismatch {
        /// What was read.
        what: String,
        /// The size the descriptor declares.
        declared: u64,
        /// What arrived instead.
        detail: String,
    },
    /// The registry broke the distribution protocol.
    #[error("unexpected answer from {registry}: {detail}")]
    Protocol {
        /// The registry host.
        registry: String,
        /// What was wrong.
        detail: String,
    },
    /// A manifest of a kind sigbridge does not handle (e.g. Docker schema 1).
    #[error("{what} has media type {media_type:?}, which sigbridge does not support (it reads OCI image manifests and indexes and Docker v2 manifests and manifest lists)")]
    UnsupportedMediaType {
        /// What was fetched.
        what: String,
        /// Its media type.
        media_type: String,
    },
    /// A tag or digest that cannot be put into a registry URL.
    #[error("invalid manifest reference {reference:?}: expected a tag ([A-Za-z0-9_.-], at most 128) or a sha256: digest")]
    InvalidReference {
        /// What was given.
        reference: String,
    },
    /// A docker/containers credentials file could not be used.
    #[error("cannot use registry credentials file {path}: {detail}")]
    CredentialsFile {
        /// The file.
        path: String,
        /// Why.
        detail: String,
    },
    /// A `docker-credential-*` helper failed.
    #[error("credential helper docker-credential-{helper} failed for {registry}: {detail}")]
    CredentialHelper {
        /// The helper name (without the `docker-credential-` prefix).
        helper: String,
        /// The registry.
        registry: String,
        /// Why (never the helper's standard output, which may hold a secret).
        detail: String,
    },
    /// A CA file given in the options could not be used.
    #[error("cannot use CA file {path}: {detail}")]
    CaFile {
        /// The file.
        path: String,
        /// Why.
        detail: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
}

impl RegistryError {
    /// Whether the thing asked for does not exist (404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, RegistryError::NotFound { .. })
    }

    /// Whether the registry's error answer carried `code` (e.g. `MANIFEST_BLOB_UNKNOWN`).
    pub fn has_code(&self, code: &ErrorCode) -> bool {
        self.codes().contains(code)
    }

    /// The error codes the registry's error answer carried, in order (empty for failures that
    /// were not an error answer, or one without codes).
    pub fn codes(&self) -> &[ErrorCode] {
        match self {
            RegistryError::Status { codes, .. } => codes,
            _ => &[],
        }
    }

    /// Whether the registry refused our credentials or their permissions (401/403).
    pub fn is_auth(&self) -> bool {
        matches!(
            self,
            RegistryError::Unauthorized { .. } | RegistryError::Forbidden { .. }
        )
    }

    /// The reason alone, without advice (for combining two failures in one message).
    pub(crate) fn reason(&self) -> String {
        match self {
            RegistryError::Connect { detail, .. } => detail.clone(),
            RegistryError::Certificate { detail, .. } => {
                format!("certificate not accepted: {detail}")
            }
            RegistryError::Tls { detail, .. } => format!("TLS failed: {detail}"),
            other => other.to_string(),
        }
    }

    /// Whether this failed below HTTP (TCP, TLS), so another scheme might work.
    pub(crate) fn is_transport(&self) -> bool {
        matches!(
            self,
            RegistryError::Certificate { .. }
                | RegistryError::Tls { .. }
                | RegistryError::Connect { .. }
                | RegistryError::Network { .. }
        )
    }
}

/// An error code from the distribution error JSON (`{"errors":[{"code":…}]}`): the OCI
/// distribution spec's codes, plus the ones Docker's registry adds. Codes are matched exactly
/// (they are upper case by spec); anything else is kept as [`ErrorCode::Unknown`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// `BLOB_UNKNOWN`: a blob is not in the repository.
    BlobUnknown,
    /// `BLOB_UPLOAD_INVALID`: the upload failed or was rejected.
    BlobUploadInvalid,
    /// `BLOB_UPLOAD_UNKNOWN`: no such upload session.
    BlobUploadUnknown,
    /// `DIGEST_INVALID`: the content does not match its digest (docker-registry also says
    /// this for a manifest whose blob link it cannot read).
    DigestInvalid,
    /// `MANIFEST_BLOB_UNKNOWN`: a manifest references a blob the repository lacks.
    ManifestBlobUnknown,
    /// `MANIFEST_INVALID`: the manifest is malformed or fails validation.
    ManifestInvalid,
    /// `MANIFEST_UNKNOWN`: no such manifest.
    ManifestUnknown,
    /// `MANIFEST_UNVERIFIED` (Docker): a schema 1 signature did not verify.
    ManifestUnverified,
    /// `NAME_INVALID`: the repository name is invalid.
    NameInvalid,
    /// `NAME_UNKNOWN`: no such repository.
    NameUnknown,
    /// `SIZE_INVALID`: the content length does not match.
    SizeInvalid,
    /// `TAG_INVALID` (Docker): the tag in the manifest does not match the URL.
    TagInvalid,
    /// `UNAUTHORIZED`: authentication required.
    Unauthorized,
    /// `DENIED`: access denied.
    Denied,
    /// `UNSUPPORTED`: the operation is not supported.
    Unsupported,
    /// `TOOMANYREQUESTS`: rate limited.
    TooManyRequests,
    /// `RANGE_INVALID` (Docker): a chunked upload's range is wrong.
    RangeInvalid,
    /// `PAGINATION_NUMBER_INVALID` (Docker): a bad page size.
    PaginationNumberInvalid,
    /// Any other code, as sent.
    Unknown(String),
}

impl ErrorCode {
    /// The code for `code` as the registry spelled it.
    pub fn parse(code: &str) -> Self {
        match code {
            "BLOB_UNKNOWN" => Self::BlobUnknown,
            "BLOB_UPLOAD_INVALID" => Self::BlobUploadInvalid,
            "BLOB_UPLOAD_UNKNOWN" => Self::BlobUploadUnknown,
            "DIGEST_INVALID" => Self::DigestInvalid,
            "MANIFEST_BLOB_UNKNOWN" => Self::ManifestBlobUnknown,
            "MANIFEST_INVALID" => Self::ManifestInvalid,
            "MANIFEST_UNKNOWN" => Self::ManifestUnknown,
            "MANIFEST_UNVERIFIED" => Self::ManifestUnverified,
            "NAME_INVALID" => Self::NameInvalid,
            "NAME_UNKNOWN" => Self::NameUnknown,
            "SIZE_INVALID" => Self::SizeInvalid,
            "TAG_INVALID" => Self::TagInvalid,
            "UNAUTHORIZED" => Self::Unauthorized,
            "DENIED" => Self::Denied,
            "UNSUPPORTED" => Self::Unsupported,
            "TOOMANYREQUESTS" => Self::TooManyRequests,
            "RANGE_INVALID" => Self::RangeInvalid,
            "PAGINATION_NUMBER_INVALID" => Self::PaginationNumberInvalid,
            other => Self::Unknown(other.to_string()),
        }
    }
}

/// What a registry's error body says: its codes (typed) and its text (`CODE: message` per
/// entry of the distribution error JSON, or the body itself when it is not that JSON).
pub(crate) struct ErrorBody {
    pub codes: Vec<ErrorCode>,
    pub text: String,
}

impl ErrorBody {
    pub fn parse(body: &[u8]) -> Self {
        #[derive(serde::Deserialize)]
        struct Errors {
            errors: Vec<ErrorEntry>,
        }
        #[derive(serde::Deserialize)]
        struct ErrorEntry {
            #[serde(default)]
            code: String,
            #[serde(default)]
            message: String,
        }
        match serde_json::from_slice::<Errors>(body) {
            Ok(e) if !e.errors.is_empty() => Self {
                codes: e
                    .errors
                    .iter()
                    .filter(|e| !e.code.is_empty())
                    .map(|e| ErrorCode::parse(&e.code))
                    .collect(),
                text: e
                    .errors
                    .iter()
                    .map(|e| match (e.code.is_empty(), e.message.is_empty()) {
                        (false, false) => format!("{}: {}", e.code, e.message),
                        (false, true) => e.code.clone(),
                        _ => e.message.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            },
            _ => Self {
                codes: Vec::new(),
                text: String::from_utf8_lossy(body).into_owned(),
            },
        }
    }
}

/// How to log in to `registry` (Docker Hub's login takes no argument).
pub(crate) fn login_command(registry: &str) -> String {
    if registry == crate::reference::DEFAULT_REGISTRY {
        "docker login".to_string()
    } else {
        format!("docker login {registry}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unauthorized_message_is_actionable() {
        let e = RegistryError::Unauthorized {
            registry: "127.0.0.1:5000".into(),
            detail: "anonymous".into(),
            login: login_command("127.0.0.1:5000"),
        };
        assert_eq!(
            e.to_string(),
            "authentication to 127.0.0.1:5000 failed (anonymous): run `docker login 127.0.0.1:5000` or set SIGBRIDGE_REGISTRY_USERNAME/SIGBRIDGE_REGISTRY_PASSWORD"
        );
        assert_eq!(login_command("index.docker.io"), "docker login");
    }

    #[test]
    fn error_codes_are_typed() {
        let body = ErrorBody::parse(
            br#"{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry"},{"code":"X_CUSTOM"},{"message":"no code"}]}"#,
        );
        assert_eq!(
            body.codes,
            [
                ErrorCode::ManifestBlobUnknown,
                ErrorCode::Unknown("X_CUSTOM".into())
            ]
        );
        assert_eq!(
            body.text,
            "MANIFEST_BLOB_UNKNOWN: blob unknown to registry; X_CUSTOM; no code"
        );
        let e = RegistryError::Status {
            method: "PUT".into(),
            url: "http://r/v2/x/manifests/t".into(),
            status: 400,
            detail: format!(": {}", body.text),
            codes: body.codes,
        };
        assert!(e.has_code(&ErrorCode::ManifestBlobUnknown));
        // A substring is not a code: BLOB_UNKNOWN is a different error from MANIFEST_BLOB_UNKNOWN.
        assert!(!e.has_code(&ErrorCode::BlobUnknown));
        let text = ErrorBody::parse(b"<html>BLOB_UNKNOWN</html>");
        assert!(text.codes.is_empty());
        assert!(!RegistryError::NotFound { what: "x".into() }.has_code(&ErrorCode::BlobUnknown));
    }
}
