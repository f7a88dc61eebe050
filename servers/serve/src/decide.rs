//! Who may approve or deny a request: the one rule the API and the web page share, so they
//! cannot drift apart.

use axum::http::StatusCode;

use crate::config::ServeConfig;
use crate::store::RequestRow;

/// Why `who` may not decide, with the HTTP status that says so.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

/// The approvals `row`'s policy requires, if `who` may approve or deny it: an approver of the
/// policy (directly or through a group) who did not submit it.
pub(crate) fn may_decide(
    config: &ServeConfig,
    row: &RequestRow,
    who: &str,
) -> Result<u32, Refusal> {
    let Some(policy) = config.policy(&row.project, &row.policy) else {
        return Err(Refusal {
            status: StatusCode::CONFLICT,
            message: format!(
                "signing request {} belongs to policy {}/{}, which is no longer configured",
                row.id, row.project, row.policy
            ),
        });
    };
    if row.submitter == who {
        return Err(Refusal {
            status: StatusCode::FORBIDDEN,
            message: format!(
                "{who} submitted signing request {} and cannot approve or deny it; another approver must",
                row.id
            ),
        });
    }
    if !config.may_approve(policy, who) {
        return Err(Refusal {
            status: StatusCode::FORBIDDEN,
            message: format!("{who} is not an approver of {}/{}", row.project, row.policy),
        });
    }
    Ok(policy.approvals_required)
}
