//! The REST API: bearer-token identities, the SignPath-style signing request routes, and the
//! approval routes.

// Handlers return `Result<_, Response>`; boxing every error response buys nothing here.
#![allow(clippy::result_large_err)]

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Multipart, Path, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::json;

use crate::config::Policy;
use crate::store::{status, NewRequest, RequestRow, StoreError};
use crate::token::TokenHash;
use crate::{artifact, now, payload_digests, Service};

type St = State<Arc<Service>>;

/// The authenticated caller's identity name.
#[derive(Clone, Debug)]
struct Caller(String);

/// Longest accepted deny reason and description, in bytes.
const MAX_TEXT: usize = 4096;

pub(crate) fn router(service: Arc<Service>) -> Router {
    let web = crate::web::router(service.clone());
    let limit = usize::try_from(service.config.max_artifact_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(64 * 1024);
    let v1 = Router::new()
        .route("/{org}/SigningRequests", get(list_waiting))
        .route("/{org}/SigningRequests/SubmitWithArtifact", post(submit))
        .route("/{org}/SigningRequests/{id}", get(request_data))
        .route("/{org}/SigningRequests/{id}/Status", get(request_status))
        .route(
            "/{org}/SigningRequests/{id}/SignedArtifact",
            get(signed_artifact),
        )
        .route("/{org}/SigningRequests/{id}/Cancel", post(cancel))
        .route("/{org}/SigningRequests/{id}/Approve", post(approve))
        .route("/{org}/SigningRequests/{id}/Deny", post(deny))
        .route(
            "/{org}/Projects/{project}/SigningPolicies/{slug}/Certificate/X509Certificate",
            get(policy_certificate),
        );
    let api = Router::new()
        .nest("/v1", v1)
        .layer(middleware::from_fn_with_state(service.clone(), auth))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(service);
    // Clients spell the prefix /API, /Api and /api.
    Router::new()
        .nest("/API", api.clone())
        .nest("/Api", api.clone())
        .nest("/api", api)
        .merge(web)
}

fn error(code: StatusCode, message: impl Into<String>) -> Response {
    (code, Json(json!({ "error": message.into() }))).into_response()
}

fn store_error(e: StoreError) -> Response {
    match e {
        StoreError::NotFound(_) => error(StatusCode::NOT_FOUND, e.to_string()),
        StoreError::Conflict(_) => error(StatusCode::CONFLICT, e.to_string()),
        other => {
            tracing::error!("{other}");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the service's state database failed; see its log",
            )
        }
    }
}

async fn auth(State(service): St, mut req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(TokenHash::of);
    let who = presented.and_then(|h| {
        service
            .config
            .identities
            .iter()
            .find(|i| i.token_sha256.as_ref().is_some_and(|t| t.matches(&h)))
            .map(|i| i.name.clone())
    });
    let Some(who) = who else {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "Unauthorized: a valid API token is required (Authorization: Bearer TOKEN)",
        )
            .into_response();
    };
    if let Err(wait) = service.rate.check(&who, std::time::Instant::now()) {
        let secs = crate::rate::retry_after_secs(wait);
        tracing::info!(identity = %who, retry_after = secs, "rate limit: refused a call");
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, secs.to_string())],
            Json(json!({ "error": format!(
                "{who} made more than {} calls in a minute; retry after {secs} s (max_requests_per_minute in the service's configuration)",
                service.config.max_requests_per_minute
            ) })),
        )
            .into_response();
    }
    req.extensions_mut().insert(Caller(who));
    next.run(req).await
}

fn check_org(service: &Service, org: &str) -> Result<(), Response> {
    if service.config.organization_id.eq_ignore_ascii_case(org) {
        Ok(())
    } else {
        Err(error(
            StatusCode::NOT_FOUND,
            format!("organization {org} not found"),
        ))
    }
}

fn policy_of<'a>(service: &'a Service, row: &RequestRow) -> Result<&'a Policy, Response> {
    service
        .config
        .policy(&row.project, &row.policy)
        .ok_or_else(|| {
            error(
                StatusCode::CONFLICT,
                format!(
                    "signing request {} belongs to policy {}/{}, which is no longer configured",
                    row.id, row.project, row.policy
                ),
            )
        })
}

/// The request, if `caller` submitted it or approves for its policy (others get 404, so ids
/// cannot be probed).
fn visible(
    service: &Service,
    org: &str,
    id: &str,
    caller: &Caller,
) -> Result<RequestRow, Response> {
    check_org(service, org)?;
    // Expire first so a read never shows a request waiting past its deadline.
    service.store.expire_due(now()).map_err(store_error)?;
    let row = service
        .store
        .get(&id.to_ascii_lowercase())
        .map_err(store_error)?;
    let policy = policy_of(service, &row)?;
    if row.submitter == caller.0 || service.config.may_approve(policy, &caller.0) {
        Ok(row)
    } else {
        Err(error(
            StatusCode::NOT_FOUND,
            format!("signing request {id} not found"),
        ))
    }
}

fn new_id() -> String {
    let mut b = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

async fn submit(
    State(service): St,
    Extension(caller): Extension<Caller>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(org): Path<String>,
    mut form: Multipart,
) -> Response {
    if let Err(r) = check_org(&service, &org) {
        return r;
    }
    let mut fields = serde_json::Map::new();
    let mut parameters = serde_json::Map::new();
    let mut upload: Option<(String, Bytes)> = None;
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
            let file_name = field.file_name().unwrap_or("artifact.zip").to_string();
            match field.bytes().await {
                Ok(b) => upload = Some((file_name, b)),
                Err(e) => {
                    return error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!(
                            "cannot read the artifact (at most {} bytes are accepted): {e}",
                            service.config.max_artifact_bytes
                        ),
                    )
                }
            }
            continue;
        }
        let value = match field.text().await {
            Ok(t) if t.len() <= MAX_TEXT => t,
            Ok(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("the field {name} is longer than {MAX_TEXT} bytes"),
                )
            }
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the field {name}: {e}"),
                )
            }
        };
        if let Some(p) = lower
            .strip_prefix("parameters[")
            .and_then(|r| r.strip_suffix(']'))
            .or_else(|| lower.strip_prefix("parameters."))
        {
            parameters.insert(p.to_string(), json!(value));
        } else {
            fields.insert(lower, json!(value));
        }
    }
    let field = |k: &str| {
        fields
            .get(k)
            .and_then(|v| v.as_str())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let (Some(project), Some(slug)) = (field("projectslug"), field("signingpolicyslug")) else {
        return error(
            StatusCode::BAD_REQUEST,
            "the form fields projectSlug and signingPolicySlug are required",
        );
    };
    let Some(policy) = service.config.policy(project, slug) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("there is no signing policy {slug} in project {project}"),
        );
    };
    if !service.config.may_submit(policy, &caller.0) {
        return error(
            StatusCode::FORBIDDEN,
            format!("{} may not submit to {project}/{slug}", caller.0),
        );
    }
    let Some((artifact_name, unsigned)) = upload else {
        return error(
            StatusCode::BAD_REQUEST,
            "the file part 'artifact' is required",
        );
    };
    let files = match artifact::read_upload(&unsigned) {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    // What approvers are shown is what cosign will read: a file that is not an image signature
    // payload, or that verifiers could read as naming different images, is never stored.
    if let Err(refused) = artifact::read_claims(&files) {
        let message = format!("{refused}; nothing was submitted: upload the payloads `sigbridge generate` (or `cosign generate`) writes");
        let detail = json!({
            "project": policy.project,
            "policy": policy.slug,
            "from": peer.to_string(),
            "file": refused.file(),
            "reason": refused.to_string(),
        });
        if let Err(e) = service
            .store
            .record_event(&caller.0, "submit-refused", &detail, now())
        {
            tracing::error!("cannot record a refused submission in the audit log: {e}");
        }
        tracing::warn!(identity = %caller.0, "refused a submission: {refused}");
        return error(StatusCode::BAD_REQUEST, message);
    }
    let id = new_id();
    let t = now();
    let ttl = i64::try_from(service.expire_after.as_secs()).unwrap_or(i64::MAX);
    let ready = policy.approvals_required == 0;
    let description = field("description").map(str::to_string);
    let detail = json!({
        "project": policy.project,
        "policy": policy.slug,
        "from": peer.to_string(),
        "description": description,
        "payloads": payload_digests(&files),
    });
    let parameters_text = serde_json::Value::Object(parameters).to_string();
    let new = NewRequest {
        id: &id,
        project: &policy.project,
        policy: &policy.slug,
        submitter: &caller.0,
        submitted_from: &peer.to_string(),
        description: description.as_deref(),
        parameters: &parameters_text,
        artifact_name: &artifact_name,
        unsigned: &unsigned,
        status: if ready {
            status::IN_PROGRESS
        } else {
            status::WAITING
        },
        now: t,
        expires_at: t.saturating_add(ttl),
        audit_detail: detail,
    };
    if let Err(e) = service.store.insert(&new) {
        return store_error(e);
    }
    if ready {
        tokio::spawn(service.clone().process(id.clone()));
    }
    let location = format!("/API/v1/{org}/SigningRequests/{id}");
    (
        StatusCode::CREATED,
        [(header::LOCATION, location.clone())],
        Json(json!({ "signingRequestId": id, "webLink": location })),
    )
        .into_response()
}

fn data(row: &RequestRow, policy: &Policy) -> serde_json::Value {
    let parameters: serde_json::Value =
        serde_json::from_str(&row.parameters).unwrap_or_else(|_| json!({}));
    json!({
        "id": row.id,
        "status": row.status,
        "isFinalStatus": status::is_final(&row.status),
        "workflowStatus": row.workflow_status,
        "description": row.description,
        "projectSlug": row.project,
        "signingPolicySlug": row.policy,
        "parameters": parameters,
        "submitter": row.submitter,
        "submittedFrom": row.submitted_from,
        "approvals": row.approvers,
        "approvalsRequired": policy.approvals_required,
        "reason": row.reason,
        "createdAt": row.created_at,
        "expiresAt": row.expires_at,
    })
}

async fn list_waiting(
    State(service): St,
    Extension(caller): Extension<Caller>,
    Path(org): Path<String>,
) -> Response {
    if let Err(r) = check_org(&service, &org) {
        return r;
    }
    if let Err(e) = service.store.expire_due(now()) {
        return store_error(e);
    }
    let rows = match service.store.waiting() {
        Ok(r) => r,
        Err(e) => return store_error(e),
    };
    let list: Vec<serde_json::Value> = rows
        .iter()
        .filter_map(|r| {
            let p = service.config.policy(&r.project, &r.policy)?;
            (r.submitter == caller.0 || service.config.may_approve(p, &caller.0))
                .then(|| data(r, p))
        })
        .collect();
    Json(json!({ "signingRequests": list })).into_response()
}

async fn request_data(
    State(service): St,
    Extension(caller): Extension<Caller>,
    Path((org, id)): Path<(String, String)>,
) -> Response {
    let row = match visible(&service, &org, &id, &caller) {
        Ok(r) => r,
        Err(r) => return r,
    };
    match policy_of(&service, &row) {
        Ok(p) => Json(data(&row, p)).into_response(),
        Err(r) => r,
    }
}

async fn request_status(
    State(service): St,
    Extension(caller): Extension<Caller>,
    Path((org, id)): Path<(String, String)>,
) -> Response {
    match visible(&service, &org, &id, &caller) {
        Ok(r) => Json(json!({
            "status": r.status,
            "workflowStatus": r.workflow_status,
            "isFinalStatus": status::is_final(&r.status),
        }))
        .into_response(),
        Err(r) => r,
    }
}

async fn signed_artifact(
    State(service): St,
    Extension(caller): Extension<Caller>,
    Path((org, id)): Path<(String, String)>,
) -> Response {
    let row = match visible(&service, &org, &id, &caller) {
        Ok(r) => r,
        Err(r) => return r,
    };
    match row.status.as_str() {
        status::COMPLETED => {}
        status::WAITING | status::IN_PROGRESS => {
            return error(
                StatusCode::BAD_REQUEST,
                "the signing request is not completed yet; the signed artifact is not available",
            )
        }
        other => {
            return error(
                StatusCode::NOT_FOUND,
                format!("there is no signed artifact: the signing request is {other}"),
            )
        }
    }
    let bytes = match service.store.signed(&row.id) {
        Ok(Some(b)) => b,
        Ok(None) => return error(StatusCode::NOT_FOUND, "the signed artifact is missing"),
        Err(e) => return store_error(e),
    };
    if let Err(e) = service.store.record_download(&row.id, &caller.0, now()) {
        return store_error(e);
    }
    let name = row.artifact_name.strip_suffix(".zip").map_or_else(
        || format!("{}.signed", row.artifact_name),
        |s| format!("{s}.signed.zip"),
    );
    (
        [
            (header::CONTENT_TYPE, "application/zip".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", name.replace('"', "")),
            ),
        ],
        bytes,
    )
        .into_response()
}

async fn cancel(
    State(service): St,
    Extension(caller): Extension<Caller>,
    Path((org, id)): Path<(String, String)>,
) -> Response {
    let row = match visible(&service, &org, &id, &caller) {
        Ok(r) => r,
        Err(r) => return r,
    };
    if row.submitter != caller.0 {
        return error(
            StatusCode::FORBIDDEN,
            "only the submitter cancels a signing request; approvers deny it",
        );
    }
    match service.store.cancel(&row.id, &caller.0, now()) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(StoreError::Conflict(m)) => error(StatusCode::BAD_REQUEST, m),
        Err(e) => store_error(e),
    }
}

fn approver_of(service: &Service, row: &RequestRow, caller: &Caller) -> Result<u32, Response> {
    crate::decide::may_decide(&service.config, row, &caller.0)
        .map_err(|r| error(r.status, r.message))
}

async fn approve(
    State(service): St,
    Extension(caller): Extension<Caller>,
    Path((org, id)): Path<(String, String)>,
) -> Response {
    let row = match visible(&service, &org, &id, &caller) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let needed = match approver_of(&service, &row, &caller) {
        Ok(n) => n,
        Err(r) => return r,
    };
    match service
        .store
        .unsigned(&row.id)
        .map(|u| artifact::check_stored(&u))
    {
        Ok(Ok(())) => {}
        Ok(Err(why)) => return error(StatusCode::CONFLICT, why),
        Err(e) => return store_error(e),
    }
    match service
        .store
        .approve(&row.id, &caller.0, needed, now(), crate::store::Via::Api)
    {
        Ok(ready) => {
            if ready {
                tokio::spawn(service.clone().process(row.id.clone()));
            }
            Json(json!({ "approved": true, "complete": ready })).into_response()
        }
        Err(e) => store_error(e),
    }
}

#[derive(serde::Deserialize)]
struct DenyBody {
    reason: String,
}

async fn deny(
    State(service): St,
    Extension(caller): Extension<Caller>,
    Path((org, id)): Path<(String, String)>,
    body: Option<Json<DenyBody>>,
) -> Response {
    let row = match visible(&service, &org, &id, &caller) {
        Ok(r) => r,
        Err(r) => return r,
    };
    if let Err(r) = approver_of(&service, &row, &caller) {
        return r;
    }
    let reason = body
        .map(|Json(b)| b.reason.trim().to_string())
        .unwrap_or_default();
    if reason.is_empty() || reason.len() > MAX_TEXT {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "a denial needs a reason: send {{\"reason\": \"...\"}} (at most {MAX_TEXT} bytes)"
            ),
        );
    }
    match service
        .store
        .deny(&row.id, &caller.0, &reason, now(), crate::store::Via::Api)
    {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => store_error(e),
    }
}

/// The policy's verification key for clients that fetch it instead of configuring it
/// (sigbridge's SignPath client: `…/Projects/{p}/SigningPolicies/{s}/Certificate/X509Certificate`).
/// With `certificate` set for the policy this is that X.509 certificate as DER, as SignPath
/// serves it; without, the service has only the key, so it serves the public key as PEM
/// (`BEGIN PUBLIC KEY`), which sigbridge accepts there but a client that insists on a
/// certificate does not.
async fn policy_certificate(
    State(service): St,
    Extension(caller): Extension<Caller>,
    Path((org, project, slug)): Path<(String, String, String)>,
) -> Response {
    if let Err(r) = check_org(&service, &org) {
        return r;
    }
    let not_found = || {
        error(
            StatusCode::NOT_FOUND,
            format!("there is no signing policy {slug} in project {project}"),
        )
    };
    // Only its submitters and approvers learn that a policy exists.
    let Some(policy) = service.config.policy(&project, &slug).filter(|p| {
        service.config.may_submit(p, &caller.0) || service.config.may_approve(p, &caller.0)
    }) else {
        return not_found();
    };
    let key = crate::policy_key(&policy.project, &policy.slug);
    if let Some(der) = service.certificates.get(&key) {
        return (
            [(header::CONTENT_TYPE, "application/pkix-cert")],
            der.clone(),
        )
            .into_response();
    }
    let Some(signer) = service.signers.get(&key) else {
        return not_found();
    };
    match signer.public_key().await {
        Ok(key) => (
            [(header::CONTENT_TYPE, "application/x-pem-file")],
            key.to_pem(),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(
                "cannot read the public key of policy {}/{}: {e}",
                policy.project,
                policy.slug
            );
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the policy's signer could not give its public key; see the service's log",
            )
        }
    }
}
