//! `sigbridge serve`: a self-hosted signing service that speaks the SignPath-style REST API
//! sigbridge's own SignPath client uses, puts each request before a policy's approvers, signs
//! with a sigbridge signer the binary opens, and keeps requests, approvals and a hash-chained
//! audit log in SQLite.
//!
//! This crate knows nothing of how signers are opened: the binary opens each policy's signer
//! through the provider table and hands it over, which keeps this crate free of the library
//! (no dependency cycle) and of every provider.
//!
//! Built: TLS (rustls) or plain HTTP on loopback, API tokens with per-token rate limits,
//! approvals over the API, the policy certificate route, approver accounts (argon2id password
//! hashes) and named groups, and the approvers' web page ([`web`]: server-rendered, sessions in
//! SQLite, CSRF-checked forms, or identities from a trusted reverse proxy's header). See
//! docs/serve.md for what is not built yet.

#![forbid(unsafe_code)]

pub mod artifact;
pub mod audit;
pub mod certificate;
pub mod config;
mod decide;
mod http;
mod rate;
pub mod store;
pub mod tls;
pub mod token;
pub mod web;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sigbridge_signer::{normalise_signature, SignRequest, Signer};

pub use config::{ConfigError, ServeConfig};
pub use store::{Store, StoreError};

/// Why the service cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The state database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Plain HTTP on an address that is not loopback.
    #[error("refusing to listen on {0} without TLS: plain HTTP is served on loopback addresses only (127.0.0.1, ::1); set tls_cert and tls_key in the configuration to listen elsewhere")]
    NotLoopback(SocketAddr),
    /// The TLS certificate or key is unusable.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// A policy's certificate is unusable.
    #[error(transparent)]
    Certificate(#[from] certificate::CertificateError),
    /// A policy has no signer.
    #[error("no signer was opened for policy {0}")]
    MissingSigner(String),
    /// Binding or serving failed.
    #[error("cannot listen on {addr}: {source}")]
    Io {
        /// Where.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// The key for a policy in [`Signers`]: `project/slug`, lower-case.
pub fn policy_key(project: &str, slug: &str) -> String {
    format!(
        "{}/{}",
        project.to_ascii_lowercase(),
        slug.to_ascii_lowercase()
    )
}

/// The opened signer of each policy, by [`policy_key`].
pub type Signers = BTreeMap<String, Arc<dyn Signer>>;

/// Unix seconds now.
pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The running service's shared state.
pub(crate) struct Service {
    pub(crate) config: ServeConfig,
    pub(crate) store: Store,
    pub(crate) signers: Signers,
    pub(crate) expire_after: Duration,
    pub(crate) rate: rate::RateLimiter,
    pub(crate) web: web::WebState,
    /// DER of each policy's configured certificate, by [`policy_key`].
    pub(crate) certificates: BTreeMap<String, Vec<u8>>,
}

impl Service {
    /// Sign an approved request and store the result; failures end the request as `Failed`.
    pub(crate) async fn process(self: Arc<Self>, id: String) {
        let outcome = self.sign_request(&id).await;
        let stored = match &outcome {
            Ok((zip, detail)) => self.store.finish(&id, Ok((zip, detail.clone())), now()),
            Err(reason) => {
                tracing::warn!(signing_request = %id, "signing failed: {reason}");
                self.store.finish(&id, Err(reason), now())
            }
        };
        if let Err(e) = stored {
            tracing::error!(signing_request = %id, "cannot store the outcome: {e}");
        }
    }

    async fn sign_request(&self, id: &str) -> Result<(Vec<u8>, serde_json::Value), String> {
        let row = self.store.get(id).map_err(|e| e.to_string())?;
        let signer = self
            .signers
            .get(&policy_key(&row.project, &row.policy))
            .ok_or_else(|| format!("policy {}/{} has no signer", row.project, row.policy))?;
        let unsigned = self.store.unsigned(id).map_err(|e| e.to_string())?;
        let files = artifact::read_upload(&unsigned)?;
        // The last line of defence: nothing the strict readers refuse is ever signed, even a
        // request stored and approved by a version that did not check at submit.
        artifact::read_claims(&files).map_err(|refused| format!("refusing to sign: {refused}"))?;
        let payloads: Vec<Vec<u8>> = files
            .iter()
            .filter(|(n, _)| artifact::signs(n))
            .map(|(_, b)| b.clone())
            .collect();
        let key = signer.public_key().await.map_err(|e| e.to_string())?;
        let raw = signer
            .sign(&payloads, &SignRequest::default())
            .await
            .and_then(|o| o.into_signed())
            .map_err(|e| format!("the signer failed: {e}"))?;
        if raw.len() != payloads.len() {
            return Err(format!(
                "the signer returned {} signatures for {} payloads",
                raw.len(),
                payloads.len()
            ));
        }
        let signatures = raw
            .iter()
            .map(|s| normalise_signature(&key, s).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        let zip = artifact::signed_zip(&files, &signatures)?;
        let detail = serde_json::json!({ "signed": payload_digests(&files) });
        Ok((zip, detail))
    }
}

/// `[{file, sha256}]` of the files that are signed: what the audit log records.
pub(crate) fn payload_digests(files: &[(String, Vec<u8>)]) -> serde_json::Value {
    use sha2::Digest as _;
    files
        .iter()
        .filter(|(n, _)| artifact::signs(n))
        .map(|(n, b)| {
            serde_json::json!({ "file": n, "sha256": hex::encode(sha2::Sha256::digest(b)) })
        })
        .collect()
}

/// A bound listening socket and, when configured, its TLS configuration.
pub struct Bound {
    listener: tokio::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl Bound {
    /// The address actually bound (the port when `listen` asked for port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// `https` with TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }
}

/// Load the TLS certificate and key if configured, then bind `config.listen` (any address
/// with TLS, loopback only without).
pub async fn bind(config: &ServeConfig) -> Result<Bound, ServeError> {
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(tls::server_config(cert, key)?),
        _ => None,
    };
    if tls.is_none() && !config.listen.ip().is_loopback() {
        return Err(ServeError::NotLoopback(config.listen));
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Io {
            addr: config.listen,
            source,
        })?;
    Ok(Bound { listener, tls })
}

/// A service whose configuration, signers, certificates, database and web settings have all
/// been checked and opened: what [`run`] serves. Preparing before binding means every start-up
/// error is reported before the service says it is listening.
pub struct Prepared {
    service: Arc<Service>,
}

/// Check and open everything `config` names (its signers given by the caller).
pub async fn prepare(config: ServeConfig, signers: Signers) -> Result<Prepared, ServeError> {
    for p in &config.policies {
        if !signers.contains_key(&policy_key(&p.project, &p.slug)) {
            return Err(ServeError::MissingSigner(format!(
                "{}/{}",
                p.project, p.slug
            )));
        }
    }
    let certificates = load_certificates(&config, &signers).await?;
    let store = open_store(&config.database)?;
    let expire_after = config.expire_after()?;
    let rate = rate::RateLimiter::new(config.max_requests_per_minute);
    let web = web::WebState::new(&config)?;
    Ok(Prepared {
        service: Arc::new(Service {
            config,
            store,
            signers,
            expire_after,
            rate,
            web,
            certificates,
        }),
    })
}

/// [`prepare`] and [`run`] in one step.
pub async fn serve(
    bound: Bound,
    config: ServeConfig,
    signers: Signers,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    run(bound, prepare(config, signers).await?, shutdown).await
}

/// Serve `prepared` on `bound` until `shutdown` completes: requests approved but not signed
/// before a stop are signed first, and expired requests are swept periodically.
pub async fn run(
    bound: Bound,
    prepared: Prepared,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let service = prepared.service;
    for id in service.store.in_progress()? {
        tokio::spawn(service.clone().process(id));
    }
    let sweeper = tokio::spawn(expire_periodically(service.clone()));
    let addr = bound.local_addr().map_err(|source| ServeError::Io {
        addr: service.config.listen,
        source,
    })?;
    let app = http::router(service).into_make_service_with_connect_info::<SocketAddr>();
    let result = match bound.tls {
        Some(tls) => {
            use axum::serve::ListenerExt as _;
            let listener = tls::TlsListener::new(bound.listener, tls)
                .map_err(|source| ServeError::Io { addr, source })?
                // tap_io only makes axum's ConnectInfo<SocketAddr> available for this listener.
                .tap_io(|_| {});
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
        None => {
            axum::serve(bound.listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
    .map_err(|source| ServeError::Io { addr, source });
    sweeper.abort();
    result
}

/// Each policy's `certificate`, checked against its signer's key.
async fn load_certificates(
    config: &ServeConfig,
    signers: &Signers,
) -> Result<BTreeMap<String, Vec<u8>>, ServeError> {
    let mut out = BTreeMap::new();
    for p in &config.policies {
        let Some(path) = &p.certificate else { continue };
        let name = format!("{}/{}", p.project, p.slug);
        let key = policy_key(&p.project, &p.slug);
        let signer = signers
            .get(&key)
            .ok_or_else(|| ServeError::MissingSigner(name.clone()))?;
        let public =
            signer
                .public_key()
                .await
                .map_err(|e| certificate::CertificateError::SignerKey {
                    policy: name.clone(),
                    signer: p.signer.clone(),
                    reason: e.to_string(),
                })?;
        out.insert(key, certificate::load(&name, &p.signer, path, &public)?);
    }
    Ok(out)
}

async fn expire_periodically(service: Arc<Service>) {
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    loop {
        tick.tick().await;
        if let Err(e) = service.store.expire_due(now()) {
            tracing::warn!("cannot expire old signing requests: {e}");
        }
    }
}

/// Open the state database (for the audit commands too).
pub fn open_store(path: &Path) -> Result<Store, StoreError> {
    Store::open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{status, NewRequest};

    fn signer() -> (Arc<dyn Signer>, p256::ecdsa::VerifyingKey) {
        use p256::pkcs8::{EncodePrivateKey as _, LineEnding};
        let secret = p256::SecretKey::random(&mut rand_core::OsRng);
        let pem = secret.to_pkcs8_pem(LineEnding::LF).unwrap();
        let local = sigbridge_local::KeyFile::parse(pem.as_bytes(), "test key")
            .unwrap()
            .decrypt(None)
            .unwrap();
        (Arc::new(local), secret.public_key().into())
    }

    const GOOD: &str = r#"{"critical":{"identity":{"docker-reference":"registry.test/app"},"image":{"docker-manifest-digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111"},"type":"cosign container image signature"},"optional":null}"#;

    /// Store `payload` as a request approved by an earlier run that stopped before signing,
    /// start the service, and wait until the request is final: its row, the store and the key.
    async fn left_approved_then_started(
        payload: &[u8],
    ) -> (store::RequestRow, Store, p256::ecdsa::VerifyingKey) {
        let dir = tempfile::tempdir().unwrap();
        let config: ServeConfig = toml::from_str(&format!(
            r#"listen = "127.0.0.1:0"
database = "{}"
organization_id = "org"
[[identities]]
name = "ci"
token_sha256 = "{}"
[[identities]]
name = "alice"
token_sha256 = "{}"
[[policies]]
project = "p"
slug = "s"
signer = "unused: the test hands the signer over"
submitters = ["ci"]
approvers = ["alice"]
"#,
            dir.path().join("state.db").display(),
            token::new_token().1,
            token::new_token().1,
        ))
        .unwrap();
        let zip = artifact::signed_zip(&[("payload.json".into(), payload.to_vec())], &[]).unwrap();
        // The earlier run: submitted, approved, stopped before it signed.
        {
            let store = Store::open(&config.database).unwrap();
            store
                .insert(&NewRequest {
                    id: "r1",
                    project: "p",
                    policy: "s",
                    submitter: "ci",
                    submitted_from: "127.0.0.1:1",
                    description: None,
                    parameters: "{}",
                    artifact_name: "payload.json.zip",
                    unsigned: &zip,
                    status: status::WAITING,
                    now: now(),
                    expires_at: now() + 3600,
                    audit_detail: serde_json::json!({}),
                })
                .unwrap();
            assert!(store
                .approve("r1", "alice", 1, now(), store::Via::Api)
                .unwrap());
        }
        let (signer, key) = signer();
        let signers: Signers = [(policy_key("p", "s"), signer)].into_iter().collect();
        let listener = bind(&config).await.unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, config.clone(), signers, async move {
            let _ = stopped.await;
        }));
        let reader = Store::open(&config.database).unwrap();
        let mut waited = Duration::ZERO;
        while !status::is_final(&reader.get("r1").unwrap().status) {
            assert!(waited < Duration::from_secs(30), "never finished");
            tokio::time::sleep(Duration::from_millis(20)).await;
            waited += Duration::from_millis(20);
        }
        let _ = stop.send(());
        server.await.unwrap().unwrap();
        assert!(audit::verify_entries(&reader.audit_entries().unwrap()).is_ok());
        (reader.get("r1").unwrap(), reader, key)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_approved_request_left_unsigned_by_a_stop_is_signed_at_the_next_start() {
        use p256::ecdsa::signature::Verifier as _;
        let (row, reader, key) = left_approved_then_started(GOOD.as_bytes()).await;
        assert_eq!(row.status, status::COMPLETED);
        let signed = reader.signed("r1").unwrap().unwrap();
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(signed)).unwrap();
        let mut der = Vec::new();
        std::io::Read::read_to_end(&mut archive.by_name("payload.json.sig").unwrap(), &mut der)
            .unwrap();
        let sig = p256::ecdsa::Signature::from_der(&der).unwrap();
        key.verify(GOOD.as_bytes(), &sig).unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_approved_request_the_strict_readers_refuse_is_never_signed() {
        // Stored and approved by a version that did not check at submit: two spellings of
        // `critical`, which cosign and a lenient reader resolve differently.
        let evil = format!(
            r#"{{"critical":{},"Critical":{}}}"#,
            &GOOD[12..GOOD.len() - 17],
            &GOOD[12..GOOD.len() - 17]
        );
        let (row, reader, _) = left_approved_then_started(evil.as_bytes()).await;
        assert_eq!(row.status, status::FAILED);
        assert!(reader.signed("r1").unwrap().is_none());
    }
}
