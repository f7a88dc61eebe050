//! Property tests for reading the signed zip a SignPath-style service returns: arbitrary bytes
//! and damaged real zips are refused with an error, never a panic; intact zips give back the
//! signatures that were put in.

use std::io::{Cursor, Write as _};

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use sigbridge_signpath::{build_artifact, extract_signatures, ExtractLimits};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

/// 256 cases by default; set PROPTEST_CASES for a longer search.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    ProptestConfig::with_cases(cases)
}

fn payloads() -> impl Strategy<Value = Vec<Vec<u8>>> {
    vec(vec(any::<u8>(), 1..64), 1..4)
}

/// The zip a service would return: each payload plus its `.sig` entry.
fn signed_zip(entries: &[(String, Vec<u8>)], signatures: &[Vec<u8>], deflate: bool) -> Vec<u8> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let method = if deflate {
        CompressionMethod::Deflated
    } else {
        CompressionMethod::Stored
    };
    let options = SimpleFileOptions::default().compression_method(method);
    for ((name, payload), sig) in entries.iter().zip(signatures) {
        zip.start_file(name.as_str(), options).expect("start entry");
        zip.write_all(payload).expect("write entry");
        zip.start_file(format!("{name}.sig"), options)
            .expect("start entry");
        zip.write_all(sig).expect("write entry");
    }
    zip.finish().expect("finish zip").into_inner()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn extract_never_panics_on_arbitrary_bytes(
        bytes in prop_oneof![
            vec(any::<u8>(), 0..512),
            vec(any::<u8>(), 0..256).prop_map(|mut v| { v.splice(0..0, *b"PK\x03\x04"); v }),
        ],
        payloads in payloads(),
    ) {
        let artifact = build_artifact(&payloads)
            .map_err(|e| TestCaseError::fail(format!("build: {e}")))?;
        let _ = extract_signatures(&bytes, &artifact.entries, &ExtractLimits::default());
        let _ = extract_signatures(&artifact.zip, &artifact.entries, &ExtractLimits::default());
    }

    #[test]
    fn extract_never_panics_on_damaged_zips(
        payloads in payloads(),
        sig_len in 1usize..200,
        deflate in any::<bool>(),
        edits in vec((any::<Index>(), any::<u8>()), 1..6),
        cut in proptest::option::of(any::<Index>()),
    ) {
        let artifact = build_artifact(&payloads)
            .map_err(|e| TestCaseError::fail(format!("build: {e}")))?;
        let sigs: Vec<Vec<u8>> = (0..payloads.len()).map(|i| vec![i as u8; sig_len]).collect();
        let mut zip = signed_zip(&artifact.entries, &sigs, deflate);
        for (at, b) in edits {
            let i = at.index(zip.len());
            zip[i] = b;
        }
        if let Some(cut) = cut {
            zip.truncate(cut.index(zip.len() + 1));
        }
        let limits = ExtractLimits { max_signature_bytes: 128, max_total_bytes: 4096 };
        let _ = extract_signatures(&zip, &artifact.entries, &limits);
    }

    #[test]
    fn intact_zips_give_back_the_signatures(
        payloads in payloads(),
        sigs in vec(vec(any::<u8>(), 1..100), 3..=3),
        deflate in any::<bool>(),
    ) {
        let artifact = build_artifact(&payloads)
            .map_err(|e| TestCaseError::fail(format!("build: {e}")))?;
        // Binary signatures that do not look like base64 are returned unchanged.
        let sigs: Vec<Vec<u8>> = sigs
            .into_iter()
            .take(payloads.len())
            .map(|mut s| { s.push(0xff); s })
            .collect();
        let zip = signed_zip(&artifact.entries, &sigs, deflate);
        let got = extract_signatures(&zip, &artifact.entries, &ExtractLimits::default())
            .map_err(|e| TestCaseError::fail(format!("extract: {e}")))?;
        prop_assert_eq!(got, sigs);
    }
}
