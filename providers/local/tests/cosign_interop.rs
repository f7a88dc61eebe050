//! Keys we write must load in real cosign, and signatures must cross both ways.
//!
//! cosign 2.5 comes from `scripts/install-test-deps.sh` (`$SIGBRIDGE_TOOLS_DIR`, default
//! `<workspace>/target/test-tools`). CI always installs it; when it is absent these tests say
//! so on stderr and pass without checking anything.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use secrecy::SecretString;
use sigbridge_local::{generate_key_pair, GeneratedKeyPair, KeyFile, LocalSigner};
use sigbridge_signer::PublicKey;

fn cosign() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let tools = match std::env::var_os("SIGBRIDGE_TOOLS_DIR") {
        // Relative paths are taken from the workspace root; `join` keeps absolute ones.
        Some(dir) if !dir.is_empty() => workspace.join(dir),
        _ => workspace.join("target/test-tools"),
    };
    let path = tools.join("trixie/usr/bin/cosign");
    // Never skip: an interop test that passes without cosign proves nothing.
    assert!(
        path.is_file(),
        "cosign not found at {}: run scripts/install-test-deps.sh (as root) first",
        path.display()
    );
    path
}

/// Run cosign with nothing inherited from the caller's environment but a private HOME.
fn run(cosign: &Path, home: &Path, password: &str, args: &[&str]) -> Output {
    let output = Command::new(cosign)
        .args(args)
        .env_clear()
        .env("HOME", home)
        .env("PATH", "/usr/bin:/bin")
        .env("COSIGN_PASSWORD", password)
        .env("COSIGN_YES", "true")
        .current_dir(home)
        .stdin(Stdio::null())
        .output()
        .expect("start cosign");
    output
}

fn ok(output: Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what} failed: {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn pw(s: &str) -> SecretString {
    SecretString::from(s.to_string())
}

/// Round trip one key pair through cosign: cosign reads our key file, its signature verifies
/// with our public key, and our signature passes `cosign verify-blob`.
fn check_with_cosign(cosign: &Path, pair: &GeneratedKeyPair, password: &str, label: &str) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let key = home.join("k.key");
    let public = home.join("k.pub");
    let blob = home.join("blob.txt");
    let blob_bytes = format!("a blob to sign for {label}\n").into_bytes();
    std::fs::write(&key, pair.private_pem.as_bytes()).unwrap();
    std::fs::write(&public, &pair.public_pem).unwrap();
    std::fs::write(&blob, &blob_bytes).unwrap();
    let key_arg = key.to_str().unwrap();
    let pub_arg = public.to_str().unwrap();
    let blob_arg = blob.to_str().unwrap();

    // cosign decrypts our file and derives the same public key.
    let printed = ok(
        run(cosign, home, password, &["public-key", "--key", key_arg]),
        &format!("{label}: cosign public-key"),
    );
    assert_eq!(printed, pair.public_pem, "{label}");

    // A cosign signature verifies with our PublicKey.
    let sig_b64 = ok(
        run(
            cosign,
            home,
            password,
            &[
                "sign-blob",
                "--key",
                key_arg,
                "--tlog-upload=false",
                blob_arg,
            ],
        ),
        &format!("{label}: cosign sign-blob"),
    );
    let sig = STANDARD.decode(sig_b64.trim()).unwrap();
    let ours = PublicKey::from_pem(&pair.public_pem).unwrap();
    ours.verify(&blob_bytes, &sig)
        .unwrap_or_else(|e| panic!("{label}: cosign's signature: {e}"));

    // Our signature passes cosign verify-blob, and fails for another blob.
    let signer: LocalSigner = KeyFile::parse(pair.private_pem.as_bytes(), key_arg)
        .unwrap()
        .decrypt(Some(&pw(password)))
        .unwrap();
    let our_sig = signer.sign_one(&blob_bytes).unwrap();
    let sig_file = home.join("blob.sig");
    std::fs::write(&sig_file, STANDARD.encode(&our_sig)).unwrap();
    let verify_args = [
        "verify-blob",
        "--key",
        pub_arg,
        "--signature",
        sig_file.to_str().unwrap(),
        "--insecure-ignore-tlog",
        blob_arg,
    ];
    let stdout_and_err = {
        let out = run(cosign, home, "", &verify_args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        ok(out, &format!("{label}: cosign verify-blob"));
        stderr
    };
    assert!(
        stdout_and_err.contains("Verified OK"),
        "{label}: {stdout_and_err}"
    );
    std::fs::write(&blob, b"another blob").unwrap();
    let out = run(cosign, home, "", &verify_args);
    assert!(
        !out.status.success(),
        "{label}: a changed blob must not verify"
    );
}

#[test]
fn generated_key_pair_works_with_cosign() {
    let cosign = cosign();
    let pair = generate_key_pair(&pw("interop-pw")).unwrap();
    check_with_cosign(&cosign, &pair, "interop-pw", "generated, password");
    let pair = generate_key_pair(&pw("")).unwrap();
    check_with_cosign(&cosign, &pair, "", "generated, empty password");
}

#[test]
fn every_key_type_works_with_cosign() {
    let cosign = cosign();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for name in ["p384-pkcs8.pem", "rsa2048-pkcs8.pem", "ed25519-pkcs8.pem"] {
        let signer = KeyFile::read(&fixtures.join(name))
            .unwrap()
            .decrypt(None)
            .unwrap();
        let pair = signer.export_encrypted(&pw("k")).unwrap();
        check_with_cosign(&cosign, &pair, "k", name);
    }
}

#[test]
fn cosign_rejects_wrong_password_for_our_key() {
    let cosign = cosign();
    let dir = tempfile::tempdir().unwrap();
    let pair = generate_key_pair(&pw("right")).unwrap();
    let key = dir.path().join("k.key");
    std::fs::write(&key, pair.private_pem.as_bytes()).unwrap();
    let out = run(
        &cosign,
        dir.path(),
        "wrong",
        &["public-key", "--key", key.to_str().unwrap()],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("decrypt"));
}
