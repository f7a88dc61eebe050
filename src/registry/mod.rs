//! OCI distribution client: manifests and blobs over HTTPS (plain HTTP only for loopback or
//! when asked), with the authentication real registries use (anonymous, Basic, bearer-token
//! challenges) and credentials from where docker and podman keep them.
//!
//! It knows nothing of keys or signatures; `attach` and `verify` build on it.

mod challenge;
mod client;
mod credentials;
mod error;
pub mod manifest;
mod transport;

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;

pub use client::{RegistryClient, MAX_CA_FILE_SIZE, MAX_MANIFEST_SIZE};
pub use error::RegistryError;

use crate::reference::Digest;

/// How to reach and authenticate to registries.
#[derive(Clone, Debug)]
pub struct RegistryOptions {
    /// Extra PEM CA bundles trusted in addition to the system roots.
    pub ca_files: Vec<PathBuf>,
    /// Accept any certificate. Explicit opt-in only; a warning is logged.
    pub insecure_skip_tls_verify: bool,
    /// Allow plain HTTP for non-loopback registries when HTTPS fails below HTTP (loopback
    /// registries may always fall back).
    pub allow_http: bool,
    /// Username for every registry (overrides config files and helpers).
    pub username: Option<String>,
    /// Password for `username`.
    pub password: Option<secrecy::SecretString>,
    /// Credentials file to use instead of the defaults (`REGISTRY_AUTH_FILE`, then
    /// `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`).
    pub docker_config: Option<PathBuf>,
    /// `User-Agent` sent with every request.
    pub user_agent: String,
    /// Limit for one whole request (connect, send, read the answer).
    pub request_timeout: Duration,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        Self {
            ca_files: Vec::new(),
            insecure_skip_tls_verify: false,
            allow_http: false,
            username: None,
            password: None,
            docker_config: None,
            user_agent: format!("sigbridge/{}", env!("CARGO_PKG_VERSION")),
            request_timeout: Duration::from_secs(60),
        }
    }
}

/// What a manifest HEAD tells: enough to pin and size it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Descriptor {
    /// The manifest's media type.
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
}

/// A fetched manifest: its exact bytes, their digest and media type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchedManifest {
    /// The media type (from `Content-Type`, or the body when that is unhelpful).
    pub media_type: String,
    /// SHA-256 of `bytes`.
    pub digest: Digest,
    /// The manifest bytes, exactly as served.
    pub bytes: Bytes,
}
