//! The zip that goes to the service and the signed zip that comes back.
//!
//! Upload layout (the artifact configuration on the service must match it, see
//! docs/signpath.md). A legacy simple-signing payload is a `.json` file, the DSSE PAE of a
//! cosign 3 bundle (`--format bundle`) a `.pae` file; `--format both` sends both for each image.
//! - one payload: `payload.json` (SignPath's documented cosign layout) or `payload.pae` at the
//!   root, in `payload.json.zip` / `payload.pae.zip`;
//! - several payloads: `payloads.zip` holding `payloads/NNN-sha256-HEX.json` or `.pae`
//!   (NNN = 1-based position in the batch, HEX = the image's manifest digest), all under one
//!   approval.
//!
//! The signed zip must hold `NAME.sig` next to each `NAME` (the `create-raw-signature`
//! default `output-file-name="${file.name}.sig"`), may hold the payload copies (which must be
//! byte-identical to what was sent), a `payloads/` directory entry, and nothing else.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Cursor, Read as _, Write as _};

use base64::Engine as _;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

use crate::payload_kind::{inspect, PayloadInfo};

/// Why an artifact could not be built or a returned one was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArtifactError {
    /// Building the upload zip failed.
    #[error("cannot build the signing request zip: {0}")]
    Build(String),
    /// The body is not a readable zip file.
    #[error("the signed artifact is not a readable zip file ({0})")]
    NotZip(String),
    /// Too many entries.
    #[error("the signed artifact has {found} entries, more than the {max} expected at most")]
    TooManyEntries {
        /// Entries found.
        found: usize,
        /// The limit.
        max: usize,
    },
    /// An entry name that could escape or confuse a directory (`..`, absolute, backslash…).
    #[error("the signed artifact contains an unsafe entry name {name:?} ({why})")]
    UnsafeName {
        /// The name (truncated).
        name: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A name that appears twice.
    #[error("the signed artifact contains {name:?} twice")]
    Duplicate {
        /// The name.
        name: String,
    },
    /// An entry that is not one of the expected files.
    #[error("the signed artifact contains an unexpected entry {name:?}; expected only {expected}")]
    Unexpected {
        /// The name.
        name: String,
        /// What was expected.
        expected: String,
    },
    /// An entry (declared or actual size) over its limit: a damaged or hostile zip.
    #[error("entry {name:?} of the signed artifact is larger than the {limit} bytes allowed (possible zip bomb)")]
    TooLarge {
        /// The name.
        name: String,
        /// The limit.
        limit: u64,
    },
    /// The total decompressed size is over the limit.
    #[error("the signed artifact decompresses to more than {limit} bytes (possible zip bomb)")]
    TotalTooLarge {
        /// The limit.
        limit: u64,
    },
    /// Expected entries are missing.
    #[error("the signed artifact lacks {}: the SignPath project's artifact configuration must create a raw signature named ${{file.name}}.sig for every payload file (payload.json and payloads/*.json, and for --format bundle or both the DSSE PAE files payload.pae and payloads/*.pae; see docs/signpath.md)", .names.join(", "))]
    Missing {
        /// The missing names.
        names: Vec<String>,
    },
    /// A returned payload copy differs from what was sent.
    #[error(
        "the signed artifact's copy of {name} differs from the payload that was sent; refusing it"
    )]
    PayloadChanged {
        /// The name.
        name: String,
    },
    /// An entry could not be read (bad compression, CRC mismatch, encryption…).
    #[error("cannot read entry {name:?} of the signed artifact: {reason}")]
    Read {
        /// The name.
        name: String,
        /// Why.
        reason: String,
    },
    /// The service's record of what was submitted differs from the payloads computed now.
    #[error("signing request holds {found}, but the images given now produce {expected}: resume with the same images, annotations and identity as the original `sign`")]
    NotTheSamePayloads {
        /// What the request holds.
        found: String,
        /// What we computed.
        expected: String,
    },
}

/// The upload: zip bytes, the file name for the form part, and the payload entries in order.
#[derive(Clone, Debug)]
pub struct Artifact {
    /// `payload.json.zip`, `payload.pae.zip` or `payloads.zip`.
    pub file_name: String,
    /// The zip.
    pub zip: Vec<u8>,
    /// `(entry name, payload bytes)`, in the batch's order.
    pub entries: Vec<(String, Vec<u8>)>,
}

/// Limits applied when opening a zip from the service.
#[derive(Clone, Debug)]
pub struct ExtractLimits {
    /// Largest signature entry (an RSA-8192 signature in base64 is under 2 KiB).
    pub max_signature_bytes: u64,
    /// Largest total of all decompressed entries.
    pub max_total_bytes: u64,
}

impl Default for ExtractLimits {
    fn default() -> Self {
        Self {
            max_signature_bytes: 16 * 1024,
            max_total_bytes: 64 * 1024 * 1024,
        }
    }
}

/// The entry names for a batch (see the module docs): the kind of each payload picks the
/// extension, so that an artifact configuration can select legacy payloads and PAE files apart.
pub fn entry_names(payloads: &[Vec<u8>]) -> Vec<String> {
    let infos: Vec<PayloadInfo> = payloads.iter().map(|p| inspect(p)).collect();
    if let [only] = infos.as_slice() {
        return vec![format!("payload.{}", only.kind.extension())];
    }
    infos
        .iter()
        .enumerate()
        .map(|(i, info)| {
            let ext = info.kind.extension();
            match &info.digest_hex {
                Some(hex) => format!("payloads/{:03}-sha256-{hex}.{ext}", i + 1),
                None => format!("payloads/{:03}.{ext}", i + 1),
            }
        })
        .collect()
}

/// Build the upload zip for `payloads` (at least one).
pub fn build_artifact(payloads: &[Vec<u8>]) -> Result<Artifact, ArtifactError> {
    if payloads.is_empty() {
        return Err(ArtifactError::Build("no payloads to sign".into()));
    }
    let names = entry_names(payloads);
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(DateTime::default())
        .unix_permissions(0o644);
    let fail = |e: &dyn std::fmt::Display| ArtifactError::Build(e.to_string());
    for (name, payload) in names.iter().zip(payloads) {
        zip.start_file(name.as_str(), options)
            .map_err(|e| fail(&e))?;
        zip.write_all(payload).map_err(|e| fail(&e))?;
    }
    let bytes = zip.finish().map_err(|e| fail(&e))?.into_inner();
    let file_name = match names.as_slice() {
        [only] => format!("{only}.zip"),
        _ => "payloads.zip".to_string(),
    };
    Ok(Artifact {
        file_name,
        zip: bytes,
        entries: names.into_iter().zip(payloads.iter().cloned()).collect(),
    })
}

fn check_name(name: &str) -> Result<(), ArtifactError> {
    let unsafe_name = |why| ArtifactError::UnsafeName {
        name: name.chars().take(200).collect(),
        why,
    };
    if name.is_empty() {
        return Err(unsafe_name("empty name"));
    }
    if name.contains('\\') {
        return Err(unsafe_name("backslash in the path"));
    }
    if name.starts_with('/') {
        return Err(unsafe_name("absolute path"));
    }
    if name.contains(':') || name.chars().any(char::is_control) {
        return Err(unsafe_name("drive letter, colon or control character"));
    }
    if name
        .trim_end_matches('/')
        .split('/')
        .any(|c| c == ".." || c == "." || c.is_empty())
    {
        return Err(unsafe_name("'..', '.' or empty path component"));
    }
    Ok(())
}

/// Open `zip` defensively and return the content of the files `allowed` names, each limited
/// to the size it gives. Directories are allowed only if `allowed_dirs` has them. Everything
/// else is refused: unsafe names, symlinks, duplicates, unexpected entries, oversized entries
/// (by declared and by actual size) and oversized totals.
fn read_entries(
    zip: &[u8],
    allowed: &BTreeMap<String, u64>,
    allowed_dirs: &BTreeSet<String>,
    max_total: u64,
) -> Result<BTreeMap<String, Vec<u8>>, ArtifactError> {
    let mut archive =
        ZipArchive::new(Cursor::new(zip)).map_err(|e| ArtifactError::NotZip(e.to_string()))?;
    // Far too many entries is refused outright; a few extra ones are named below (each is
    // unexpected), which says more than a count.
    let max_entries = allowed.len() + allowed_dirs.len() + 64;
    if archive.len() > max_entries {
        return Err(ArtifactError::TooManyEntries {
            found: archive.len(),
            max: max_entries,
        });
    }
    let expected = || {
        let mut v: Vec<&str> = allowed.keys().map(String::as_str).collect();
        if v.len() > 6 {
            v.truncate(6);
            v.push("…");
        }
        v.join(", ")
    };
    let mut seen = BTreeSet::new();
    let mut out = BTreeMap::new();
    let mut total: u64 = 0;
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).map_err(|e| ArtifactError::Read {
            name: format!("#{i}"),
            reason: e.to_string(),
        })?;
        let name = file.name().to_string();
        check_name(&name)?;
        if !seen.insert(name.clone()) {
            return Err(ArtifactError::Duplicate { name });
        }
        let is_symlink = file
            .unix_mode()
            .is_some_and(|mode| mode & 0o170000 == 0o120000);
        if is_symlink {
            return Err(ArtifactError::UnsafeName {
                name,
                why: "symbolic link",
            });
        }
        if file.is_dir() {
            if allowed_dirs.contains(&name) {
                continue;
            }
            return Err(ArtifactError::Unexpected {
                name,
                expected: expected(),
            });
        }
        let Some(&limit) = allowed.get(&name) else {
            return Err(ArtifactError::Unexpected {
                name,
                expected: expected(),
            });
        };
        if file.size() > limit {
            return Err(ArtifactError::TooLarge { name, limit });
        }
        let mut buf = Vec::new();
        (&mut file)
            .take(limit + 1)
            .read_to_end(&mut buf)
            .map_err(|e| ArtifactError::Read {
                name: name.clone(),
                reason: e.to_string(),
            })?;
        if buf.len() as u64 > limit {
            return Err(ArtifactError::TooLarge { name, limit });
        }
        total += buf.len() as u64;
        if total > max_total {
            return Err(ArtifactError::TotalTooLarge { limit: max_total });
        }
        out.insert(name, buf);
    }
    Ok(out)
}

fn dirs_of(names: &[&str]) -> BTreeSet<String> {
    names
        .iter()
        .filter_map(|n| n.rsplit_once('/').map(|(d, _)| format!("{d}/")))
        .collect()
}

/// Decode a signature given as base64 text; binary values are returned unchanged.
fn decode_signature(raw: Vec<u8>) -> Vec<u8> {
    let text: Vec<u8> = raw
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let looks_base64 = !text.is_empty()
        && text
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
    if looks_base64 {
        if let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(&text) {
            return decoded;
        }
    }
    raw
}

/// Open the signed zip and return one signature per sent entry, in order. Signatures are
/// returned as the service encoded them (base64 text is decoded; DER and raw `r||s` are left
/// for the caller to normalise).
pub fn extract_signatures(
    zip: &[u8],
    sent: &[(String, Vec<u8>)],
    limits: &ExtractLimits,
) -> Result<Vec<Vec<u8>>, ArtifactError> {
    let mut allowed = BTreeMap::new();
    for (name, payload) in sent {
        allowed.insert(format!("{name}.sig"), limits.max_signature_bytes);
        // Room for a changed copy to be read and reported as changed rather than as too large.
        allowed.insert(name.clone(), payload.len() as u64 + 4096);
    }
    let names: Vec<&str> = sent.iter().map(|(n, _)| n.as_str()).collect();
    let mut entries = read_entries(zip, &allowed, &dirs_of(&names), limits.max_total_bytes)?;
    let missing: Vec<String> = sent
        .iter()
        .map(|(n, _)| format!("{n}.sig"))
        .filter(|n| !entries.contains_key(n))
        .collect();
    if !missing.is_empty() {
        return Err(ArtifactError::Missing { names: missing });
    }
    let mut out = Vec::with_capacity(sent.len());
    for (name, payload) in sent {
        if let Some(copy) = entries.get(name) {
            if copy != payload {
                return Err(ArtifactError::PayloadChanged { name: name.clone() });
            }
        }
        let sig = entries.remove(&format!("{name}.sig")).unwrap_or_default();
        out.push(decode_signature(sig));
    }
    Ok(out)
}

/// Check that the unsigned artifact the service holds has exactly the entries of `expected`
/// (same names, byte-identical payloads): what `--resume` must establish before it accepts a
/// request made by an earlier run.
pub fn check_same_payloads(zip: &[u8], expected: &Artifact) -> Result<(), ArtifactError> {
    let describe = |names: Vec<&str>| -> String {
        if names.len() == 1 {
            format!("1 payload ({})", names[0])
        } else {
            format!("{} payloads", names.len())
        }
    };
    // Allow any of the expected names (with their sizes) and, to produce a useful message
    // rather than "unexpected entry", compare names first from the central directory.
    let mut archive =
        ZipArchive::new(Cursor::new(zip)).map_err(|e| ArtifactError::NotZip(e.to_string()))?;
    let found: BTreeSet<String> = (0..archive.len())
        .filter_map(|i| archive.by_index_raw(i).ok().map(|f| f.name().to_string()))
        .filter(|n| !n.ends_with('/'))
        .collect();
    let wanted: BTreeSet<String> = expected.entries.iter().map(|(n, _)| n.clone()).collect();
    if found != wanted {
        return Err(ArtifactError::NotTheSamePayloads {
            found: describe(found.iter().map(String::as_str).collect()),
            expected: describe(wanted.iter().map(String::as_str).collect()),
        });
    }
    let allowed: BTreeMap<String, u64> = expected
        .entries
        .iter()
        .map(|(n, p)| (n.clone(), p.len() as u64))
        .collect();
    let names: Vec<&str> = expected.entries.iter().map(|(n, _)| n.as_str()).collect();
    let entries =
        read_entries(zip, &allowed, &dirs_of(&names), 64 * 1024 * 1024).map_err(|e| match e {
            ArtifactError::TooLarge { name, .. } => ArtifactError::NotTheSamePayloads {
                found: format!("a different {name}"),
                expected: format!("the {name} computed now"),
            },
            other => other,
        })?;
    for (name, payload) in &expected.entries {
        if entries.get(name) != Some(payload) {
            return Err(ArtifactError::NotTheSamePayloads {
                found: format!("a different {name}"),
                expected: format!("the {name} computed now"),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(hex_char: char) -> Vec<u8> {
        let hex: String = std::iter::repeat_n(hex_char, 64).collect();
        format!(r#"{{"critical":{{"identity":{{"docker-reference":"r/x"}},"image":{{"docker-manifest-digest":"sha256:{hex}"}},"type":"cosign container image signature"}},"optional":null}}"#).into_bytes()
    }

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
        let o = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
        for (n, b) in entries {
            zip.start_file(*n, o).unwrap();
            zip.write_all(b).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    #[test]
    fn names_single_and_batch() {
        assert_eq!(entry_names(&[payload('a')]), vec!["payload.json"]);
        let names = entry_names(&[payload('a'), payload('b'), b"x".to_vec()]);
        assert_eq!(
            names[0],
            format!("payloads/001-sha256-{}.json", "a".repeat(64))
        );
        assert_eq!(
            names[1],
            format!("payloads/002-sha256-{}.json", "b".repeat(64))
        );
        assert_eq!(names[2], "payloads/003.json");
    }

    /// A DSSE PAE over a cosign 3 statement for the digest `sha256:<hex_char x 64>`, as
    /// `sign --format bundle` hands it to the signer.
    fn pae(hex_char: char) -> Vec<u8> {
        let hex: String = std::iter::repeat_n(hex_char, 64).collect();
        let statement = format!(
            r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[{{"digest":{{"sha256":"{hex}"}},"annotations":{{}}}}],"predicateType":"https://sigstore.dev/cosign/sign/v1","predicate":{{}}}}"#
        );
        let t = "application/vnd.in-toto+json";
        format!("DSSEv1 {} {t} {} {statement}", t.len(), statement.len()).into_bytes()
    }

    #[test]
    fn pae_payloads_get_names_of_their_own() {
        let one = build_artifact(&[pae('a')]).unwrap();
        assert_eq!(one.file_name, "payload.pae.zip");
        assert_eq!(one.entries[0].0, "payload.pae");

        // `--format both`: each image's legacy payload, then its PAE, all in one request.
        let names = entry_names(&[payload('a'), pae('a'), payload('b'), pae('b')]);
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        assert_eq!(
            names,
            vec![
                format!("payloads/001-sha256-{a}.json"),
                format!("payloads/002-sha256-{a}.pae"),
                format!("payloads/003-sha256-{b}.json"),
                format!("payloads/004-sha256-{b}.pae"),
            ]
        );
        // Bytes that only look like a PAE keep the generic name.
        assert_eq!(
            entry_names(&[payload('a'), b"DSSEv1 3 x".to_vec()])[1],
            "payloads/002.json"
        );
    }

    #[test]
    fn mixed_signatures_come_back_matched_to_their_payloads() {
        let a = build_artifact(&[payload('a'), pae('a'), payload('b'), pae('b')]).unwrap();
        // The service may order the signed zip any way it likes.
        let sigs: Vec<Vec<u8>> = (1..=4u8).map(|i| vec![i; 70]).collect();
        let names: Vec<String> = a.entries.iter().map(|(n, _)| format!("{n}.sig")).collect();
        let z = zip_of(&[
            (&names[3], &sigs[3]),
            (&names[1], &sigs[1]),
            (&names[0], &sigs[0]),
            (&names[2], &sigs[2]),
        ]);
        assert_eq!(
            extract_signatures(&z, &a.entries, &ExtractLimits::default()).unwrap(),
            sigs
        );
    }

    #[test]
    fn round_trip_with_copies_and_base64() {
        let a = build_artifact(&[payload('a'), payload('b')]).unwrap();
        let (n0, p0) = &a.entries[0];
        let (n1, p1) = &a.entries[1];
        let b64 = base64::engine::general_purpose::STANDARD.encode([9u8; 64]);
        let z = zip_of(&[
            ("payloads/", b""),
            (n0, p0),
            (&format!("{n0}.sig"), &[1u8; 70]),
            (n1, p1),
            (&format!("{n1}.sig"), format!("{b64}\n").as_bytes()),
        ]);
        let sigs = extract_signatures(&z, &a.entries, &ExtractLimits::default()).unwrap();
        assert_eq!(sigs, vec![vec![1u8; 70], vec![9u8; 64]]);
        check_same_payloads(&a.zip, &a).unwrap();
    }

    fn single() -> Artifact {
        build_artifact(&[payload('a')]).unwrap()
    }

    fn refused(z: &[u8]) -> ArtifactError {
        extract_signatures(z, &single().entries, &ExtractLimits::default()).unwrap_err()
    }

    #[test]
    fn refuses_traversal_absolute_backslash() {
        for name in [
            "../payload.json.sig",
            "/payload.json.sig",
            "a\\b.sig",
            "x/../payload.json.sig",
            "C:evil",
        ] {
            let z = zip_of(&[("payload.json.sig", &[1u8; 70]), (name, b"x")]);
            let e = refused(&z);
            assert!(matches!(e, ArtifactError::UnsafeName { .. }), "{name}: {e}");
        }
    }

    #[test]
    fn refuses_unexpected_missing_duplicate() {
        let z = zip_of(&[("payload.json.sig", &[1u8; 70]), ("other.txt", b"x")]);
        assert!(matches!(refused(&z), ArtifactError::Unexpected { .. }));
        let z = zip_of(&[("payload.json", &single().entries[0].1)]);
        let e = refused(&z);
        assert!(matches!(e, ArtifactError::Missing { .. }), "{e}");
        assert!(e.to_string().contains("payload.json.sig"));
        // zip crate refuses to write duplicates, so build two archives' worth by hand is not
        // needed: a second identically named entry via raw copy is exercised by the server.
        let z = zip_of(&[
            ("payload.json", b"changed"),
            ("payload.json.sig", &[1u8; 70]),
        ]);
        assert!(matches!(refused(&z), ArtifactError::PayloadChanged { .. }));
    }

    #[test]
    fn refuses_huge_entry_and_bomb_with_lying_size() {
        let huge = vec![0u8; 1024 * 1024];
        let z = zip_of(&[("payload.json.sig", &huge)]);
        assert!(matches!(refused(&z), ArtifactError::TooLarge { .. }));

        // Lie about the uncompressed size in both headers: the actual-size check still stops it.
        let mut z = zip_of(&[("payload.json.sig", &huge)]);
        patch_sizes(&mut z, 70);
        let e = refused(&z);
        assert!(
            matches!(
                e,
                ArtifactError::TooLarge { .. }
                    | ArtifactError::Read { .. }
                    | ArtifactError::NotZip(_)
            ),
            "{e}"
        );
    }

    #[test]
    fn refuses_garbage_and_symlinks() {
        assert!(matches!(
            refused(b"definitely not a zip"),
            ArtifactError::NotZip(_)
        ));
        let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
        zip.add_symlink(
            "payload.json.sig",
            "/etc/passwd",
            SimpleFileOptions::default(),
        )
        .unwrap();
        let z = zip.finish().unwrap().into_inner();
        assert!(matches!(
            refused(&z),
            ArtifactError::UnsafeName {
                why: "symbolic link",
                ..
            }
        ));
    }

    #[test]
    fn resume_check_refuses_other_payloads() {
        let a = single();
        let b = build_artifact(&[payload('b')]).unwrap();
        let e = check_same_payloads(&b.zip, &a).unwrap_err();
        assert!(matches!(e, ArtifactError::NotTheSamePayloads { .. }), "{e}");
        let two = build_artifact(&[payload('a'), payload('b')]).unwrap();
        assert!(check_same_payloads(&two.zip, &a).is_err());
    }

    /// Set the uncompressed-size fields of every local and central header to `size`.
    fn patch_sizes(z: &mut [u8], size: u32) {
        let mut i = 0;
        while i + 4 <= z.len() {
            match &z[i..i + 4] {
                [0x50, 0x4b, 0x03, 0x04] => z[i + 22..i + 26].copy_from_slice(&size.to_le_bytes()),
                [0x50, 0x4b, 0x01, 0x02] => z[i + 24..i + 28].copy_from_slice(&size.to_le_bytes()),
                _ => {}
            }
            i += 1;
        }
    }
}
