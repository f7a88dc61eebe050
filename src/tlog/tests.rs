//! Upstream artefacts (tests/fixtures/tlog/README.md records their origin) verified, and each
//! tampered variant refused with the failing part named.

use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};
use sigbridge_signer::{pem, PublicKey};

use super::*;
use crate::trust::TrustedRoot;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tlog/");

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}{name}")).unwrap()
}

fn public_good() -> TrustedRoot {
    TrustedRoot::from_trusted_root_json(&fixture("trusted-root-public-good.json")).unwrap()
}

/// containers/image's key-signed layer: (payload, signature annotation, bundle annotation).
fn key_layer() -> (Vec<u8>, String, String) {
    let layer: Value = serde_json::from_slice(&fixture("ci-key-rekor-signature-1.json")).unwrap();
    let payload = STANDARD.decode(layer["payload"].as_str().unwrap()).unwrap();
    let a = &layer["annotations"];
    (
        payload,
        a["dev.cosignproject.cosign/signature"]
            .as_str()
            .unwrap()
            .to_string(),
        a[REKOR_BUNDLE_ANNOTATION].as_str().unwrap().to_string(),
    )
}

fn key_der() -> Vec<u8> {
    let pem = String::from_utf8(fixture("ci-cosign2.pub")).unwrap();
    PublicKey::from_pem(&pem).unwrap().spki_der().to_vec()
}

fn check(
    bundle: &str,
    sig: &str,
    der: &[u8],
    payload: &[u8],
    root: &TrustedRoot,
) -> Result<VerifiedTlog, TlogError> {
    let signed = SignedMaterial {
        signature_b64: sig,
        verifier_der: der,
        payload,
    };
    verify_evidence(
        &TlogEvidence::RekorBundle(bundle.to_string()),
        &signed,
        root,
    )
}

/// The bundle annotation with `edit` applied to its JSON.
fn edited(bundle: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut v: Value = serde_json::from_str(bundle).unwrap();
    edit(&mut v);
    v.to_string()
}

fn at(seconds: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
}

#[test]
fn upstream_key_signature_with_rekor_bundle_verifies_with_the_public_good_root() {
    let (payload, sig, bundle) = key_layer();
    let ok = check(&bundle, &sig, &key_der(), &payload, &public_good()).unwrap();
    assert_eq!(ok.integrated_time, Some(at(1674251859)));
    // Printed as cosign marshals it: SignedEntryTimestamp, then Payload's fields in Go order.
    let printed = serde_json::to_string(&ok.rekor_bundle.unwrap()).unwrap();
    assert!(
        printed.starts_with(r#"{"SignedEntryTimestamp":"MEYCIQCtP1W8"#),
        "{printed}"
    );
    assert!(printed.ends_with(r#""integratedTime":1674251859,"logIndex":11608800,"logID":"c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d"}}"#), "{printed}");
}

#[test]
fn upstream_key_signature_verifies_with_the_rekor_key_from_a_pem_file() {
    let (payload, sig, bundle) = key_layer();
    let mut root = TrustedRoot::default();
    root.add_rekor_public_keys_file(std::path::Path::new(&format!("{FIXTURES}ci-rekor.pub")))
        .unwrap();
    check(&bundle, &sig, &key_der(), &payload, &root).unwrap();
}

#[test]
fn upstream_certificate_signature_with_rekor_bundle_verifies() {
    let bundle = String::from_utf8(fixture("ci-rekor-set")).unwrap();
    let sig = String::from_utf8(fixture("ci-rekor-sig")).unwrap();
    let cert = pem::decode_first(&fixture("ci-rekor-cert")).unwrap();
    let ok = check(
        bundle.trim(),
        sig.trim(),
        cert.contents(),
        &fixture("ci-rekor-payload"),
        &public_good(),
    )
    .unwrap();
    assert_eq!(ok.integrated_time, Some(at(1670870899)));
}

#[test]
fn a_changed_body_fails_the_set() {
    let (payload, sig, bundle) = key_layer();
    // Same entry, one more space: the cross-check still passes, the SET no longer does.
    let tampered = edited(&bundle, |v| {
        let body = STANDARD
            .decode(v["Payload"]["body"].as_str().unwrap())
            .unwrap();
        let mut text = String::from_utf8(body).unwrap();
        text.insert(1, ' ');
        v["Payload"]["body"] = json!(STANDARD.encode(text));
    });
    let err = check(&tampered, &sig, &key_der(), &payload, &public_good()).unwrap_err();
    assert!(matches!(err, TlogError::SetInvalid { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("signed entry timestamp is invalid"),
        "{err}"
    );
}

#[test]
fn a_changed_set_or_log_index_fails_the_set() {
    let (payload, sig, bundle) = key_layer();
    let flipped = edited(&bundle, |v| {
        let mut set = STANDARD
            .decode(v["SignedEntryTimestamp"].as_str().unwrap())
            .unwrap();
        let last = set.len() - 1;
        set[last] ^= 1;
        v["SignedEntryTimestamp"] = json!(STANDARD.encode(set));
    });
    let err = check(&flipped, &sig, &key_der(), &payload, &public_good()).unwrap_err();
    assert!(matches!(err, TlogError::SetInvalid { .. }), "{err}");
    let moved = edited(&bundle, |v| v["Payload"]["logIndex"] = json!(11608801));
    let err = check(&moved, &sig, &key_der(), &payload, &public_good()).unwrap_err();
    assert!(matches!(err, TlogError::SetInvalid { .. }), "{err}");
}

#[test]
fn an_integrated_time_outside_the_log_keys_validity_is_refused() {
    let (payload, sig, bundle) = key_layer();
    // Before the public-good key's validFor.start (2021-01-12).
    let early = edited(&bundle, |v| {
        v["Payload"]["integratedTime"] = json!(1600000000)
    });
    let err = check(&early, &sig, &key_der(), &payload, &public_good()).unwrap_err();
    assert!(
        matches!(
            err,
            TlogError::LogKeyNotValid {
                integrated_time: 1600000000,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("not valid at the entry's integratedTime"),
        "{err}"
    );
    // The true entry, with a root whose key expired before it was integrated (2023-01-20).
    let text = String::from_utf8(fixture("trusted-root-public-good.json")).unwrap();
    let expired = text.replacen(
        r#""start": "2021-01-12T11:53:27.000Z""#,
        r#""start": "2021-01-12T11:53:27.000Z", "end": "2022-12-31T00:00:00Z""#,
        1,
    );
    assert_ne!(expired, text);
    let root = TrustedRoot::from_trusted_root_json(expired.as_bytes()).unwrap();
    let err = check(&bundle, &sig, &key_der(), &payload, &root).unwrap_err();
    assert!(matches!(err, TlogError::LogKeyNotValid { .. }), "{err}");
}

#[test]
fn another_log_id_is_refused_as_unknown() {
    let (payload, sig, bundle) = key_layer();
    let other = edited(&bundle, |v| v["Payload"]["logID"] = json!("11".repeat(32)));
    let err = check(&other, &sig, &key_der(), &payload, &public_good()).unwrap_err();
    assert!(matches!(err, TlogError::UnknownLog { .. }), "{err}");
    assert!(err.to_string().contains("--trusted-root"), "{err}");
    let upper = edited(&bundle, |v| {
        let id = v["Payload"]["logID"].as_str().unwrap().to_uppercase();
        v["Payload"]["logID"] = json!(id);
    });
    let err = check(&upper, &sig, &key_der(), &payload, &public_good()).unwrap_err();
    assert!(err.to_string().contains("not lowercase hex"), "{err}");
}

#[test]
fn another_signature_key_or_payload_does_not_match_the_body() {
    let (payload, sig, bundle) = key_layer();
    let other_sig = String::from_utf8(fixture("ci-rekor-sig")).unwrap();
    let err = check(
        &bundle,
        other_sig.trim(),
        &key_der(),
        &payload,
        &public_good(),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            TlogError::BodyMismatch {
                what: "signature",
                ..
            }
        ),
        "{err}"
    );

    let other_key =
        PublicKey::from_pem(&String::from_utf8(fixture("ci-rekor.pub")).unwrap()).unwrap();
    let err = check(
        &bundle,
        &sig,
        other_key.spki_der(),
        &payload,
        &public_good(),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            TlogError::BodyMismatch {
                what: "public key",
                ..
            }
        ),
        "{err}"
    );

    let mut other_payload = payload.clone();
    other_payload.push(b'\n');
    let err = check(&bundle, &sig, &key_der(), &other_payload, &public_good()).unwrap_err();
    assert!(
        matches!(
            err,
            TlogError::BodyMismatch {
                what: "payload hash",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("spec.data.hash.value"), "{err}");
}

#[test]
fn a_malformed_or_unknown_field_bundle_is_refused() {
    let (payload, sig, bundle) = key_layer();
    let extra = edited(&bundle, |v| v["Payload"]["logid"] = json!("00"));
    let err = check(&extra, &sig, &key_der(), &payload, &public_good()).unwrap_err();
    assert!(matches!(err, TlogError::Malformed { .. }), "{err}");
    let err = check("{}", &sig, &key_der(), &payload, &public_good()).unwrap_err();
    assert!(err.to_string().contains("SignedEntryTimestamp"), "{err}");
}

#[test]
fn an_upstream_sigstore_bundle_entry_set_verifies_and_a_changed_time_does_not() {
    let bundle: Value = serde_json::from_slice(&fixture("sg-bundle-provenance.json")).unwrap();
    let raw = &bundle["verificationMaterial"]["tlogEntries"][0];
    let entry = TlogEntry::from_bundle_entry(raw, 0).unwrap();
    assert_eq!(verify_set(&entry, &public_good()).unwrap(), at(1681839912));
    let mut changed = raw.clone();
    changed["integratedTime"] = json!("1681839913");
    let entry = TlogEntry::from_bundle_entry(&changed, 0).unwrap();
    let err = verify_set(&entry, &public_good()).unwrap_err();
    assert!(matches!(err, TlogError::SetInvalid { .. }), "{err}");
    let mut no_promise = raw.clone();
    no_promise
        .as_object_mut()
        .unwrap()
        .remove("inclusionPromise");
    // This entry has no inclusion proof either: nothing is left to check offline.
    let err = TlogEntry::from_bundle_entry(&no_promise, 0).unwrap_err();
    assert!(
        err.to_string()
            .contains("tlogEntries[0] has neither an inclusionPromise nor an inclusionProof"),
        "{err}"
    );
}

/// A self-made log over a dsse v0.0.1 body, as a Sigstore bundle's `tlogEntries` carries it.
mod dsse {
    use super::*;
    use p256::ecdsa::signature::Signer as _;
    use p256::pkcs8::EncodePublicKey as _;
    use sha2::{Digest as _, Sha256};

    struct SelfMadeLog {
        key: p256::ecdsa::SigningKey,
        root: TrustedRoot,
    }

    fn self_made_log() -> SelfMadeLog {
        let key = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        let der = key
            .verifying_key()
            .to_public_key_der()
            .unwrap()
            .as_bytes()
            .to_vec();
        let root = json!({
            "mediaType": crate::trust::TRUSTED_ROOT_MEDIA_TYPE,
            "tlogs": [{"publicKey": {"rawBytes": STANDARD.encode(&der), "validFor": {"start": "2025-01-01T00:00:00Z"}},
                       "logId": {"keyId": STANDARD.encode(Sha256::digest(&der))}}],
        });
        SelfMadeLog {
            key,
            root: TrustedRoot::from_trusted_root_json(root.to_string().as_bytes()).unwrap(),
        }
    }

    impl SelfMadeLog {
        fn entry(&self, body: &[u8], integrated: i64) -> Value {
            let id = self.root.tlogs[0].log_id.clone();
            let body_b64 = STANDARD.encode(body);
            let canonical = format!(
                r#"{{"body":"{body_b64}","integratedTime":{integrated},"logID":"{}","logIndex":3}}"#,
                hex::encode(&id)
            );
            let set: p256::ecdsa::Signature = self.key.sign(canonical.as_bytes());
            json!({
                "logIndex": "3",
                "logId": {"keyId": STANDARD.encode(&id)},
                "kindVersion": {"kind": "dsse", "version": "0.0.1"},
                "integratedTime": integrated.to_string(),
                "inclusionPromise": {"signedEntryTimestamp": STANDARD.encode(set.to_der().as_bytes())},
                "canonicalizedBody": body_b64,
            })
        }
    }

    fn dsse_body(statement: &[u8], sig_b64: &str, verifier_pem: &str) -> Vec<u8> {
        json!({"apiVersion": "0.0.1", "kind": "dsse", "spec": {
            "envelopeHash": {"algorithm": "sha256", "value": "00"},
            "payloadHash": {"algorithm": "sha256", "value": hex::encode(Sha256::digest(statement))},
            "signatures": [{"signature": sig_b64, "verifier": STANDARD.encode(verifier_pem)}],
        }})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn a_bundle_entry_verifies_and_its_tampered_variants_do_not() {
        let log = self_made_log();
        let signer = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        let key = PublicKey::from_spki_der(
            signer
                .verifying_key()
                .to_public_key_der()
                .unwrap()
                .as_bytes(),
        )
        .unwrap();
        let statement = br#"{"_type":"https://in-toto.io/Statement/v1"}"#;
        let sig = "c2lnbmF0dXJl";
        let signed = SignedMaterial {
            signature_b64: sig,
            verifier_der: key.spki_der(),
            payload: statement,
        };
        let body = dsse_body(statement, sig, &key.to_pem());
        let entries = |list: Vec<Value>| TlogEvidence::BundleEntries(list);
        let ok = verify_evidence(
            &entries(vec![log.entry(&body, 1_750_000_000)]),
            &signed,
            &log.root,
        )
        .unwrap();
        assert_eq!(ok.integrated_time, Some(at(1_750_000_000)));
        assert_eq!(ok.rekor_bundle, None);

        let early = log.entry(&body, 1_700_000_000);
        let err = verify_evidence(&entries(vec![early]), &signed, &log.root).unwrap_err();
        assert!(matches!(err, TlogError::LogKeyNotValid { .. }), "{err}");

        let mut changed = log.entry(&body, 1_750_000_000);
        changed["logIndex"] = json!("4");
        let err = verify_evidence(&entries(vec![changed]), &signed, &log.root).unwrap_err();
        assert!(matches!(err, TlogError::SetInvalid { .. }), "{err}");

        let other_statement = dsse_body(b"{}", sig, &key.to_pem());
        let err = verify_evidence(
            &entries(vec![log.entry(&other_statement, 1_750_000_000)]),
            &signed,
            &log.root,
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                TlogError::BodyMismatch {
                    what: "payload hash",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("spec.payloadHash.value"), "{err}");

        let legacy_kind = String::from_utf8(body.clone())
            .unwrap()
            .replace("\"dsse\"", "\"hashedrekord\"");
        let err = verify_evidence(
            &entries(vec![log.entry(legacy_kind.as_bytes(), 1_750_000_000)]),
            &signed,
            &log.root,
        )
        .unwrap_err();
        assert!(
            matches!(err, TlogError::BodyMismatch { what: "kind", .. }),
            "{err}"
        );

        // Every entry must verify: a good one does not carry a bad one.
        let mut bad = log.entry(&body, 1_750_000_000);
        bad["integratedTime"] = json!("1750000001");
        let err = verify_evidence(
            &entries(vec![log.entry(&body, 1_750_000_000), bad]),
            &signed,
            &log.root,
        )
        .unwrap_err();
        assert!(matches!(err, TlogError::SetInvalid { .. }), "{err}");
    }
}
