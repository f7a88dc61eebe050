//! `/web/requests`: the list, one request's page, and its approve and deny forms.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse as _, Redirect, Response};
use axum::Form;
use serde::Deserialize;

use super::auth::{self, User};
use super::login::CsrfForm;
use super::pages::{self, Decision, Listed, Viewer};
use super::{html_response, internal, payload};
use crate::decide::may_decide;
use crate::store::{status, RequestRow, StoreError};
use crate::{artifact, now, Service};

/// Longest accepted deny reason, in bytes (as in the API).
const MAX_REASON: usize = 4096;
/// Final requests shown on the list.
const RECENT: usize = 20;

fn refuse(user: &User, status: StatusCode, title: &str, message: &str) -> Response {
    let csrf = user.csrf();
    let viewer = Viewer {
        name: &user.name,
        csrf: &csrf,
    };
    user.finish(html_response(
        status,
        pages::error(Some(&viewer), title, message),
    ))
}

fn store_refusal(user: &User, e: StoreError) -> Response {
    match e {
        StoreError::NotFound(_) => refuse(user, StatusCode::NOT_FOUND, "Not found", &e.to_string()),
        StoreError::Conflict(m) => refuse(user, StatusCode::CONFLICT, "Refused", &m),
        other => internal(&other),
    }
}

fn visible_to(service: &Service, row: &RequestRow, who: &str) -> bool {
    row.submitter == who
        || service
            .config
            .policy(&row.project, &row.policy)
            .is_some_and(|p| service.config.may_approve(p, who))
}

fn needed(service: &Service, row: &RequestRow) -> u32 {
    service
        .config
        .policy(&row.project, &row.policy)
        .map_or(0, |p| p.approvals_required)
}

pub(crate) async fn list(
    State(service): State<Arc<Service>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let user = match auth::user(&service, &headers, peer) {
        Ok(u) => u,
        Err(r) => return r,
    };
    if let Err(e) = service.store.expire_due(now()) {
        return internal(&e);
    }
    let (waiting, recent) = match (service.store.waiting(), service.store.recent_final(200)) {
        (Ok(w), Ok(r)) => (w, r),
        (Err(e), _) | (_, Err(e)) => return internal(&e),
    };
    let listed = |rows: &[RequestRow]| -> Vec<(RequestRow, u32, &'static str)> {
        rows.iter()
            .filter(|r| visible_to(&service, r, &user.name))
            .map(|r| {
                let note = if r.submitter == user.name {
                    "submitted by you"
                } else if r.approvers.contains(&user.name) {
                    "approved by you"
                } else if r.status == status::WAITING {
                    "yours to approve or deny"
                } else {
                    ""
                };
                (r.clone(), needed(&service, r), note)
            })
            .collect()
    };
    let waiting = listed(&waiting);
    let mut recent = listed(&recent);
    recent.truncate(RECENT);
    let csrf = user.csrf();
    let viewer = Viewer {
        name: &user.name,
        csrf: &csrf,
    };
    let body = pages::list(&viewer, &view(&waiting), &view(&recent));
    user.finish(html_response(StatusCode::OK, body))
}

fn view<'a>(v: &'a [(RequestRow, u32, &'static str)]) -> Vec<Listed<'a>> {
    v.iter()
        .map(|(row, needed, note)| Listed {
            row,
            needed: *needed,
            note,
        })
        .collect()
}

/// The request `id` if `user` may see it, or the page saying why not.
fn load(service: &Service, user: &User, id: &str) -> Result<RequestRow, Response> {
    // Expire first so a page never offers to approve a request past its deadline.
    service.store.expire_due(now()).map_err(|e| internal(&e))?;
    let row = service
        .store
        .get(&id.to_ascii_lowercase())
        .map_err(|e| store_refusal(user, e))?;
    if !visible_to(service, &row, &user.name) {
        return Err(refuse(
            user,
            StatusCode::FORBIDDEN,
            "Not yours",
            &format!(
                "{} is neither the submitter nor an approver of signing request {} ({}/{}).",
                user.name, row.id, row.project, row.policy
            ),
        ));
    }
    Ok(row)
}

pub(crate) async fn show(
    State(service): State<Arc<Service>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let user = match auth::user(&service, &headers, peer) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let row = match load(&service, &user, &id) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let unsigned = match service.store.unsigned(&row.id) {
        Ok(b) => b,
        Err(e) => return store_refusal(&user, e),
    };
    // The upload was checked at submit; a failure here means the stored copy changed.
    let files = match artifact::read_upload(&unsigned) {
        Ok(f) => f,
        Err(e) => {
            return internal(&format!(
                "the stored upload of {} is unreadable: {e}",
                row.id
            ))
        }
    };
    let payloads: Vec<payload::Described> = files
        .iter()
        .filter(|(n, _)| artifact::signs(n))
        .map(|(n, b)| payload::describe(n, b))
        .collect();
    let parameters: Vec<(String, String)> =
        serde_json::from_str::<serde_json::Value>(&row.parameters)
            .ok()
            .and_then(|v| v.as_object().cloned())
            .map(|o| {
                o.into_iter()
                    .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_string)))
                    .collect()
            })
            .unwrap_or_default();
    let decision = if row.status != status::WAITING {
        Decision::None(String::new())
    } else if let Some(bad) = payloads.iter().find(|p| p.refused()) {
        Decision::None(format!(
            "{} is refused (see above), so this request cannot be approved; the submitter should cancel it and submit the payloads sigbridge generate writes.",
            bad.file
        ))
    } else {
        match may_decide(&service.config, &row, &user.name) {
            Err(r) => Decision::None(r.message),
            Ok(_) if row.approvers.contains(&user.name) => Decision::DenyOnly,
            Ok(_) => Decision::Both,
        }
    };
    let csrf = user.csrf();
    let viewer = Viewer {
        name: &user.name,
        csrf: &csrf,
    };
    let body = pages::request(
        &viewer,
        &row,
        needed(&service, &row),
        &payloads,
        &parameters,
        &decision,
    );
    user.finish(html_response(StatusCode::OK, body))
}

/// The user, the request and the approvals it needs, once the CSRF token and the approval
/// rules allow `user` to decide on it.
fn decide(
    service: &Arc<Service>,
    headers: &HeaderMap,
    peer: SocketAddr,
    id: &str,
    csrf: Option<&str>,
) -> Result<(User, RequestRow, u32), Response> {
    let user = auth::user(service, headers, peer)?;
    if !user.csrf_ok(csrf) {
        return Err(auth::csrf_refused(&user));
    }
    let row = load(service, &user, id)?;
    match may_decide(&service.config, &row, &user.name) {
        Ok(needed) => Ok((user, row, needed)),
        Err(r) => Err(refuse(&user, r.status, "Refused", &r.message)),
    }
}

fn back_to(user: &User, row: &RequestRow) -> Response {
    user.finish(Redirect::to(&format!("/web/requests/{}", row.id)).into_response())
}

pub(crate) async fn approve(
    State(service): State<Arc<Service>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    let (user, row, needed) = match decide(&service, &headers, peer, &id, f.csrf.as_deref()) {
        Ok(x) => x,
        Err(r) => return r,
    };
    match service
        .store
        .unsigned(&row.id)
        .map(|u| artifact::check_stored(&u))
    {
        Ok(Ok(())) => {}
        Ok(Err(why)) => return refuse(&user, StatusCode::CONFLICT, "Refused", &why),
        Err(e) => return store_refusal(&user, e),
    }
    match service
        .store
        .approve(&row.id, &user.name, needed, now(), crate::store::Via::Web)
    {
        Ok(ready) => {
            if ready {
                tokio::spawn(service.clone().process(row.id.clone()));
            }
            back_to(&user, &row)
        }
        Err(e) => store_refusal(&user, e),
    }
}

#[derive(Deserialize)]
pub(crate) struct DenyForm {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    reason: String,
}

pub(crate) async fn deny(
    State(service): State<Arc<Service>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<DenyForm>,
) -> Response {
    let (user, row, _) = match decide(&service, &headers, peer, &id, f.csrf.as_deref()) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let reason = f.reason.trim();
    if reason.is_empty() || reason.len() > MAX_REASON {
        return refuse(
            &user,
            StatusCode::BAD_REQUEST,
            "A reason is needed",
            &format!("A denial needs a reason (1 to {MAX_REASON} bytes); go back and write why."),
        );
    }
    match service
        .store
        .deny(&row.id, &user.name, reason, now(), crate::store::Via::Web)
    {
        Ok(()) => back_to(&user, &row),
        Err(e) => store_refusal(&user, e),
    }
}
