//! The zips: reading an upload within limits, choosing the files the artifact configuration
//! signs, and writing the signed zip (every uploaded file plus `NAME.sig` next to each signed
//! one, the `create-raw-signature` layout docs/signpath.md describes).

use std::io::{Cursor, Read as _, Write as _};

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
}
