//! What `--key` names when verifying, read as cosign reads it: a PEM file, `env://VAR`, an
//! `https://` URL, or (sigbridge's own) a signer URI such as `pkcs11:` or a profile, whose
//! public key is asked of the signer. References to where cosign can read keys and sigbridge
//! cannot (Kubernetes secrets, cloud KMS, Vault, GitLab) are refused with what to do instead.

use std::path::PathBuf;
use std::time::Duration;

use sigbridge::providers::SignerSpec;
use sigbridge::registry::{get_small, RegistryOptions};
use sigbridge::Error;
use sigbridge_signer::PublicKey;
use url::Url;

use super::common::read_small_file;

/// A public key document larger than this is not a public key (a 16384-bit RSA key in PEM is
/// under 3 KiB; a certificate chain well under 64 KiB).
pub const MAX_KEY_URL_BODY: u64 = 64 * 1024;
/// A key file larger than this is refused.
const MAX_KEY_FILE: u64 = 1024 * 1024;
/// How long fetching a key URL may take, all in.
const KEY_URL_TIMEOUT: Duration = Duration::from_secs(30);
/// The flag that allows `http://` key URLs on loopback (keep in step with `verify`'s flags).
pub const HTTP_KEY_FLAG: &str = "--allow-http-key-url";

/// Where cosign reads keys and sigbridge does not, with what each is.
const REFUSED: &[(&str, &str)] = &[
    ("k8s://", "Kubernetes secrets"),
    ("awskms://", "AWS KMS"),
    ("gcpkms://", "Google Cloud KMS"),
    ("azurekms://", "Azure Key Vault"),
    ("hashivault://", "HashiCorp Vault"),
    ("gitlab://", "GitLab project variables"),
];

/// How a key URL is fetched: the registry client's extra CAs, and whether plain HTTP to
/// loopback was asked for.
#[derive(Clone, Debug, Default)]
pub struct KeyFetch {
    /// `--registry-cacert` files, trusted in addition to the system roots.
    pub ca_files: Vec<PathBuf>,
    /// `--allow-http-key-url`: accept `http://` to 127.0.0.1, ::1 or localhost.
    pub allow_loopback_http: bool,
}

/// The public key `spec` names (see the module comment). Every failure is a key problem
/// (exit 4) whose message starts with `--key SPEC`.
pub async fn load_public_key(spec: &str, fetch: &KeyFetch) -> anyhow::Result<PublicKey> {
    if let Some((_, what)) = REFUSED.iter().find(|(p, _)| spec.starts_with(p)) {
        anyhow::bail!(Error::KeyUnavailable(format!(
            "--key {spec}: sigbridge does not read keys from {what}. Export the public key to a file \
             (for example `cosign public-key --key {spec} > key.pub`) and pass --key key.pub"
        )));
    }
    let pem = if let Some(var) = spec.strip_prefix("env://") {
        std::env::var(var).map_err(|_| {
            Error::KeyUnavailable(format!(
                "--key {spec}: environment variable {var} is not set"
            ))
        })?
    } else if spec.starts_with("https://") || spec.starts_with("http://") {
        fetch_pem(spec, fetch).await?
    } else if let Some(key) = signer_key(spec).await? {
        return Ok(key);
    } else {
        // An unreadable or oversized key file is a key problem (exit 4), not malformed input.
        let bytes = read_small_file(std::path::Path::new(spec), MAX_KEY_FILE)
            .map_err(|e| Error::KeyUnavailable(format!("--key {spec}: {e:#}")))?;
        String::from_utf8(bytes)
            .map_err(|_| Error::KeyUnavailable(format!("--key {spec}: not a PEM text file")))?
    };
    PublicKey::from_pem(&pem).map_err(|source| {
        anyhow::Error::from(Error::InvalidKey {
            context: format!("loading public key {}", shown(spec)),
            source,
        })
    })
}

/// The public key of a signer (a URI a provider claims, or a profile naming any signer), read
/// the way `public-key --signer` reads it; `None` when `spec` names no signer (a key file).
async fn signer_key(spec: &str) -> anyhow::Result<Option<PublicKey>> {
    let resolved = super::signer::resolve(spec)?;
    let is_signer = resolved != spec || SignerSpec::parse(&resolved).is_ok_and(|s| s.is_uri());
    if !is_signer {
        return Ok(None);
    }
    let ctx = super::signer::context(spec, super::LogFormat::Text, None);
    let signer = SignerSpec::parse(&resolved)?.open(&ctx)?;
    let key = signer.public_key().await.map_err(|source| {
        anyhow::Error::from(Error::Signer {
            signer: signer.describe(),
            source,
        })
    })?;
    Ok(Some(key))
}

/// The PEM text at a key URL.
async fn fetch_pem(spec: &str, fetch: &KeyFetch) -> anyhow::Result<String> {
    let unavailable = |detail: String| Error::KeyUnavailable(format!("--key {detail}"));
    let url =
        Url::parse(spec).map_err(|e| unavailable(format!("{}: not a URL ({e})", shown(spec))))?;
    let opts = RegistryOptions {
        ca_files: fetch.ca_files.clone(),
        request_timeout: KEY_URL_TIMEOUT,
        ..RegistryOptions::default()
    };
    let body = get_small(&opts, &url, MAX_KEY_URL_BODY, fetch.allow_loopback_http)
        .await
        .map_err(|e| {
            let hint = if url.scheme() == "http" && !fetch.allow_loopback_http {
                format!(" (for a server on this machine, pass {HTTP_KEY_FLAG})")
            } else {
                String::new()
            };
            unavailable(format!("{e}{hint}"))
        })?;
    String::from_utf8(body.to_vec())
        .map_err(|_| unavailable(format!("{}: the answer is not PEM text", shown(spec))))
        .map_err(anyhow::Error::from)
}

/// `spec` for messages: a URL without its query string (it may carry a token).
fn shown(spec: &str) -> &str {
    if !(spec.starts_with("https://") || spec.starts_with("http://")) {
        return spec;
    }
    spec.split_once('?').map_or(spec, |(before, _)| before)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sigbridge::ExitCode;

    fn refusal(spec: &str) -> anyhow::Error {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(load_public_key(spec, &KeyFetch::default()))
            .expect_err(spec)
    }

    #[test]
    fn references_to_other_key_stores_are_refused_with_what_to_do() {
        for (spec, what) in [
            ("k8s://ns/cosign", "Kubernetes secrets"),
            ("awskms:///arn:aws:kms:eu-west-1:1:key/x", "AWS KMS"),
            (
                "gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k",
                "Google Cloud KMS",
            ),
            ("azurekms://vault.vault.azure.net/key", "Azure Key Vault"),
            ("hashivault://transit-key", "HashiCorp Vault"),
            ("gitlab://group/project", "GitLab project variables"),
        ] {
            let err = refusal(spec);
            let msg = format!("{err:#}");
            assert!(msg.contains(what), "{msg}");
            assert!(msg.contains("Export the public key to a file"), "{msg}");
            assert_eq!(ExitCode::for_chain(err.chain()), ExitCode::Key, "{spec}");
        }
    }

    #[test]
    fn plain_http_is_refused_without_the_flag_and_off_loopback() {
        let err = refusal("http://127.0.0.1:9/cosign.pub");
        let msg = format!("{err:#}");
        assert!(msg.contains("plain HTTP is refused"), "{msg}");
        assert!(msg.contains(HTTP_KEY_FLAG), "{msg}");
        assert_eq!(ExitCode::for_chain(err.chain()), ExitCode::Key);

        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let fetch = KeyFetch {
            allow_loopback_http: true,
            ..KeyFetch::default()
        };
        let err = rt
            .block_on(load_public_key("http://192.0.2.1/cosign.pub", &fetch))
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("plain HTTP is refused"),
            "{err:#}"
        );
    }

    #[test]
    fn a_url_query_is_not_shown() {
        let err = refusal("https://[::1/cosign.pub?token=secret");
        let msg = format!("{err:#}");
        assert!(!msg.contains("secret"), "{msg}");
    }
}
