//! Public keys and signature encodings against fixtures made by openssl and cosign 2.5
//! (see tests/fixtures/README.md), plus property-style loops over random keys and signatures.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ecdsa::signature::hazmat::PrehashSigner as _;
use ecdsa::signature::Signer as _;
use rand_core::{OsRng, RngCore as _};
use sha2::{Digest as _, Sha256};
use sigbridge_signer::{normalise_signature, pem, KeyKind, PublicKey, SignatureError};

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn fixture_str(name: &str) -> String {
    String::from_utf8(fixture(name)).unwrap()
}

fn key(name: &str) -> PublicKey {
    PublicKey::from_pem(&fixture_str(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn flip_last_bit(data: &[u8]) -> Vec<u8> {
    let mut v = data.to_vec();
    *v.last_mut().unwrap() ^= 1;
    v
}

#[test]
fn kinds_of_fixture_keys() {
    assert_eq!(key("p256.pub").kind(), KeyKind::EcdsaP256);
    assert_eq!(key("p384.pub").kind(), KeyKind::EcdsaP384);
    assert_eq!(key("rsa2048.pub").kind(), KeyKind::Rsa { bits: 2048 });
    assert_eq!(key("ed25519.pub").kind(), KeyKind::Ed25519);
    assert_eq!(key("p256.pub").kind().to_string(), "ECDSA P-256");
    assert_eq!(key("rsa2048.pub").kind().to_string(), "RSA-2048");
}

#[test]
fn pem_roundtrip_is_byte_identical_to_openssl_and_cosign() {
    // openssl and Go write the same PEM layout for SPKI keys.
    for name in [
        "p256.pub",
        "p384.pub",
        "rsa2048.pub",
        "ed25519.pub",
        "cosign-hello.pub",
        "cosign-ed25519.pub",
    ] {
        let text = fixture_str(name);
        let parsed = key(name);
        assert_eq!(parsed.to_pem(), text, "{name}");
        assert_eq!(PublicKey::from_spki_der(parsed.spki_der()).unwrap(), parsed);
        assert_eq!(PublicKey::from_pem(&parsed.to_pem()).unwrap(), parsed);
    }
}

#[test]
fn pkcs1_rsa_public_key_is_the_same_key() {
    assert_eq!(key("rsa2048-pkcs1.pub"), key("rsa2048.pub"));
}

#[test]
fn certificate_pem_yields_its_key() {
    let from_cert = key("p256-cert.pem");
    assert_eq!(from_cert, key("p256.pub"));
    // A chain: only the first certificate (the leaf) counts.
    let chain = format!(
        "{}{}",
        fixture_str("p256-cert.pem"),
        pem::encode("CERTIFICATE", b"not a certificate")
    );
    assert_eq!(PublicKey::from_pem(&chain).unwrap(), from_cert);
    // The certificate's key verifies the key's signatures.
    from_cert
        .verify(&fixture("blob.txt"), &fixture("p256.sig"))
        .unwrap();
}

#[test]
fn compressed_point_is_stored_uncompressed() {
    let compressed = key("p256-compressed.pub");
    assert_eq!(compressed, key("p256.pub"));
    assert_eq!(compressed.to_pem(), fixture_str("p256.pub"));
}

#[test]
fn bad_public_keys_have_specific_errors() {
    let err = PublicKey::from_pem(&fixture_str("rsa1024.pub")).unwrap_err();
    assert!(
        matches!(err, SignatureError::RsaKeyTooSmall { bits: 1024 }),
        "{err}"
    );
    assert!(err.to_string().contains("2048"));

    let err = PublicKey::from_pem(&fixture_str("p521.pub")).unwrap_err();
    assert!(
        matches!(err, SignatureError::UnsupportedKey { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("P-521"), "{err}");

    let err = PublicKey::from_pem(&fixture_str("secp256k1.pub")).unwrap_err();
    assert!(err.to_string().contains("secp256k1"), "{err}");

    let err = PublicKey::from_pem(&pem::encode("EC PRIVATE KEY", b"x")).unwrap_err();
    assert!(matches!(err, SignatureError::UnexpectedPemLabel { .. }));
    assert!(err.to_string().contains("cosign.pub"), "{err}");

    let err = PublicKey::from_pem("just some text").unwrap_err();
    assert!(
        matches!(err, SignatureError::Pem(pem::PemError::NoBlock)),
        "{err}"
    );

    let err = PublicKey::from_pem(&pem::encode("PUBLIC KEY", b"\x30\x03\x02\x01\x01")).unwrap_err();
    assert!(matches!(err, SignatureError::MalformedKey { .. }), "{err}");

    let err = PublicKey::from_pem(&pem::encode("CERTIFICATE", b"\x30\x00")).unwrap_err();
    assert!(
        matches!(err, SignatureError::MalformedCertificate { .. }),
        "{err}"
    );

    // Trailing data after the SPKI is refused, as Go's ParsePKIXPublicKey does.
    let mut der = key("p256.pub").spki_der().to_vec();
    der.push(0);
    assert!(PublicKey::from_spki_der(&der).is_err());

    // A point that is not on the curve.
    let mut der = key("p256.pub").spki_der().to_vec();
    let last = der.len() - 1;
    der[last] ^= 1;
    let err = PublicKey::from_spki_der(&der).unwrap_err();
    assert!(matches!(err, SignatureError::MalformedKey { .. }), "{err}");

    // Truncated PEM.
    let text = fixture_str("p256.pub");
    let err = PublicKey::from_pem(&text[..text.len() - 30]).unwrap_err();
    assert!(matches!(err, SignatureError::Pem(_)), "{err}");
}

#[test]
fn openssl_signatures_verify_and_tampering_fails() {
    let blob = fixture("blob.txt");
    let cases = [
        ("p256.pub", "p256.sig"),
        ("p384.pub", "p384-sha256.sig"),
        // cosign >= 2.6 signs P-384 keys with SHA-384: accepted too.
        ("p384.pub", "p384-sha384.sig"),
        ("rsa2048.pub", "rsa2048.sig"),
        ("ed25519.pub", "ed25519.sig"),
    ];
    for (pubname, signame) in cases {
        let k = key(pubname);
        let sig = fixture(signame);
        k.verify(&blob, &sig)
            .unwrap_or_else(|e| panic!("{signame}: {e}"));
        let err = k.verify(&flip_last_bit(&blob), &sig).unwrap_err();
        assert!(
            matches!(err, SignatureError::VerificationFailed { .. }),
            "{signame}: {err}"
        );
        // Normalising an already cosign-shaped signature changes nothing.
        assert_eq!(normalise_signature(&k, &sig).unwrap(), sig, "{signame}");
    }
    // A signature from another key of the same type does not verify.
    let err = key("cosign-hello.pub")
        .verify(&blob, &fixture("p256.sig"))
        .unwrap_err();
    assert!(matches!(err, SignatureError::VerificationFailed { .. }));
}

#[test]
fn cosign_sign_blob_signatures_verify() {
    let blob = fixture("blob.txt");
    for (pubname, signame) in [
        ("cosign-hello.pub", "cosign-hello.sig.b64"),
        ("cosign-ed25519.pub", "cosign-ed25519.sig.b64"),
    ] {
        let sig = STANDARD.decode(fixture_str(signame).trim()).unwrap();
        key(pubname)
            .verify(&blob, &sig)
            .unwrap_or_else(|e| panic!("{signame}: {e}"));
    }
}

#[test]
fn p1363_raw_signatures_verify_and_normalise_to_der() {
    let blob = fixture("blob.txt");
    for (pubname, signame, width) in [
        ("p256.pub", "p256.sig", 32),
        ("p384.pub", "p384-sha256.sig", 48),
    ] {
        let k = key(pubname);
        let der = fixture(signame);
        let raw = match k.kind() {
            KeyKind::EcdsaP256 => p256::ecdsa::Signature::from_der(&der).unwrap().to_vec(),
            _ => p384::ecdsa::Signature::from_der(&der).unwrap().to_vec(),
        };
        assert_eq!(raw.len(), 2 * width);
        k.verify(&blob, &raw).unwrap();
        assert_eq!(normalise_signature(&k, &raw).unwrap(), der);
    }
}

#[test]
fn rsa_signature_length_rules() {
    let k = key("rsa2048.pub");
    let blob = fixture("blob.txt");
    let sig = fixture("rsa2048.sig");
    // Verification wants exactly the modulus length, as Go does.
    let err = k.verify(&blob, &sig[1..]).unwrap_err();
    assert!(
        matches!(err, SignatureError::MalformedSignature { .. }),
        "{err}"
    );
    let err = k.verify(&blob, &[&[0u8][..], &sig].concat()).unwrap_err();
    assert!(matches!(err, SignatureError::MalformedSignature { .. }));
    // Normalising left-pads a short one; too long or empty is refused.
    let mut short_sig = vec![0u8; 3];
    short_sig.extend_from_slice(&sig[3..]);
    assert_eq!(normalise_signature(&k, &sig[3..]).unwrap(), short_sig);
    assert!(normalise_signature(&k, &[&[0u8][..], &sig].concat()).is_err());
    assert!(normalise_signature(&k, &[]).is_err());
}

#[test]
fn ed25519_signature_length_rules() {
    let k = key("ed25519.pub");
    let sig = fixture("ed25519.sig");
    assert!(matches!(
        normalise_signature(&k, &sig[..63]).unwrap_err(),
        SignatureError::MalformedSignature { .. }
    ));
    assert!(matches!(
        k.verify(&fixture("blob.txt"), &[&sig[..], &[0]].concat())
            .unwrap_err(),
        SignatureError::MalformedSignature { .. }
    ));
}

#[test]
fn ecdsa_malformed_signatures_are_refused() {
    let k = key("p256.pub");
    let der = fixture("p256.sig");
    let blob = fixture("blob.txt");
    // Trailing byte after valid DER.
    let err = normalise_signature(&k, &[&der[..], &[0]].concat()).unwrap_err();
    assert!(err.to_string().contains("trailing"), "{err}");
    assert!(k.verify(&blob, &[&der[..], &[0]].concat()).is_err());
    // Wrong raw lengths.
    for len in [0, 1, 63, 65, 96] {
        let err = normalise_signature(&k, &vec![7u8; len]).unwrap_err();
        assert!(
            matches!(err, SignatureError::MalformedSignature { .. }),
            "{len}: {err}"
        );
    }
    // Zero and over-range scalars.
    let err = normalise_signature(&k, &[0u8; 64]).unwrap_err();
    assert!(err.to_string().contains("between 1 and"), "{err}");
    let err = normalise_signature(&k, &[0xffu8; 64]).unwrap_err();
    assert!(err.to_string().contains("between 1 and"), "{err}");
    let zero_r_der = [0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01];
    assert!(normalise_signature(&k, &zero_r_der).is_err());
    assert!(k.verify(&blob, &zero_r_der).is_err());
}

/// Many random (r, s) pairs, biased towards leading zero bytes and set high bits, must convert
/// exactly as the `ecdsa` crate's own DER encoder does, and back.
#[test]
fn raw_to_der_matches_ecdsa_crate_for_many_random_values() {
    let p256_key = key("p256.pub");
    let p384_key = key("p384.pub");
    let mut rng = OsRng;
    let mut seen_padding = 0;
    let mut seen_stripping = 0;
    for i in 0..20_000u32 {
        let p384 = i % 2 == 1;
        let width = if p384 { 48 } else { 32 };
        let mut raw = vec![0u8; 2 * width];
        rng.fill_bytes(&mut raw);
        // Force the interesting shapes on purpose: zero prefixes, high bits, both.
        for half in 0..2 {
            let start = half * width;
            match (i / 2 + half as u32) % 5 {
                0 => raw[start] = 0,
                1 => raw[start..start + 2].fill(0),
                2 => raw[start] |= 0x80,
                3 => {
                    raw[start] = 0;
                    raw[start + 1] |= 0x80;
                }
                _ => {}
            }
        }
        // Keep both halves below the group order: both orders start with 0xff bytes, so a
        // first byte of at most 0xfe is always in range.
        raw[0] = raw[0].min(0xfe);
        raw[width] = raw[width].min(0xfe);
        if raw[..width].iter().all(|&b| b == 0) || raw[width..].iter().all(|&b| b == 0) {
            continue;
        }
        let (ours, theirs) = if p384 {
            let theirs = p384::ecdsa::Signature::from_slice(&raw)
                .unwrap()
                .to_der()
                .as_bytes()
                .to_vec();
            (normalise_signature(&p384_key, &raw).unwrap(), theirs)
        } else {
            let theirs = p256::ecdsa::Signature::from_slice(&raw)
                .unwrap()
                .to_der()
                .as_bytes()
                .to_vec();
            (normalise_signature(&p256_key, &raw).unwrap(), theirs)
        };
        assert_eq!(ours, theirs, "raw {}", hex(&raw));
        // DER in, same DER out.
        let k = if p384 { &p384_key } else { &p256_key };
        assert_eq!(normalise_signature(k, &ours).unwrap(), ours);
        if ours.len() > 2 && ours[4] == 0 {
            seen_padding += 1;
        }
        if raw[0] == 0 {
            seen_stripping += 1;
        }
    }
    assert!(seen_padding > 100 && seen_stripping > 100);
}

/// Real signatures from many random keys: raw r||s from the signer, normalised to DER, must
/// verify; the DER must equal the ecdsa crate's; and a tampered message must fail.
#[test]
fn real_signatures_from_random_keys_roundtrip() {
    let mut leading_zero_seen = false;
    for i in 0..300u32 {
        let message = format!("payload {i}").into_bytes();
        let sk = p256::ecdsa::SigningKey::random(&mut OsRng);
        let pk = PublicKey::from_spki_der(
            p256::pkcs8::EncodePublicKey::to_public_key_der(sk.verifying_key())
                .unwrap()
                .as_bytes(),
        )
        .unwrap();
        let sig: p256::ecdsa::Signature = sk.sign(&message);
        let raw = sig.to_bytes().to_vec();
        leading_zero_seen |= raw[0] == 0 || raw[32] == 0;
        let der = normalise_signature(&pk, &raw).unwrap();
        assert_eq!(der, sig.to_der().as_bytes());
        pk.verify(&message, &der).unwrap();
        pk.verify(&message, &raw).unwrap();
        assert!(pk.verify(&flip_last_bit(&message), &der).is_err());
    }
    // Keep searching until a signature with a leading zero byte in r or s turns up (1 in 128
    // per signature): that is the cosign#3709 case.
    let sk = p256::ecdsa::SigningKey::random(&mut OsRng);
    let pk = PublicKey::from_spki_der(
        p256::pkcs8::EncodePublicKey::to_public_key_der(sk.verifying_key())
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    let mut n = 0u32;
    while !leading_zero_seen {
        n += 1;
        assert!(n < 20_000, "no leading-zero signature found");
        let message = n.to_be_bytes();
        let sig: p256::ecdsa::Signature = sk.sign(&message);
        let raw = sig.to_bytes().to_vec();
        if raw[0] == 0 || raw[32] == 0 {
            leading_zero_seen = true;
            let der = normalise_signature(&pk, &raw).unwrap();
            // DER integers are minimal: the zero byte is dropped (one pad byte comes back only
            // when the next byte has its high bit set), so the encoding is shorter than the
            // 72-byte maximum and equal to the reference encoder's.
            assert!(der.len() <= 71, "a leading zero shortens the DER");
            assert_eq!(der, sig.to_der().as_bytes());
            pk.verify(&message, &der).unwrap();
        }
    }
}

#[test]
fn p384_signatures_with_either_hash_verify() {
    let sk = p384::ecdsa::SigningKey::random(&mut OsRng);
    let pk = PublicKey::from_spki_der(
        p384::pkcs8::EncodePublicKey::to_public_key_der(sk.verifying_key())
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    let message = b"p384 message";
    let sha256_sig: p384::ecdsa::Signature = sk.sign_prehash(&Sha256::digest(message)).unwrap();
    let sha384_sig: p384::ecdsa::Signature = sk.sign(message);
    for sig in [sha256_sig, sha384_sig] {
        let der = normalise_signature(&pk, &sig.to_bytes()).unwrap();
        pk.verify(message, &der).unwrap();
        assert!(pk.verify(b"other", &der).is_err());
    }
}

#[test]
fn ed25519_random_keys() {
    for i in 0..20u8 {
        let mut seed = [0u8; 32];
        OsRng.fill_bytes(&mut seed);
        let sk = ed25519_dalek::SigningKey::from_bytes(&seed);
        let pk = PublicKey::from_spki_der(
            ed25519_dalek::pkcs8::EncodePublicKey::to_public_key_der(&sk.verifying_key())
                .unwrap()
                .as_bytes(),
        )
        .unwrap();
        let message = [i; 40];
        let sig = ed25519_dalek::Signer::sign(&sk, &message).to_bytes();
        pk.verify(&message, &normalise_signature(&pk, &sig).unwrap())
            .unwrap();
        assert!(pk.verify(&[i; 41], &sig).is_err());
    }
}

#[test]
fn debug_output_is_short() {
    let debug = format!("{:?}", key("rsa2048.pub"));
    assert!(debug.contains("Rsa"));
    assert!(debug.len() < 150, "{debug}");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
