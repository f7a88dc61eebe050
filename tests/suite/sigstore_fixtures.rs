//! A self-made Sigstore deployment for the end-to-end tests, shared by `e2e_keyless`,
//! `e2e_tlog` and `e2e_vendors`: a certificate authority standing in for Fulcio (`TestCa`,
//! from `src/keyless/test_ca.rs`), a log key standing in for Rekor that signs SETs over
//! hashedrekord bodies ([`Log`]), and the `trusted_root.json` naming both ([`trusted_root`]).
#![allow(dead_code)] // each test module uses a different part

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use sigbridge_testkit::{Registry, OCI_MANIFEST};

use crate::common::{self, b64, put_manifest, sig_manifest, sig_tag, unb64, Sandbox, TestKey};

#[path = "../../src/keyless/test_ca.rs"]
mod test_ca;

pub use test_ca::{LeafSpec, TestCa};

/// The legacy layer annotation holding a Rekor bundle.
pub const BUNDLE_ANNOTATION: &str = "dev.sigstore.cosign/bundle";

/// A transparency log's signing key (ECDSA P-256, as Rekor's).
pub struct Log {
    pub key: TestKey,
    pub spki_der: Vec<u8>,
}

impl Log {
    pub fn new(sb: &Sandbox) -> Self {
        let key = sb.pkcs8_key("rekor");
        let spki_der = unb64(&common::pem_body(&key.public_pem()));
        Self { key, spki_der }
    }

    /// The log id: SHA-256 of the DER key, in hex (as a legacy bundle's `logID`).
    pub fn id_hex(&self) -> String {
        hex::encode(Sha256::digest(&self.spki_der))
    }

    /// This log as a `tlogs` item of a trusted root, its key valid from `start` (RFC 3339).
    pub fn tlog_json(&self, start: &str) -> Value {
        json!({
            "baseUrl": "https://rekor.test.invalid",
            "hashAlgorithm": "SHA2_256",
            "publicKey": {
                "rawBytes": b64(&self.spki_der),
                "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                "validFor": {"start": start},
            },
            "logId": {"keyId": b64(&Sha256::digest(&self.spki_der))},
        })
    }

    /// The `dev.sigstore.cosign/bundle` annotation for `body` as the log would return it (the
    /// SET over RFC 8785 JSON: sorted keys, no spaces; every value here is ASCII or an integer).
    pub fn bundle(&self, body: &[u8], integrated: i64, log_id: &str) -> String {
        let body_b64 = b64(body);
        let canonical = format!(
            r#"{{"body":"{body_b64}","integratedTime":{integrated},"logID":"{log_id}","logIndex":7}}"#
        );
        let set = self.key.sign_der(canonical.as_bytes());
        json!({
            "SignedEntryTimestamp": b64(&set),
            "Payload": {"body": body_b64, "integratedTime": integrated, "logIndex": 7, "logID": log_id},
        })
        .to_string()
    }
}

/// A certificate authority as a `certificateAuthorities` item of a trusted root (intermediate
/// first, root last), valid from `start`.
pub fn ca_json(ca: &TestCa, start: &str) -> Value {
    json!({
        "subject": {"organization": "sigbridge tests", "commonName": "fulcio.test.invalid"},
        "uri": "https://fulcio.test.invalid",
        "certChain": {
            "certificates": ca.chain_der().iter().map(|d| json!({"rawBytes": b64(d)})).collect::<Vec<_>>(),
        },
        "validFor": {"start": start},
    })
}

/// A Sigstore `trusted_root.json` naming these logs and certificate authorities (`tlog_json`,
/// `ca_json` items); no CT logs, no timestamp authorities.
pub fn trusted_root(tlogs: &[Value], cas: &[Value]) -> Value {
    json!({
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": tlogs,
        "certificateAuthorities": cas,
        "ctlogs": [],
        "timestampAuthorities": [],
    })
}

/// A hashedrekord v0.0.1 body as Rekor canonicalises it; `verifier_pem` is the public key or,
/// for a keyless signature, the certificate.
pub fn hashedrekord(payload: &[u8], signature_b64: &str, verifier_pem: &str) -> Vec<u8> {
    json!({
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": hex::encode(Sha256::digest(payload))}},
            "signature": {"content": signature_b64, "publicKey": {"content": b64(verifier_pem.as_bytes())}},
        },
    })
    .to_string()
    .into_bytes()
}

/// Set (or, with `None`, remove) annotation `key` on the one layer of the `.sig` manifest of
/// `digest` stored in `sig_repo`.
pub fn set_layer_annotation(
    reg: &Registry,
    sig_repo: &str,
    digest: &str,
    key: &str,
    value: Option<&str>,
) {
    let mut manifest = sig_manifest(reg, sig_repo, digest).expect("a .sig manifest");
    let annotations = manifest["layers"][0]["annotations"]
        .as_object_mut()
        .expect("annotations");
    match value {
        Some(v) => {
            annotations.insert(key.to_string(), json!(v));
        }
        None => {
            annotations.remove(key);
        }
    }
    put_manifest(
        reg,
        sig_repo,
        &sig_tag(digest),
        manifest.to_string().as_bytes(),
        OCI_MANIFEST,
    );
}

/// The SET of a bundle annotation with one bit flipped.
pub fn with_bad_set(bundle: &str) -> String {
    let mut v: Value = serde_json::from_str(bundle).expect("bundle JSON");
    let mut set = unb64(v["SignedEntryTimestamp"].as_str().expect("SET"));
    let last = set.len() - 1;
    set[last] ^= 1;
    v["SignedEntryTimestamp"] = json!(b64(&set));
    v.to_string()
}
