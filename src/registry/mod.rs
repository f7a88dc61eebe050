//! OCI distribution client: manifests and blobs over HTTPS (plain HTTP only for loopback or
//! when asked), with the authentication real registries use (anonymous, Basic, bearer-token
//! challenges) and credentials from where docker and podman keep them.
//!
//! It knows nothing of keys or signatures; `attach` and `verify` build on it.

//!
//! Modules, each with one job (a module may use the ones listed before it):
//! - `error`: what can fail, and the registry's typed error codes;
//! - `endpoint`: which scheme reaches a registry (the probe) and the plain-HTTP rule;
//! - `transport`: the HTTP client, redirect policy and the one retry policy
//!   (`sigbridge-retry`);
//! - `auth`: challenges, credentials and the token cache;
//! - `client`: [`RegistryClient`] and the authenticated request;
//! - `operations`: manifest and blob operations on top of it;
//! - `manifest`: the manifest and index documents;
//! - `small_get`: one capped GET over HTTPS with the same trust (a key a vendor publishes).

mod auth;
mod client;
mod endpoint;
mod error;
pub mod manifest;
mod operations;
mod plain_http;
mod small_get;
mod transport;

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;

pub use client::RegistryClient;
pub use error::{ErrorCode, RegistryError};
pub use operations::MAX_REFERRERS_LISTED;
pub use small_get::{get_small, FetchError, FetchFailure};

/// Manifests larger than this are refused (the limit distribution and most registries apply).
pub const MAX_MANIFEST_SIZE: u64 = 4 * 1024 * 1024;
/// CA bundles larger than this are refused (the whole Mozilla bundle is about 220 KiB).
pub const MAX_CA_FILE_SIZE: u64 = 1024 * 1024;

/// The client's maps hold plain data that a panicking holder cannot leave half-updated, so a
/// poisoned lock is still usable.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

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
