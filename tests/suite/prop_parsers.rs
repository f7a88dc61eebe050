//! Property tests for the parsers that read untrusted input: image references, simple-signing
//! payloads, annotation flags and registry manifests. Case counts are kept modest so the whole
//! file runs in a few seconds.

use std::collections::BTreeMap;

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use sigbridge::payload::{parse_annotations, ParsedPayload, SimpleSigningPayload};
use sigbridge::reference::{Digest, ImageReference, Repository};
use sigbridge::registry::manifest::{media_types, Descriptor, ImageIndex, ImageManifest, Platform};

/// 256 cases by default; set PROPTEST_CASES for a longer search.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    ProptestConfig::with_cases(cases)
}

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

fn digest() -> impl Strategy<Value = Digest> {
    "[0-9a-f]{64}".prop_map(|hex| {
        format!("sha256:{hex}")
            .parse::<Digest>()
            .expect("64 lowercase hex digits are a valid digest")
    })
}

/// A registry host as ggcr recognises one: has a '.', or a port, or is `localhost`.
fn registry() -> impl Strategy<Value = String> {
    let port = proptest::option::of(1u32..=65535);
    prop_oneof![
        ("[a-z0-9]{1,10}(\\.[a-z0-9]{1,10}){1,2}", port.clone()).prop_map(|(h, p)| match p {
            Some(p) => format!("{h}:{p}"),
            None => h,
        }),
        port.clone().prop_map(|p| match p {
            Some(p) => format!("localhost:{p}"),
            None => "localhost".to_string(),
        }),
        port.prop_map(|p| match p {
            Some(p) => format!("127.0.0.1:{p}"),
            None => "127.0.0.1".to_string(),
        }),
        Just("docker.io".to_string()),
    ]
}

/// One to four lowercase path components (each at least two characters, so the path is always
/// at least two characters long, as ggcr requires).
fn repo_path() -> impl Strategy<Value = String> {
    vec("[a-z0-9]{2,8}([._-][a-z0-9]{1,6})?", 1..=4).prop_map(|c| c.join("/"))
}

fn tag() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_][A-Za-z0-9_.-]{0,40}"
}

/// `registry/path[:tag][@digest]`, sometimes with no registry at all (Docker Hub).
fn valid_reference() -> impl Strategy<Value = String> {
    (
        proptest::option::of(registry()),
        repo_path(),
        proptest::option::of(tag()),
        proptest::option::of(digest()),
    )
        .prop_map(|(reg, path, tag, digest)| {
            let mut s = match reg {
                Some(r) => format!("{r}/{path}"),
                None => path,
            };
            if let Some(t) = tag {
                s.push(':');
                s.push_str(&t);
            }
            if let Some(d) = digest {
                s.push('@');
                s.push_str(&d.to_string());
            }
            s
        })
}

/// Strings that stress JSON escaping: HTML characters, line/paragraph separators, control
/// characters, quotes, backslashes, astral-plane characters, plus arbitrary unicode.
fn tricky_string() -> impl Strategy<Value = String> {
    let special = prop_oneof![
        Just('<'),
        Just('>'),
        Just('&'),
        Just('"'),
        Just('\\'),
        Just('\u{2028}'),
        Just('\u{2029}'),
        Just('\u{7f}'),
        Just('\u{feff}'),
        Just('\u{1f600}'),
        (0u32..0x20).prop_map(|c| char::from_u32(c).expect("C0 controls are chars")),
        any::<char>(),
    ];
    vec(special, 0..24).prop_map(|cs| cs.into_iter().collect())
}

/// Short field text for manifests (cheap to generate: manifests hold many fields).
fn short_text() -> impl Strategy<Value = String> {
    let c = prop_oneof![
        4 => proptest::char::range('a', 'z'),
        1 => proptest::sample::select(vec!['<', '&', '"', '\\', '\u{2028}', '\u{1}', '\u{e9}']),
    ];
    vec(c, 0..8).prop_map(|cs| cs.into_iter().collect())
}

fn non_empty_map() -> impl Strategy<Value = Option<BTreeMap<String, String>>> {
    proptest::option::of(btree_map(short_text(), short_text(), 1..4))
}

fn non_empty_strings() -> impl Strategy<Value = Option<Vec<String>>> {
    proptest::option::of(vec(short_text(), 1..3))
}

fn non_empty_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(short_text().prop_filter("non-empty", |s| !s.is_empty()))
}

/// Unknown fields, under keys no struct field uses.
fn extra() -> impl Strategy<Value = serde_json::Map<String, serde_json::Value>> {
    btree_map("x-[a-z]{1,6}", short_text(), 0..3).prop_map(|m| {
        m.into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect()
    })
}

fn platform() -> impl Strategy<Value = Platform> {
    (
        short_text(),
        short_text(),
        non_empty_text(),
        non_empty_strings(),
        non_empty_text(),
        non_empty_strings(),
        extra(),
    )
        .prop_map(
            |(architecture, os, os_version, os_features, variant, features, extra)| Platform {
                architecture,
                os,
                os_version,
                os_features,
                variant,
                features,
                extra,
            },
        )
}

fn descriptor() -> impl Strategy<Value = Descriptor> {
    (
        short_text(),
        any::<u64>(),
        digest(),
        proptest::option::of("[A-Za-z0-9+/]{0,40}"),
        non_empty_strings(),
        non_empty_map(),
        prop_oneof![3 => Just(None), 1 => platform().prop_map(Some)],
        non_empty_text(),
        extra(),
    )
        .prop_map(
            |(
                media_type,
                size,
                digest,
                data,
                urls,
                annotations,
                platform,
                artifact_type,
                extra,
            )| {
                let mut d = Descriptor::new(media_type, digest, size);
                d.data = data;
                d.urls = urls;
                d.annotations = annotations;
                d.platform = platform;
                d.artifact_type = artifact_type;
                d.extra = extra;
                d
            },
        )
}

fn image_manifest() -> impl Strategy<Value = ImageManifest> {
    (
        prop_oneof![
            Just(None),
            Just(Some(media_types::OCI_MANIFEST.to_string())),
            Just(Some(media_types::DOCKER_MANIFEST.to_string())),
        ],
        descriptor(),
        vec(descriptor(), 0..3),
        non_empty_map(),
        prop_oneof![3 => Just(None), 1 => descriptor().prop_map(Some)],
        non_empty_text(),
        extra(),
    )
        .prop_map(
            |(media_type, config, layers, annotations, subject, artifact_type, extra)| {
                let mut m = ImageManifest::new("", config, layers);
                m.media_type = media_type;
                m.annotations = annotations;
                m.subject = subject;
                m.artifact_type = artifact_type;
                m.extra = extra;
                m
            },
        )
}

fn image_index() -> impl Strategy<Value = ImageIndex> {
    (
        prop_oneof![
            Just(None),
            Just(Some(media_types::OCI_INDEX.to_string())),
            Just(Some(media_types::DOCKER_MANIFEST_LIST.to_string())),
        ],
        vec(descriptor(), 0..3),
        non_empty_map(),
        prop_oneof![3 => Just(None), 1 => descriptor().prop_map(Some)],
        non_empty_text(),
        extra(),
    )
        .prop_map(
            |(media_type, manifests, annotations, subject, artifact_type, extra)| ImageIndex {
                schema_version: 2,
                media_type,
                manifests,
                annotations,
                subject,
                artifact_type,
                extra,
            },
        )
}

/// Bytes that are mostly JSON-shaped, so the parsers get past the first byte.
fn jsonish_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..256),
        "[\\[\\]{}\":,0-9a-zA-Z .\\\\-]{0,200}".prop_map(String::into_bytes),
        (
            image_manifest(),
            vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)
        )
            .prop_map(|(m, edits)| {
                let mut bytes = m.to_vec();
                for (at, b) in edits {
                    let i = at.index(bytes.len());
                    bytes[i] = b;
                }
                bytes
            }),
    ]
}

// ---------------------------------------------------------------------------------------------
// (a) image references
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn reference_parse_never_panics(input in any::<String>()) {
        let _ = ImageReference::parse(&input);
        let _ = Repository::parse(&input);
    }

    #[test]
    fn reference_parse_never_panics_on_reference_like_text(
        input in "[a-zA-Z0-9:@/._\\[\\]-]{0,80}"
    ) {
        let _ = ImageReference::parse(&input);
    }

    #[test]
    fn valid_references_parse_and_normalise_idempotently(input in valid_reference()) {
        let r = ImageReference::parse(&input)
            .map_err(|e| TestCaseError::fail(format!("{input:?}: {e}")))?;
        let name = r.repository().name();
        let again = Repository::parse(&name)
            .map_err(|e| TestCaseError::fail(format!("{name:?} (from {input:?}): {e}")))?;
        prop_assert_eq!(&again, r.repository());
        prop_assert_eq!(again.name(), name);
        // The printed reference parses back to the same reference.
        let printed = r.to_string();
        let reparsed = ImageReference::parse(&printed)
            .map_err(|e| TestCaseError::fail(format!("{printed:?}: {e}")))?;
        prop_assert_eq!(reparsed.repository(), r.repository());
        prop_assert_eq!(reparsed.digest(), r.digest());
    }
}

// ---------------------------------------------------------------------------------------------
// (b) payloads and annotations
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn payload_round_trips(
        reference in tricky_string(),
        digest in digest(),
        annotations in btree_map(tricky_string(), tricky_string(), 0..6),
    ) {
        let bytes = SimpleSigningPayload::new(reference.clone(), digest.clone(), annotations.clone())
            .to_bytes();
        let generic: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| TestCaseError::fail(format!("not JSON: {e}")))?;
        prop_assert!(generic.is_object());
        // Go's HTML-safe escaping: none of these appear raw.
        for raw in ["<", ">", "&", "\u{2028}", "\u{2029}"] {
            prop_assert!(!String::from_utf8_lossy(&bytes).contains(raw), "raw {:?}", raw);
        }
        let parsed = ParsedPayload::parse(&bytes)
            .map_err(|e| TestCaseError::fail(format!("parse: {e}")))?;
        prop_assert_eq!(&parsed.docker_reference, &reference);
        prop_assert_eq!(&parsed.manifest_digest, &digest.to_string());
        let back: BTreeMap<String, String> = parsed
            .optional
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => Ok((k, s)),
                other => Err(TestCaseError::fail(format!("{k:?} is not a string: {other}"))),
            })
            .collect::<Result<_, _>>()?;
        prop_assert_eq!(&back, &annotations);
        prop_assert!(parsed.has_annotations(&annotations));
    }

    #[test]
    fn payload_parse_never_panics(bytes in jsonish_bytes()) {
        let _ = ParsedPayload::parse(&bytes);
    }

    #[test]
    fn payload_parse_never_panics_on_payload_shaped_json(
        critical in prop_oneof![Just("null".to_string()), Just("1".to_string()), Just("[]".to_string()),
            Just(r#"{"identity":null,"image":{"docker-manifest-digest":3},"type":[]}"#.to_string()),
            Just(r#"{"IDENTITY":{"Docker-Reference":"x"},"Image":{},"TYPE":"t"}"#.to_string())],
        optional in prop_oneof![Just("null".to_string()), Just("\"s\"".to_string()), Just("{\"a\":1}".to_string())],
    ) {
        let text = format!(r#"{{"critical":{critical},"optional":{optional}}}"#);
        let _ = ParsedPayload::parse(text.as_bytes());
    }

    #[test]
    fn parse_annotations_never_panics(values in vec(
        prop_oneof![any::<String>(), "[a-z=,\" ]{0,30}"], 0..4)
    ) {
        let _ = parse_annotations(&values);
    }

    #[test]
    fn parse_annotations_reads_plain_pairs(pairs in btree_map("[a-z0-9._-]{1,10}", "[a-z0-9._ -]{0,10}", 0..5)) {
        let values: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let map = parse_annotations(&values)
            .map_err(|e| TestCaseError::fail(format!("{values:?}: {e}")))?;
        prop_assert_eq!(map, pairs);
    }
}

// ---------------------------------------------------------------------------------------------
// (c) manifests and indexes
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn manifest_parsers_never_panic(bytes in jsonish_bytes()) {
        let _ = ImageManifest::from_slice(&bytes);
        let _ = ImageIndex::from_slice(&bytes);
        let _ = sigbridge::registry::manifest::sniff_media_type(&bytes);
    }

    #[test]
    fn image_manifest_round_trips(m in image_manifest()) {
        let bytes = m.to_vec();
        let back = ImageManifest::from_slice(&bytes)
            .map_err(|e| TestCaseError::fail(format!("{e}: {}", String::from_utf8_lossy(&bytes))))?;
        prop_assert_eq!(&back, &m);
        prop_assert_eq!(back.to_vec(), bytes);
    }

    #[test]
    fn image_index_round_trips(i in image_index()) {
        let bytes = i.to_vec();
        let back = ImageIndex::from_slice(&bytes)
            .map_err(|e| TestCaseError::fail(format!("{e}: {}", String::from_utf8_lossy(&bytes))))?;
        prop_assert_eq!(&back, &i);
        prop_assert_eq!(back.to_vec(), bytes);
    }
}
