//! Upstream Fulcio certificates (sigstore-go's test data, see tests/fixtures/keyless/README.md)
//! checked at their signing time, each tampered variant refused with what failed; a self-made
//! CA for what upstream data lacks (wrong EKU, signature by another key, the layer's chain).

use std::collections::BTreeMap;
use std::time::SystemTime;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value;

use super::chain::unix;
use super::test_ca::{pem_of, LeafSpec, TestCa};
use super::*;
use crate::trust::{CertificateAuthority, TrustedRoot, Validity};

const PROVENANCE: &str =
    include_str!("../../tests/fixtures/keyless/sigstore-js-provenance.bundle.json");
const DSSE: &str = include_str!("../../tests/fixtures/keyless/dsse.sigstore.json");
const OTHERNAME: &str = include_str!("../../tests/fixtures/keyless/othername.sigstore.json");
const PUBLIC_GOOD: &str =
    include_str!("../../tests/fixtures/keyless/public-good.trusted_root.json");
const SCAFFOLDING: &str =
    include_str!("../../tests/fixtures/keyless/scaffolding.trusted_root.json");

/// The certificate authorities of a trusted_root.json (test reader; the product's loader is
/// `crate::trust`'s).
fn authorities(json: &str) -> TrustedRoot {
    let v: Value = serde_json::from_str(json).unwrap();
    let time = |s: &Value| {
        let t = time::OffsetDateTime::parse(
            s.as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        unix(t.unix_timestamp() as u64)
    };
    let certificate_authorities = v["certificateAuthorities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ca| CertificateAuthority {
            chain_der: ca["certChain"]["certificates"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| STANDARD.decode(c["rawBytes"].as_str().unwrap()).unwrap())
                .collect(),
            validity: Validity {
                start: time(&ca["validFor"]["start"]),
                end: ca["validFor"].get("end").map(time),
            },
            uri: ca["uri"].as_str().unwrap().to_string(),
        })
        .collect();
    TrustedRoot {
        tlogs: vec![],
        certificate_authorities,
    }
}

/// A bundle's certificate, the DSSE PAE it signed, its signature and its integrated time.
struct Signed {
    material: CertificateInput,
    pae: Vec<u8>,
    signature: Vec<u8>,
    time: SystemTime,
}

fn dsse_bundle(json: &str) -> Signed {
    let b: Value = serde_json::from_str(json).unwrap();
    let material = CertificateInput::from_verification_material(&b["verificationMaterial"])
        .unwrap()
        .unwrap();
    let env = &b["dsseEnvelope"];
    let payload = STANDARD.decode(env["payload"].as_str().unwrap()).unwrap();
    let signature = STANDARD
        .decode(env["signatures"][0]["sig"].as_str().unwrap())
        .unwrap();
    let pae = crate::format::bundle::pae(env["payloadType"].as_str().unwrap(), &payload);
    let secs: u64 = b["verificationMaterial"]["tlogEntries"][0]["integratedTime"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    Signed {
        material,
        pae,
        signature,
        time: unix(secs),
    }
}

fn policy(identity: Matcher, issuer: &str) -> IdentityPolicy {
    IdentityPolicy {
        identity,
        issuer: Matcher::Exact(issuer.into()),
        workflow: BTreeMap::new(),
    }
}

const GITHUB: &str = "https://token.actions.githubusercontent.com";

fn sigstore_js() -> IdentityPolicy {
    policy(
        Matcher::from_flags(
            None,
            Some("^https://github.com/sigstore/sigstore-js/"),
            "identity",
        )
        .unwrap(),
        GITHUB,
    )
}

fn check(
    s: &Signed,
    root: &TrustedRoot,
    at: SystemTime,
    p: &IdentityPolicy,
) -> Result<KeylessVerified, KeylessError> {
    verify_keyless(&s.material, &s.pae, &s.signature, root, at, p)
}

#[test]
fn upstream_github_actions_certificate_verifies_at_its_signing_time() {
    let s = dsse_bundle(PROVENANCE);
    let root = authorities(PUBLIC_GOOD);
    let mut p = sigstore_js();
    p.workflow.insert(Workflow::Trigger, "push".into());
    p.workflow
        .insert(Workflow::Repository, "sigstore/sigstore-js".into());
    let ok = check(&s, &root, s.time, &p).unwrap();
    assert_eq!(ok.authority, "https://fulcio.sigstore.dev");
    assert_eq!(ok.identity.issuer, GITHUB);
    assert_eq!(
        ok.identity.subjects,
        ["https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/main"]
    );
    assert_eq!(ok.identity.workflow[&Workflow::Ref], "refs/heads/main");
    // .1.9 (build signer URI) and later are read too.
    assert!(ok.identity.other["1.3.6.1.4.1.57264.1.9"].ends_with("release.yml@refs/heads/main"));
}

#[test]
fn upstream_email_certificate_verifies_at_its_signing_time() {
    let s = dsse_bundle(DSSE);
    let p = policy(
        Matcher::Exact("brian@dehamer.com".into()),
        "https://github.com/login/oauth",
    );
    check(&s, &authorities(PUBLIC_GOOD), s.time, &p).unwrap();
}

#[test]
fn upstream_othername_certificate_chains_to_its_private_root() {
    let b: Value = serde_json::from_str(OTHERNAME).unwrap();
    let m = CertificateInput::from_verification_material(&b["verificationMaterial"])
        .unwrap()
        .unwrap();
    let at = unix(1720811189);
    let scaffolding = authorities(SCAFFOLDING);
    let ca = chain::verify_chain(&m.leaf_der, &[], &scaffolding, at).unwrap();
    assert!(ca.uri.contains("fulcio"), "{}", ca.uri);
    let id = CertificateIdentity::of(&m.leaf_der).unwrap();
    assert_eq!(id.subjects, ["foo!oidc.local"]);
    // A private deployment's certificate does not chain to the public-good root.
    let err = chain::verify_chain(&m.leaf_der, &[], &authorities(PUBLIC_GOOD), at).unwrap_err();
    assert!(matches!(err, KeylessError::UntrustedChain { .. }), "{err}");
}

#[test]
fn upstream_tampered_variants_are_refused_naming_what_failed() {
    let s = dsse_bundle(PROVENANCE);
    let root = authorities(PUBLIC_GOOD);
    let msg = |r: Result<KeylessVerified, KeylessError>| r.unwrap_err().to_string();

    // Time outside validity: an hour after the ten-minute certificate expired.
    let late = s.time + std::time::Duration::from_secs(3600);
    let err = msg(check(&s, &root, late, &sigstore_js()));
    assert!(err.starts_with("certificate is not valid at the signing time 2023-04-18T18:45:12Z: the signing certificate is valid from 2023-04-18T17:45:11Z to 2023-04-18T17:55:11Z"), "{err}");

    // Wrong identity.
    let p = policy(
        Matcher::Exact(
            "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main".into(),
        ),
        GITHUB,
    );
    let err = msg(check(&s, &root, s.time, &p));
    assert!(err.contains("got subjects [https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/main] with issuer https://token.actions.githubusercontent.com (the identity does not match"), "{err}");

    // Wrong issuer.
    let mut p = sigstore_js();
    p.issuer = Matcher::Exact("https://accounts.google.com".into());
    let err = msg(check(&s, &root, s.time, &p));
    assert!(err.contains("(the OIDC issuer does not match"), "{err}");

    // Wrong workflow value.
    let mut p = sigstore_js();
    p.workflow
        .insert(Workflow::Trigger, "workflow_dispatch".into());
    let err = msg(check(&s, &root, s.time, &p));
    assert!(
        err.starts_with("expected GitHub Workflow Trigger not found in certificate"),
        "{err}"
    );

    // Chain to another root (a private deployment's, its validity widened to the signing time
    // so the path itself is what fails).
    let mut other = authorities(SCAFFOLDING);
    for ca in &mut other.certificate_authorities {
        ca.validity = Validity::since(unix(0));
    }
    let err = msg(check(&s, &other, s.time, &sigstore_js()));
    assert!(err.starts_with("certificate does not chain to a trusted Fulcio root valid at 2023-04-18T17:45:12Z: no path to the root of"), "{err}");

    // The signed bytes changed (a byte of the statement): the signature no longer verifies.
    let mut tampered = dsse_bundle(PROVENANCE);
    let last = tampered.pae.len() - 2;
    tampered.pae[last] ^= 1;
    let err = msg(check(&tampered, &root, s.time, &sigstore_js()));
    assert!(
        err.starts_with("signature does not verify with the certificate's key"),
        "{err}"
    );
}

// ---- self-made CA: what upstream data lacks ----

const T0: i64 = 1_700_000_000;

fn test_root(ca: &TestCa) -> TrustedRoot {
    TrustedRoot {
        tlogs: vec![],
        certificate_authorities: vec![CertificateAuthority {
            chain_der: ca.chain_der(),
            validity: Validity::since(unix(T0 as u64 - 86400)),
            uri: "https://fulcio.test".into(),
        }],
    }
}

fn test_policy() -> IdentityPolicy {
    policy(Matcher::Exact(LeafSpec::github(0).san_uri), GITHUB)
}

#[test]
fn a_self_made_fulcio_leaf_from_a_legacy_layer_verifies_and_misuse_is_refused() {
    let ca = TestCa::new("test", T0 - 86400, T0 + 86400);
    let root = test_root(&ca);
    let leaf = ca.issue(&LeafSpec::github(T0));
    let payload = br#"{"critical":{}}"#;
    let sig = leaf.sign(payload);
    let at = unix(T0 as u64 + 60);
    // As a legacy layer's annotations hold it: PEM leaf and PEM chain.
    let material = CertificateInput::from_pem(&leaf.pem, Some(&ca.chain_pem())).unwrap();
    verify_keyless(&material, payload, &sig, &root, at, &test_policy()).unwrap();
    // Without the chain annotation the trusted root's intermediate builds the path.
    let bare = CertificateInput::from_pem(&leaf.pem, None).unwrap();
    verify_keyless(&bare, payload, &sig, &root, at, &test_policy()).unwrap();

    // Signature by another key: a second leaf's key signed, the first leaf is presented.
    let other = ca.issue(&LeafSpec::github(T0));
    let err = verify_keyless(
        &material,
        payload,
        &other.sign(payload),
        &root,
        at,
        &test_policy(),
    )
    .unwrap_err();
    assert!(matches!(err, KeylessError::Signature(_)), "{err}");

    // Wrong EKU: a server-auth leaf.
    let mut spec = LeafSpec::github(T0);
    spec.code_signing = false;
    let tls = ca.issue(&spec);
    let m = CertificateInput::from_pem(&tls.pem, None).unwrap();
    let err = verify_keyless(&m, payload, &tls.sign(payload), &root, at, &test_policy())
        .unwrap_err()
        .to_string();
    assert_eq!(err, "certificate is not for code signing: a certificate of the chain to https://fulcio.test lists extended key usages without code signing");

    // The two issuer extensions disagree: cosign's two paths would read two issuers.
    let mut spec = LeafSpec::github(T0);
    spec.issuer_v2 = Some("https://accounts.google.com".into());
    let forged = ca.issue(&spec);
    let m = CertificateInput::from_pem(&forged.pem, None).unwrap();
    let err = verify_keyless(
        &m,
        payload,
        &forged.sign(payload),
        &root,
        at,
        &test_policy(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("certificate: the OIDC issuer extensions disagree (1.3.6.1.4.1.57264.1.1: \"https://token.actions.githubusercontent.com\", 1.3.6.1.4.1.57264.1.8: \"https://accounts.google.com\")"),
        "{err}"
    );

    // Before the leaf's validity.
    let err = verify_keyless(
        &material,
        payload,
        &sig,
        &root,
        unix(T0 as u64 - 1),
        &test_policy(),
    )
    .unwrap_err();
    assert!(matches!(err, KeylessError::OutsideValidity { .. }), "{err}");
}

#[test]
fn a_root_offered_with_the_signature_is_never_trusted() {
    let trusted = TestCa::new("trusted", T0 - 86400, T0 + 86400);
    let rogue = TestCa::new("rogue", T0 - 86400, T0 + 86400);
    let leaf = rogue.issue(&LeafSpec::github(T0));
    let payload = b"p";
    // The rogue's whole chain rides along in the layer's chain annotation.
    let m = CertificateInput::from_pem(&leaf.pem, Some(&rogue.chain_pem())).unwrap();
    let err = verify_keyless(
        &m,
        payload,
        &leaf.sign(payload),
        &test_root(&trusted),
        unix(T0 as u64 + 1),
        &test_policy(),
    )
    .unwrap_err();
    assert!(matches!(err, KeylessError::UntrustedChain { .. }), "{err}");
}

#[test]
fn authorities_count_only_within_their_validity_and_so_do_their_roots() {
    let ca = TestCa::new("test", T0 - 86400, T0 + 86400);
    let leaf = ca.issue(&LeafSpec::github(T0));
    let m = CertificateInput::from_pem(&leaf.pem, None).unwrap();
    let mut root = test_root(&ca);
    root.certificate_authorities[0].validity = Validity {
        start: unix(T0 as u64 - 86400),
        end: Some(unix(T0 as u64 - 1)),
    };
    let err = chain::verify_chain(&m.leaf_der, &[], &root, unix(T0 as u64 + 1)).unwrap_err();
    assert!(matches!(err, KeylessError::NoAuthorityAt(_)), "{err}");

    // A root certificate that expired before the signing time (the leaf itself still valid).
    let old = TestCa::new("old", T0 - 86400, T0 + 30);
    let leaf = old.issue(&LeafSpec::github(T0));
    let m = CertificateInput::from_pem(&leaf.pem, None).unwrap();
    let err =
        chain::verify_chain(&m.leaf_der, &[], &test_root(&old), unix(T0 as u64 + 60)).unwrap_err();
    assert!(
        err.to_string()
            .contains("a certificate of the chain to https://fulcio.test expired at "),
        "{err}"
    );

    // Only the root expired (webpki does not look at an anchor's dates; Go's x509 does).
    let stale_root = TestCa::with_spans("stale", (T0 - 86400, T0 + 30), (T0 - 86400, T0 + 86400));
    let leaf = stale_root.issue(&LeafSpec::github(T0));
    let m = CertificateInput::from_pem(&leaf.pem, None).unwrap();
    let err = chain::verify_chain(
        &m.leaf_der,
        &[],
        &test_root(&stale_root),
        unix(T0 as u64 + 60),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("the root of https://fulcio.test is valid from"),
        "{err}"
    );
    let _ = pem_of;
}
