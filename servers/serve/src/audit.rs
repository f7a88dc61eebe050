//! The audit log: append-only rows, each with the SHA-256 of its own fields and the previous
//! entry's hash, so changing, removing or reordering any entry breaks the chain from there on.
//!
//! An entry's hash is SHA-256 over the JSON array
//! `[seq, at, actor, action, request_id, detail, prev_hash]` (JSON keeps the fields apart
//! unambiguously); the first entry's `prev_hash` is 64 zeros. Cutting entries off the end is not
//! detectable from the log alone: keep an exported copy (or its last hash) elsewhere.

use rusqlite::{params, Connection, OptionalExtension as _, Transaction};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

/// The `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One entry as stored (and exported).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct AuditEntry {
    /// 1, 2, 3, … without gaps.
    pub seq: i64,
    /// Unix seconds.
    pub at: i64,
    /// Identity name, or `service`.
    pub actor: String,
    /// `submit`, `approve`, `deny`, `cancel`, `expire`, `sign`, `fail`, `download`; with an
    /// empty `request_id`: `submit-refused` (a payload the strict readers refused) and, for the
    /// web page, `login`, `login-failed`, `login-refused` (rate limited) and `logout`.
    pub action: String,
    /// The signing request.
    pub request_id: String,
    /// JSON text with the action's details (digests, reason, counts).
    pub detail: String,
    /// The previous entry's hash.
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

/// The first entry that does not fit the chain.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChainError {
    /// An entry's hash is not the hash of its fields.
    #[error("audit entry {seq} was changed: its hash does not match its contents")]
    Altered {
        /// The entry.
        seq: i64,
    },
    /// An entry does not point at the one before it.
    #[error("audit entry {seq} does not follow entry {previous}: an entry before it was changed, removed or reordered")]
    Broken {
        /// The entry.
        seq: i64,
        /// What should come before it.
        previous: i64,
    },
    /// Sequence numbers jump.
    #[error("audit entry {expected} is missing (the next one is {found})")]
    Missing {
        /// The number expected.
        expected: i64,
        /// The number found.
        found: i64,
    },
}

impl ChainError {
    /// The sequence number of the first bad entry.
    pub fn seq(&self) -> i64 {
        match self {
            Self::Altered { seq } | Self::Broken { seq, .. } => *seq,
            Self::Missing { expected, .. } => *expected,
        }
    }
}

fn entry_hash(
    seq: i64,
    at: i64,
    actor: &str,
    action: &str,
    request_id: &str,
    detail: &str,
    prev_hash: &str,
) -> String {
    let fields = serde_json::json!([seq, at, actor, action, request_id, detail, prev_hash]);
    hex::encode(Sha256::digest(fields.to_string().as_bytes()))
}

/// Append an entry inside `tx` (the caller commits it with the change it records).
pub(crate) fn append(
    tx: &Transaction<'_>,
    at: i64,
    actor: &str,
    action: &str,
    request_id: &str,
    detail: &serde_json::Value,
) -> rusqlite::Result<()> {
    let last: Option<(i64, String)> = tx
        .query_row(
            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (seq, prev) = match last {
        Some((s, h)) => (s + 1, h),
        None => (1, GENESIS.to_string()),
    };
    let detail = detail.to_string();
    let hash = entry_hash(seq, at, actor, action, request_id, &detail, &prev);
    tx.execute(
        "INSERT INTO audit (seq, at, actor, action, request_id, detail, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![seq, at, actor, action, request_id, detail, prev, hash],
    )?;
    Ok(())
}

/// Every entry in sequence order.
pub(crate) fn entries(c: &Connection) -> rusqlite::Result<Vec<AuditEntry>> {
    c.prepare(
        "SELECT seq, at, actor, action, request_id, detail, prev_hash, hash FROM audit ORDER BY seq",
    )?
    .query_map([], |r| {
        Ok(AuditEntry {
            seq: r.get(0)?,
            at: r.get(1)?,
            actor: r.get(2)?,
            action: r.get(3)?,
            request_id: r.get(4)?,
            detail: r.get(5)?,
            prev_hash: r.get(6)?,
            hash: r.get(7)?,
        })
    })?
    .collect()
}

/// Check the chain; the error names the first entry that does not fit.
pub fn verify_entries(entries: &[AuditEntry]) -> Result<(), ChainError> {
    let mut prev = GENESIS.to_string();
    for (expected, e) in (1..).zip(entries) {
        if e.seq != expected {
            return Err(ChainError::Missing {
                expected,
                found: e.seq,
            });
        }
        if e.prev_hash != prev {
            return Err(ChainError::Broken {
                seq: e.seq,
                previous: e.seq - 1,
            });
        }
        let h = entry_hash(
            e.seq,
            e.at,
            &e.actor,
            &e.action,
            &e.request_id,
            &e.detail,
            &e.prev_hash,
        );
        if h != e.hash {
            return Err(ChainError::Altered { seq: e.seq });
        }
        prev = e.hash.clone();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditEntry> {
        let mut c = Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE TABLE audit (seq INTEGER PRIMARY KEY, at INTEGER, actor TEXT, action TEXT,
             request_id TEXT, detail TEXT, prev_hash TEXT, hash TEXT)",
        )
        .unwrap();
        let tx = c.transaction().unwrap();
        for i in 0..n {
            append(&tx, i, "ci", "submit", "r", &serde_json::json!({ "i": i })).unwrap();
        }
        tx.commit().unwrap();
        entries(&c).unwrap()
    }

    #[test]
    fn an_untouched_chain_verifies() {
        assert_eq!(verify_entries(&chain(4)), Ok(()));
    }

    #[test]
    fn a_changed_field_is_named_by_its_entry() {
        let mut c = chain(4);
        c[2].actor = "mallory".into();
        assert_eq!(verify_entries(&c), Err(ChainError::Altered { seq: 3 }));
    }

    #[test]
    fn a_rehashed_entry_breaks_the_next_link() {
        let mut c = chain(4);
        let e = &mut c[1];
        e.detail = "{}".into();
        e.hash = entry_hash(
            e.seq,
            e.at,
            &e.actor,
            &e.action,
            &e.request_id,
            &e.detail,
            &e.prev_hash,
        );
        assert_eq!(
            verify_entries(&c),
            Err(ChainError::Broken {
                seq: 3,
                previous: 2
            })
        );
    }

    #[test]
    fn a_removed_entry_is_named() {
        let mut c = chain(4);
        c.remove(1);
        assert_eq!(
            verify_entries(&c),
            Err(ChainError::Missing {
                expected: 2,
                found: 3
            })
        );
    }
}
