//! Helpers around the real skopeo 1.18 (containers/image 5.34) with sigstore signatures.

use std::path::{Path, PathBuf};
use std::process::Output;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::json;

use crate::registry::Registry;
use crate::tools::{OutputExt, Tools};

/// A key pair made by `skopeo generate-sigstore-key`, with its passphrase file.
#[derive(Debug, Clone)]
pub struct SkopeoKey {
    /// Encrypted private key (`.private`).
    pub private: PathBuf,
    /// Public key PEM (`.pub`).
    pub public: PathBuf,
    /// File holding the passphrase, as `--sign-passphrase-file` wants.
    pub passphrase_file: PathBuf,
}

/// `skopeo generate-sigstore-key --output-prefix DIR/skopeo --passphrase-file F`.
pub fn skopeo_generate_key(dir: &Path, passphrase: &str) -> SkopeoKey {
    let passphrase_file = dir.join("skopeo.passphrase");
    std::fs::write(&passphrase_file, passphrase).expect("write passphrase file");
    let prefix = dir.join("skopeo");
    let mut skopeo = Tools::skopeo();
    skopeo
        .arg("generate-sigstore-key")
        .arg("--output-prefix")
        .arg(&prefix)
        .arg("--passphrase-file")
        .arg(&passphrase_file);
    skopeo.run_ok();
    SkopeoKey {
        private: dir.join("skopeo.private"),
        public: dir.join("skopeo.pub"),
        passphrase_file,
    }
}

/// Signs in place: `skopeo copy --all --preserve-digests --sign-by-sigstore-private-key K
/// --sign-passphrase-file F [--sign-identity ID] docker://REF docker://REF`, with registries.d
/// saying `use-sigstore-attachments: true`. Panics with both streams if skopeo fails.
///
/// `--all` keeps an index's tag pointing at the index; skopeo 1.18 then signs the index and
/// every child manifest. To sign one child only, pass its digest reference and an `identity`.
pub fn skopeo_sign(
    reg: &Registry,
    private_key: &Path,
    passphrase_file: &Path,
    image_ref: &str,
    identity: Option<&str>,
) -> Output {
    let mut skopeo = Tools::skopeo();
    skopeo
        .args(["copy", "--all", "--preserve-digests"])
        .args(reg.skopeo_src_args())
        .args(reg.skopeo_dest_args())
        .arg("--sign-by-sigstore-private-key")
        .arg(private_key)
        .arg("--sign-passphrase-file")
        .arg(passphrase_file);
    if let Some(id) = identity {
        skopeo.arg("--sign-identity").arg(id);
    }
    skopeo
        .arg(format!("docker://{image_ref}"))
        .arg(format!("docker://{image_ref}"));
    skopeo.run_ok()
}

/// A containers/image `signedIdentity` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityRule {
    /// Any tag or digest of the same repository (accepts cosign's `HOST/REPO` identities).
    MatchRepository,
    /// The default for podman and CRI-O: a digest reference matches its repository, a tag
    /// reference must match exactly (rejects cosign's repository-only identities).
    MatchRepoDigestOrExact,
    /// The reference must match exactly.
    MatchExact,
    /// The signature must name exactly this repository.
    ExactRepository(String),
}

impl IdentityRule {
    fn to_json(&self) -> serde_json::Value {
        match self {
            Self::MatchRepository => json!({"type": "matchRepository"}),
            Self::MatchRepoDigestOrExact => json!({"type": "matchRepoDigestOrExact"}),
            Self::MatchExact => json!({"type": "matchExact"}),
            Self::ExactRepository(repo) => {
                json!({"type": "exactRepository", "dockerRepository": repo})
            }
        }
    }
}

/// policy.json text requiring a sigstore signature by `public_key_pem` under `rule` for
/// everything (`keyData` is the base64 of the PEM).
pub fn sigstore_policy(public_key_pem: &[u8], rule: &IdentityRule) -> String {
    json!({"default": [{
        "type": "sigstoreSigned",
        "keyData": STANDARD.encode(public_key_pem),
        "signedIdentity": rule.to_json(),
    }]})
    .to_string()
}

/// What containers/image decided.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// The copy (and so the signature check) succeeded.
    pub accepted: bool,
    /// skopeo's stderr (the reason, when rejected).
    pub stderr: String,
}

/// Pulls REF with `skopeo copy docker://REF dir:OUT` under a sigstoreSigned policy for
/// `public_key_pem_path` and `rule`. Without `--all`: like `podman pull`, only the host's
/// platform of an index is copied and checked.
pub fn skopeo_verify(
    reg: &Registry,
    public_key_pem_path: &Path,
    image_ref: &str,
    rule: IdentityRule,
) -> Verdict {
    let pem = std::fs::read(public_key_pem_path).expect("read public key");
    skopeo_verify_with_policy(reg, &sigstore_policy(&pem, &rule), image_ref, &[])
}

/// Like [`skopeo_verify`] with any policy.json text and extra `copy` flags (e.g. `--all`).
pub fn skopeo_verify_with_policy(
    reg: &Registry,
    policy_json: &str,
    image_ref: &str,
    extra_args: &[&str],
) -> Verdict {
    let mut skopeo = Tools::skopeo();
    std::fs::write(skopeo.policy_path(), policy_json).expect("write policy.json");
    let out_dir = skopeo.home().join("pulled");
    skopeo
        .arg("copy")
        .args(reg.skopeo_src_args())
        .args(extra_args)
        .arg(format!("docker://{image_ref}"))
        .arg(format!("dir:{}", out_dir.display()));
    let out = skopeo.run();
    Verdict {
        accepted: out.status.success(),
        stderr: out.stderr_str(),
    }
}
