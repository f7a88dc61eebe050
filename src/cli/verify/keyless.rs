//! The keyless flags of `verify`, as cosign's `verify` has them, turned into a
//! [`KeylessCheck`]. cosign requires an identity and an issuer flag in keyless mode and says so
//! with the same two sentences.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sigbridge::keyless::{CertificateInput, IdentityPolicy, Matcher, Workflow};
use sigbridge::trust::{CertificateAuthority, TrustedRoot, Validity};
use sigbridge::verify::KeylessCheck;
use sigbridge::Error;

use crate::cli::common::read_small_file;

/// Largest certificate or chain file read.
const MAX_CERT_FILE: u64 = 1024 * 1024;

#[derive(Debug, Default, clap::Args)]
pub struct KeylessArgs {
    /// Keyless: the identity (a SAN: email or URI) the certificate must name.
    #[arg(long, value_name = "IDENTITY")]
    pub certificate_identity: Option<String>,

    /// Keyless: a regular expression (RE2 syntax, unanchored as cosign's) an identity must
    /// match; wins over --certificate-identity.
    #[arg(long, value_name = "REGEXP")]
    pub certificate_identity_regexp: Option<String>,

    /// Keyless: the OIDC issuer the certificate must name (Fulcio extension .1.1 / .1.8).
    #[arg(long, value_name = "ISSUER")]
    pub certificate_oidc_issuer: Option<String>,

    /// Keyless: a regular expression (unanchored) the OIDC issuer must match.
    #[arg(long, value_name = "REGEXP")]
    pub certificate_oidc_issuer_regexp: Option<String>,

    /// Keyless: the GitHub workflow trigger (event name) the certificate must name.
    #[arg(long, value_name = "TRIGGER")]
    pub certificate_github_workflow_trigger: Option<String>,

    /// Keyless: the GitHub workflow commit SHA the certificate must name.
    #[arg(long, value_name = "SHA")]
    pub certificate_github_workflow_sha: Option<String>,

    /// Keyless: the GitHub workflow name the certificate must name.
    #[arg(long, value_name = "NAME")]
    pub certificate_github_workflow_name: Option<String>,

    /// Keyless: the GitHub repository (owner/repo) the certificate must name.
    #[arg(long, value_name = "REPOSITORY")]
    pub certificate_github_workflow_repository: Option<String>,

    /// Keyless: the git ref the certificate must name.
    #[arg(long, value_name = "REF")]
    pub certificate_github_workflow_ref: Option<String>,

    /// Keyless: a PEM certificate to use instead of the one stored with each signature.
    #[arg(long, value_name = "FILE")]
    pub certificate: Option<PathBuf>,

    /// Keyless: PEM CA certificates, the issuer of the signing certificate first and the root
    /// last. As with cosign, its root is then the trusted root for this verify.
    #[arg(long, value_name = "FILE")]
    pub certificate_chain: Option<PathBuf>,
}

impl KeylessArgs {
    /// The keyless checks the flags ask for, trusting `root`'s certificate authorities (from
    /// `--trusted-root` or `SIGSTORE_ROOT_FILE`) unless `--certificate-chain` names the root.
    /// A missing identity or issuer flag (cosign's two sentences), a malformed regexp and an
    /// unreadable certificate file are invalid input (exit 3); no trust material is exit 4.
    pub fn check(&self, root: Option<&TrustedRoot>) -> Result<KeylessCheck, Error> {
        if self.certificate_identity.is_none() && self.certificate_identity_regexp.is_none() {
            return Err(Error::InvalidInput("--certificate-identity or --certificate-identity-regexp is required for verification in keyless mode".into()));
        }
        if self.certificate_oidc_issuer.is_none() && self.certificate_oidc_issuer_regexp.is_none() {
            return Err(Error::InvalidInput("--certificate-oidc-issuer or --certificate-oidc-issuer-regexp is required for verification in keyless mode".into()));
        }
        let identity = Matcher::from_flags(
            self.certificate_identity.as_deref(),
            self.certificate_identity_regexp.as_deref(),
            "--certificate-identity",
        )
        .map_err(Error::InvalidInput)?;
        let issuer = Matcher::from_flags(
            self.certificate_oidc_issuer.as_deref(),
            self.certificate_oidc_issuer_regexp.as_deref(),
            "--certificate-oidc-issuer",
        )
        .map_err(Error::InvalidInput)?;
        let workflow: BTreeMap<Workflow, String> = [
            (Workflow::Trigger, &self.certificate_github_workflow_trigger),
            (Workflow::Sha, &self.certificate_github_workflow_sha),
            (Workflow::Name, &self.certificate_github_workflow_name),
            (
                Workflow::Repository,
                &self.certificate_github_workflow_repository,
            ),
            (Workflow::Ref, &self.certificate_github_workflow_ref),
        ]
        .into_iter()
        .filter_map(|(w, v)| v.clone().map(|v| (w, v)))
        .collect();
        let trusted_root = match (&self.certificate_chain, root) {
            (Some(path), _) => chain_as_root(path)?,
            (None, Some(root)) if !root.certificate_authorities.is_empty() => root.clone(),
            (None, _) => return Err(Error::TrustMaterial(
                "keyless verification needs trust material: give --trusted-root FILE (a Sigstore trusted_root.json), SIGSTORE_ROOT_FILE=<Fulcio root PEM>, or --certificate-chain FILE (its last certificate becomes the trusted root, as with cosign); sigbridge never fetches Fulcio roots".into()
            )),
        };
        let certificate = match &self.certificate {
            Some(path) => Some(
                CertificateInput::from_pem(&read_text(path, "--certificate")?, None).map_err(
                    |e| Error::InvalidInput(format!("--certificate {}: {e}", path.display())),
                )?,
            ),
            None => None,
        };
        Ok(KeylessCheck {
            trusted_root,
            policy: IdentityPolicy {
                identity,
                issuer,
                workflow,
            },
            certificate,
        })
    }
}

/// `--certificate-chain`: one authority, its root trusted whenever its certificates are valid.
fn chain_as_root(path: &Path) -> Result<TrustedRoot, Error> {
    let text = read_text(path, "--certificate-chain")?;
    let chain = CertificateInput::chain_from_pem(&text)
        .map_err(|e| Error::InvalidInput(format!("--certificate-chain {}: {e}", path.display())))?;
    Ok(TrustedRoot {
        tlogs: vec![],
        certificate_authorities: vec![CertificateAuthority {
            chain_der: chain,
            validity: Validity::since(SystemTime::UNIX_EPOCH),
            uri: format!("--certificate-chain {}", path.display()),
        }],
    })
}

/// A certificate file's text; any failure is invalid input naming the flag and the file.
fn read_text(path: &Path, flag: &str) -> Result<String, Error> {
    let bytes = read_small_file(path, MAX_CERT_FILE)
        .map_err(|e| Error::InvalidInput(format!("{flag} {}: {e:#}", path.display())))?;
    String::from_utf8(bytes)
        .map_err(|_| Error::InvalidInput(format!("{flag} {}: not a PEM text file", path.display())))
}

/// Add what cosign prints for a signature with a certificate to its `optional`: `Subject`,
/// `Issuer`, the GitHub workflow values (under their names and OIDs).
pub fn add_certificate_fields(v: &mut sigbridge::verify::VerifiedSignature) {
    let Some(pem) = &v.certificate else { return };
    let Ok(input) = CertificateInput::from_pem(pem, None) else {
        return;
    };
    // The certificate verified already; one that cannot be read again adds nothing.
    let Ok(identity) = sigbridge::keyless::CertificateIdentity::of(&input.leaf_der) else {
        return;
    };
    let optional = v.parsed.optional.get_or_insert_with(Default::default);
    for (k, value) in identity.cosign_optional() {
        optional.insert(k, serde_json::Value::String(value));
    }
}
