//! Key files made by cosign 2.5, skopeo 1.18 and openssl (tests/fixtures/README.md), and
//! every way reading one can go wrong.

use std::path::PathBuf;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use secrecy::SecretString;
use sigbridge_local::{
    generate_key_pair, KeyFile, LocalKeyError, LocalSigner, COSIGN_LABEL, SIGSTORE_LABEL,
};
use sigbridge_signer::{
    pem, KeyKind, PublicKey, SignRequest, Signer, SignerError, SignerErrorKind,
};

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_path(name)).unwrap()
}

fn pw(s: &str) -> SecretString {
    SecretString::from(s.to_string())
}

fn open(name: &str, password: Option<&str>) -> Result<LocalSigner, LocalKeyError> {
    KeyFile::read(&fixture_path(name))?.decrypt(password.map(pw).as_ref())
}

fn public(name: &str) -> PublicKey {
    PublicKey::from_pem(std::str::from_utf8(&fixture(name)).unwrap()).unwrap()
}

/// The signer's key matches the fixture's public key, and its signatures verify with it.
fn check_signer(signer: &LocalSigner, pub_fixture: &str, kind: KeyKind) {
    let expected = public(pub_fixture);
    assert_eq!(signer.public_key(), &expected);
    assert_eq!(signer.kind(), kind);
    for payload in [&b""[..], b"x", &fixture("blob.txt")] {
        let sig = signer.sign_one(payload).unwrap();
        expected.verify(payload, &sig).unwrap();
        assert!(expected.verify(b"something else", &sig).is_err());
        if let KeyKind::EcdsaP256 | KeyKind::EcdsaP384 = kind {
            assert_eq!(sig[0], 0x30, "ECDSA signatures are DER");
        }
    }
}

#[test]
fn cosign_generated_key_with_password() {
    let file = KeyFile::read(&fixture_path("cosign-hello.key")).unwrap();
    assert!(file.is_encrypted());
    assert_eq!(file.label(), SIGSTORE_LABEL);
    assert_eq!(file.scrypt_n(), Some(65536));
    let signer = file.decrypt(Some(&pw("hello"))).unwrap();
    check_signer(&signer, "cosign-hello.pub", KeyKind::EcdsaP256);
    // cosign's own signature over the blob verifies with the key we decrypted.
    let cosign_sig = STANDARD
        .decode(
            String::from_utf8(fixture("cosign-hello.sig.b64"))
                .unwrap()
                .trim(),
        )
        .unwrap();
    signer
        .public_key()
        .verify(&fixture("blob.txt"), &cosign_sig)
        .unwrap();
}

#[test]
fn cosign_generated_key_with_empty_password() {
    let signer = open("cosign-empty.key", Some("")).unwrap();
    check_signer(&signer, "cosign-empty.pub", KeyKind::EcdsaP256);
    let err = open("cosign-empty.key", Some(" ")).unwrap_err();
    assert!(matches!(err, LocalKeyError::WrongPassword { .. }), "{err}");
}

#[test]
fn skopeo_generated_key() {
    let file = KeyFile::read(&fixture_path("skopeo.private")).unwrap();
    assert_eq!(file.label(), COSIGN_LABEL);
    let signer = file.decrypt(Some(&pw("skopeo-pass"))).unwrap();
    check_signer(&signer, "skopeo.pub", KeyKind::EcdsaP256);
}

#[test]
fn cosign_imported_ed25519_key() {
    let signer = open("cosign-import-ed25519.key", Some("hello")).unwrap();
    check_signer(&signer, "cosign-import-ed25519.pub", KeyKind::Ed25519);
    check_signer(&signer, "ed25519.pub", KeyKind::Ed25519);
}

#[test]
fn wrong_password() {
    let err = open("cosign-hello.key", Some("Hello")).unwrap_err();
    assert!(matches!(err, LocalKeyError::WrongPassword { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "wrong password for {}",
            fixture_path("cosign-hello.key").display()
        )),
        "{message}"
    );
    assert!(!message.contains("Hello"));
    assert_eq!(SignerError::from(err).kind(), SignerErrorKind::Credentials);
}

#[test]
fn missing_password_for_encrypted_key() {
    let err = open("cosign-hello.key", None).unwrap_err();
    assert!(
        matches!(err, LocalKeyError::PasswordRequired { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("COSIGN_PASSWORD"));
    assert_eq!(SignerError::from(err).kind(), SignerErrorKind::Credentials);
}

#[test]
fn plaintext_formats() {
    let cases = [
        (
            "p256-pkcs8.pem",
            "PRIVATE KEY",
            "p256.pub",
            KeyKind::EcdsaP256,
        ),
        (
            "p256-sec1.pem",
            "EC PRIVATE KEY",
            "p256.pub",
            KeyKind::EcdsaP256,
        ),
        (
            "p384-pkcs8.pem",
            "PRIVATE KEY",
            "p384.pub",
            KeyKind::EcdsaP384,
        ),
        (
            "p384-sec1.pem",
            "EC PRIVATE KEY",
            "p384.pub",
            KeyKind::EcdsaP384,
        ),
        (
            "rsa2048-pkcs8.pem",
            "PRIVATE KEY",
            "rsa2048.pub",
            KeyKind::Rsa { bits: 2048 },
        ),
        (
            "rsa2048-pkcs1.pem",
            "RSA PRIVATE KEY",
            "rsa2048.pub",
            KeyKind::Rsa { bits: 2048 },
        ),
        (
            "ed25519-pkcs8.pem",
            "PRIVATE KEY",
            "ed25519.pub",
            KeyKind::Ed25519,
        ),
    ];
    for (name, label, pub_name, kind) in cases {
        let file = KeyFile::read(&fixture_path(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!file.is_encrypted());
        assert_eq!(file.label(), label);
        assert_eq!(file.scrypt_n(), None);
        let signer = file.decrypt(None).unwrap();
        check_signer(&signer, pub_name, kind);
        // A password given for a plaintext key is ignored.
        let signer = open(name, Some("unused")).unwrap();
        assert_eq!(signer.public_key(), &public(pub_name));
    }
}

#[test]
fn openssl_ecparam_output_with_parameters_block() {
    let text = String::from_utf8(fixture("p256-sec1-with-params.pem")).unwrap();
    assert!(text.starts_with("-----BEGIN EC PARAMETERS-----"));
    let signer = open("p256-sec1-with-params.pem", None).unwrap();
    assert_eq!(signer.kind(), KeyKind::EcdsaP256);
    let sig = signer.sign_one(b"payload").unwrap();
    signer.public_key().verify(b"payload", &sig).unwrap();
    // Parameters alone are not a key.
    let params_only = text.split("-----BEGIN EC PRIVATE KEY-----").next().unwrap();
    let err = KeyFile::parse(params_only.as_bytes(), "params.pem").unwrap_err();
    assert!(
        matches!(err, LocalKeyError::UnsupportedFormat { .. }),
        "{err}"
    );
}

#[test]
fn unsupported_keys() {
    for (name, needle) in [
        ("rsa1024-pkcs8.pem", "1024 bits"),
        ("p521-pkcs8.pem", "P-521"),
        ("secp256k1-pkcs8.pem", "secp256k1"),
    ] {
        let err = KeyFile::read(&fixture_path(name)).unwrap_err();
        assert!(
            matches!(err, LocalKeyError::UnsupportedKey { .. }),
            "{name}: {err}"
        );
        assert!(err.to_string().contains(needle), "{name}: {err}");
        assert_eq!(SignerError::from(err).kind(), SignerErrorKind::Unsupported);
    }
}

#[test]
fn wrong_pem_labels() {
    let err = KeyFile::read(&fixture_path("p256-openssl-encrypted.pem")).unwrap_err();
    assert!(
        matches!(err, LocalKeyError::UnsupportedFormat { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("openssl pkey -in"), "{err}");
    assert_eq!(SignerError::from(err).kind(), SignerErrorKind::Unsupported);

    let err = KeyFile::read(&fixture_path("cosign-hello.pub")).unwrap_err();
    assert!(matches!(err, LocalKeyError::NotAPrivateKey { .. }), "{err}");
    assert!(err.to_string().contains("cosign.key"), "{err}");
    assert_eq!(SignerError::from(err).kind(), SignerErrorKind::InvalidKey);

    let err =
        KeyFile::parse(pem::encode("SOMETHING ELSE", b"data").as_bytes(), "x.pem").unwrap_err();
    assert!(
        matches!(err, LocalKeyError::UnsupportedFormat { .. }),
        "{err}"
    );

    let legacy = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\nAAAA\n-----END RSA PRIVATE KEY-----\n";
    let err = KeyFile::parse(legacy.as_bytes(), "legacy.pem").unwrap_err();
    assert!(err.to_string().contains("legacy PEM encryption"), "{err}");

    let err = KeyFile::parse(b"not a pem file at all", "junk").unwrap_err();
    assert!(matches!(err, LocalKeyError::Pem { .. }), "{err}");
    assert_eq!(SignerError::from(err).kind(), SignerErrorKind::InvalidKey);
}

#[test]
fn truncated_files() {
    let full = fixture("cosign-hello.key");
    // Cut mid-body: no END line.
    let err = KeyFile::parse(&full[..full.len() / 2], "cut.key").unwrap_err();
    assert!(matches!(err, LocalKeyError::Pem { .. }), "{err}");
    assert!(err.to_string().contains("truncated"), "{err}");
    // A complete PEM whose JSON was cut short.
    let block = pem::decode_first(&full).unwrap();
    let cut = pem::encode(
        SIGSTORE_LABEL,
        &block.contents()[..block.contents().len() - 20],
    );
    let err = KeyFile::parse(cut.as_bytes(), "cut.key").unwrap_err();
    assert!(
        matches!(err, LocalKeyError::MalformedEnvelope { .. }),
        "{err}"
    );
    // Plaintext PKCS#8 cut short.
    let block = pem::decode_first(&fixture("p256-pkcs8.pem")).unwrap();
    let cut = pem::encode("PRIVATE KEY", &block.contents()[..40]);
    let err = KeyFile::parse(cut.as_bytes(), "cut.pem").unwrap_err();
    assert!(matches!(err, LocalKeyError::MalformedKey { .. }), "{err}");
    assert_eq!(SignerError::from(err).kind(), SignerErrorKind::InvalidKey);
}

fn rewrap_json(edit: impl Fn(String) -> String) -> String {
    let block = pem::decode_first(&fixture("cosign-hello.key")).unwrap();
    let json = String::from_utf8(block.contents().to_vec()).unwrap();
    pem::encode(SIGSTORE_LABEL, edit(json).as_bytes())
}

#[test]
fn garbage_json() {
    for body in ["{", "[]", "null", "{\"kdf\":1}", "\u{0}\u{1}binary"] {
        let text = pem::encode(COSIGN_LABEL, body.as_bytes());
        let err = KeyFile::parse(text.as_bytes(), "bad.key").unwrap_err();
        assert!(
            matches!(err, LocalKeyError::MalformedEnvelope { .. }),
            "{body}: {err}"
        );
        assert_eq!(SignerError::from(err).kind(), SignerErrorKind::InvalidKey);
    }
}

#[test]
fn unsupported_scrypt_parameters() {
    for (from, to) in [
        ("\"N\":65536", "\"N\":16384"),
        ("\"N\":65536", "\"N\":1048576"),
        ("\"r\":8", "\"r\":1"),
        ("\"p\":1", "\"p\":4"),
    ] {
        let text = rewrap_json(|json| json.replace(from, to));
        let err = KeyFile::parse(text.as_bytes(), "odd.key").unwrap_err();
        assert!(
            matches!(err, LocalKeyError::UnsupportedEncryption { .. }),
            "{to}: {err}"
        );
        assert!(
            err.to_string().contains("N=32768, 65536 or 131072"),
            "{err}"
        );
        assert_eq!(SignerError::from(err).kind(), SignerErrorKind::Unsupported);
    }
}

#[test]
fn tampered_ciphertext_reads_as_wrong_password() {
    let text = rewrap_json(|json| {
        let at = json.find("\"ciphertext\":\"").unwrap() + 14;
        let mut bytes = json.into_bytes();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        String::from_utf8(bytes).unwrap()
    });
    let file = KeyFile::parse(text.as_bytes(), "tampered.key").unwrap();
    let err = file.decrypt(Some(&pw("hello"))).unwrap_err();
    assert!(matches!(err, LocalKeyError::WrongPassword { .. }), "{err}");
}

#[test]
fn oversize_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.key");
    let mut content = fixture("p256-pkcs8.pem");
    content.resize(1024 * 1024 + 1, b'\n');
    std::fs::write(&big, &content).unwrap();
    let err = KeyFile::read(&big).unwrap_err();
    assert!(matches!(err, LocalKeyError::TooLarge { .. }), "{err}");
    assert_eq!(SignerError::from(err).kind(), SignerErrorKind::InvalidKey);
    // Exactly at the limit is fine.
    content.truncate(1024 * 1024);
    std::fs::write(&big, &content).unwrap();
    KeyFile::read(&big).unwrap();

    let err = KeyFile::read(&dir.path().join("absent.key")).unwrap_err();
    assert!(matches!(err, LocalKeyError::Io { .. }), "{err}");
    assert!(err.to_string().contains("absent.key"));
}

#[test]
fn generated_key_pair_loads_and_signs() {
    let pair = generate_key_pair(&pw("s3cret")).unwrap();
    assert!(pair
        .private_pem
        .starts_with("-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\n"));
    assert!(pair
        .private_pem
        .ends_with("-----END ENCRYPTED COSIGN PRIVATE KEY-----\n"));
    assert!(pair.private_pem.lines().all(|l| l.len() <= 64));
    let json = pem::decode_first(pair.private_pem.as_bytes()).unwrap();
    let json = std::str::from_utf8(json.contents()).unwrap();
    assert!(
        json.starts_with(r#"{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":""#),
        "{json}"
    );
    assert!(json.contains(r#""cipher":{"name":"nacl/secretbox","nonce":""#));

    let file = KeyFile::parse(pair.private_pem.as_bytes(), "gen.key").unwrap();
    assert_eq!(file.scrypt_n(), Some(32768));
    let signer = file.decrypt(Some(&pw("s3cret"))).unwrap();
    assert_eq!(signer.kind(), KeyKind::EcdsaP256);
    assert_eq!(signer.public_key().to_pem(), pair.public_pem);
    let sig = signer.sign_one(b"payload").unwrap();
    PublicKey::from_pem(&pair.public_pem)
        .unwrap()
        .verify(b"payload", &sig)
        .unwrap();

    let err = KeyFile::parse(pair.private_pem.as_bytes(), "gen.key")
        .unwrap()
        .decrypt(Some(&pw("wrong")))
        .unwrap_err();
    assert!(matches!(err, LocalKeyError::WrongPassword { .. }));

    // Two generated keys differ.
    let other = generate_key_pair(&pw("")).unwrap();
    assert_ne!(other.public_pem, pair.public_pem);
    assert!(!format!("{pair:?}").contains("ENCRYPTED"));
}

#[test]
fn export_encrypted_roundtrips_every_key_type() {
    for (name, pub_name) in [
        ("p384-sec1.pem", "p384.pub"),
        ("rsa2048-pkcs1.pem", "rsa2048.pub"),
        ("ed25519-pkcs8.pem", "ed25519.pub"),
    ] {
        let signer = open(name, None).unwrap();
        let pair = signer.export_encrypted(&pw("pw")).unwrap();
        assert_eq!(
            pair.public_pem,
            String::from_utf8(fixture(pub_name)).unwrap()
        );
        let back = KeyFile::parse(pair.private_pem.as_bytes(), "exported")
            .unwrap()
            .decrypt(Some(&pw("pw")))
            .unwrap();
        assert_eq!(back.public_key(), signer.public_key());
    }
}

#[test]
fn debug_output_has_no_key_material() {
    for name in [
        "p256-pkcs8.pem",
        "rsa2048-pkcs1.pem",
        "ed25519-pkcs8.pem",
        "cosign-hello.key",
    ] {
        let text = String::from_utf8(fixture(name)).unwrap();
        let body_lines: Vec<&str> = text.lines().filter(|l| !l.starts_with("-----")).collect();
        let file = KeyFile::read(&fixture_path(name)).unwrap();
        let debug = format!("{file:?}");
        let password = (name == "cosign-hello.key").then(|| pw("hello"));
        let signer = file.decrypt(password.as_ref()).unwrap();
        let debug = format!("{debug} {signer:?} {signer:#?}");
        for line in body_lines {
            assert!(!debug.contains(line), "{name}: {debug}");
            assert!(
                !debug.contains(&line[..16.min(line.len())]),
                "{name}: {debug}"
            );
        }
        assert!(debug.len() < 1000, "{debug}");
    }
}

#[tokio::test]
async fn signer_trait() {
    let path = fixture_path("p256-pkcs8.pem");
    let signer = open("p256-pkcs8.pem", None).unwrap();
    assert_eq!(signer.describe(), format!("local key {}", path.display()));
    let boxed: Box<dyn Signer> = Box::new(signer);
    let key = boxed.public_key().await.unwrap();
    let payloads = vec![b"one".to_vec(), b"two".to_vec(), Vec::new()];
    let sigs = boxed
        .sign(&payloads, &SignRequest::default())
        .await
        .unwrap()
        .into_signed()
        .unwrap();
    assert_eq!(sigs.len(), 3);
    for (payload, sig) in payloads.iter().zip(&sigs) {
        key.verify(payload, sig).unwrap();
    }
    assert!(boxed.certificate().await.unwrap().is_none());
}

#[test]
fn rsa_keys_are_not_offered_to_remote_callers() {
    // RUSTSEC-2023-0071: the local CLI may sign with RSA (blinded), a server or plugin may not.
    for name in ["rsa2048-pkcs8.pem", "rsa2048-pkcs1.pem"] {
        let signer = open(name, None).unwrap();
        assert!(!signer.capabilities().safe_for_remote_callers, "{name}");
        let e = sigbridge_signer::require_safe_for_remote_callers(&signer).unwrap_err();
        assert_eq!(e.kind(), SignerErrorKind::Unsupported, "{name}");
    }
    for name in ["p256-pkcs8.pem", "p384-pkcs8.pem", "ed25519-pkcs8.pem"] {
        let signer = open(name, None).unwrap();
        assert!(signer.capabilities().safe_for_remote_callers, "{name}");
        assert!(!signer.capabilities().deferred, "{name}");
        sigbridge_signer::require_safe_for_remote_callers(&signer).unwrap();
    }
}

#[test]
fn provider_errors_keep_their_type() {
    let e: SignerError = open("cosign-hello.key", Some("wrong")).unwrap_err().into();
    assert_eq!(e.kind(), SignerErrorKind::Credentials);
    assert!(
        matches!(
            e.downcast_ref::<LocalKeyError>(),
            Some(LocalKeyError::WrongPassword { .. })
        ),
        "{e:?}"
    );
    // The text is not repeated as a cause.
    assert_eq!(sigbridge_signer::error_chain(&e), e.to_string());
}

struct NoPassword;

impl sigbridge_signer::PasswordSource for NoPassword {
    fn password_for(
        &self,
        _key: &std::path::Path,
    ) -> Result<Option<secrecy::SecretString>, SignerError> {
        Ok(None)
    }
}

#[test]
fn the_provider_opens_key_files_and_file_uris() {
    use sigbridge_signer::{OpenContext, OpenError, Provider as _};
    let env = |_: &str| -> Option<String> { None };
    let ctx = OpenContext {
        env: &env,
        passwords: &NoPassword,
        prompt: None,
        log_format: Default::default(),
        signer_arg: None,
        resuming: None,
    };
    let provider = sigbridge_local::LocalProvider;
    assert!(provider.schemes().is_empty());
    assert!(!provider.can_defer());
    let path = fixture_path("p256-pkcs8.pem");
    let signer = provider
        .open(&format!("file://{}", path.display()), &ctx)
        .unwrap();
    assert_eq!(signer.describe(), format!("local key {}", path.display()));
    // An encrypted key without a password: a credentials error naming the file.
    let encrypted = fixture_path("cosign-hello.key");
    match provider.open(&encrypted.display().to_string(), &ctx) {
        Err(OpenError::Signer { signer, source }) => {
            assert_eq!(signer, format!("local key {}", encrypted.display()));
            assert_eq!(source.kind(), SignerErrorKind::Credentials);
        }
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("opened an encrypted key without a password"),
    }
}
