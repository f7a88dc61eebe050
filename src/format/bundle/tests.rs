use super::*;
use crate::reference::ImageReference;
use crate::registry::manifest::media_types;

const FIXTURE_BUNDLE: &[u8] = include_bytes!("testdata/cosign-3.1.1/bundle.json");
const FIXTURE_KEY: &str = include_str!("testdata/cosign-3.1.1/cosign.pub");
const FIXTURE_IMAGE: &[u8] = include_bytes!("testdata/cosign-3.1.1/image-manifest.json");
const FIXTURE_ARTIFACT: &[u8] = include_bytes!("testdata/cosign-3.1.1/artifact.json");

fn image(manifest: &[u8]) -> ResolvedImage {
    let digest = crate::reference::Digest::of(manifest);
    let reference = ImageReference::parse(&format!("127.0.0.1:5977/fix/img@{digest}")).unwrap();
    ResolvedImage {
        reference,
        digest,
        media_type: media_types::OCI_MANIFEST.to_string(),
        size: manifest.len() as u64,
        from_tag: false,
    }
}

fn fixture_key() -> PublicKey {
    PublicKey::from_pem(FIXTURE_KEY).unwrap()
}

fn blob_descriptor(blob: &[u8]) -> Descriptor {
    Descriptor::new(
        BUNDLE_MEDIA_TYPE,
        crate::reference::Digest::of(blob),
        blob.len() as u64,
    )
}

fn team_blue() -> BTreeMap<String, String> {
    BTreeMap::from([("team".to_string(), "blue".to_string())])
}

/// Open and check a bundle as verify does (signature over the signed bytes, then claims).
fn read(blob: &[u8], key: &PublicKey) -> Result<ParsedPayload, String> {
    let format = SigstoreBundle::new(key, BTreeMap::new());
    let stored = blob_descriptor(blob);
    format.screen(&stored)?;
    let candidate = format.open(&stored, Bytes::copy_from_slice(blob))?;
    key.verify(&candidate.signed, &candidate.signature)
        .map_err(|e| e.to_string())?;
    format.claims(&stored, &candidate)
}

#[test]
fn a_bundle_cosign_3_made_reads_back_and_verifies() {
    let parsed = read(FIXTURE_BUNDLE, &fixture_key()).unwrap();
    assert_eq!(
        parsed.manifest_digest,
        image(FIXTURE_IMAGE).digest.to_string()
    );
    assert_eq!(parsed.signature_type, SIGN_PREDICATE_TYPE);
    assert!(parsed.has_annotations(&team_blue()));
    assert!(!parsed.has_annotations(&BTreeMap::from([("team".into(), "red".into())])));
}

#[test]
fn statement_pae_and_hint_are_byte_identical_to_cosign_3() {
    let fixture: Value = serde_json::from_slice(FIXTURE_BUNDLE).unwrap();
    let format = SigstoreBundle::new(&fixture_key(), team_blue());
    let img = image(FIXTURE_IMAGE);
    let statement = STANDARD
        .decode(fixture["dsseEnvelope"]["payload"].as_str().unwrap())
        .unwrap();
    assert_eq!(format.statement(&img), statement);
    let payload = format.payload(&img);
    assert_eq!(payload.bytes, pae::encode(IN_TOTO_PAYLOAD_TYPE, &statement));
    // cosign's signature is over exactly these bytes.
    let sig = STANDARD
        .decode(
            fixture["dsseEnvelope"]["signatures"][0]["sig"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    fixture_key().verify(&payload.bytes, &sig).unwrap();

    let ours: Value = serde_json::from_slice(&format.wrap(&payload, &sig, None).blob).unwrap();
    assert_eq!(ours, fixture, "sigbridge's bundle equals cosign 3.1.1's");
}

#[test]
fn wrap_writes_cosigns_manifest_annotations_and_reads_back() {
    let key = fixture_key();
    let format = SigstoreBundle::new(&key, BTreeMap::new());
    let payload = format.payload(&image(FIXTURE_IMAGE));
    let envelope = format.wrap(&payload, b"sig", None);
    let artifact: Value = serde_json::from_slice(FIXTURE_ARTIFACT).unwrap();
    for key in [CONTENT_ANNOTATION, PREDICATE_TYPE_ANNOTATION] {
        assert_eq!(
            envelope.annotations[key],
            artifact["annotations"][key].as_str().unwrap()
        );
    }
    let created = &envelope.annotations[CREATED_ANNOTATION];
    assert!(
        time::OffsetDateTime::parse(created, &time::format_description::well_known::Rfc3339)
            .is_ok()
            && created.ends_with('Z')
            && created.len() == "2026-11-30T18:21:10Z".len(),
        "{created}"
    );
    assert_eq!(envelope.media_type, BUNDLE_MEDIA_TYPE);
    let candidate = format
        .open(&envelope.descriptor(), Bytes::from(envelope.blob.clone()))
        .unwrap();
    assert_eq!(candidate.signed, payload.bytes);
    assert_eq!(candidate.signature, b"sig");
    assert_eq!(candidate.certificate, None);
    let claims = format.claims(&envelope.descriptor(), &candidate).unwrap();
    assert_eq!(claims.optional, Some(Map::new()));
}

#[test]
fn a_certificate_goes_into_verification_material_and_comes_back_as_pem() {
    let der = b"not really DER but opaque bytes".to_vec();
    let cert = CertificateMaterial {
        certificate_pem: pem::encode("CERTIFICATE", &der),
        chain_pem: None,
    };
    let format = SigstoreBundle::new(&fixture_key(), BTreeMap::new());
    let payload = format.payload(&image(FIXTURE_IMAGE));
    let envelope = format.wrap(&payload, b"sig", Some(&cert));
    let bundle: Value = serde_json::from_slice(&envelope.blob).unwrap();
    assert_eq!(
        bundle["verificationMaterial"],
        json!({"certificate": {"rawBytes": STANDARD.encode(&der)}})
    );
    let candidate = format
        .open(&envelope.descriptor(), Bytes::from(envelope.blob))
        .unwrap();
    assert_eq!(candidate.certificate, Some(cert.certificate_pem));
}

/// The fixture with `edit` applied to its JSON, and the statement optionally replaced.
fn tampered(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut bundle: Value = serde_json::from_slice(FIXTURE_BUNDLE).unwrap();
    edit(&mut bundle);
    serde_json::to_vec(&bundle).unwrap()
}

fn refused(blob: &[u8], must_say: &str) {
    let err = read(blob, &fixture_key()).unwrap_err();
    assert!(err.contains(must_say), "expected {must_say:?} in {err}");
}

#[test]
fn bad_bundles_are_refused_with_a_reason() {
    refused(
        &tampered(|b| b["mediaType"] = json!("application/vnd.dev.sigstore.bundle.v0.2+json")),
        "only Sigstore bundle v0.3 is read",
    );
    refused(
        &tampered(|b| {
            b.as_object_mut().unwrap().remove("dsseEnvelope");
            b["messageSignature"] = json!({"signature": "AA=="});
        }),
        "holds no DSSE envelope",
    );
    refused(
        &tampered(|b| b["dsseEnvelope"]["signatures"] = json!([])),
        "holds 0 signatures",
    );
    refused(
        &tampered(|b| b["dsseEnvelope"]["payloadType"] = json!("text/plain")),
        "payloadType is \"text/plain\"",
    );
    refused(
        &tampered(|b| b["verificationMaterial"]["x509CertificateChain"] = json!({})),
        "x509CertificateChain",
    );
    let mut dup = FIXTURE_BUNDLE.to_vec();
    dup.pop();
    dup.extend_from_slice(br#","mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}"#);
    refused(&dup, "name the same field");

    let other_media = Descriptor::new(
        "application/vnd.dev.sigstore.bundle.v0.2+json",
        crate::reference::Digest::of(FIXTURE_BUNDLE),
        1,
    );
    assert!(SigstoreBundle::new(&fixture_key(), BTreeMap::new())
        .screen(&other_media)
        .unwrap_err()
        .contains("only Sigstore bundle v0.3"));
}

#[test]
fn a_signature_over_a_statement_naming_another_digest_is_refused_or_claims_that_digest() {
    // Changing the statement without re-signing breaks the PAE signature.
    let other = r#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"0000000000000000000000000000000000000000000000000000000000000000"},"annotations":{}}],"predicateType":"https://sigstore.dev/cosign/sign/v1","predicate":{}}"#;
    let blob = tampered(|b| b["dsseEnvelope"]["payload"] = json!(STANDARD.encode(other)));
    assert!(read(&blob, &fixture_key()).is_err());
    // Signed properly, it claims the other digest, which verify compares with the image.
    let claims = read_statement(other.as_bytes()).unwrap();
    assert_eq!(claims.manifest_digest, format!("sha256:{}", "0".repeat(64)));
}

#[test]
fn the_signature_from_a_different_key_does_not_verify() {
    // A freshly generated P-256 key (openssl ecparam -genkey -name prime256v1).
    let other = PublicKey::from_pem("-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAElludQ6Ivh4N+ghgYBcWMTfZgRxSa\nQbqr67kAfzFUdIUkOdaAhG0OOYXb0aT/NWgj0xB66TV0PZfZheS0RoZi0Q==\n-----END PUBLIC KEY-----\n").unwrap();
    assert!(read(FIXTURE_BUNDLE, &other).is_err());
    assert_eq!(
        key_hint(&fixture_key()),
        "nwxAK0/CkiMzi0gx7Vr3TlH+4DKagbfpW0MkZ5r1hwY="
    );
}

#[test]
fn tlog_entries_are_handed_to_verify_and_a_non_list_is_refused() {
    let format = SigstoreBundle::new(&fixture_key(), BTreeMap::new());
    let blob = FIXTURE_BUNDLE.to_vec();
    let plain = format
        .open(&blob_descriptor(&blob), Bytes::from(blob))
        .unwrap();
    assert_eq!(plain.tlog, None, "cosign 3.1.1 made this one without a log");
    let entry = json!({"logIndex": "1", "canonicalizedBody": "e30="});
    let with = tampered(|b| b["verificationMaterial"]["tlogEntries"] = json!([entry.clone()]));
    let candidate = format
        .open(&blob_descriptor(&with), Bytes::from(with))
        .unwrap();
    assert_eq!(
        candidate.tlog,
        Some(TlogEvidence::BundleEntries(vec![entry]))
    );
    let empty = tampered(|b| b["verificationMaterial"]["tlogEntries"] = json!([]));
    assert_eq!(
        format
            .open(&blob_descriptor(&empty), Bytes::from(empty))
            .unwrap()
            .tlog,
        None
    );
    refused(
        &tampered(|b| b["verificationMaterial"]["tlogEntries"] = json!({})),
        "verificationMaterial.tlogEntries is not a list",
    );
}
