//! HTTP: connection handling (with injected faults), auth, and the API routes.

use std::collections::BTreeMap;
use std::io::{Cursor, Read as _, Write as _};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use hyper_util::rt::TokioIo;
use secrecy::ExposeSecret as _;
use serde_json::json;
use tower::ServiceExt as _;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use crate::{Approval, FaultTarget, RequestRecord, RetryAfter, Shared, SignatureFormat, SignedZip};

type Sh = State<Arc<Shared>>;

#[derive(Debug, thiserror::Error)]
#[error("connection dropped on purpose (injected fault)")]
struct Dropped;

enum Fault {
    Status(StatusCode, RetryAfter),
    Drop,
}

fn take_fault(shared: &Shared, method: &Method, path: &str) -> Option<Fault> {
    let is_submit = method == Method::POST
        && (path
            .to_ascii_lowercase()
            .ends_with("/signingrequests/submitwithartifact")
            || path.to_ascii_lowercase().ends_with("/signingrequests"));
    let mut f = shared.faults.lock().ok()?;
    let hit = match f.target {
        FaultTarget::All => true,
        FaultTarget::Gets => method == Method::GET,
        FaultTarget::Submits => is_submit,
    };
    if !hit {
        return None;
    }
    if f.too_many_requests > 0 {
        f.too_many_requests -= 1;
        return Some(Fault::Status(StatusCode::TOO_MANY_REQUESTS, f.retry_after));
    }
    if f.service_unavailable > 0 {
        f.service_unavailable -= 1;
        return Some(Fault::Status(
            StatusCode::SERVICE_UNAVAILABLE,
            f.retry_after,
        ));
    }
    if f.drop_connections > 0 {
        f.drop_connections -= 1;
        return Some(Fault::Drop);
    }
    None
}

pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    if let Ok(mut rt) = shared.runtime.lock() {
        *rt = Some(tokio::runtime::Handle::current());
    }
    let app = router(shared.clone());
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let shared = shared.clone();
                let app = app.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let shared = shared.clone();
                        let app = app.clone();
                        async move {
                            shared.counters.http_requests.fetch_add(1, Ordering::SeqCst);
                            let fault = take_fault(&shared, req.method(), req.uri().path());
                            let is_post = req.method() == Method::POST;
                            match fault {
                                Some(Fault::Status(code, ra)) => {
                                    shared.counters.faults.fetch_add(1, Ordering::SeqCst);
                                    let mut resp = (code, "injected failure").into_response();
                                    if let Some(v) = retry_after_value(ra) {
                                        resp.headers_mut().insert(header::RETRY_AFTER, v);
                                    }
                                    Ok(resp)
                                }
                                Some(Fault::Drop) => {
                                    shared.counters.faults.fetch_add(1, Ordering::SeqCst);
                                    if is_post {
                                        // The request is processed; only the answer is lost.
                                        let _ = app.oneshot(req.map(Body::new)).await;
                                    }
                                    Err(Dropped)
                                }
                                None => match app.oneshot(req.map(Body::new)).await {
                                    Ok(resp) => Ok(resp),
                                    Err(never) => match never {},
                                },
                            }
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        }
    }
}

fn retry_after_value(ra: RetryAfter) -> Option<HeaderValue> {
    let text = match ra {
        RetryAfter::None => return None,
        RetryAfter::Seconds(s) => s.to_string(),
        RetryAfter::HttpDate(s) => {
            httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(s))
        }
    };
    HeaderValue::from_str(&text).ok()
}

fn api(shared: Arc<Shared>) -> Router {
    let v1 = Router::new()
        .route("/{org}/SigningRequests/SubmitWithArtifact", post(submit))
        .route("/{org}/SigningRequests", post(submit))
        .route("/{org}/SigningRequests/{id}", get(request_data))
        .route("/{org}/SigningRequests/{id}/Status", get(request_status))
        .route(
            "/{org}/SigningRequests/{id}/SignedArtifact",
            get(signed_artifact),
        )
        .route(
            "/{org}/SigningRequests/{id}/UnsignedArtifact",
            get(unsigned_artifact),
        )
        .route(
            "/{org}/SigningRequests/{id}/X509Certificate",
            get(request_certificate),
        )
        .route("/{org}/SigningRequests/{id}/Cancel", post(cancel))
        .route("/{org}/SigningRequests/{id}/Approve", post(approve))
        .route("/{org}/SigningRequests/{id}/Deny", post(deny))
        .route(
            "/{org}/Projects/{project}/SigningPolicies/{policy}/Certificate/X509Certificate",
            get(policy_certificate),
        );
    let v1_pre = Router::new().route(
        "/{org}/SigningRequests/{id}/X509Certificate",
        get(request_certificate),
    );
    Router::new()
        .nest("/v1", v1)
        .nest("/v1-pre", v1_pre)
        .layer(middleware::from_fn_with_state(shared.clone(), auth))
        .layer(DefaultBodyLimit::max(64 * 1024 * 1024))
        .with_state(shared)
}

fn router(shared: Arc<Shared>) -> Router {
    let api = api(shared);
    // The path prefix is case-insensitive on the real service (/API, /Api and /api are all used).
    Router::new()
        .nest("/API", api.clone())
        .nest("/Api", api.clone())
        .nest("/api", api)
}

async fn auth(State(shared): Sh, req: Request, next: Next) -> Response {
    let expected = format!("Bearer {}", shared.token.expose_secret());
    let ok = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected);
    if !ok {
        shared.counters.unauthorised.fetch_add(1, Ordering::SeqCst);
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "Unauthorized: a valid API token is required",
        )
            .into_response();
    }
    next.run(req).await
}

fn error(code: StatusCode, message: impl Into<String>) -> Response {
    (code, Json(json!({ "error": message.into() }))).into_response()
}

fn check_org(shared: &Shared, org: &str) -> Result<(), Response> {
    match &shared.organization_id {
        Some(o) if !o.eq_ignore_ascii_case(org) => Err(error(
            StatusCode::FORBIDDEN,
            "the token has no access to this organization",
        )),
        _ => Ok(()),
    }
}

fn new_id() -> String {
    let mut b = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn request_url(shared: &Shared, org: &str, id: &str) -> String {
    format!("{}/API/v1/{org}/SigningRequests/{id}", shared.base_url)
}

async fn submit(State(shared): Sh, Path(org): Path<String>, mut form: Multipart) -> Response {
    if let Err(r) = check_org(&shared, &org) {
        return r;
    }
    shared.counters.submits.fetch_add(1, Ordering::SeqCst);
    let mut fields = BTreeMap::new();
    let mut artifact: Option<(String, Vec<u8>)> = None;
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("malformed multipart body: {e}"),
                )
            }
        };
        let name = field.name().unwrap_or("").to_string();
        let lower = name.to_ascii_lowercase();
        if lower == "artifact" {
            let file_name = field.file_name().unwrap_or("artifact").to_string();
            match field.bytes().await {
                Ok(b) => artifact = Some((file_name, b.to_vec())),
                Err(e) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        format!("cannot read the artifact: {e}"),
                    )
                }
            }
            continue;
        }
        let value = match field.text().await {
            Ok(t) => t,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("cannot read field {name}: {e}"),
                )
            }
        };
        // Parameters[name] and parameters.name both bind to parameters.name.
        let key = if lower.starts_with("parameters[") && lower.ends_with(']') {
            format!("parameters.{}", &name["parameters[".len()..name.len() - 1])
        } else if lower.starts_with("parameters.") {
            format!("parameters.{}", &name["parameters.".len()..])
        } else {
            lower
        };
        fields.insert(key, value);
    }
    for required in ["projectslug", "signingpolicyslug"] {
        if fields.get(required).is_none_or(|v| v.trim().is_empty()) {
            return error(
                StatusCode::BAD_REQUEST,
                format!("the form field {required} is required"),
            );
        }
    }
    let Some((artifact_name, unsigned)) = artifact else {
        return error(
            StatusCode::BAD_REQUEST,
            "the file part 'artifact' is required",
        );
    };
    let id = new_id();
    let (status, workflow) = match shared.approval {
        Approval::Manual => ("WaitingForApproval", "WaitingForApproval"),
        Approval::Auto => ("InProgress", "QueuedForProcessing"),
    };
    let record = RequestRecord {
        id: id.clone(),
        organization_id: org.clone(),
        status: status.into(),
        workflow_status: workflow.into(),
        fields,
        artifact_name,
        unsigned,
        signed: None,
        created: Instant::now(),
    };
    if let Ok(mut reqs) = shared.requests.lock() {
        reqs.insert(id.clone(), record);
    }
    if shared.approval == Approval::Auto {
        start_processing(shared.clone(), id.clone());
    }
    let location = request_url(&shared, &org, &id);
    let body = json!({ "signingRequestId": id, "webLink": location });
    (
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(body),
    )
        .into_response()
}

fn with_request<T>(
    shared: &Shared,
    org: &str,
    id: &str,
    f: impl FnOnce(&mut RequestRecord) -> T,
) -> Result<T, Response> {
    check_org(shared, org)?;
    let mut reqs = shared
        .requests
        .lock()
        .map_err(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "state poisoned"))?;
    match reqs.get_mut(&id.to_ascii_lowercase()) {
        Some(r) if r.organization_id.eq_ignore_ascii_case(org) => Ok(f(r)),
        _ => Err(error(
            StatusCode::NOT_FOUND,
            format!("signing request {id} not found"),
        )),
    }
}

async fn request_data(State(shared): Sh, Path((org, id)): Path<(String, String)>) -> Response {
    shared.counters.status_reads.fetch_add(1, Ordering::SeqCst);
    let base = request_url(&shared, &org, &id);
    match with_request(&shared, &org, &id, |r| {
        let mut parameters = serde_json::Map::new();
        for (k, v) in &r.fields {
            if let Some(p) = k.strip_prefix("parameters.") {
                parameters.insert(p.to_string(), json!(v));
            }
        }
        let field = |k: &str| r.fields.get(k).cloned();
        json!({
            "status": r.status,
            "isFinalStatus": r.is_final(),
            "workflowStatus": r.workflow_status,
            "description": field("description"),
            "projectId": "5b0e4a36-1f1e-4c9c-9d44-0c6a1f0e2b11",
            "projectSlug": field("projectslug"),
            "projectName": field("projectslug"),
            "artifactConfigurationId": "b7e1f3a2-2c4d-4e5f-8a9b-0c1d2e3f4a5b",
            "artifactConfigurationSlug": field("artifactconfigurationslug").unwrap_or_else(|| "Default".into()),
            "artifactConfigurationName": field("artifactconfigurationslug").unwrap_or_else(|| "Default".into()),
            "signingPolicyId": "0f1e2d3c-4b5a-4968-8776-655443322110",
            "signingPolicySlug": field("signingpolicyslug"),
            "signingPolicyName": field("signingpolicyslug"),
            "unsignedArtifactLink": format!("{base}/UnsignedArtifact"),
            "signedArtifactLink": format!("{base}/SignedArtifact"),
            "parameters": parameters,
        })
    }) {
        Ok(body) => Json(body).into_response(),
        Err(r) => r,
    }
}

async fn request_status(State(shared): Sh, Path((org, id)): Path<(String, String)>) -> Response {
    shared.counters.status_reads.fetch_add(1, Ordering::SeqCst);
    match with_request(
        &shared,
        &org,
        &id,
        |r| json!({ "status": r.status, "workflowStatus": r.workflow_status, "isFinalStatus": r.is_final() }),
    ) {
        Ok(body) => Json(body).into_response(),
        Err(r) => r,
    }
}

fn zip_response(bytes: Vec<u8>, file_name: &str, slow: Option<Duration>) -> Response {
    let disposition = format!("attachment; filename=\"{file_name}\"");
    let body = match slow {
        None => Body::from(bytes),
        Some(pause) => {
            let chunks: Vec<Vec<u8>> = bytes.chunks(256).map(<[u8]>::to_vec).collect();
            let stream = futures::stream::iter(chunks).then(move |c| async move {
                tokio::time::sleep(pause).await;
                Ok::<_, std::convert::Infallible>(bytes::Bytes::from(c))
            });
            Body::from_stream(stream)
        }
    };
    let mut resp = Response::new(body);
    let headers: &mut HeaderMap = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

use futures::StreamExt as _;

async fn signed_artifact(State(shared): Sh, Path((org, id)): Path<(String, String)>) -> Response {
    let found = with_request(&shared, &org, &id, |r| {
        (r.status.clone(), r.signed.clone(), r.artifact_name.clone())
    });
    let (status, signed, name) = match found {
        Ok(v) => v,
        Err(r) => return r,
    };
    match (status.as_str(), signed) {
        ("Completed", Some(bytes)) => {
            shared.counters.downloads.fetch_add(1, Ordering::SeqCst);
            let slow = shared.faults.lock().ok().and_then(|f| f.slow_download);
            let signed_name = name
                .strip_suffix(".zip")
                .map_or_else(|| format!("{name}.signed"), |s| format!("{s}.signed.zip"));
            zip_response(bytes, &signed_name, slow)
        }
        ("WaitingForApproval" | "InProgress", _) => error(
            StatusCode::BAD_REQUEST,
            "the signing request is being processed; the signed artifact is not available yet",
        ),
        _ => error(
            StatusCode::NOT_FOUND,
            format!("there is no signed artifact: the signing request is {status}"),
        ),
    }
}

async fn unsigned_artifact(State(shared): Sh, Path((org, id)): Path<(String, String)>) -> Response {
    match with_request(&shared, &org, &id, |r| {
        (r.unsigned.clone(), r.artifact_name.clone())
    }) {
        Ok((bytes, name)) => zip_response(bytes, &name, None),
        Err(r) => r,
    }
}

fn certificate_response(shared: &Shared) -> Response {
    (
        [(header::CONTENT_TYPE, "application/pkix-cert")],
        shared.certificate.clone(),
    )
        .into_response()
}

async fn request_certificate(
    State(shared): Sh,
    Path((org, id)): Path<(String, String)>,
) -> Response {
    match with_request(&shared, &org, &id, |_| ()) {
        Ok(()) => certificate_response(&shared),
        Err(r) => r,
    }
}

async fn policy_certificate(
    State(shared): Sh,
    Path((org, _project, _policy)): Path<(String, String, String)>,
) -> Response {
    if let Err(r) = check_org(&shared, &org) {
        return r;
    }
    certificate_response(&shared)
}

async fn cancel(State(shared): Sh, Path((org, id)): Path<(String, String)>) -> Response {
    match with_request(&shared, &org, &id, |r| {
        if r.is_final() {
            Err(r.status.clone())
        } else {
            r.status = "Canceled".into();
            r.workflow_status = "Canceled".into();
            Ok(())
        }
    }) {
        Ok(Ok(())) => StatusCode::OK.into_response(),
        Ok(Err(status)) => error(
            StatusCode::BAD_REQUEST,
            format!("the signing request is already {status}"),
        ),
        Err(r) => r,
    }
}

async fn approve(State(shared): Sh, Path((org, id)): Path<(String, String)>) -> Response {
    if let Err(r) = check_org(&shared, &org) {
        return r;
    }
    match decide(&shared, &id, true) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => error(StatusCode::CONFLICT, e),
    }
}

async fn deny(State(shared): Sh, Path((org, id)): Path<(String, String)>) -> Response {
    if let Err(r) = check_org(&shared, &org) {
        return r;
    }
    match decide(&shared, &id, false) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => error(StatusCode::CONFLICT, e),
    }
}

/// Approve or deny a waiting request.
pub(crate) fn decide(shared: &Arc<Shared>, id: &str, approve: bool) -> Result<(), String> {
    {
        let mut reqs = shared
            .requests
            .lock()
            .map_err(|_| "state poisoned".to_string())?;
        let r = reqs
            .get_mut(&id.to_ascii_lowercase())
            .ok_or_else(|| format!("signing request {id} not found"))?;
        if r.status != "WaitingForApproval" {
            return Err(format!(
                "signing request {id} is {}, not WaitingForApproval",
                r.status
            ));
        }
        if approve {
            r.status = "InProgress".into();
            r.workflow_status = "QueuedForProcessing".into();
        } else {
            r.status = "Denied".into();
            r.workflow_status = "Denied".into();
            return Ok(());
        }
    }
    start_processing(shared.clone(), id.to_ascii_lowercase());
    Ok(())
}

fn start_processing(shared: Arc<Shared>, id: String) {
    let shared_for_spawn = shared.clone();
    let run = async move {
        let behaviour = shared
            .behaviour
            .lock()
            .map(|b| b.clone())
            .unwrap_or_default();
        let set = |status: &str, workflow: &str, signed: Option<Vec<u8>>| {
            if let Ok(mut reqs) = shared.requests.lock() {
                if let Some(r) = reqs.get_mut(&id) {
                    // A request canceled meanwhile stays canceled.
                    if r.status == "Canceled" {
                        return;
                    }
                    r.status = status.into();
                    r.workflow_status = workflow.into();
                    r.signed = signed;
                }
            }
        };
        set("InProgress", "Processing", None);
        if !behaviour.processing_delay.is_zero() {
            tokio::time::sleep(behaviour.processing_delay).await;
        }
        let unsigned = shared
            .requests
            .lock()
            .ok()
            .and_then(|r| r.get(&id).map(|r| r.unsigned.clone()))
            .unwrap_or_default();
        if behaviour.fail_processing {
            set("Failed", "ProcessingFailed", None);
            return;
        }
        match sign_zip(&shared, &unsigned, &behaviour) {
            Ok(signed) => set("Completed", "Completed", Some(signed)),
            Err(e) => {
                tracing::warn!(signing_request = %id, "processing failed: {e}");
                set("Failed", "ProcessingFailed", None);
            }
        }
    };
    let handle = tokio::runtime::Handle::try_current()
        .ok()
        .or_else(|| shared_runtime(&shared_for_spawn));
    match handle {
        Some(h) => {
            h.spawn(run);
        }
        None => tracing::error!("no runtime to process the signing request on"),
    }
}

fn shared_runtime(shared: &Shared) -> Option<tokio::runtime::Handle> {
    shared.runtime.lock().ok().and_then(|r| r.clone())
}

fn signature_for(
    shared: &Shared,
    payload: &[u8],
    format: &SignatureFormat,
) -> Result<Vec<u8>, String> {
    let der = || shared.signer.sign_one(payload).map_err(|e| e.to_string());
    Ok(match format {
        SignatureFormat::Der => der()?,
        SignatureFormat::RawRs => {
            let d = der()?;
            if let Ok(s) = p256::ecdsa::Signature::from_der(&d) {
                s.to_bytes().to_vec()
            } else if let Ok(s) = p384::ecdsa::Signature::from_der(&d) {
                s.to_bytes().to_vec()
            } else {
                d
            }
        }
        SignatureFormat::Base64 => base64::engine::general_purpose::STANDARD
            .encode(der()?)
            .into_bytes(),
        SignatureFormat::OtherKey(other) => other.sign_one(payload).map_err(|e| e.to_string())?,
        SignatureFormat::Garbage => {
            let mut b = vec![0u8; 71];
            rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut b);
            b
        }
    })
}

/// The files of an uploaded zip (at most 10 000, each cut at 16 MiB), directories left out.
pub(crate) fn zip_files(unsigned: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut archive = ZipArchive::new(Cursor::new(unsigned))
        .map_err(|e| format!("the artifact is not a zip file: {e}"))?;
    let mut files = Vec::new();
    for i in 0..archive.len().min(10_000) {
        let mut f = archive.by_index(i).map_err(|e| e.to_string())?;
        if f.is_dir() {
            continue;
        }
        let name = f.name().to_string();
        let mut buf = Vec::new();
        (&mut f)
            .take(16 * 1024 * 1024)
            .read_to_end(&mut buf)
            .map_err(|e| e.to_string())?;
        files.push((name, buf));
    }
    Ok(files)
}

fn sign_zip(
    shared: &Shared,
    unsigned: &[u8],
    behaviour: &crate::Behaviour,
) -> Result<Vec<u8>, String> {
    if behaviour.zip == SignedZip::Garbage {
        return Ok(b"this is not a zip file, it is an error page\n".repeat(20));
    }
    let files = zip_files(unsigned)?;
    let signed: Vec<&(String, Vec<u8>)> = files
        .iter()
        .filter(|(n, _)| crate::artifact_config::signs(n))
        .collect();
    if signed.is_empty() {
        return Err(format!(
            "Expected one of the paths {} to match at least 1 item, but found 0",
            crate::artifact_config::PATTERNS.join(", ")
        ));
    }
    let mut out = ZipWriter::new(Cursor::new(Vec::new()));
    let o = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    let w = |e: zip::result::ZipError| e.to_string();
    for (name, bytes) in &files {
        if behaviour.zip == SignedZip::SignaturesOnly {
            break;
        }
        out.start_file(name.as_str(), o).map_err(w)?;
        if behaviour.zip == SignedZip::ModifiedPayload && crate::artifact_config::signs(name) {
            out.write_all(&bytes.to_ascii_uppercase())
                .map_err(|e| e.to_string())?;
        } else {
            out.write_all(bytes).map_err(|e| e.to_string())?;
        }
    }
    for (name, payload) in &signed {
        if behaviour.zip == SignedZip::MissingSignature {
            break;
        }
        out.start_file(format!("{name}.sig"), o).map_err(w)?;
        if behaviour.zip == SignedZip::HugeEntry {
            let zeros = vec![0u8; 1024 * 1024];
            for _ in 0..8 {
                out.write_all(&zeros).map_err(|e| e.to_string())?;
            }
        } else {
            let sig = signature_for(shared, payload, &behaviour.signature)?;
            out.write_all(&sig).map_err(|e| e.to_string())?;
        }
    }
    let extra = match behaviour.zip {
        SignedZip::Traversal => Some("../escape.sig"),
        SignedZip::Absolute => Some("/tmp/escape.sig"),
        SignedZip::ExtraEntry => Some("README.txt"),
        _ => None,
    };
    if let Some(name) = extra {
        out.start_file(name, o).map_err(w)?;
        out.write_all(b"not part of the signature")
            .map_err(|e| e.to_string())?;
    }
    Ok(out.finish().map_err(w)?.into_inner())
}
