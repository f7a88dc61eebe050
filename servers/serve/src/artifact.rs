//! The zips: reading an upload within limits, choosing the files the artifact configuration
//! signs, reading what each of them claims as the downstream verifiers read it (refusing the
//! rest), and writing the signed zip (every uploaded file plus `NAME.sig` next to each signed
//! one, the `create-raw-signature` layout docs/signpath.md describes).

use std::io::{Cursor, Read as _, Write as _};

use sigbridge_payload::{
    checked_sha256, read_signed_bytes, ParsedPayload, PayloadError, StatementError,
    COSIGN_SIGNATURE_TYPE,
};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

/// Most files in one upload.
pub const MAX_ENTRIES: usize = 10_000;
/// Largest single file in an upload (after decompression).
pub const MAX_ENTRY_BYTES: u64 = 16 * 1024 * 1024;

/// The files signed: cosign simple-signing payloads and DSSE PAEs (`*` stays within one
/// directory level).
pub const PATTERNS: [&str; 4] = [
    "payload.json",
    "payloads/*.json",
    "payload.pae",
    "payloads/*.pae",
];

/// Whether `name` is signed.
pub fn signs(name: &str) -> bool {
    PATTERNS.iter().any(|p| match p.split_once('*') {
        None => *p == name,
        Some((head, tail)) => name
            .strip_prefix(head)
            .and_then(|rest| rest.strip_suffix(tail))
            .is_some_and(|mid| !mid.is_empty() && !mid.contains('/')),
    })
}

/// The files of an upload, in zip order (directories left out), with at least one file to
/// sign. The error says what is wrong with the upload.
pub fn read_upload(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut archive = ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| format!("the artifact is not a zip file: {e}"))?;
    if archive.len() > MAX_ENTRIES {
        return Err(format!(
            "the artifact holds {} entries; at most {MAX_ENTRIES} are accepted",
            archive.len()
        ));
    }
    let mut files = Vec::new();
    for i in 0..archive.len() {
        let mut f = archive
            .by_index(i)
            .map_err(|e| format!("cannot read entry {i} of the artifact: {e}"))?;
        if f.is_dir() {
            continue;
        }
        let name = f.name().to_string();
        let mut buf = Vec::new();
        (&mut f)
            .take(MAX_ENTRY_BYTES + 1)
            .read_to_end(&mut buf)
            .map_err(|e| format!("cannot read {name:?} in the artifact: {e}"))?;
        if buf.len() as u64 > MAX_ENTRY_BYTES {
            return Err(format!(
                "{name:?} in the artifact is larger than {MAX_ENTRY_BYTES} bytes"
            ));
        }
        files.push((name, buf));
    }
    if !files.iter().any(|(n, _)| signs(n)) {
        return Err(format!(
            "the artifact holds no file to sign: expected one of {}",
            PATTERNS.join(", ")
        ));
    }
    Ok(files)
}

/// The two kinds of file the service signs, told apart by name (`*.json`, `*.pae`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadKind {
    /// cosign's simple-signing payload (`cosign generate`, `sigbridge generate`).
    SimpleSigning,
    /// The DSSE PAE of a cosign 3 in-toto statement (`sigbridge generate --format bundle`).
    DssePae,
}

/// What one file to be signed claims, as cosign reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct Claim {
    /// Which kind of payload it is.
    pub kind: PayloadKind,
    /// What it names: `docker_reference` (empty for a statement, which names no repository),
    /// a checked `sha256:<64 lowercase hex>` `manifest_digest`, the type, the annotations.
    pub payload: ParsedPayload,
}

/// Why a file to be signed was refused: a signature over it would be something an approver
/// cannot be shown truthfully (a payload two verifiers read differently, or bytes that are
/// not an image signature payload at all, which `cosign verify-blob` would still accept).
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// Not a simple-signing payload the strict (cosign-semantics) reader accepts.
    #[error("{file:?} is not a cosign simple-signing payload as cosign reads it: {source}")]
    SimpleSigning {
        /// The file in the upload.
        file: String,
        /// What the reader refused.
        source: PayloadError,
    },
    /// A readable payload of another type than cosign's image signature.
    #[error("{file:?} has critical.type {found:?}; only {COSIGN_SIGNATURE_TYPE:?} payloads are signed here")]
    SignatureType {
        /// The file in the upload.
        file: String,
        /// The type it claims.
        found: String,
    },
    /// The image digest is not one cosign could match against an image.
    #[error(
        "{file:?} names the image digest {found:?}; expected sha256: and 64 lowercase hex digits"
    )]
    Digest {
        /// The file in the upload.
        file: String,
        /// The digest as written.
        found: String,
    },
    /// Not the DSSE PAE of a cosign 3 statement the strict reader accepts.
    #[error("{file:?} is not the DSSE pre-authentication encoding of a cosign 3 in-toto statement (application/vnd.in-toto+json): {source}")]
    Statement {
        /// The file in the upload.
        file: String,
        /// What the reader refused.
        source: StatementError,
    },
}

impl Refused {
    /// The file refused.
    pub fn file(&self) -> &str {
        match self {
            Self::SimpleSigning { file, .. }
            | Self::SignatureType { file, .. }
            | Self::Digest { file, .. }
            | Self::Statement { file, .. } => file,
        }
    }
}

/// The kind a file to be signed must be, from its name (`None` for a file that is not signed).
pub fn kind_of(name: &str) -> Option<PayloadKind> {
    if !signs(name) {
        return None;
    }
    if name.ends_with(".pae") {
        Some(PayloadKind::DssePae)
    } else {
        Some(PayloadKind::SimpleSigning)
    }
}

/// Read the file `name` (one that [`signs`] selects) with the strict reader of its kind: a
/// simple-signing payload of cosign's type naming a checked digest, or a PAE of a cosign 3
/// statement. Everything else is refused, saying which file and why.
pub fn read_claim(name: &str, bytes: &[u8]) -> Result<Claim, Refused> {
    let file = || name.to_string();
    match kind_of(name).unwrap_or(PayloadKind::SimpleSigning) {
        PayloadKind::DssePae => {
            let payload = read_signed_bytes(bytes).map_err(|source| Refused::Statement {
                file: file(),
                source,
            })?;
            Ok(Claim {
                kind: PayloadKind::DssePae,
                payload,
            })
        }
        PayloadKind::SimpleSigning => {
            let payload = ParsedPayload::parse(bytes).map_err(|source| Refused::SimpleSigning {
                file: file(),
                source,
            })?;
            if payload.signature_type != COSIGN_SIGNATURE_TYPE {
                return Err(Refused::SignatureType {
                    file: file(),
                    found: payload.signature_type,
                });
            }
            if checked_sha256(&payload.manifest_digest).is_none() {
                return Err(Refused::Digest {
                    file: file(),
                    found: payload.manifest_digest,
                });
            }
            Ok(Claim {
                kind: PayloadKind::SimpleSigning,
                payload,
            })
        }
    }
}

/// [`read_claim`] for every file of an upload that is signed, in zip order; the first refusal.
pub fn read_claims(files: &[(String, Vec<u8>)]) -> Result<Vec<(String, Claim)>, Refused> {
    files
        .iter()
        .filter(|(n, _)| signs(n))
        .map(|(n, b)| read_claim(n, b).map(|c| (n.clone(), c)))
        .collect()
}

/// Whether a stored upload may be approved: every file to be signed passes [`read_claim`].
/// Submissions are checked before they are stored; this catches uploads stored before that
/// check existed.
pub fn check_stored(unsigned: &[u8]) -> Result<(), String> {
    let files = read_upload(unsigned)?;
    read_claims(&files).map(drop).map_err(|refused| {
        format!("{refused}; this request cannot be approved: deny it, and submit the payloads `sigbridge generate` writes")
    })
}

/// The signed zip: the uploaded files, then `NAME.sig` for each signed file, in `signatures`
/// order (one per file that [`signs`] selects, in zip order).
pub fn signed_zip(files: &[(String, Vec<u8>)], signatures: &[Vec<u8>]) -> Result<Vec<u8>, String> {
    let fail = |e: &dyn std::fmt::Display| format!("cannot write the signed zip: {e}");
    let mut out = ZipWriter::new(Cursor::new(Vec::new()));
    let o = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    for (name, bytes) in files {
        out.start_file(name.as_str(), o).map_err(|e| fail(&e))?;
        out.write_all(bytes).map_err(|e| fail(&e))?;
    }
    let signed = files.iter().filter(|(n, _)| signs(n));
    for ((name, _), sig) in signed.zip(signatures) {
        out.start_file(format!("{name}.sig"), o)
            .map_err(|e| fail(&e))?;
        out.write_all(sig).map_err(|e| fail(&e))?;
    }
    Ok(out.finish().map_err(|e| fail(&e))?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zip_of(names: &[&str]) -> Vec<u8> {
        let files: Vec<(String, Vec<u8>)> = names
            .iter()
            .map(|n| (n.to_string(), b"x".to_vec()))
            .collect();
        signed_zip(&files, &[]).unwrap()
    }

    #[test]
    fn an_upload_without_payload_files_is_refused() {
        let e = read_upload(&zip_of(&["notes.txt"])).unwrap_err();
        assert!(e.contains("no file to sign"), "{e}");
        assert!(read_upload(b"not a zip").unwrap_err().contains("not a zip"));
    }

    #[test]
    fn signatures_go_next_to_the_files_they_sign() {
        let files =
            read_upload(&zip_of(&["payloads/001.json", "x.txt", "payloads/002.pae"])).unwrap();
        let out = signed_zip(&files, &[b"s1".to_vec(), b"s2".to_vec()]).unwrap();
        let back = {
            let mut a = ZipArchive::new(Cursor::new(out)).unwrap();
            let mut v = Vec::new();
            for i in 0..a.len() {
                let mut f = a.by_index(i).unwrap();
                let mut b = Vec::new();
                f.read_to_end(&mut b).unwrap();
                v.push((f.name().to_string(), b));
            }
            v
        };
        assert!(back.contains(&("payloads/001.json.sig".into(), b"s1".to_vec())));
        assert!(back.contains(&("payloads/002.pae.sig".into(), b"s2".to_vec())));
        assert!(!back.iter().any(|(n, _)| n == "x.txt.sig"));
    }

    fn simple(kind: &str, digest: &str) -> Vec<u8> {
        format!(r#"{{"critical":{{"identity":{{"docker-reference":"reg/app"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"{kind}"}},"optional":null}}"#).into_bytes()
    }

    #[test]
    fn each_file_to_sign_is_read_by_the_strict_reader_its_name_selects() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let good = simple(COSIGN_SIGNATURE_TYPE, &digest);
        let claim = read_claim("payloads/001.json", &good).unwrap();
        assert_eq!(claim.kind, PayloadKind::SimpleSigning);
        assert_eq!(claim.payload.manifest_digest, digest);
        let statement = format!(
            r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[{{"digest":{{"sha256":"{}"}}}}],"predicateType":"https://sigstore.dev/cosign/sign/v1","predicate":{{}}}}"#,
            "a".repeat(64)
        );
        let pae =
            sigbridge_payload::pae::encode("application/vnd.in-toto+json", statement.as_bytes());
        assert_eq!(
            read_claim("payload.pae", &pae).unwrap().kind,
            PayloadKind::DssePae
        );
        // The wrong reader for the name, another payload type, an unmatchable digest: refused.
        for (name, bytes, says) in [
            (
                "payload.json",
                pae.clone(),
                "not a cosign simple-signing payload",
            ),
            (
                "payload.pae",
                good.clone(),
                "not the DSSE pre-authentication encoding",
            ),
            (
                "payload.json",
                simple("cosign container signature", &digest),
                "critical.type",
            ),
            (
                "payload.json",
                simple(COSIGN_SIGNATURE_TYPE, "sha256:ab"),
                "image digest",
            ),
            (
                "payload.json",
                simple(COSIGN_SIGNATURE_TYPE, &digest.to_uppercase()),
                "image digest",
            ),
        ] {
            let e = read_claim(name, &bytes).unwrap_err();
            assert_eq!(e.file(), name);
            assert!(e.to_string().contains(says), "{name}: {e}");
        }
        // Files that are not signed are not read.
        let files = vec![
            ("notes.txt".to_string(), b"anything".to_vec()),
            ("payload.json".to_string(), good),
        ];
        assert_eq!(read_claims(&files).unwrap().len(), 1);
    }
}
