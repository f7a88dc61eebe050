//! Durable state in SQLite (WAL): signing requests, approvals and the audit log. Every change
//! and its audit entry are written in one transaction, so the log never misses a change and
//! never records one that did not happen.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension as _, Transaction};

use crate::audit::{self, AuditEntry};

/// Why a state operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("the state database failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// No such request.
    #[error("signing request {0} not found")]
    NotFound(String),
    /// The request is not in a state that allows this.
    #[error("{0}")]
    Conflict(String),
    /// A lock holder panicked; the connection may be mid-transaction.
    #[error("the state database lock is poisoned; restart the service")]
    Poisoned,
}

/// Statuses, spelled as the SignPath API spells them.
pub mod status {
    /// Waiting for approvals.
    pub const WAITING: &str = "WaitingForApproval";
    /// Approved, being signed.
    pub const IN_PROGRESS: &str = "InProgress";
    /// Signed.
    pub const COMPLETED: &str = "Completed";
    /// Signing failed.
    pub const FAILED: &str = "Failed";
    /// Denied by an approver.
    pub const DENIED: &str = "Denied";
    /// Canceled by the submitter or expired.
    pub const CANCELED: &str = "Canceled";

    /// Whether `s` is final.
    pub fn is_final(s: &str) -> bool {
        matches!(s, COMPLETED | FAILED | DENIED | CANCELED)
    }
}

/// One signing request.
#[derive(Clone, Debug)]
pub struct RequestRow {
    /// Its id (a UUID).
    pub id: String,
    /// Project slug.
    pub project: String,
    /// Signing policy slug.
    pub policy: String,
    /// Who submitted it.
    pub submitter: String,
    /// The peer address it came from.
    pub submitted_from: String,
    /// The submitter's description.
    pub description: Option<String>,
    /// `parameters.*` as a JSON object.
    pub parameters: String,
    /// The uploaded file name.
    pub artifact_name: String,
    /// `status`.
    pub status: String,
    /// `workflowStatus`.
    pub workflow_status: String,
    /// Why it was denied, failed or canceled.
    pub reason: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds after which a waiting request is canceled.
    pub expires_at: i64,
    /// Who approved so far.
    pub approvers: Vec<String>,
}

/// A new request as submitted.
pub struct NewRequest<'a> {
    /// Its id.
    pub id: &'a str,
    /// Project slug.
    pub project: &'a str,
    /// Policy slug.
    pub policy: &'a str,
    /// Who.
    pub submitter: &'a str,
    /// From where.
    pub submitted_from: &'a str,
    /// Description.
    pub description: Option<&'a str>,
    /// `parameters.*` as JSON.
    pub parameters: &'a str,
    /// File name.
    pub artifact_name: &'a str,
    /// The zip.
    pub unsigned: &'a [u8],
    /// Status to start in.
    pub status: &'a str,
    /// Now.
    pub now: i64,
    /// Deadline.
    pub expires_at: i64,
    /// For the audit entry: the payload files and their SHA-256.
    pub audit_detail: serde_json::Value,
}

/// The database.
/// Where a decision was made, recorded with it in the audit log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// The REST API, with a bearer token.
    Api,
    /// The approvers' web page, in a signed-in session.
    Web,
}

impl Via {
    /// The word recorded in the audit entry's detail.
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Api => "api",
            Via::Web => "web",
        }
    }
}

pub struct Store {
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS requests (
    id TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    policy TEXT NOT NULL,
    submitter TEXT NOT NULL,
    submitted_from TEXT NOT NULL,
    description TEXT,
    parameters TEXT NOT NULL,
    artifact_name TEXT NOT NULL,
    unsigned BLOB NOT NULL,
    signed BLOB,
    status TEXT NOT NULL,
    workflow_status TEXT NOT NULL,
    reason TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
-- Every API call looks for due requests and the list reads the waiting ones; without this the
-- table (uploaded and signed artifacts included) is scanned each time, slower with every request
-- ever stored. Existing databases get it at the next start.
CREATE INDEX IF NOT EXISTS requests_by_status ON requests (status, expires_at);
CREATE TABLE IF NOT EXISTS approvals (
    request_id TEXT NOT NULL REFERENCES requests(id),
    approver TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (request_id, approver)
);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    request_id TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
-- Web sessions: only the SHA-256 of the cookie's random id is kept, so a copy of the
-- database does not log anyone in.
CREATE TABLE IF NOT EXISTS sessions (
    id_sha256 TEXT PRIMARY KEY,
    identity TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
-- Append-only for the service itself; someone with the file can drop these, which the hash
-- chain then shows.
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
";

/// Waiting requests, oldest first.
const WAITING_SQL: &str = "SELECT id FROM requests WHERE status = ?1 ORDER BY created_at, id";
/// Approved requests not yet signed.
const IN_PROGRESS_SQL: &str = "SELECT id FROM requests WHERE status = ?1 ORDER BY created_at";
/// Requests of status ?1 whose deadline ?2 has come (run on every API call).
const EXPIRE_DUE_SQL: &str = "SELECT id FROM requests WHERE status = ?1 AND expires_at <= ?2";

impl Store {
    /// Open (creating when missing) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        // WAL: readers do not block the writer, and a crash loses no committed transaction.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        f(&mut conn)
    }

    /// Store a new request and its `submit` audit entry.
    pub fn insert(&self, r: &NewRequest<'_>) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO requests (id, project, policy, submitter, submitted_from, description,
                   parameters, artifact_name, unsigned, status, workflow_status, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?11, ?12)",
                params![
                    r.id, r.project, r.policy, r.submitter, r.submitted_from, r.description,
                    r.parameters, r.artifact_name, r.unsigned, r.status, r.now, r.expires_at
                ],
            )?;
            audit::append(&tx, r.now, r.submitter, "submit", r.id, &r.audit_detail)?;
            tx.commit()?;
            Ok(())
        })
    }

    /// One request.
    pub fn get(&self, id: &str) -> Result<RequestRow, StoreError> {
        self.with(|c| get_row(c, id))
    }

    /// Requests waiting for approval, oldest first.
    pub fn waiting(&self) -> Result<Vec<RequestRow>, StoreError> {
        self.with(|c| {
            let ids: Vec<String> = c
                .prepare(WAITING_SQL)?
                .query_map([status::WAITING], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            ids.iter().map(|id| get_row(c, id)).collect()
        })
    }

    /// The `limit` most recent requests in a final state, newest first.
    pub fn recent_final(&self, limit: u32) -> Result<Vec<RequestRow>, StoreError> {
        self.with(|c| {
            let ids: Vec<String> = c
                .prepare(
                    "SELECT id FROM requests WHERE status IN (?1, ?2, ?3, ?4)
                     ORDER BY created_at DESC, id LIMIT ?5",
                )?
                .query_map(
                    params![
                        status::COMPLETED,
                        status::FAILED,
                        status::DENIED,
                        status::CANCELED,
                        limit
                    ],
                    |r| r.get(0),
                )?
                .collect::<Result<_, _>>()?;
            ids.iter().map(|id| get_row(c, id)).collect()
        })
    }

    /// Append an audit entry that changes no request (web logins and their failures);
    /// `request_id` is empty.
    pub fn record_event(
        &self,
        who: &str,
        action: &str,
        detail: &serde_json::Value,
        now: i64,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            audit::append(&tx, now, who, action, "", detail)?;
            tx.commit()?;
            Ok(())
        })
    }

    /// Ids of approved requests not yet signed (to finish after a restart).
    pub fn in_progress(&self) -> Result<Vec<String>, StoreError> {
        self.with(|c| {
            let ids = c
                .prepare(IN_PROGRESS_SQL)?
                .query_map([status::IN_PROGRESS], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            Ok(ids)
        })
    }

    /// The uploaded zip.
    pub fn unsigned(&self, id: &str) -> Result<Vec<u8>, StoreError> {
        self.with(|c| {
            c.query_row("SELECT unsigned FROM requests WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?
            .ok_or_else(|| StoreError::NotFound(id.into()))
        })
    }

    /// The signed zip, if completed.
    pub fn signed(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.with(|c| {
            c.query_row("SELECT signed FROM requests WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?
            .ok_or_else(|| StoreError::NotFound(id.into()))
        })
    }

    /// Record `approver`'s approval, made through `via`; returns whether the request now has
    /// `needed` approvals (and has moved to `InProgress`).
    pub fn approve(
        &self,
        id: &str,
        approver: &str,
        needed: u32,
        now: i64,
        via: Via,
    ) -> Result<bool, StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let row = waiting_row(&tx, id, now)?;
            if row.submitter == approver {
                return Err(StoreError::Conflict(format!(
                    "{approver} submitted signing request {id} and cannot approve it; another approver must"
                )));
            }
            if row.approvers.iter().any(|a| a == approver) {
                return Err(StoreError::Conflict(format!(
                    "{approver} has already approved signing request {id}"
                )));
            }
            tx.execute(
                "INSERT INTO approvals (request_id, approver, at) VALUES (?1, ?2, ?3)",
                params![id, approver, now],
            )?;
            let count = row.approvers.len() as u64 + 1;
            let ready = count >= u64::from(needed);
            if ready {
                set_status(&tx, id, status::IN_PROGRESS, "QueuedForProcessing", None)?;
            }
            let detail =
                serde_json::json!({ "approvals": count, "required": needed, "via": via.as_str() });
            audit::append(&tx, now, approver, "approve", id, &detail)?;
            tx.commit()?;
            Ok(ready)
        })
    }

    /// Deny with a reason, through `via`.
    pub fn deny(
        &self,
        id: &str,
        who: &str,
        reason: &str,
        now: i64,
        via: Via,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let row = waiting_row(&tx, id, now)?;
            if row.submitter == who {
                return Err(StoreError::Conflict(format!(
                    "{who} submitted signing request {id} and cannot decide on it; cancel it instead"
                )));
            }
            set_status(&tx, id, status::DENIED, "Denied", Some(reason))?;
            let detail = serde_json::json!({ "reason": reason, "via": via.as_str() });
            audit::append(&tx, now, who, "deny", id, &detail)?;
            tx.commit()?;
            Ok(())
        })
    }

    /// Cancel a request that is not final yet.
    pub fn cancel(&self, id: &str, who: &str, now: i64) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let row = get_row(&tx, id)?;
            if status::is_final(&row.status) {
                return Err(StoreError::Conflict(format!(
                    "signing request {id} is already {}",
                    row.status
                )));
            }
            set_status(
                &tx,
                id,
                status::CANCELED,
                "Canceled",
                Some("canceled by the submitter"),
            )?;
            audit::append(&tx, now, who, "cancel", id, &serde_json::json!({}))?;
            tx.commit()?;
            Ok(())
        })
    }

    /// Cancel every waiting request whose deadline has passed.
    pub fn expire_due(&self, now: i64) -> Result<usize, StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let n = expire_in(&tx, now)?;
            tx.commit()?;
            Ok(n)
        })
    }

    /// Store the signed zip (or the failure) of an approved request.
    pub fn finish(
        &self,
        id: &str,
        outcome: Result<(&[u8], serde_json::Value), &str>,
        now: i64,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let row = get_row(&tx, id)?;
            // Canceled while being signed: it stays canceled and nothing is stored.
            if row.status != status::IN_PROGRESS {
                return Ok(());
            }
            match outcome {
                Ok((zip, detail)) => {
                    tx.execute(
                        "UPDATE requests SET signed = ?2 WHERE id = ?1",
                        params![id, zip],
                    )?;
                    set_status(&tx, id, status::COMPLETED, "Completed", None)?;
                    audit::append(&tx, now, "service", "sign", id, &detail)?;
                }
                Err(reason) => {
                    set_status(&tx, id, status::FAILED, "ProcessingFailed", Some(reason))?;
                    audit::append(
                        &tx,
                        now,
                        "service",
                        "fail",
                        id,
                        &serde_json::json!({ "reason": reason }),
                    )?;
                }
            }
            tx.commit()?;
            Ok(())
        })
    }

    /// Record that `who` downloaded the signed artifact.
    pub fn record_download(&self, id: &str, who: &str, now: i64) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            audit::append(&tx, now, who, "download", id, &serde_json::json!({}))?;
            tx.commit()?;
            Ok(())
        })
    }

    /// Every audit entry, in order.
    pub fn audit_entries(&self) -> Result<Vec<AuditEntry>, StoreError> {
        self.with(|c| Ok(audit::entries(c)?))
    }
}

fn expire_in(tx: &Transaction<'_>, now: i64) -> Result<usize, StoreError> {
    let due: Vec<String> = tx
        .prepare(EXPIRE_DUE_SQL)?
        .query_map(params![status::WAITING, now], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for id in &due {
        set_status(
            tx,
            id,
            status::CANCELED,
            "Expired",
            Some("not approved in time"),
        )?;
        audit::append(tx, now, "service", "expire", id, &serde_json::json!({}))?;
    }
    Ok(due.len())
}

/// The request, after expiring due ones, if it still waits for approval.
fn waiting_row(tx: &Transaction<'_>, id: &str, now: i64) -> Result<RequestRow, StoreError> {
    expire_in(tx, now)?;
    let row = get_row(tx, id)?;
    if row.status != status::WAITING {
        let why = row
            .reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        return Err(StoreError::Conflict(format!(
            "signing request {id} is {}{why}, not WaitingForApproval",
            row.status
        )));
    }
    Ok(row)
}

fn set_status(
    tx: &Transaction<'_>,
    id: &str,
    status: &str,
    workflow: &str,
    reason: Option<&str>,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE requests SET status = ?2, workflow_status = ?3, reason = COALESCE(?4, reason) WHERE id = ?1",
        params![id, status, workflow, reason],
    )?;
    Ok(())
}

fn get_row(c: &Connection, id: &str) -> Result<RequestRow, StoreError> {
    let row = c
        .query_row(
            "SELECT id, project, policy, submitter, submitted_from, description, parameters,
                    artifact_name, status, workflow_status, reason, created_at, expires_at
             FROM requests WHERE id = ?1",
            [id],
            |r| {
                Ok(RequestRow {
                    id: r.get(0)?,
                    project: r.get(1)?,
                    policy: r.get(2)?,
                    submitter: r.get(3)?,
                    submitted_from: r.get(4)?,
                    description: r.get(5)?,
                    parameters: r.get(6)?,
                    artifact_name: r.get(7)?,
                    status: r.get(8)?,
                    workflow_status: r.get(9)?,
                    reason: r.get(10)?,
                    created_at: r.get(11)?,
                    expires_at: r.get(12)?,
                    approvers: Vec::new(),
                })
            },
        )
        .optional()?;
    let mut row = row.ok_or_else(|| StoreError::NotFound(id.into()))?;
    row.approvers = c
        .prepare("SELECT approver FROM approvals WHERE request_id = ?1 ORDER BY at, approver")?
        .query_map([id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new<'a>(id: &'a str, now: i64, expires_at: i64) -> NewRequest<'a> {
        NewRequest {
            id,
            project: "p",
            policy: "s",
            submitter: "ci",
            submitted_from: "127.0.0.1:1",
            description: None,
            parameters: "{}",
            artifact_name: "payloads.zip",
            unsigned: b"zip",
            status: status::WAITING,
            now,
            expires_at,
            audit_detail: serde_json::json!({}),
        }
    }

    #[test]
    fn two_approvals_are_needed_and_the_submitter_never_counts() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        store.insert(&new("r1", 10, 1000)).unwrap();
        let e = store
            .approve("r1", "ci", 2, 11, Via::Api)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot approve"), "{e}");
        assert!(!store.approve("r1", "alice", 2, 12, Via::Api).unwrap());
        assert!(store.approve("r1", "alice", 2, 13, Via::Api).is_err());
        assert!(store.approve("r1", "bob", 2, 14, Via::Web).unwrap());
        assert_eq!(store.get("r1").unwrap().status, status::IN_PROGRESS);
        let entries = store.audit_entries().unwrap();
        assert!(audit::verify_entries(&entries).is_ok());
        // Each decision records where it was made.
        let via: Vec<(String, String)> = entries
            .iter()
            .filter(|e| e.action == "approve")
            .map(|e| {
                let d: serde_json::Value = serde_json::from_str(&e.detail).unwrap();
                (e.actor.clone(), d["via"].as_str().unwrap().to_string())
            })
            .collect();
        assert_eq!(
            via,
            [("alice".into(), "api".into()), ("bob".into(), "web".into())]
        );
    }

    #[test]
    fn an_expired_request_cannot_be_approved() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        store.insert(&new("r1", 10, 20)).unwrap();
        let e = store
            .approve("r1", "alice", 1, 20, Via::Api)
            .unwrap_err()
            .to_string();
        assert!(e.contains("Canceled (not approved in time)"), "{e}");
    }

    /// Every API call looks for due requests: a scan of the table (artifacts included) would
    /// make each call slower with every request ever stored, under the one connection lock.
    #[test]
    fn due_waiting_and_in_progress_requests_are_found_through_an_index_not_a_scan() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        store
            .with(|c| {
                let plan = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> Vec<String> {
                    c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                        .unwrap()
                        .query_map(p, |r| r.get::<_, String>(3))
                        .unwrap()
                        .collect::<Result<_, _>>()
                        .unwrap()
                };
                for (sql, p) in [
                    (
                        EXPIRE_DUE_SQL,
                        &[&status::WAITING as &dyn rusqlite::ToSql, &0i64][..],
                    ),
                    (WAITING_SQL, &[&status::WAITING as &dyn rusqlite::ToSql][..]),
                    (
                        IN_PROGRESS_SQL,
                        &[&status::IN_PROGRESS as &dyn rusqlite::ToSql][..],
                    ),
                ] {
                    let steps = plan(sql, p);
                    assert!(
                        steps.iter().any(|s| s.contains("USING INDEX"))
                            && !steps.iter().any(|s| s.starts_with("SCAN requests")),
                        "{sql}: {steps:?}"
                    );
                }
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn the_service_itself_cannot_change_or_delete_audit_entries() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        store.insert(&new("r1", 10, 20)).unwrap();
        store
            .with(|c| {
                assert!(c.execute("UPDATE audit SET actor = 'x'", []).is_err());
                assert!(c.execute("DELETE FROM audit", []).is_err());
                Ok(())
            })
            .unwrap();
    }
}
