//! The statement reader: what cosign 3 signs is read; anything ambiguous or foreign is refused.

use super::*;

#[test]
fn ambiguous_or_foreign_statements_are_refused() {
    let hex = "a".repeat(64);
    let base = |subject: &str, extra: &str| {
        format!(
            r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[{subject}],"predicateType":"https://sigstore.dev/cosign/sign/v1","predicate":{{}}{extra}}}"#
        )
    };
    let ok_subject = format!(r#"{{"digest":{{"sha256":"{hex}"}}}}"#);
    read_statement(base(&ok_subject, "").as_bytes()).unwrap();
    for (doc, must_say) in [
        (
            base(
                &format!(
                    r#"{{"digest":{{"sha256":"{hex}","sha256":"{}"}}}}"#,
                    "b".repeat(64)
                ),
                "",
            ),
            "name the same field",
        ),
        (
            base(
                &ok_subject,
                r#","predicate_type":"https://slsa.dev/provenance/v1""#,
            ),
            "name the same field",
        ),
        (
            base(&format!("{ok_subject},{ok_subject}"), ""),
            "names 2 subjects",
        ),
        (base("", ""), "names 0 subjects"),
        (
            base(
                &format!(r#"{{"digest":{{"sha256":"{}"}}}}"#, "A".repeat(64)),
                "",
            ),
            "not 64 lowercase hex",
        ),
        (
            base(&ok_subject, "").replace("cosign/sign/v1", "cosign/other"),
            "predicateType",
        ),
        (
            base(&ok_subject, "").replace("Statement/v1", "Statement/v0.1"),
            "_type",
        ),
    ] {
        let err = read_statement(doc.as_bytes()).unwrap_err().to_string();
        assert!(err.contains(must_say), "{doc}: {err}");
    }
}

#[test]
fn signed_bytes_must_be_a_pae_of_an_in_toto_statement() {
    let statement = format!(
        r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[{{"digest":{{"sha256":"{}"}}}}],"predicateType":"https://sigstore.dev/cosign/sign/v1","predicate":{{}}}}"#,
        "a".repeat(64)
    );
    let claims =
        read_signed_bytes(&pae::encode(IN_TOTO_PAYLOAD_TYPE, statement.as_bytes())).unwrap();
    assert_eq!(claims.manifest_digest, format!("sha256:{}", "a".repeat(64)));
    assert_eq!(claims.signature_type, SIGN_PREDICATE_TYPE);
    let other_type = read_signed_bytes(&pae::encode("text/plain", statement.as_bytes()));
    assert!(matches!(
        other_type,
        Err(StatementError::PayloadType { .. })
    ));
    assert!(matches!(
        read_signed_bytes(statement.as_bytes()),
        Err(StatementError::NotPae)
    ));
    let err = read_signed_bytes(&pae::encode(IN_TOTO_PAYLOAD_TYPE, b"{}")).unwrap_err();
    assert!(err.to_string().starts_with("statement _type is"), "{err}");
}
