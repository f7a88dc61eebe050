//! Inclusion proofs against checkpoints: upstream bundles (tests/fixtures/tlog/README.md)
//! verify with their trusted roots and each tampered part is refused by name; a self-made log
//! drives the bundle path end to end (promise and proof, proof only, mismatched checkpoints).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use p256::ecdsa::signature::Signer as _;
use p256::pkcs8::EncodePublicKey as _;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use sigbridge_signer::PublicKey;

use super::*;
use crate::trust::TrustedRoot;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tlog/");

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}{name}")).unwrap()
}

fn root_from(name: &str) -> TrustedRoot {
    TrustedRoot::from_trusted_root_json(&fixture(name)).unwrap()
}

/// `tlogEntries[0]` of an upstream bundle.
fn upstream_entry(bundle: &str) -> Value {
    let bundle: Value = serde_json::from_slice(&fixture(bundle)).unwrap();
    bundle["verificationMaterial"]["tlogEntries"][0].clone()
}

const SIGSTORE_JS: &str = "sg-bundle-sigstore-js-2.0.0-provenance.json";

/// Read `raw` and check its inclusion proof with `root`.
fn check_proof(raw: &Value, root: &TrustedRoot) -> Result<(), TlogError> {
    let entry = TlogEntry::from_bundle_entry(raw, 0)?;
    let proof = entry.inclusion_proof.as_ref().expect("an inclusion proof");
    verify_inclusion_proof(&entry, proof, root)
}

fn edit(raw: &Value, f: impl FnOnce(&mut Value)) -> Value {
    let mut v = raw.clone();
    f(&mut v);
    v
}

/// Flip one bit of the base64 bytes at `v`.
fn flip(v: &mut Value) {
    let mut bytes = STANDARD.decode(v.as_str().unwrap()).unwrap();
    bytes[0] ^= 1;
    *v = json!(STANDARD.encode(bytes));
}

fn checkpoint_of(raw: &Value) -> String {
    raw["inclusionProof"]["checkpoint"]["envelope"]
        .as_str()
        .unwrap()
        .to_string()
}

fn with_checkpoint(raw: &Value, text: String) -> Value {
    edit(raw, |v| {
        v["inclusionProof"]["checkpoint"]["envelope"] = json!(text)
    })
}

#[test]
fn upstream_public_good_entry_proof_and_checkpoint_verify() {
    let raw = upstream_entry(SIGSTORE_JS);
    let root = root_from("trusted-root-public-good.json");
    check_proof(&raw, &root).unwrap();
    let entry = TlogEntry::from_bundle_entry(&raw, 0).unwrap();
    let proof = entry.inclusion_proof.clone().unwrap();
    // Rekor v1 shards: the proof's index is within the shard, the entry's is global.
    assert_eq!((proof.log_index, proof.tree_size), (27657874, 27657875));
    assert_eq!(entry.log_index, 31821305);
    assert_eq!(proof.hashes.len(), 10);
    // The key hint is the first 4 bytes of the log id, SHA-256 of the key's SPKI DER.
    assert_eq!(key_hint(&root.tlogs[0].spki_der), entry.log_id[..4]);
    let key = &root.tlogs[0];
    let checkpoint = verify_checkpoint(&proof.checkpoint, key).unwrap();
    assert_eq!(
        checkpoint.origin,
        "rekor.sigstore.dev - 2605736670972794746"
    );
    assert_eq!(checkpoint.size, 27657875);
    assert_eq!(checkpoint.root_hash, proof.root_hash);
}

#[test]
fn upstream_scaffolding_entry_proof_verifies_with_its_own_root_only() {
    let raw = upstream_entry("sg-bundle-othername.json");
    check_proof(&raw, &root_from("sg-trusted-root-scaffolding.json")).unwrap();
    let err = check_proof(&raw, &root_from("trusted-root-public-good.json")).unwrap_err();
    assert!(matches!(err, TlogError::UnknownLog { .. }), "{err}");
}

#[test]
fn each_tampered_part_of_an_upstream_proof_is_refused_by_name() {
    let raw = upstream_entry(SIGSTORE_JS);
    let root = root_from("trusted-root-public-good.json");
    let proof_fails = |tampered: Value, what: &str| {
        let err = check_proof(&tampered, &root).unwrap_err();
        assert!(
            matches!(err, TlogError::InclusionProofInvalid { .. }),
            "{what}: {err}"
        );
        assert!(
            err.to_string().contains("inclusion proof does not verify"),
            "{what}: {err}"
        );
        err.to_string()
    };
    let msg = proof_fails(
        edit(&raw, |v| flip(&mut v["inclusionProof"]["hashes"][3])),
        "a path hash",
    );
    assert!(msg.contains("leads to root"), "{msg}");
    proof_fails(
        edit(&raw, |v| flip(&mut v["inclusionProof"]["rootHash"])),
        "rootHash",
    );
    let msg = proof_fails(
        edit(&raw, |v| {
            v["inclusionProof"]["treeSize"] = json!("27657876")
        }),
        "treeSize",
    );
    assert!(msg.contains("a tree of 27657876"), "{msg}");
    let msg = proof_fails(
        edit(&raw, |v| {
            v["inclusionProof"]["logIndex"] = json!("27657873")
        }),
        "logIndex",
    );
    assert!(msg.contains("leaf 27657873"), "{msg}");
    proof_fails(
        edit(&raw, |v| {
            let body = STANDARD
                .decode(v["canonicalizedBody"].as_str().unwrap())
                .unwrap();
            v["canonicalizedBody"] = json!(STANDARD.encode([&body[..], b" "].concat()));
        }),
        "the body",
    );

    let checkpoint = checkpoint_of(&raw);
    let checkpoint_fails = |text: String, what: &str, says: &str| {
        let err = check_proof(&with_checkpoint(&raw, text), &root).unwrap_err();
        assert!(
            matches!(err, TlogError::CheckpointInvalid { .. }),
            "{what}: {err}"
        );
        assert!(err.to_string().contains(says), "{what}: {err}");
    };
    // The signature's last bytes: `...Syk=` → `...Syg=` changes the signature, not the hint.
    checkpoint_fails(
        checkpoint.replace("nXSyk=\n", "nXSyg=\n"),
        "signature",
        "does not verify with the log key",
    );
    // The root line, signature kept: the note no longer is what was signed.
    checkpoint_fails(
        checkpoint.replace("v+7gOn1w", "v+7gOn1x"),
        "checkpoint root",
        "does not verify",
    );
    // Another key hint (`wNI9` → `xNI9`): no line is by the log key.
    checkpoint_fails(
        checkpoint.replace("dev wNI9", "dev xNI9"),
        "key hint",
        "no signature by the log key (key hint c0d23d6a)",
    );
    checkpoint_fails(
        checkpoint.replace("\n\n", "\n"),
        "no blank line",
        "malformed",
    );
    let no_checkpoint = edit(&raw, |v| {
        v["inclusionProof"]
            .as_object_mut()
            .unwrap()
            .remove("checkpoint");
    });
    let err = check_proof(&no_checkpoint, &root).unwrap_err();
    assert!(
        err.to_string()
            .contains("tlogEntries[0].inclusionProof.checkpoint.envelope is missing"),
        "{err}"
    );
}

/// A self-made log: a P-256 key in a trusted root, a tree of leaves, checkpoints it signs.
struct SelfMadeLog {
    key: p256::ecdsa::SigningKey,
    root: TrustedRoot,
}

type Hash = [u8; 32];

/// RFC 6962 §2.1 MTH, for building test trees.
fn mth(leaves: &[Hash]) -> Hash {
    if leaves.len() == 1 {
        return leaves[0];
    }
    let k = split(leaves.len());
    node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
}

/// RFC 6962 §2.1.1 PATH(m, D[n]).
fn path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    if leaves.len() == 1 {
        return vec![];
    }
    let k = split(leaves.len());
    if m < k {
        let mut p = path(m, &leaves[..k]);
        p.push(mth(&leaves[k..]));
        p
    } else {
        let mut p = path(m - k, &leaves[k..]);
        p.push(mth(&leaves[..k]));
        p
    }
}

/// The largest power of two below `n`.
fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

impl SelfMadeLog {
    fn new() -> Self {
        let key = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        let der = key.verifying_key().to_public_key_der().unwrap();
        let root = json!({
            "mediaType": crate::trust::TRUSTED_ROOT_MEDIA_TYPE,
            "tlogs": [{"publicKey": {"rawBytes": STANDARD.encode(der.as_bytes()), "validFor": {"start": "2025-01-01T00:00:00Z"}},
                       "logId": {"keyId": STANDARD.encode(Sha256::digest(der.as_bytes()))}}],
        });
        Self {
            key,
            root: TrustedRoot::from_trusted_root_json(root.to_string().as_bytes()).unwrap(),
        }
    }

    fn log_id(&self) -> Vec<u8> {
        self.root.tlogs[0].log_id.clone()
    }

    /// A checkpoint for (`size`, `root_hash`) signed by `key`.
    fn checkpoint(key: &p256::ecdsa::SigningKey, size: u64, root_hash: &[u8]) -> String {
        let note = format!(
            "test.log - 42\n{size}\n{}\nTimestamp: 1\n",
            STANDARD.encode(root_hash)
        );
        let sig: p256::ecdsa::Signature = key.sign(note.as_bytes());
        let der = key.verifying_key().to_public_key_der().unwrap();
        let hint = key_hint(der.as_bytes());
        let line = STANDARD.encode([&hint[..], sig.to_der().as_bytes()].concat());
        format!("{note}\n\u{2014} test.log {line}\n")
    }

    /// The SET over (body, integrated time, log id, index 2).
    fn promise(&self, body_b64: &str, integrated: i64) -> Value {
        let canonical = format!(
            r#"{{"body":"{body_b64}","integratedTime":{integrated},"logID":"{}","logIndex":2}}"#,
            hex::encode(self.log_id())
        );
        let set: p256::ecdsa::Signature = self.key.sign(canonical.as_bytes());
        json!({"signedEntryTimestamp": STANDARD.encode(set.to_der().as_bytes())})
    }

    /// An entry for `body` as leaf 2 of a tree of 5, with a promise and a proof.
    fn entry(&self, body: &[u8]) -> Value {
        let mut leaves: Vec<Hash> = (0u8..5).map(|i| leaf_hash(&[i])).collect();
        leaves[2] = leaf_hash(body);
        let root_hash = mth(&leaves);
        let body_b64 = STANDARD.encode(body);
        json!({
            "logIndex": "2",
            "logId": {"keyId": STANDARD.encode(self.log_id())},
            "kindVersion": {"kind": "dsse", "version": "0.0.1"},
            "integratedTime": "1750000000",
            "inclusionPromise": self.promise(&body_b64, 1_750_000_000),
            "inclusionProof": {
                "logIndex": "2",
                "rootHash": STANDARD.encode(root_hash),
                "treeSize": "5",
                "hashes": path(2, &leaves).iter().map(|h| STANDARD.encode(h)).collect::<Vec<_>>(),
                "checkpoint": {"envelope": Self::checkpoint(&self.key, 5, &root_hash)},
            },
            "canonicalizedBody": body_b64,
        })
    }
}

/// A DSSE body over `statement` by a fresh key, and the material it must match.
fn dsse_material(statement: &'static [u8]) -> (Vec<u8>, PublicKey) {
    let signer = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let key = PublicKey::from_spki_der(
        signer
            .verifying_key()
            .to_public_key_der()
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    let body = json!({"apiVersion": "0.0.1", "kind": "dsse", "spec": {
        "envelopeHash": {"algorithm": "sha256", "value": "00"},
        "payloadHash": {"algorithm": "sha256", "value": hex::encode(Sha256::digest(statement))},
        "signatures": [{"signature": "c2lnbmF0dXJl", "verifier": STANDARD.encode(key.to_pem())}],
    }})
    .to_string()
    .into_bytes();
    (body, key)
}

const STATEMENT: &[u8] = br#"{"_type":"https://in-toto.io/Statement/v1"}"#;

fn run(log: &SelfMadeLog, key: &PublicKey, entry: Value) -> Result<VerifiedTlog, TlogError> {
    let signed = SignedMaterial {
        signature_b64: "c2lnbmF0dXJl",
        verifier_der: key.spki_der(),
        payload: STATEMENT,
    };
    verify_evidence(
        &TlogEvidence::BundleEntries(vec![entry]),
        &signed,
        &log.root,
    )
}

#[test]
fn a_bundle_entry_with_promise_and_proof_verifies_and_its_time_is_trusted() {
    let log = SelfMadeLog::new();
    let (body, key) = dsse_material(STATEMENT);
    let ok = run(&log, &key, log.entry(&body)).unwrap();
    assert_eq!(
        ok.integrated_time,
        Some(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_750_000_000))
    );
}

#[test]
fn a_bundle_entry_with_only_a_proof_verifies_without_a_trusted_time() {
    let log = SelfMadeLog::new();
    let (body, key) = dsse_material(STATEMENT);
    let proof_only = edit(&log.entry(&body), |v| {
        v.as_object_mut().unwrap().remove("inclusionPromise");
    });
    let ok = run(&log, &key, proof_only.clone()).unwrap();
    // The integrated time is not signed without a SET: keyless refuses it (sigstore-go too).
    assert_eq!(ok.integrated_time, None);
    // Without a proof either, nothing is left to check.
    let neither = edit(&proof_only, |v| {
        v.as_object_mut().unwrap().remove("inclusionProof");
    });
    let err = run(&log, &key, neither).unwrap_err();
    assert!(
        err.to_string()
            .contains("neither an inclusionPromise nor an inclusionProof"),
        "{err}"
    );
}

/// Before inclusion proofs were read, a valid promise carried any proof: this failed then.
#[test]
fn a_valid_promise_does_not_carry_a_bad_proof() {
    let log = SelfMadeLog::new();
    let (body, key) = dsse_material(STATEMENT);
    let bad_path = edit(&log.entry(&body), |v| {
        flip(&mut v["inclusionProof"]["hashes"][0])
    });
    let err = run(&log, &key, bad_path).unwrap_err();
    assert!(
        matches!(err, TlogError::InclusionProofInvalid { .. }),
        "{err}"
    );
}

#[test]
fn a_checkpoint_for_another_tree_or_by_another_key_is_refused() {
    let log = SelfMadeLog::new();
    let (body, key) = dsse_material(STATEMENT);
    let entry = log.entry(&body);
    let root_hash = STANDARD
        .decode(entry["inclusionProof"]["rootHash"].as_str().unwrap())
        .unwrap();

    // Signed by the log, but over another root: the proof's root is not the log's.
    let other_root = SelfMadeLog::checkpoint(&log.key, 5, &leaf_hash(b"another tree"));
    let err = run(&log, &key, with_checkpoint(&entry, other_root)).unwrap_err();
    assert!(
        matches!(
            err,
            TlogError::CheckpointMismatch {
                what: "root hash",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("checkpoint root hash")
            && err.to_string().contains("inclusion proof's"),
        "{err}"
    );

    // Same root, another size.
    let other_size = SelfMadeLog::checkpoint(&log.key, 6, &root_hash);
    let err = run(&log, &key, with_checkpoint(&entry, other_size)).unwrap_err();
    assert!(
        matches!(
            err,
            TlogError::CheckpointMismatch {
                what: "tree size",
                ..
            }
        ),
        "{err}"
    );

    // The right tree, signed by a key the root does not name.
    let stranger = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let foreign = SelfMadeLog::checkpoint(&stranger, 5, &root_hash);
    let err = run(&log, &key, with_checkpoint(&entry, foreign.clone())).unwrap_err();
    assert!(matches!(err, TlogError::CheckpointInvalid { .. }), "{err}");
    assert!(
        err.to_string().contains("no signature by the log key"),
        "{err}"
    );

    // The log's line plus a stranger's: refused, as Rekor v1 refuses it.
    let own = SelfMadeLog::checkpoint(&log.key, 5, &root_hash);
    let stranger_line = foreign.rsplit_once("\n\n").unwrap().1;
    let both = format!("{own}{stranger_line}");
    let err = run(&log, &key, with_checkpoint(&entry, both)).unwrap_err();
    assert!(
        err.to_string().contains("signature by another key"),
        "{err}"
    );
}

/// protojson leaves out zero values and empty lists: leaf 0 of a one-leaf tree has neither
/// `logIndex` nor `hashes`, and still verifies.
#[test]
fn a_proof_for_leaf_zero_written_by_protojson_verifies() {
    let log = SelfMadeLog::new();
    let (body, key) = dsse_material(STATEMENT);
    let root_hash = leaf_hash(&body);
    let entry = edit(&log.entry(&body), |v| {
        v.as_object_mut().unwrap().remove("inclusionPromise");
        v["inclusionProof"] = json!({
            "rootHash": STANDARD.encode(root_hash),
            "treeSize": "1",
            "checkpoint": {"envelope": SelfMadeLog::checkpoint(&log.key, 1, &root_hash)},
        });
    });
    let parsed = TlogEntry::from_bundle_entry(&entry, 0).unwrap();
    let proof = parsed.inclusion_proof.unwrap();
    assert_eq!((proof.log_index, proof.hashes.len()), (0, 0));
    assert_eq!(run(&log, &key, entry).unwrap().integrated_time, None);
}
