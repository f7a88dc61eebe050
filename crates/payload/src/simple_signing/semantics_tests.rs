//! What a payload means: every case where cosign (Go `encoding/json`) and a strict or
//! exact-case reader could disagree is refused; what cosign accepts safely is accepted.

use super::ParsedPayload;

const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn critical(digest: &str) -> String {
    format!(
        r#"{{"identity":{{"docker-reference":"r"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}}"#
    )
}

fn refused(payload: &str, must_name: &[&str]) {
    match ParsedPayload::parse(payload.as_bytes()) {
        Ok(p) => panic!("accepted {payload}: digest {:?}", p.manifest_digest),
        Err(e) => {
            let msg = e.to_string();
            for name in must_name {
                assert!(msg.contains(name), "{msg:?} does not name {name:?}");
            }
        }
    }
}

fn accepted(payload: &[u8]) -> ParsedPayload {
    ParsedPayload::parse(payload)
        .unwrap_or_else(|e| panic!("refused {}: {e}", String::from_utf8_lossy(payload)))
}

#[test]
fn critical_keys_differing_in_case_are_refused() {
    let p = format!(
        r#"{{"critical":{},"Critical":{},"optional":null}}"#,
        critical(A),
        critical(B)
    );
    refused(&p, &["\"critical\"", "\"Critical\""]);
}

#[test]
fn repeated_digest_key_is_refused() {
    let exact = format!(
        r#"{{"critical":{{"image":{{"docker-manifest-digest":"{A}","docker-manifest-digest":"{B}"}}}}}}"#
    );
    refused(&exact, &["docker-manifest-digest"]);
    let cased = format!(
        r#"{{"critical":{{"image":{{"docker-manifest-digest":"{A}","Docker-Manifest-Digest":"{B}"}}}}}}"#
    );
    refused(&cased, &["Docker-Manifest-Digest"]);
}

#[test]
fn kelvin_sign_key_is_refused_alone_and_beside_the_real_key() {
    let alone = format!(r#"{{"critical":{{"image":{{"doc\u212aer-manifest-digest":"{B}"}}}}}}"#);
    refused(&alone, &["docker-manifest-digest"]);
    let raw_kelvin = format!(
        "{{\"critical\":{{\"image\":{{\"docker-manifest-digest\":\"{A}\",\"doc\u{212a}er-manifest-digest\":\"{B}\"}}}}}}"
    );
    refused(&raw_kelvin, &["docker-manifest-digest"]);
}

#[test]
fn long_s_and_dotted_and_dotless_i_are_refused() {
    // ſ (U+017F) folds to S, İ (U+0130) and ı (U+0131) to I in Go 1.21+; older Go differs.
    for key in [
        "docker-manife\u{17f}t-digest",
        "\u{130}mage",
        "\u{131}mage",
        "crit\u{131}cal",
        "\u{130}dentity",
        "docker-reference\u{0}",
    ] {
        let p = if key.contains("mage") {
            format!(r#"{{"critical":{{"{key}":{{"docker-manifest-digest":"{A}"}}}}}}"#)
        } else if key.contains("crit") {
            format!(r#"{{"{key}":{}}}"#, critical(A))
        } else if key.contains("dentity") {
            format!(r#"{{"critical":{{"{key}":{{"docker-reference":"x"}}}}}}"#)
        } else if key.contains("reference") {
            // Not a fold at all: an unknown key with a NUL escape is simply ignored.
            let p = format!(
                r#"{{"critical":{{"identity":{{"docker-reference\u0000":"x"}},"image":{{"docker-manifest-digest":"{A}"}}}}}}"#
            );
            assert_eq!(accepted(p.as_bytes()).docker_reference, "");
            continue;
        } else {
            format!(r#"{{"critical":{{"image":{{"{key}":"{A}"}}}}}}"#)
        };
        refused(&p, &[]);
    }
}

#[test]
fn optional_keys_differing_in_case_are_refused() {
    let p = format!(
        r#"{{"critical":{},"optional":{{"env":"dev"}},"Optional":{{"env":"prod"}}}}"#,
        critical(A)
    );
    refused(&p, &["\"optional\"", "\"Optional\""]);
}

#[test]
fn exact_duplicates_are_refused_at_every_read_level() {
    let cases = [
        format!(
            r#"{{"critical":{},"critical":{}}}"#,
            critical(A),
            critical(A)
        ),
        format!(
            r#"{{"critical":{},"optional":null,"optional":null}}"#,
            critical(A)
        ),
        format!(r#"{{"critical":{},"extra":1,"EXTRA":2}}"#, critical(A)),
        format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"x"}},"identity":{{"docker-reference":"y"}},"image":{{"docker-manifest-digest":"{A}"}}}}}}"#
        ),
        format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"x","docker-reference":"y"}},"image":{{"docker-manifest-digest":"{A}"}}}}}}"#
        ),
        format!(
            r#"{{"critical":{{"image":{{"docker-manifest-digest":"{A}"}},"image":{{"docker-manifest-digest":"{A}"}}}}}}"#
        ),
        format!(
            r#"{{"critical":{{"image":{{"docker-manifest-digest":"{A}"}},"type":"a","TYPE":"b"}}}}"#
        ),
        // Escaped spellings are the same key once decoded.
        format!(
            r#"{{"critical":{{"image":{{"docker-manifest-digest":"{A}"}}}},"\u0063ritical":{}}}"#,
            critical(B)
        ),
        format!(
            r#"{{"critical":{},"optional":{{"a":"1","a":"2"}}}}"#,
            critical(A)
        ),
        format!(
            r#"{{"critical":{},"optional":{{"a":"1","\u0061":"2"}}}}"#,
            critical(A)
        ),
    ];
    for p in &cases {
        refused(p, &[]);
    }
}

#[test]
fn optional_keys_are_exact_so_case_variants_are_distinct_annotations() {
    let p = format!(
        r#"{{"critical":{},"optional":{{"env":"dev","Env":"prod"}}}}"#,
        critical(A)
    );
    let parsed = accepted(p.as_bytes());
    let opt = parsed.optional.expect("optional");
    assert_eq!(opt["env"], "dev");
    assert_eq!(opt["Env"], "prod");
}

#[test]
fn old_capitalised_payloads_still_read_as_cosign_reads_them() {
    let p = br#"{"Critical":{"Identity":{"Docker-Reference":"r"},"IMAGE":{"Docker-Manifest-Digest":"sha256:x"},"Type":"cosign container signature"},"Optional":{"a":"b"}}"#;
    let parsed = accepted(p);
    assert_eq!(parsed.manifest_digest, "sha256:x");
    assert_eq!(parsed.docker_reference, "r");
    assert_eq!(parsed.signature_type, "cosign container signature");
    assert_eq!(parsed.optional.expect("optional")["a"], "b");
}

#[test]
fn invalid_utf8_in_a_value_reads_as_go_does() {
    // Go replaces each byte that does not start a valid sequence with U+FFFD.
    let mut p = format!(r#"{{"critical":{},"optional":{{"note":"a"#, critical(A)).into_bytes();
    p.extend_from_slice(b"\xff\xe2\x82b");
    p.extend_from_slice(br#""},"x":""#);
    p.extend_from_slice(b"\xc0\x80");
    p.extend_from_slice(br#""}"#);
    let parsed = accepted(&p);
    assert_eq!(parsed.manifest_digest, A);
    assert_eq!(
        parsed.optional.expect("optional")["note"],
        "a\u{fffd}\u{fffd}\u{fffd}b"
    );
}

#[test]
fn lone_surrogate_escapes_read_as_replacement_characters() {
    let p = format!(
        r#"{{"critical":{},"optional":{{"s":"\ud800x\udc00\ud83d\ude00"}}}}"#,
        critical(A)
    );
    let parsed = accepted(p.as_bytes());
    assert_eq!(
        parsed.optional.expect("optional")["s"],
        "\u{fffd}x\u{fffd}\u{1f600}"
    );
}

fn nested_unknown(depth: usize) -> Vec<u8> {
    let mut p = format!(r#"{{"critical":{},"deep":"#, critical(A)).into_bytes();
    // The root object is one level, so `depth - 1` arrays make the document `depth` deep.
    p.extend(std::iter::repeat_n(b'[', depth - 1));
    p.extend(std::iter::repeat_n(b']', depth - 1));
    p.push(b'}');
    p
}

#[test]
fn deep_nesting_in_an_unknown_field_is_accepted_up_to_go_limit_on_a_small_stack() {
    // A tokio worker has a 2 MiB stack; the scanner must not recurse with the depth.
    let handle = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(|| {
            assert_eq!(accepted(&nested_unknown(5000)).manifest_digest, A);
            assert_eq!(accepted(&nested_unknown(10_000)).manifest_digest, A);
            let mut objects = format!(r#"{{"critical":{},"deep":"#, critical(A)).into_bytes();
            for _ in 0..9_999 {
                objects.extend_from_slice(br#"{"k":"#);
            }
            objects.extend_from_slice(b"null");
            objects.extend(std::iter::repeat_n(b'}', 10_000));
            assert_eq!(accepted(&objects).manifest_digest, A);
            let err = ParsedPayload::parse(&nested_unknown(10_001)).expect_err("too deep");
            assert!(err.to_string().contains("10000"), "{err}");
        })
        .expect("spawn");
    handle.join().expect("no stack overflow");
}

#[test]
fn huge_exponent_in_an_unknown_field_is_accepted_but_refused_in_optional() {
    let unknown = format!(r#"{{"critical":{},"n":1e999999}}"#, critical(A));
    assert_eq!(accepted(unknown.as_bytes()).manifest_digest, A);
    let in_optional = format!(
        r#"{{"critical":{},"optional":{{"n":1e999999}}}}"#,
        critical(A)
    );
    refused(&in_optional, &["1e999999"]);
    let nested_in_optional = format!(
        r#"{{"critical":{},"optional":{{"n":[1,{{"m":-1e999999}}]}}}}"#,
        critical(A)
    );
    refused(&nested_in_optional, &[]);
}

#[test]
fn what_go_refuses_is_refused() {
    let cases: Vec<Vec<u8>> = vec![
        format!(r#"{{"critical":{}}} x"#, critical(A)).into_bytes(),
        format!(r#"{{"critical":{}}}{{}}"#, critical(A)).into_bytes(),
        br#"{"critical":{"image":{"docker-manifest-digest":5}}}"#.to_vec(),
        br#"{"critical":{"image":"x"}}"#.to_vec(),
        br#"{"critical":[]}"#.to_vec(),
        br#"{"optional":"x"}"#.to_vec(),
        br#"{"critical":{"type":true}}"#.to_vec(),
        br#"{"n":01}"#.to_vec(),
        br#"{"n":1.}"#.to_vec(),
        br#"{"n":-}"#.to_vec(),
        br#"{"s":"\x"}"#.to_vec(),
        br#"{"s":"\u12"}"#.to_vec(),
        b"{\"s\":\"a\tb\"}".to_vec(),
        br#"{"a":1,}"#.to_vec(),
        br#"{"a" 1}"#.to_vec(),
        br#"{"a":[1,]}"#.to_vec(),
        br#"{"a":tru}"#.to_vec(),
        b"\xef\xbb\xbf{}".to_vec(),
        b"{\"a\":\xff}".to_vec(),
        b"".to_vec(),
        b"{".to_vec(),
        b"[]".to_vec(),
    ];
    for p in &cases {
        assert!(
            ParsedPayload::parse(p).is_err(),
            "accepted {}",
            String::from_utf8_lossy(p)
        );
    }
}

#[test]
fn what_go_accepts_is_read_as_go_reads_it() {
    let p = " \r\n\t{\"critical\" : null , \"x\":[true,false,null,-0.5e+3,\"\\/\"], \"critical\\u0000\":1}  ";
    let parsed = accepted(p.as_bytes());
    assert_eq!(parsed.manifest_digest, "");
    let escaped = format!(
        r#"{{"\u0063ritical":{{"image":{{"docker-manifest-digest":"{A}"}},"identity":{{"docker-reference":"a\"b\\c\/\b\f\n\r\t\u00e9"}}}}}}"#
    );
    let parsed = accepted(escaped.as_bytes());
    assert_eq!(parsed.manifest_digest, A);
    assert_eq!(parsed.docker_reference, "a\"b\\c/\u{8}\u{c}\n\r\té");
    let nulls = format!(
        r#"{{"critical":{{"identity":null,"image":{{"docker-manifest-digest":"{A}"}},"type":null}},"optional":null}}"#
    );
    let parsed = accepted(nulls.as_bytes());
    assert_eq!(parsed.optional, None);
}

#[test]
fn printed_json_is_what_cosign_prints() {
    let p = format!(
        r#"{{"Critical":{{"Image":{{"Docker-Manifest-Digest":"{A}"}},"extra":1}},"optional":{{"b":1.0,"a":[2.5,{{"z":null}}],"s":"v"}},"zz":true}}"#
    );
    let parsed = accepted(p.as_bytes());
    assert_eq!(
        serde_json::to_string(&parsed.json).expect("serialise"),
        format!(
            r#"{{"critical":{{"identity":{{"docker-reference":""}},"image":{{"docker-manifest-digest":"{A}"}},"type":""}},"optional":{{"a":[2.5,{{"z":null}}],"b":1,"s":"v"}}}}"#
        )
    );
}
