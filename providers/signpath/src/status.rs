//! The signing request data returned by `GET …/SigningRequests/{id}` (and `…/Status`).

use serde::Deserialize;

/// `status` of a signing request. Unknown values are kept and treated as non-final unless
/// the service says `isFinalStatus`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// Being processed (or waiting in a queue, or for an artifact).
    InProgress,
    /// Waiting for a person to approve.
    WaitingForApproval,
    /// Signed; the signed artifact can be downloaded.
    Completed,
    /// Processing failed.
    Failed,
    /// An approver denied it.
    Denied,
    /// Someone (or a timeout) canceled it.
    Canceled,
    /// A value this client does not know.
    Other(String),
}

impl Status {
    /// Parse the API's text (case-insensitively; the API uses PascalCase).
    pub fn parse(s: &str) -> Self {
        match s.to_ascii_lowercase().as_str() {
            "inprogress" => Self::InProgress,
            "waitingforapproval" => Self::WaitingForApproval,
            "completed" => Self::Completed,
            "failed" => Self::Failed,
            "denied" => Self::Denied,
            "canceled" | "cancelled" => Self::Canceled,
            _ => Self::Other(s.to_string()),
        }
    }

    /// Whether this value is final by itself.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Failed | Self::Denied | Self::Canceled
        )
    }

    /// The API's spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Self::InProgress => "InProgress",
            Self::WaitingForApproval => "WaitingForApproval",
            Self::Completed => "Completed",
            Self::Failed => "Failed",
            Self::Denied => "Denied",
            Self::Canceled => "Canceled",
            Self::Other(s) => s,
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    status: String,
    #[serde(default)]
    is_final_status: Option<bool>,
    #[serde(default)]
    workflow_status: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    project_slug: Option<String>,
    #[serde(default)]
    signing_policy_slug: Option<String>,
    #[serde(default)]
    artifact_configuration_slug: Option<String>,
    #[serde(default)]
    signed_artifact_link: Option<String>,
    #[serde(default)]
    unsigned_artifact_link: Option<String>,
    #[serde(default)]
    web_link: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

/// What the client needs from a signing request's data.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestStatus {
    /// `status`.
    #[serde(serialize_with = "ser_status")]
    pub status: Status,
    /// `isFinalStatus` (or, if absent, whether `status` is final).
    pub is_final: bool,
    /// `workflowStatus`, if given (finer grained, for display).
    pub workflow_status: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// `projectSlug`.
    pub project_slug: Option<String>,
    /// `signingPolicySlug`.
    pub signing_policy_slug: Option<String>,
    /// `artifactConfigurationSlug`.
    pub artifact_configuration_slug: Option<String>,
    /// `signedArtifactLink`.
    pub signed_artifact_link: Option<String>,
    /// `unsignedArtifactLink`.
    pub unsigned_artifact_link: Option<String>,
    /// `webLink`, if the service gives one.
    pub web_link: Option<String>,
    /// `reason`: why an approver denied it (sigbridge serve gives it in the request's data;
    /// SignPath's API has no such field).
    pub reason: Option<String>,
}

fn ser_status<S: serde::Serializer>(s: &Status, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.as_str())
}

impl RequestStatus {
    /// Parse the JSON body; `None`'s message says what is wrong.
    pub fn from_json(body: &[u8]) -> Result<Self, String> {
        let wire: Wire = serde_json::from_slice(body).map_err(|e| {
            format!(
                "the signing request data is not the expected JSON (it needs a \"status\"): {e}"
            )
        })?;
        let status = Status::parse(&wire.status);
        // isFinalStatus is authoritative when present; a known final status is final either way.
        let is_final = wire.is_final_status.unwrap_or(false) || status.is_final();
        Ok(Self {
            status,
            is_final,
            workflow_status: wire.workflow_status,
            description: wire.description,
            project_slug: wire.project_slug,
            signing_policy_slug: wire.signing_policy_slug,
            artifact_configuration_slug: wire.artifact_configuration_slug,
            signed_artifact_link: wire.signed_artifact_link,
            unsigned_artifact_link: wire.unsigned_artifact_link,
            web_link: wire.web_link,
            reason: wire.reason,
        })
    }

    /// `Status (workflow: WorkflowStatus)`, or just the status when they agree.
    pub fn display(&self) -> String {
        match &self.workflow_status {
            Some(w) if !w.eq_ignore_ascii_case(self.status.as_str()) => {
                format!("{} (workflow: {w})", self.status)
            }
            _ => self.status.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_example() {
        let body = br#"{ "status":"Completed", "isFinalStatus":true, "workflowStatus":"Completed",
          "description":"Called by cURL", "projectSlug":"test-project",
          "signedArtifactLink":"https://app.signpath.io1/API/v1/o/SigningRequests/i/SignedArtifact",
          "parameters": { "param1":"value1" }, "origin": {"buildData": {"url": "x"}} }"#;
        let s = RequestStatus::from_json(body).unwrap();
        assert_eq!(s.status, Status::Completed);
        assert!(s.is_final);
        assert_eq!(s.display(), "Completed");
    }

    #[test]
    fn waiting_for_approval_in_progress() {
        let s = RequestStatus::from_json(
            br#"{"status":"InProgress","workflowStatus":"WaitingForApproval","isFinalStatus":false}"#,
        )
        .unwrap();
        assert_eq!(s.status, Status::InProgress);
        assert!(!s.is_final);
        assert_eq!(s.display(), "InProgress (workflow: WaitingForApproval)");
    }

    #[test]
    fn every_documented_status() {
        for (text, st, fin) in [
            ("InProgress", Status::InProgress, false),
            ("WaitingForApproval", Status::WaitingForApproval, false),
            ("Completed", Status::Completed, true),
            ("Failed", Status::Failed, true),
            ("Denied", Status::Denied, true),
            ("Canceled", Status::Canceled, true),
        ] {
            let body = format!(r#"{{"status":"{text}"}}"#);
            let s = RequestStatus::from_json(body.as_bytes()).unwrap();
            assert_eq!(s.status, st);
            assert_eq!(s.is_final, fin, "{text}");
        }
    }

    #[test]
    fn unknown_status_follows_is_final() {
        let s = RequestStatus::from_json(br#"{"status":"WaitingForArtifactUpload"}"#).unwrap();
        assert_eq!(s.status, Status::Other("WaitingForArtifactUpload".into()));
        assert!(!s.is_final);
        let s = RequestStatus::from_json(br#"{"status":"Weird","isFinalStatus":true}"#).unwrap();
        assert!(s.is_final);
    }

    #[test]
    fn a_denial_reason_is_read_when_given() {
        let s = RequestStatus::from_json(
            br#"{"status":"Denied","isFinalStatus":true,"reason":"not a release build"}"#,
        )
        .unwrap();
        assert_eq!(s.reason.as_deref(), Some("not a release build"));
        let s = RequestStatus::from_json(br#"{"status":"Denied","reason":null}"#).unwrap();
        assert_eq!(s.reason, None);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(RequestStatus::from_json(b"<html>").is_err());
        assert!(RequestStatus::from_json(b"{}").is_err());
    }
}
