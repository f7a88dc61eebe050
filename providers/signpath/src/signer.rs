//! [`SignPathSigner`]: the [`Signer`] over a SignPath-style service.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use sigbridge_signer::{
    Capabilities, PublicKey, SignOutcome, SignRequest, Signer, SignerError, SignerErrorKind,
    Ticket, Wait,
};
use tokio::sync::OnceCell;

use crate::artifact::{
    build_artifact, check_same_payloads, extract_signatures, Artifact, ExtractLimits,
};
use crate::client::{ClientError, SignPathClient};
use crate::config::SignPathConfig;
use crate::id::RequestId;
use crate::payload_kind::{inspect, PayloadInfo, PayloadKind};
use crate::progress::{Reporter, WaitReporter};
use crate::retry::{jitter, RetryPolicy};
use crate::status::{RequestStatus, Status};
use sigbridge_signer::format_elapsed;

/// How the signer waits and what it accepts.
#[derive(Clone, Debug)]
pub struct SignPathOptions {
    /// The signing request the run will collect (`sign --resume`): its certificate is the key
    /// signatures are checked with.
    pub resume: Option<RequestId>,
    /// Give up waiting for a final status after this long (the request stays on the service),
    /// unless the sign request names its own limit.
    pub wait_timeout: Duration,
    /// First poll delay (doubled up to `poll_max`, and reset when the status changes).
    pub poll_initial: Duration,
    /// Largest poll delay.
    pub poll_max: Duration,
    /// Retries of idempotent calls.
    pub retry: RetryPolicy,
    /// How waiting is shown.
    pub reporter: Reporter,
    /// Limits for the signed zip's content.
    pub limits: ExtractLimits,
    /// Largest signed or unsigned artifact download.
    pub max_download: u64,
    /// The `--signer` argument as the user gave it, already quoted for a shell, so the
    /// commands suggested in messages can be pasted as they are.
    pub signer_arg: Option<String>,
}

/// How long to wait for a final status, unless `sign --wait-timeout` says.
pub const WAIT_TIMEOUT_ENV: &str = "SIGBRIDGE_SIGNPATH_WAIT_TIMEOUT";

/// Default wait for a final status: long enough for a person to approve.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

impl Default for SignPathOptions {
    fn default() -> Self {
        Self {
            resume: None,
            wait_timeout: DEFAULT_WAIT_TIMEOUT,
            poll_initial: Duration::from_secs(2),
            poll_max: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            reporter: Reporter::Console,
            limits: ExtractLimits::default(),
            max_download: 64 * 1024 * 1024,
            signer_arg: None,
        }
    }
}

impl SignPathOptions {
    /// Apply `SIGBRIDGE_SIGNPATH_WAIT_TIMEOUT`, `SIGBRIDGE_SIGNPATH_POLL_INTERVAL_MS` and
    /// `SIGBRIDGE_SIGNPATH_POLL_MAX_MS` from `env`. Short intervals also shorten the retry
    /// backoff, so tests need not wait for real seconds.
    pub fn with_env(mut self, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, String> {
        let ms = |name: &str| -> Result<Option<Duration>, String> {
            match env(name) {
                None => Ok(None),
                Some(v) if v.trim().is_empty() => Ok(None),
                Some(v) => v
                    .trim()
                    .parse::<u64>()
                    .map(|n| Some(Duration::from_millis(n.max(1))))
                    .map_err(|_| format!("{name}={v:?} is not a number of milliseconds")),
            }
        };
        if let Some(d) = ms("SIGBRIDGE_SIGNPATH_POLL_INTERVAL_MS")? {
            self.poll_initial = d;
            self.poll_max = self.poll_max.min(d * 15);
            self.retry.base = self.retry.base.min(d);
            self.retry.max_delay = self.retry.max_delay.min(d * 15);
        }
        if let Some(d) = ms("SIGBRIDGE_SIGNPATH_POLL_MAX_MS")? {
            self.poll_max = d.max(self.poll_initial);
        }
        if let Some(t) = env(WAIT_TIMEOUT_ENV).filter(|t| !t.trim().is_empty()) {
            self.wait_timeout = sigbridge_signer::parse_duration(&t)
                .map_err(|e| format!("{WAIT_TIMEOUT_ENV}: {e}"))?;
        }
        Ok(self)
    }
}

/// Signs through a SignPath-style REST service.
pub struct SignPathSigner {
    client: SignPathClient,
    options: SignPathOptions,
    key: OnceCell<PublicKey>,
}

impl std::fmt::Debug for SignPathSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignPathSigner")
            .field("client", &self.client)
            .field("resume", &self.options.resume)
            .finish_non_exhaustive()
    }
}

fn err(kind: SignerErrorKind, message: impl Into<String>) -> SignerError {
    SignerError::new(kind, message)
}

fn client_err(e: ClientError) -> SignerError {
    SignerError::wrap(e.kind(), e)
}

/// The digests a request's zip was built for, in submission order and each once (`--format
/// both` has two files per image), from its entry names (`payloads/NNN-sha256-HEX.json` or
/// `.pae`); empty when the names do not carry them (one payload).
fn digests_in_zip(zip: &[u8]) -> Vec<String> {
    let Ok(mut archive) = zip::ZipArchive::new(std::io::Cursor::new(zip)) else {
        return Vec::new();
    };
    let mut named: Vec<(u32, String)> = (0..archive.len())
        .filter_map(|i| {
            let file = archive.by_index_raw(i).ok()?;
            let rest = file.name().strip_prefix("payloads/")?;
            let rest = [".json", ".pae"]
                .iter()
                .find_map(|ext| rest.strip_suffix(ext))?;
            let (n, hex) = rest.split_once("-sha256-")?;
            Some((n.parse().ok()?, format!("sha256:{hex}")))
        })
        .collect();
    named.sort();
    let mut seen = std::collections::HashSet::new();
    named
        .into_iter()
        .filter_map(|(_, d)| seen.insert(d.clone()).then_some(d))
        .collect()
}

/// How many files of each kind a request's zip holds: `2 .json, 2 .pae`.
fn kinds_in_zip(zip: &[u8]) -> String {
    let Ok(mut archive) = zip::ZipArchive::new(std::io::Cursor::new(zip)) else {
        return "an unreadable zip".to_string();
    };
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..archive.len() {
        if let Ok(file) = archive.by_index_raw(i) {
            if let Some((_, ext)) = file.name().rsplit_once('.').filter(|_| !file.is_dir()) {
                *counts.entry(format!(".{ext}")).or_default() += 1;
            }
        }
    }
    counts
        .iter()
        .map(|(ext, n)| format!("{n} {ext}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What IMAGE... in a suggested resume command stands for.
const SAME_IMAGES: &str = "the same images, annotations and identity, in the same order";

/// At most 20 items, then "and N more".
fn short_list(items: &[String]) -> String {
    let mut shown: Vec<&str> = items.iter().take(20).map(String::as_str).collect();
    let more;
    if items.len() > 20 {
        more = format!("and {} more", items.len() - 20);
        shown.push(&more);
    }
    shown.join(", ")
}

fn key_from_bytes(bytes: &[u8], origin: &str) -> Result<PublicKey, SignerError> {
    // PEM is text starting (after optional white space) with a BEGIN line; DER certificates
    // start with a SEQUENCE tag (0x30) and may contain any byte, '-' included, so nothing
    // else may be used to tell them apart.
    let trimmed = bytes.trim_ascii_start();
    let parsed = if trimmed.starts_with(b"-----BEGIN") {
        std::str::from_utf8(bytes)
            .map_err(|_| {
                err(
                    SignerErrorKind::InvalidKey,
                    format!("{origin} is not PEM text"),
                )
            })
            .and_then(|t| {
                PublicKey::from_pem(t)
                    .map_err(|e| err(SignerErrorKind::InvalidKey, format!("{origin}: {e}")))
            })
    } else {
        PublicKey::from_certificate_der(bytes)
            .map_err(|e| err(SignerErrorKind::InvalidKey, format!("{origin}: {e}")))
    };
    parsed
}

impl SignPathSigner {
    /// A signer for `config`.
    pub fn new(config: SignPathConfig, options: SignPathOptions) -> Result<Self, SignerError> {
        let client = SignPathClient::new(config, options.retry.clone()).map_err(client_err)?;
        Ok(Self {
            client,
            options,
            key: OnceCell::new(),
        })
    }

    /// `sigbridge signpath SUB --signer SIGNER ID`, or `sigbridge sign --signer SIGNER --resume
    /// ID IMAGE...` for `resume`, ready to paste.
    fn command(&self, sub: &str, id: &RequestId) -> String {
        let signer = self.options.signer_arg.as_deref().unwrap_or("SIGNER");
        match sub {
            "resume" => format!("sigbridge sign --signer {signer} --resume {id} IMAGE..."),
            _ => format!("sigbridge signpath {sub} --signer {signer} {id}"),
        }
    }

    /// `client_err`, plus how to pick the request up again.
    fn client_err_for(&self, id: &RequestId, e: ClientError) -> SignerError {
        err(
            e.kind(),
            format!(
                "{e} (signing request {id} is unaffected: check it with `{}` and continue with `{}`, {SAME_IMAGES})",
                self.command("status", id),
                self.command("resume", id),
            ),
        )
    }

    /// Why a resumed request does not hold our payloads, and what to give instead: the order
    /// decides which payload is which, so the same images in another order do not match.
    fn resume_mismatch(
        &self,
        id: &RequestId,
        unsigned: &[u8],
        artifact: &Artifact,
        e: &dyn std::fmt::Display,
    ) -> SignerError {
        let submitted = digests_in_zip(unsigned);
        let ours = digests_in_zip(&artifact.zip);
        let advice = if submitted.is_empty() {
            "give the same images, annotations and identity as when it was submitted, in the same order".to_string()
        } else {
            let mut a = submitted.clone();
            let mut b = ours.clone();
            a.sort();
            b.sort();
            if submitted == ours {
                format!(
                    "it holds these images in this order, so the files differ in format, annotations or identity: give the same --format, -a and --identity as when it was submitted (it holds {})",
                    kinds_in_zip(unsigned)
                )
            } else if a == b {
                format!(
                    "it holds the same images in another order, and the order matters: give them in the order they were submitted: {}",
                    short_list(&submitted)
                )
            } else {
                format!(
                    "give the same images, annotations and identity as when it was submitted, in the same order; it was submitted for: {}",
                    short_list(&submitted)
                )
            }
        };
        err(
            SignerErrorKind::BadSignature,
            format!("cannot resume signing request {id}: {e}; {advice}"),
        )
    }

    /// The HTTP client (for `status` and `cancel`).
    pub fn client(&self) -> &SignPathClient {
        &self.client
    }

    async fn load_key(&self) -> Result<PublicKey, SignerError> {
        let config = self.client.config();
        if let Some(path) = &config.public_key_file {
            let origin = path.display().to_string();
            let bytes = std::fs::read(path).map_err(|e| {
                err(
                    SignerErrorKind::InvalidKey,
                    format!("cannot read the SignPath public key {origin}: {e}"),
                )
            })?;
            let key = key_from_bytes(&bytes, &origin)?;
            // Checked before anything is submitted: a wrong key found after signing would have
            // spent a person's approval on signatures that are then refused.
            if let Some(der) = self.client.policy_certificate().await.map_err(client_err)? {
                let policy = key_from_bytes(&der, "the signing policy's certificate")?;
                if policy != key {
                    return Err(err(
                        SignerErrorKind::BadSignature,
                        format!("the public key {origin} is not the key of the signing policy's certificate: signatures from this policy would not verify with it; fix public-key= (or SIGBRIDGE_SIGNPATH_PUBLIC_KEY), or leave it out to use the policy's certificate; nothing was submitted"),
                    ));
                }
            }
            return Ok(key);
        }
        if let Some(id) = &self.options.resume {
            if let Some(der) = self
                .client
                .request_certificate(id)
                .await
                .map_err(client_err)?
            {
                return key_from_bytes(&der, &format!("the certificate of signing request {id}"));
            }
        }
        match self.client.policy_certificate().await.map_err(client_err)? {
            Some(der) => key_from_bytes(&der, "the signing policy's certificate"),
            None => Err(err(
                SignerErrorKind::InvalidKey,
                "the service does not publish the signing policy's certificate: give the public key with public-key=FILE in the signer URI or SIGBRIDGE_SIGNPATH_PUBLIC_KEY",
            )),
        }
    }

    /// What approvers see: how many images, which formats, and the images.
    fn description(&self, artifact: &Artifact) -> String {
        if let Some(d) = &self.client.config().description {
            return d.clone();
        }
        let infos: Vec<PayloadInfo> = artifact.entries.iter().map(|(_, p)| inspect(p)).collect();
        let of_kind = |kind| infos.iter().filter(move |i| i.kind == kind);
        let (legacy, bundle) = (
            of_kind(PayloadKind::Legacy).count(),
            of_kind(PayloadKind::Pae).count(),
        );
        // One file per image and format (`both`: a payload and a PAE each), so the larger
        // count is the number of images. Legacy payloads name the repository, PAEs only the
        // digest: list the former when there are any.
        let n = legacy.max(bundle);
        let listed = if legacy > 0 {
            PayloadKind::Legacy
        } else {
            PayloadKind::Pae
        };
        let mut shown: Vec<String> = of_kind(listed)
            .filter_map(|i| {
                let digest = format!("sha256:{}", i.digest_hex.as_deref()?);
                Some(match &i.reference {
                    Some(r) => format!("{r}@{digest}"),
                    None => digest,
                })
            })
            .collect();
        if shown.len() > 20 {
            let more = shown.len() - 20;
            shown.truncate(20);
            shown.push(format!("and {more} more"));
        }
        let s = if n == 1 { "" } else { "s" };
        let what = match (legacy > 0, bundle > 0) {
            (true, true) => format!("cosign signature{s} and cosign 3 bundle{s}"),
            (false, true) => format!("cosign 3 bundle signature{s}"),
            _ => format!("cosign signature{s}"),
        };
        format!("sigbridge: {what} for {n} image{s}: {}", shown.join(", "))
    }

    /// Poll until the request reaches a final status or the wait limit passes.
    async fn wait(
        &self,
        id: &RequestId,
        limit: Duration,
        reporter: &dyn WaitReporter,
    ) -> Result<RequestStatus, SignerError> {
        let start = Instant::now();
        let mut interval = self.options.poll_initial;
        let mut last: Option<String> = None;
        loop {
            let status = match self.client.get_status(id).await {
                Ok(s) => s,
                // A service outage longer than the per-call retries must not end a wait of
                // hours: keep polling (slowly) until the wait limit.
                Err(ClientError::Network { reason, .. })
                    if start.elapsed() + self.options.poll_max < limit =>
                {
                    tracing::warn!(signing_request = %id, %reason, "cannot read the signing request's status; still waiting");
                    tokio::time::sleep(self.options.poll_max).await;
                    continue;
                }
                Err(e) => return Err(self.client_err_for(id, e)),
            };
            reporter.status(id, &status, start.elapsed());
            if status.is_final {
                return Ok(status);
            }
            let shown = status.display();
            if last.as_deref() != Some(shown.as_str()) {
                interval = self.options.poll_initial;
                last = Some(shown.clone());
            }
            let elapsed = start.elapsed();
            if elapsed >= limit {
                return Err(err(
                    SignerErrorKind::Canceled,
                    format!(
                        "gave up waiting for signing request {id} after {} (the limit; --wait-timeout): it is still {shown} on the service. Continue later with `{}` ({SAME_IMAGES}), check it with `{}`, or withdraw it with `{}`",
                        format_elapsed(elapsed),
                        self.command("resume", id),
                        self.command("status", id),
                        self.command("cancel", id),
                    ),
                ));
            }
            let remaining = limit - elapsed;
            tokio::time::sleep(jitter(interval).min(remaining)).await;
            interval = (interval * 2).min(self.options.poll_max);
        }
    }

    /// The key check after completion: the certificate the request was signed with must hold
    /// the key we verify with (only when the key was not configured by hand).
    async fn check_request_certificate(&self, id: &RequestId) -> Result<(), SignerError> {
        if self.client.config().public_key_file.is_some() {
            return Ok(());
        }
        let Some(der) = self
            .client
            .request_certificate(id)
            .await
            .map_err(|e| self.client_err_for(id, e))?
        else {
            return Ok(());
        };
        let request_key =
            key_from_bytes(&der, &format!("the certificate of signing request {id}"))?;
        let key = self.public_key().await?;
        if request_key != key {
            return Err(err(
                SignerErrorKind::BadSignature,
                format!("signing request {id} was signed with a certificate whose key is not the signing policy's key; refusing its signatures"),
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl Signer for SignPathSigner {
    fn describe(&self) -> String {
        self.client.config().describe()
    }

    /// Everything in one request, so that one approval covers the whole release.
    fn batch_size(&self) -> Option<usize> {
        None
    }

    async fn public_key(&self) -> Result<PublicKey, SignerError> {
        self.key.get_or_try_init(|| self.load_key()).await.cloned()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            deferred: true,
            safe_for_remote_callers: true,
        }
    }

    async fn sign(
        &self,
        payloads: &[Vec<u8>],
        request: &SignRequest,
    ) -> Result<SignOutcome, SignerError> {
        let artifact = build_artifact(payloads)
            .map_err(|e| SignerError::wrap(SignerErrorKind::Unavailable, e))?;
        let reporter = self.options.reporter.build();
        let description = self.description(&artifact);
        let id = self
            .client
            .submit(&artifact, Some(&description))
            .await
            .map_err(client_err)?;
        reporter.submitted(&id, artifact.entries.len(), &self.command("resume", &id));
        let Some(limit) = self.limit(request.wait) else {
            return Ok(SignOutcome::Pending(ticket(&id)));
        };
        self.finish(&id, &artifact, limit, reporter.as_ref()).await
    }

    async fn collect(
        &self,
        ticket: &Ticket,
        payloads: &[Vec<u8>],
        wait: Wait,
    ) -> Result<SignOutcome, SignerError> {
        let id = ticket_id(ticket)?;
        let artifact = build_artifact(payloads)
            .map_err(|e| SignerError::wrap(SignerErrorKind::Unavailable, e))?;
        let unsigned = self
            .client
            .download_unsigned(&id, self.options.max_download)
            .await
            .map_err(client_err)?;
        check_same_payloads(&unsigned, &artifact)
            .map_err(|e| self.resume_mismatch(&id, &unsigned, &artifact, &e))?;
        tracing::info!(signing_request = %id, "resuming: the request holds exactly these payloads");
        let reporter = self.options.reporter.build();
        let limit = match self.limit(wait) {
            Some(limit) => limit,
            // Not waiting: one look, and pending unless it is already over.
            None => {
                let status = self
                    .client
                    .get_status(&id)
                    .await
                    .map_err(|e| self.client_err_for(&id, e))?;
                if !status.is_final {
                    return Ok(SignOutcome::Pending(ticket.clone()));
                }
                Duration::ZERO
            }
        };
        self.finish(&id, &artifact, limit, reporter.as_ref()).await
    }
}

/// The provider's name, in tickets and the provider table.
pub const PROVIDER_NAME: &str = "signpath";

fn ticket(id: &RequestId) -> Ticket {
    Ticket::new(PROVIDER_NAME, id.to_string())
}

/// The request id a ticket names, refused when another provider made it.
pub fn ticket_id(ticket: &Ticket) -> Result<RequestId, SignerError> {
    if ticket.provider() != PROVIDER_NAME {
        return Err(err(
            SignerErrorKind::Unsupported,
            format!(
                "{ticket} is a {} ticket, not a signing request of this service",
                ticket.provider()
            ),
        ));
    }
    ticket
        .id()
        .parse::<RequestId>()
        .map_err(|e| SignerError::wrap(SignerErrorKind::InvalidKey, e))
}

impl SignPathSigner {
    /// How long to wait, or `None` for not at all.
    fn limit(&self, wait: Wait) -> Option<Duration> {
        match wait {
            Wait::No => None,
            Wait::SignerDefault => Some(self.options.wait_timeout),
            Wait::UpTo(d) => Some(d),
        }
    }

    /// Wait up to `limit` for request `id`, then download and check its signatures.
    async fn finish(
        &self,
        id: &RequestId,
        artifact: &Artifact,
        limit: Duration,
        reporter: &dyn WaitReporter,
    ) -> Result<SignOutcome, SignerError> {
        let outcome = self.wait(id, limit, reporter).await;
        reporter.finished();
        let status = outcome?;
        let workflow = status
            .workflow_status
            .as_deref()
            .map(|w| format!(" (workflow status {w})"))
            .unwrap_or_default();
        match &status.status {
            Status::Completed => {}
            Status::Denied => {
                // The polling route carries only the status; sigbridge serve gives the
                // approver's reason in the request's data. A service without it (SignPath) or a
                // failed lookup only leaves the reason out.
                let reason = match &status.reason {
                    Some(r) => Some(r.clone()),
                    None => self.client.get_request(id).await.ok().and_then(|s| s.reason),
                };
                // Debug quoting: the approver's text reaches CI logs with control characters
                // escaped.
                let reason = reason
                    .filter(|r| !r.trim().is_empty())
                    .map(|r| format!(" with the reason {r:?}"))
                    .unwrap_or_default();
                return Err(err(
                    SignerErrorKind::Rejected,
                    format!("signing request {id} was denied by an approver{workflow}{reason}; nothing was attached"),
                ));
            }
            Status::Canceled => {
                return Err(err(
                    SignerErrorKind::Canceled,
                    format!("signing request {id} was canceled{workflow}; nothing was attached"),
                ))
            }
            Status::Failed => {
                return Err(err(
                    SignerErrorKind::Unavailable,
                    format!("signing request {id} failed on the signing service{workflow}; see the request in the SignPath web UI for the reason; nothing was attached"),
                ))
            }
            other => {
                return Err(err(
                    SignerErrorKind::Unavailable,
                    format!("signing request {id} ended with status {other}{workflow}, not Completed; nothing was attached"),
                ))
            }
        }

        let zip = self
            .client
            .download_signed(id, self.options.max_download)
            .await
            .map_err(|e| self.client_err_for(id, e))?;
        let signatures = extract_signatures(&zip, &artifact.entries, &self.options.limits).map_err(|e| {
            err(
                SignerErrorKind::BadSignature,
                format!("refusing the signed artifact of signing request {id}: {e}; nothing was attached"),
            )
        })?;
        self.check_request_certificate(id).await?;
        Ok(SignOutcome::Signed(signatures))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> SignPathSigner {
        let env = |k: &str| (k == "SIGNPATH_API_TOKEN").then(|| "t0k3n".to_string());
        let config = SignPathConfig::from_uri("signpath+http://127.0.0.1:9/o/p/s", &env).unwrap();
        SignPathSigner::new(config, SignPathOptions::default()).unwrap()
    }

    fn legacy(repo: &str, c: char) -> Vec<u8> {
        let hex: String = std::iter::repeat_n(c, 64).collect();
        format!(r#"{{"critical":{{"identity":{{"docker-reference":"{repo}"}},"image":{{"docker-manifest-digest":"sha256:{hex}"}},"type":"cosign container image signature"}},"optional":null}}"#).into_bytes()
    }

    fn pae(c: char) -> Vec<u8> {
        let hex: String = std::iter::repeat_n(c, 64).collect();
        let statement = format!(
            r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[{{"digest":{{"sha256":"{hex}"}},"annotations":{{}}}}],"predicateType":"https://sigstore.dev/cosign/sign/v1","predicate":{{}}}}"#
        );
        format!(
            "DSSEv1 28 application/vnd.in-toto+json {} {statement}",
            statement.len()
        )
        .into_bytes()
    }

    #[test]
    fn the_description_counts_images_not_payloads_and_names_the_formats() {
        let s = signer();
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        let both = build_artifact(&[
            legacy("r/api", 'a'),
            pae('a'),
            legacy("r/web", 'b'),
            pae('b'),
        ])
        .unwrap();
        assert_eq!(
            s.description(&both),
            format!("sigbridge: cosign signatures and cosign 3 bundles for 2 images: r/api@sha256:{a}, r/web@sha256:{b}")
        );
        let bundles = build_artifact(&[pae('a'), pae('b')]).unwrap();
        assert_eq!(
            s.description(&bundles),
            format!("sigbridge: cosign 3 bundle signatures for 2 images: sha256:{a}, sha256:{b}")
        );
        // The same digest in two repositories is two images.
        let mirrored = build_artifact(&[
            legacy("r/api", 'a'),
            pae('a'),
            legacy("m/api", 'a'),
            pae('a'),
        ])
        .unwrap();
        assert!(s.description(&mirrored).contains(" for 2 images: r/api@"));
        let one = build_artifact(&[legacy("r/api", 'a')]).unwrap();
        assert_eq!(
            s.description(&one),
            format!("sigbridge: cosign signature for 1 image: r/api@sha256:{a}")
        );
    }

    #[test]
    fn resuming_a_bundle_request_as_legacy_is_not_called_a_reordering() {
        let s = signer();
        let id: RequestId = "c2099ac1-b2d4-4a41-9d2b-3ae8b4a2e3b1".parse().unwrap();
        let submitted = build_artifact(&[pae('a'), pae('b')]).unwrap();
        let now = build_artifact(&[legacy("r/api", 'a'), legacy("r/web", 'b')]).unwrap();
        let e = check_same_payloads(&submitted.zip, &now).unwrap_err();
        let message = s.resume_mismatch(&id, &submitted.zip, &now, &e).to_string();
        assert!(!message.contains("another order"), "{message}");
        assert!(message.contains("--format"), "{message}");
        assert!(message.contains("2 .pae"), "{message}");
    }

    #[test]
    fn resume_advice_lists_each_image_once_for_both_formats() {
        let both = build_artifact(&[
            legacy("r/api", 'a'),
            pae('a'),
            legacy("r/web", 'b'),
            pae('b'),
        ])
        .unwrap();
        assert_eq!(
            digests_in_zip(&both.zip),
            vec![
                format!("sha256:{}", "a".repeat(64)),
                format!("sha256:{}", "b".repeat(64))
            ]
        );
    }
}
