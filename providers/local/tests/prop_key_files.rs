//! Property tests for key-file parsing: arbitrary bytes, arbitrary PEM bodies under every
//! label the parser knows, and damaged real keys never panic.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use p256::pkcs8::EncodePrivateKey;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use sigbridge_local::{KeyFile, COSIGN_LABEL, SIGSTORE_LABEL};
use sigbridge_signer::pem;

/// 256 cases by default; set PROPTEST_CASES for a longer search.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    ProptestConfig::with_cases(cases)
}

const LABELS: [&str; 11] = [
    SIGSTORE_LABEL,
    COSIGN_LABEL,
    "PRIVATE KEY",
    "EC PRIVATE KEY",
    "RSA PRIVATE KEY",
    "EC PARAMETERS",
    "ENCRYPTED PRIVATE KEY",
    "OPENSSH PRIVATE KEY",
    "PUBLIC KEY",
    "CERTIFICATE",
    "SOMETHING ELSE",
];

fn label() -> impl Strategy<Value = &'static str> {
    proptest::sample::select(LABELS.to_vec())
}

/// A cosign envelope whose fields are sometimes right and sometimes not.
fn envelope_json() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![Just("scrypt".to_string()), "[a-z]{0,8}"],
        prop_oneof![Just(32768u64), Just(65536), Just(131072), any::<u64>()],
        prop_oneof![Just(8u64), any::<u64>()],
        prop_oneof![Just(1u64), any::<u64>()],
        vec(any::<u8>(), 0..40),
        prop_oneof![Just("nacl/secretbox".to_string()), "[a-z/]{0,14}"],
        vec(any::<u8>(), 0..30),
        vec(any::<u8>(), 0..80),
    )
        .prop_map(|(kdf, n, r, p, salt, cipher, nonce, ciphertext)| {
            serde_json::json!({
                "kdf": {"name": kdf, "params": {"N": n, "r": r, "p": p}, "salt": STANDARD.encode(salt)},
                "cipher": {"name": cipher, "nonce": STANDARD.encode(nonce)},
                "ciphertext": STANDARD.encode(ciphertext),
            })
            .to_string()
            .into_bytes()
        })
}

/// Real key DER (PKCS#8 and SEC1) with a few bytes changed.
fn damaged_der() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<[u8; 32]>(),
        any::<bool>(),
        vec((any::<Index>(), any::<u8>()), 1..4),
        proptest::option::of(any::<Index>()),
    )
        .prop_filter_map("not a P-256 scalar", |(scalar, sec1, edits, cut)| {
            let secret = p256::SecretKey::from_slice(&scalar).ok()?;
            let mut der = if sec1 {
                secret.to_sec1_der().ok()?.to_vec()
            } else {
                secret.to_pkcs8_der().ok()?.as_bytes().to_vec()
            };
            for (at, b) in edits {
                let i = at.index(der.len());
                der[i] = b;
            }
            if let Some(cut) = cut {
                der.truncate(cut.index(der.len() + 1));
            }
            Some(der)
        })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![vec(any::<u8>(), 0..200), envelope_json(), damaged_der()]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn parse_never_panics_on_arbitrary_bytes(bytes in vec(any::<u8>(), 0..512)) {
        let _ = KeyFile::parse(&bytes, "prop");
    }

    #[test]
    fn parse_never_panics_on_pem_text(text in "(-----(BEGIN|END) [A-Z ]{0,30}-----\n|[A-Za-z0-9+/=:, -]{0,70}\n){0,8}") {
        let _ = KeyFile::parse(text.as_bytes(), "prop");
    }

    #[test]
    fn parse_never_panics_on_pem_wrapped_bodies(
        label in label(),
        contents in body(),
        first in proptest::option::of(label()),
        proc_type in any::<bool>(),
    ) {
        let mut text = String::new();
        if let Some(first) = first {
            text.push_str(&pem::encode(first, b"\x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07"));
        }
        let block = pem::encode(label, &contents);
        if proc_type {
            // A legacy-encrypted block: headers after the BEGIN line.
            let (begin, rest) = block.split_once('\n').unwrap_or((&block, ""));
            text.push_str(&format!("{begin}\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\n{rest}"));
        } else {
            text.push_str(&block);
        }
        if let Ok(key) = KeyFile::parse(text.as_bytes(), "prop") {
            // Whatever parses is one of the accepted private-key labels.
            prop_assert!(matches!(
                key.label(),
                SIGSTORE_LABEL | COSIGN_LABEL | "PRIVATE KEY" | "EC PRIVATE KEY" | "RSA PRIVATE KEY"
            ));
        }
    }
}
