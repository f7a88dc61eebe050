//! A SignPath-compatible signing service for sigbridge's end-to-end tests and demo.
//!
//! It follows the documented REST API (see `shared/reference/signpath-api.md` and
//! docs/signpath.md), not what sigbridge's client happens to send:
//! - `Authorization: Bearer TOKEN` on every call (401 otherwise); the organisation id in the
//!   path (403 for another one when an organisation is configured);
//! - `POST /API/v1/{org}/SigningRequests/SubmitWithArtifact` (and the deprecated
//!   `POST …/SigningRequests`): multipart `projectSlug`, `signingPolicySlug`,
//!   `artifactConfigurationSlug`, `description`, `parameters.<name>` (field names
//!   case-insensitive, `Parameters[name]` too) and the `artifact` file part; `201 Created` with
//!   `Location`;
//! - `GET …/SigningRequests/{id}` (the documented data), `…/{id}/Status`,
//!   `…/{id}/SignedArtifact` (400 while not completed, 404 when there will be none),
//!   `…/{id}/UnsignedArtifact`, `…/{id}/X509Certificate` (also under `v1-pre`), and
//!   `…/Projects/{p}/SigningPolicies/{s}/Certificate/X509Certificate`;
//! - `POST …/{id}/Cancel`, and the approval step `POST …/{id}/Approve` and `…/{id}/Deny`
//!   (SignPath documents that approve/deny REST routes exist but their names are only in its
//!   swagger; these names are this server's guess);
//! - the signed zip holds every uploaded file plus `NAME.sig` (binary raw signature) for each
//!   legacy payload (`payload.json`, `payloads/*.json`) and each DSSE PAE (`payload.pae`,
//!   `payloads/*.pae`), as the `create-raw-signature` artifact configuration with
//!   `output-file-name="${file.name}.sig"` in docs/signpath.md does (see `artifact_config`).
//!
//! Switches ([`Faults`], [`Behaviour`]) inject 429 with `Retry-After`, 503, dropped
//! connections, slow downloads, processing failures, odd signature encodings, signatures from
//! another key, and hostile or broken zips.

#![forbid(unsafe_code)]
// Handlers return `Result<_, Response>`; boxing every error response buys nothing here.
#![allow(clippy::result_large_err)]

mod artifact_config;
mod cert;
mod routes;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use sigbridge_local::LocalSigner;

pub use artifact_config::PATTERNS as ARTIFACT_CONFIGURATION_PATTERNS;
pub use cert::{self_signed, CertError};

/// Whether requests wait for a person.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Approval {
    /// Requests wait in `WaitingForApproval` until `…/Approve` or `…/Deny`.
    #[default]
    Manual,
    /// Requests are processed as soon as they arrive.
    Auto,
}

/// `Retry-After` on injected 429/503 answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RetryAfter {
    /// No header.
    #[default]
    None,
    /// `Retry-After: N` (seconds).
    Seconds(u64),
    /// `Retry-After: <HTTP-date N seconds from now>`.
    HttpDate(u64),
}

/// Which calls the injected faults hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FaultTarget {
    /// Every call.
    #[default]
    All,
    /// Only GETs (status polls, downloads, certificates).
    Gets,
    /// Only submits.
    Submits,
}

/// Injected failures, consumed in order: first the 429s, then the 503s, then the dropped
/// connections. A dropped submit is processed first (the request exists) and then the
/// connection is closed without an answer: the "outcome unknown" case.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// How many calls get `429 Too Many Requests`.
    pub too_many_requests: u32,
    /// How many calls get `503 Service Unavailable`.
    pub service_unavailable: u32,
    /// `Retry-After` on those answers.
    pub retry_after: RetryAfter,
    /// How many connections are closed without an answer.
    pub drop_connections: u32,
    /// Which calls are hit.
    pub target: FaultTarget,
    /// Send signed artifacts in small chunks with this pause between them.
    pub slow_download: Option<Duration>,
}

/// How signatures are encoded in the signed zip.
#[derive(Clone, Debug, Default)]
pub enum SignatureFormat {
    /// ASN.1 DER (ECDSA) / PKCS#1 (RSA), binary.
    #[default]
    Der,
    /// Raw `r||s` (ECDSA P-256/P-384), binary.
    RawRs,
    /// Base64 text of the DER signature.
    Base64,
    /// A valid signature, but made with another key.
    OtherKey(Arc<LocalSigner>),
    /// Random bytes.
    Garbage,
}

/// What the signed zip looks like.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SignedZip {
    /// As documented.
    #[default]
    Normal,
    /// An extra `../escape.sig` entry.
    Traversal,
    /// An absolute `/tmp/escape.sig` entry.
    Absolute,
    /// Each `.sig` entry is 8 MiB of zeros (compresses to a few KiB).
    HugeEntry,
    /// The `.sig` entries are missing.
    MissingSignature,
    /// An unexpected extra file.
    ExtraEntry,
    /// The payload copies are changed.
    ModifiedPayload,
    /// Only the `.sig` entries, no payload copies.
    SignaturesOnly,
    /// Not a zip at all.
    Garbage,
}

/// How requests are processed.
#[derive(Clone, Debug, Default)]
pub struct Behaviour {
    /// Signature encoding.
    pub signature: SignatureFormat,
    /// Zip layout.
    pub zip: SignedZip,
    /// Processing ends in `Failed` (`ProcessingFailed`).
    pub fail_processing: bool,
    /// Time spent in `InProgress` after approval.
    pub processing_delay: Duration,
}

/// Everything the server needs.
pub struct ServerConfig {
    /// The signing key.
    pub signer: Arc<LocalSigner>,
    /// The only accepted API token.
    pub token: SecretString,
    /// The organisation id accepted in paths; any when `None`.
    pub organization_id: Option<String>,
    /// Manual or automatic approval.
    pub approval: Approval,
    /// Injected failures (changeable later with [`SignPathServer::set_faults`]).
    pub faults: Faults,
    /// Processing behaviour (changeable later with [`SignPathServer::set_behaviour`]).
    pub behaviour: Behaviour,
}

/// One signing request as the server holds it.
#[derive(Clone, Debug)]
pub struct RequestRecord {
    /// The id.
    pub id: String,
    /// The organisation it was submitted to.
    pub organization_id: String,
    /// `status`.
    pub status: String,
    /// `workflowStatus`.
    pub workflow_status: String,
    /// Form fields as received (lower-cased names), including `parameters.<name>`.
    pub fields: BTreeMap<String, String>,
    /// The uploaded file's name.
    pub artifact_name: String,
    /// The uploaded zip.
    pub unsigned: Vec<u8>,
    /// The signed zip, once completed.
    pub signed: Option<Vec<u8>>,
    /// When it was submitted.
    pub created: Instant,
}

impl RequestRecord {
    /// The files of the uploaded zip (directories left out), in zip order: what the artifact
    /// configuration was applied to. Empty when the upload is not a readable zip.
    pub fn unsigned_files(&self) -> Vec<(String, Vec<u8>)> {
        routes::zip_files(&self.unsigned).unwrap_or_default()
    }

    fn is_final(&self) -> bool {
        matches!(
            self.status.as_str(),
            "Completed" | "Failed" | "Denied" | "Canceled"
        )
    }
}

/// Counters of what the server saw.
#[derive(Debug, Default)]
pub struct Counters {
    /// Every HTTP request (including faulted ones).
    pub http_requests: AtomicUsize,
    /// Submit calls that reached the handler.
    pub submits: AtomicUsize,
    /// Status reads.
    pub status_reads: AtomicUsize,
    /// Signed artifact downloads served.
    pub downloads: AtomicUsize,
    /// Injected faults served.
    pub faults: AtomicUsize,
    /// Calls refused for a bad or missing token.
    pub unauthorised: AtomicUsize,
}

pub(crate) struct Shared {
    pub(crate) signer: Arc<LocalSigner>,
    pub(crate) token: SecretString,
    pub(crate) organization_id: Option<String>,
    pub(crate) approval: Approval,
    pub(crate) faults: Mutex<Faults>,
    pub(crate) behaviour: Mutex<Behaviour>,
    pub(crate) requests: Mutex<BTreeMap<String, RequestRecord>>,
    pub(crate) counters: Counters,
    pub(crate) certificate: Vec<u8>,
    pub(crate) base_url: String,
    /// The runtime serving requests (processing tasks run there, also when approval comes
    /// from a test thread).
    pub(crate) runtime: Mutex<Option<tokio::runtime::Handle>>,
}

/// A running server. Dropping it stops it.
pub struct SignPathServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Binding or the runtime failed.
    #[error("cannot start the server: {0}")]
    Io(#[from] std::io::Error),
    /// The certificate could not be made.
    #[error(transparent)]
    Cert(#[from] CertError),
}

impl SignPathServer {
    /// Start on 127.0.0.1 with a free port, in a thread of its own.
    pub fn start(config: ServerConfig) -> Result<Self, StartError> {
        Self::start_on(
            "127.0.0.1:0"
                .parse()
                .map_err(|e| std::io::Error::other(format!("{e}")))?,
            config,
        )
    }

    /// Start on `addr` in a thread of its own.
    pub fn start_on(addr: SocketAddr, config: ServerConfig) -> Result<Self, StartError> {
        let std_listener = std::net::TcpListener::bind(addr)?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let shared = Arc::new(make_shared(config, addr)?);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let serve_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("signpath-compatible-server".into())
            .spawn(move || {
                runtime.block_on(async move {
                    match tokio::net::TcpListener::from_std(std_listener) {
                        Ok(listener) => routes::serve(listener, serve_shared, rx).await,
                        Err(e) => tracing::error!("cannot use the listener: {e}"),
                    }
                });
            })?;
        Ok(Self {
            addr,
            shared,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// Serve on an already bound listener in the current runtime until `shutdown` fires (for
    /// the binary).
    pub async fn serve(
        listener: tokio::net::TcpListener,
        config: ServerConfig,
        shutdown: tokio::sync::oneshot::Receiver<()>,
    ) -> Result<(), StartError> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(make_shared(config, addr)?);
        routes::serve(listener, shared, shutdown).await;
        Ok(())
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A sigbridge signer URI for this server: `signpath+http://127.0.0.1:PORT/ORG/PROJECT/POLICY`.
    pub fn signer_uri(&self, org: &str, project: &str, policy: &str) -> String {
        format!("signpath+http://{}/{org}/{project}/{policy}", self.addr)
    }

    /// The DER certificate served for the key.
    pub fn certificate_der(&self) -> &[u8] {
        &self.shared.certificate
    }

    /// The public key PEM of the signing key.
    pub fn public_key_pem(&self) -> String {
        self.shared.signer.public_key().to_pem()
    }

    /// Counters of what the server saw.
    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    /// Number of submits that reached the handler.
    pub fn submits(&self) -> usize {
        self.shared.counters.submits.load(Ordering::SeqCst)
    }

    /// Every HTTP request seen, faulted ones included.
    pub fn http_requests(&self) -> usize {
        self.shared.counters.http_requests.load(Ordering::SeqCst)
    }

    /// Injected faults served.
    pub fn faults_served(&self) -> usize {
        self.shared.counters.faults.load(Ordering::SeqCst)
    }

    /// A snapshot of every signing request, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        let guard = match self.shared.requests.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let mut v: Vec<RequestRecord> = guard.values().cloned().collect();
        v.sort_by_key(|r| r.created);
        v
    }

    /// Wait (polling, up to `limit`) until at least `n` requests exist; returns the requests.
    pub fn wait_for_requests(&self, n: usize, limit: Duration) -> Vec<RequestRecord> {
        let start = Instant::now();
        loop {
            let r = self.requests();
            if r.len() >= n || start.elapsed() > limit {
                return r;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Approve a waiting request (what an approver does).
    pub fn approve(&self, id: &str) -> Result<(), String> {
        routes::decide(&self.shared, id, true)
    }

    /// Deny a waiting request.
    pub fn deny(&self, id: &str) -> Result<(), String> {
        routes::decide(&self.shared, id, false)
    }

    /// Replace the injected faults.
    pub fn set_faults(&self, faults: Faults) {
        if let Ok(mut f) = self.shared.faults.lock() {
            *f = faults;
        }
    }

    /// Replace the processing behaviour (applies to requests processed from now on).
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        if let Ok(mut b) = self.shared.behaviour.lock() {
            *b = behaviour;
        }
    }
}

impl Drop for SignPathServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn make_shared(config: ServerConfig, addr: SocketAddr) -> Result<Shared, CertError> {
    let certificate = cert::self_signed(&config.signer, "SignPath-compatible test signing policy")?;
    Ok(Shared {
        signer: config.signer,
        token: config.token,
        organization_id: config.organization_id,
        approval: config.approval,
        faults: Mutex::new(config.faults),
        behaviour: Mutex::new(config.behaviour),
        requests: Mutex::new(BTreeMap::new()),
        counters: Counters::default(),
        certificate,
        base_url: format!("http://{addr}"),
        runtime: Mutex::new(None),
    })
}
