//! What a payload handed to the signer is: cosign's legacy simple-signing JSON, or the DSSE
//! pre-authentication encoding (PAE) of a cosign 3 statement (`--format bundle`). Read only to
//! name its zip entry (so that an artifact configuration can select each kind) and to describe
//! the request to approvers; nothing here decides what is trusted: every returned signature is
//! verified over the exact bytes by the caller.

/// The two kinds of bytes sigbridge asks a SignPath project to sign.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadKind {
    /// A simple-signing payload (what `cosign generate` prints), or anything that is not a PAE.
    Legacy,
    /// A DSSE PAE (what `sigbridge generate --format bundle` prints).
    Pae,
}

impl PayloadKind {
    /// The file extension of the zip entry: `json` or `pae`.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Legacy => "json",
            Self::Pae => "pae",
        }
    }
}

/// What a payload says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayloadInfo {
    /// Its kind.
    pub kind: PayloadKind,
    /// The image's manifest digest, lower-case hex of SHA-256, when the payload names one.
    pub digest_hex: Option<String>,
    /// `docker-reference` of a legacy payload (a PAE's statement names no repository).
    pub reference: Option<String>,
}

/// Classify `payload` and read the image it names.
pub fn inspect(payload: &[u8]) -> PayloadInfo {
    if let Some(statement) = pae_body(payload) {
        return PayloadInfo {
            kind: PayloadKind::Pae,
            digest_hex: statement_digest(statement),
            reference: None,
        };
    }
    let critical = serde_json::from_slice::<serde_json::Value>(payload)
        .ok()
        .and_then(|v| v.get("critical").cloned());
    let field = |path: [&str; 2]| -> Option<String> {
        critical
            .as_ref()?
            .get(path[0])?
            .get(path[1])?
            .as_str()
            .map(str::to_string)
    };
    PayloadInfo {
        kind: PayloadKind::Legacy,
        digest_hex: field(["image", "docker-manifest-digest"])
            .and_then(|d| d.strip_prefix("sha256:").and_then(sha256_hex)),
        reference: field(["identity", "docker-reference"]),
    }
}

/// `Some(hex)` when `hex` is 64 hex digits (lower-cased).
fn sha256_hex(hex: &str) -> Option<String> {
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hex.to_ascii_lowercase())
}

/// The body of a PAE (`"DSSEv1" SP len(type) SP type SP len(body) SP body`) whose lengths add
/// up exactly; `None` for anything else.
fn pae_body(bytes: &[u8]) -> Option<&[u8]> {
    let rest = bytes.strip_prefix(b"DSSEv1 ")?;
    let (type_len, rest) = length(rest)?;
    let rest = rest.get(type_len..)?.strip_prefix(b" ")?;
    let (body_len, body) = length(rest)?;
    (body.len() == body_len).then_some(body)
}

/// A decimal length followed by one space, and what follows.
fn length(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let end = bytes.iter().position(|b| *b == b' ')?;
    let digits = bytes.get(..end)?;
    if digits.is_empty() || digits.len() > 12 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some((n, bytes.get(end + 1..)?))
}

/// `subject[0].digest.sha256` of an in-toto statement.
fn statement_digest(statement: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(statement).ok()?;
    sha256_hex(
        v.get("subject")?
            .get(0)?
            .get("digest")?
            .get("sha256")?
            .as_str()?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pae_is_told_from_a_legacy_payload() {
        let hex = "c".repeat(64);
        let statement = format!(r#"{{"subject":[{{"digest":{{"sha256":"{hex}"}}}}]}}"#);
        let pae = format!("DSSEv1 3 a/b {} {statement}", statement.len());
        let info = inspect(pae.as_bytes());
        assert_eq!(info.kind, PayloadKind::Pae);
        assert_eq!(info.digest_hex.as_deref(), Some(hex.as_str()));

        let legacy = format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"r/x"}},"image":{{"docker-manifest-digest":"sha256:{hex}"}}}}}}"#
        );
        let info = inspect(legacy.as_bytes());
        assert_eq!(info.kind, PayloadKind::Legacy);
        assert_eq!(info.digest_hex.as_deref(), Some(hex.as_str()));
        assert_eq!(info.reference.as_deref(), Some("r/x"));
    }

    #[test]
    fn a_pae_whose_lengths_do_not_add_up_is_not_one() {
        assert_eq!(inspect(b"DSSEv1 3 a/b 5 abc").kind, PayloadKind::Legacy);
        assert_eq!(inspect(b"DSSEv1 9 a/b 1 x").kind, PayloadKind::Legacy);
        assert_eq!(inspect(b"DSSEv1 3 a/b 1 x").kind, PayloadKind::Pae);
        assert_eq!(inspect(b"DSSEv1 3 a/b 1 x").digest_hex, None);
    }
}
