//! The pages, as HTML strings. Every value is escaped with [`esc`]; ids and names that tests
//! and scripts rely on: forms `#login` (`name`, `password`), `#approve`, `#deny` (`reason`),
//! links `a.request` with `data-id`, and `#status` on a request page.

use std::time::{Duration, UNIX_EPOCH};

use super::csrf;
use super::html::{esc, page};
use super::payload::Described;
use crate::store::{status, RequestRow};

/// The signed-in user and the CSRF token of their session.
pub(crate) struct Viewer<'a> {
    pub(crate) name: &'a str,
    pub(crate) csrf: &'a str,
}

fn when(unix: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(u64::try_from(unix).unwrap_or(0));
    httpdate::fmt_http_date(t)
}

fn hidden_csrf(token: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
        csrf::FIELD,
        esc(token)
    )
}

/// The login form; `error` is shown above it.
pub(crate) fn login(csrf_token: &str, name: &str, error: Option<&str>) -> String {
    let error = error
        .map(|e| format!("<p id=\"error\" class=\"error\">{}</p>", esc(e)))
        .unwrap_or_default();
    let body = format!(
        "{error}<form id=\"login\" method=\"post\" action=\"/web/login\">{}\
         <p><label>Name <input name=\"name\" autocomplete=\"username\" required value=\"{}\"></label></p>\
         <p><label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label></p>\
         <p><button type=\"submit\">Sign in</button></p></form>",
        hidden_csrf(csrf_token),
        esc(name),
    );
    page("Sign in", None, &body)
}

/// An error page: what went wrong and where to go.
pub(crate) fn error(viewer: Option<&Viewer<'_>>, title: &str, message: &str) -> String {
    let body = format!(
        "<p id=\"error\" class=\"error\">{}</p><p><a href=\"/web/requests\">Back to the requests</a></p>",
        esc(message)
    );
    page(title, viewer.map(|v| (v.name, v.csrf)), &body)
}

/// A row of the request lists.
pub(crate) struct Listed<'a> {
    pub(crate) row: &'a RequestRow,
    pub(crate) needed: u32,
    /// What the viewer may do: "approve or deny", "submitted by you", "approved by you".
    pub(crate) note: &'static str,
}

fn table(rows: &[Listed<'_>], empty: &str) -> String {
    if rows.is_empty() {
        return format!("<p>{}</p>", esc(empty));
    }
    let mut out = String::from(
        "<table><thead><tr><th>Request</th><th>Policy</th><th>Submitted by</th><th>Submitted</th>\
         <th>Approvals</th><th>Status</th><th></th></tr></thead><tbody>",
    );
    for l in rows {
        let r = l.row;
        out.push_str(&format!(
            "<tr><td><a class=\"request\" data-id=\"{id}\" href=\"/web/requests/{id}\">{id}</a></td>\
             <td>{}/{}</td><td>{}</td><td>{}</td><td>{}/{}</td><td class=\"status\">{}</td><td>{}</td></tr>",
            esc(&r.project),
            esc(&r.policy),
            esc(&r.submitter),
            esc(&when(r.created_at)),
            r.approvers.len(),
            l.needed,
            esc(&r.status),
            esc(l.note),
            id = esc(&r.id),
        ));
    }
    out.push_str("</tbody></table>");
    out
}

/// The list: waiting requests the viewer may see, then recent final ones.
pub(crate) fn list(viewer: &Viewer<'_>, waiting: &[Listed<'_>], recent: &[Listed<'_>]) -> String {
    let body = format!(
        "<section id=\"pending\"><h3>Waiting for approval</h3>{}</section>\
         <section id=\"recent\"><h3>Recently finished</h3>{}</section>",
        table(waiting, "Nothing is waiting for you."),
        table(recent, "Nothing finished recently."),
    );
    page("Signing requests", Some((viewer.name, viewer.csrf)), &body)
}

/// What the viewer may do on a request page.
pub(crate) enum Decision {
    /// Approve and deny forms.
    Both,
    /// Already approved: only deny is left.
    DenyOnly,
    /// No forms, with the reason shown.
    None(String),
}

/// One request: every payload with its images, annotations and digest; who, from where,
/// which policy, approvals and deadline; the forms when the viewer may decide.
pub(crate) fn request(
    viewer: &Viewer<'_>,
    row: &RequestRow,
    needed: u32,
    payloads: &[Described],
    parameters: &[(String, String)],
    decision: &Decision,
) -> String {
    let mut body = String::new();
    // The workflow status (SignPath's finer-grained word) only when it adds something.
    let workflow = if row.workflow_status == row.status {
        String::new()
    } else {
        format!(" ({})", esc(&row.workflow_status))
    };
    body.push_str(&format!(
        "<dl id=\"summary\"><dt>Status</dt><dd><span id=\"status\">{}</span>{workflow}</dd>",
        esc(&row.status),
    ));
    if let Some(reason) = &row.reason {
        body.push_str(&format!(
            "<dt>Reason</dt><dd id=\"reason\">{}</dd>",
            esc(reason)
        ));
    }
    let approvers = if row.approvers.is_empty() {
        "none yet".to_string()
    } else {
        row.approvers
            .iter()
            .map(|a| esc(a))
            .collect::<Vec<_>>()
            .join(", ")
    };
    body.push_str(&format!(
        "<dt>Policy</dt><dd id=\"policy\">{}/{}</dd>\
         <dt>Submitted by</dt><dd id=\"submitter\">{}</dd>\
         <dt>Submitted from</dt><dd id=\"submitted-from\">{}</dd>\
         <dt>Submitted</dt><dd>{}</dd>\
         <dt>Expires</dt><dd id=\"expires\">{}</dd>\
         <dt>Approvals</dt><dd id=\"approvals\">{} of {} ({})</dd>\
         <dt>Description</dt><dd id=\"description\">{}</dd></dl>",
        esc(&row.project),
        esc(&row.policy),
        esc(&row.submitter),
        esc(&row.submitted_from),
        esc(&when(row.created_at)),
        esc(&when(row.expires_at)),
        row.approvers.len(),
        needed,
        approvers,
        esc(row.description.as_deref().unwrap_or("")),
    ));
    if !parameters.is_empty() {
        body.push_str("<h3>Parameters</h3><dl id=\"parameters\">");
        for (k, v) in parameters {
            body.push_str(&format!("<dt>{}</dt><dd>{}</dd>", esc(k), esc(v)));
        }
        body.push_str("</dl>");
    }
    body.push_str(&format!(
        "<h3>To be signed ({} {})</h3><table id=\"payloads\"><thead><tr><th>Image</th>\
         <th>Annotations</th><th>Payload</th></tr></thead><tbody>",
        payloads.len(),
        if payloads.len() == 1 {
            "payload"
        } else {
            "payloads"
        }
    ));
    for p in payloads {
        let images = if p.images.is_empty() {
            "<em>no image named</em>".to_string()
        } else {
            p.images
                .iter()
                .map(|i| format!("<code class=\"image\">{}</code>", esc(i)))
                .collect::<Vec<_>>()
                .join("<br>")
        };
        let annotations = p
            .annotations
            .iter()
            .map(|(k, v)| format!("<dt>{}</dt><dd>{}</dd>", esc(k), esc(v)))
            .collect::<String>();
        body.push_str(&format!(
            "<tr class=\"payload\"><td>{images}</td><td><dl class=\"annotations\">{annotations}</dl></td>\
             <td><code>{}</code><br>{}<br>sha256:<code class=\"digest\">{}</code></td></tr>",
            esc(&p.file),
            esc(p.kind),
            esc(&p.sha256),
        ));
    }
    body.push_str("</tbody></table>");
    let action = |what: &str| format!("/web/requests/{}/{what}", esc(&row.id));
    let approve = format!(
        "<form id=\"approve\" method=\"post\" action=\"{}\">{}<button type=\"submit\">Approve</button></form>",
        action("approve"),
        hidden_csrf(viewer.csrf)
    );
    let deny = format!(
        "<form id=\"deny\" method=\"post\" action=\"{}\">{}<p><label>Reason for denying \
         <textarea name=\"reason\" required maxlength=\"4096\"></textarea></label></p>\
         <button type=\"submit\">Deny</button></form>",
        action("deny"),
        hidden_csrf(viewer.csrf)
    );
    match decision {
        Decision::Both => body.push_str(&format!("{approve}{deny}")),
        Decision::DenyOnly => body.push_str(&format!(
            "<p id=\"note\">You approved this request.</p>{deny}"
        )),
        Decision::None(why) => {
            if row.status == status::WAITING {
                body.push_str(&format!("<p id=\"note\">{}</p>", esc(why)));
            }
        }
    }
    page(
        &format!("Signing request {}", row.id),
        Some((viewer.name, viewer.csrf)),
        &body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> RequestRow {
        RequestRow {
            id: "r1".into(),
            project: "p".into(),
            policy: "s".into(),
            submitter: "ci".into(),
            submitted_from: "127.0.0.1:1".into(),
            description: None,
            parameters: "{}".into(),
            artifact_name: "a.zip".into(),
            status: status::WAITING.into(),
            workflow_status: status::WAITING.into(),
            reason: None,
            created_at: 0,
            expires_at: 0,
            approvers: Vec::new(),
        }
    }

    fn described(n: usize) -> Vec<Described> {
        (0..n)
            .map(|i| Described {
                file: format!("payloads/{i}.json"),
                sha256: "00".repeat(32),
                kind: "cosign simple signing",
                images: vec![format!("r{i}@sha256:{}", "11".repeat(32))],
                annotations: Vec::new(),
            })
            .collect()
    }

    #[test]
    fn the_payload_count_is_singular_for_one() {
        let viewer = Viewer {
            name: "alice",
            csrf: "t",
        };
        let page = |n| request(&viewer, &row(), 1, &described(n), &[], &Decision::Both);
        assert!(page(1).contains("To be signed (1 payload)"), "{}", page(1));
        assert!(page(3).contains("To be signed (3 payloads)"), "{}", page(3));
    }

    #[test]
    fn the_workflow_status_is_shown_only_when_it_differs() {
        let viewer = Viewer {
            name: "alice",
            csrf: "t",
        };
        let page = request(&viewer, &row(), 1, &described(1), &[], &Decision::Both);
        assert!(
            page.contains("<span id=\"status\">WaitingForApproval</span></dd>"),
            "{page}"
        );
        let mut queued = row();
        queued.status = status::IN_PROGRESS.into();
        queued.workflow_status = "QueuedForProcessing".into();
        let page = request(&viewer, &queued, 1, &described(1), &[], &Decision::Both);
        assert!(
            page.contains("<span id=\"status\">InProgress</span> (QueuedForProcessing)</dd>"),
            "{page}"
        );
    }
}
