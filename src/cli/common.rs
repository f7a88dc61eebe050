//! What several subcommands share: registry flags, passwords, the signature repository, files.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use secrecy::SecretString;
use sigbridge::reference::{ImageReference, Repository};
use sigbridge::registry::{RegistryClient, RegistryOptions};
use sigbridge::resolve::{resolve_image, ResolvedImage};
use sigbridge::{Error, ExitCode};
use sigbridge_signer::{PasswordSource, SignerError, SignerErrorKind};

/// Registry connection flags (cosign's names where cosign has them).
#[derive(Debug, Clone, clap::Args)]
pub struct RegistryArgs {
    /// Allow plain HTTP to registries that are not on loopback (loopback may always use it).
    #[arg(long, env = "SIGBRIDGE_ALLOW_HTTP_REGISTRY")]
    pub allow_http_registry: bool,

    /// Skip TLS certificate verification. Dangerous: prefer --registry-cacert.
    #[arg(long)]
    pub allow_insecure_registry: bool,

    /// Extra PEM CA bundle to trust for registries (repeatable).
    #[arg(
        long = "registry-cacert",
        value_name = "PEM",
        env = "SIGBRIDGE_REGISTRY_CACERT"
    )]
    pub registry_cacert: Vec<PathBuf>,

    /// Registry username for every registry; the password comes from SIGBRIDGE_REGISTRY_PASSWORD
    /// or --registry-password-file, never from the command line.
    #[arg(long, env = "SIGBRIDGE_REGISTRY_USERNAME")]
    pub registry_username: Option<String>,

    /// File holding the registry password (first line).
    #[arg(long, value_name = "FILE")]
    pub registry_password_file: Option<PathBuf>,

    /// Docker config.json to read credentials from (default: $DOCKER_CONFIG/config.json, then
    /// ~/.docker/config.json).
    #[arg(long, value_name = "FILE")]
    pub docker_config: Option<PathBuf>,
}

impl RegistryArgs {
    /// Build the one registry client of this process.
    pub fn client(&self) -> anyhow::Result<RegistryClient> {
        let password = match (
            &self.registry_password_file,
            std::env::var("SIGBRIDGE_REGISTRY_PASSWORD"),
        ) {
            (Some(path), _) => {
                let text = read_small_file(path, 64 * 1024)?;
                let text = String::from_utf8(text)
                    .with_context(|| format!("{} is not UTF-8", path.display()))?;
                Some(SecretString::from(
                    text.lines().next().unwrap_or("").to_string(),
                ))
            }
            (None, Ok(p)) => Some(SecretString::from(p)),
            (None, Err(_)) => None,
        };
        if password.is_some() && self.registry_username.is_none() {
            anyhow::bail!(Error::InvalidInput(
                "a registry password was given without a username: set --registry-username or SIGBRIDGE_REGISTRY_USERNAME".into()
            ));
        }
        let opts = RegistryOptions {
            ca_files: self.registry_cacert.clone(),
            insecure_skip_tls_verify: self.allow_insecure_registry,
            allow_http: self.allow_http_registry,
            username: self.registry_username.clone(),
            password,
            docker_config: self.docker_config.clone(),
            user_agent: format!("sigbridge/{}", env!("CARGO_PKG_VERSION")),
            request_timeout: Duration::from_secs(60),
        };
        Ok(RegistryClient::new(opts)?)
    }
}

/// cosign's `COSIGN_REPOSITORY`: where signatures are stored instead of the image's repository.
pub fn signature_repository_override() -> anyhow::Result<Option<Repository>> {
    match std::env::var("COSIGN_REPOSITORY") {
        Ok(v) if !v.is_empty() => {
            Ok(Some(Repository::parse(&v).with_context(|| {
                format!("COSIGN_REPOSITORY={v:?} is not a repository")
            })?))
        }
        _ => Ok(None),
    }
}

/// Parse and resolve an image, warning (as cosign does) when a tag had to be resolved.
pub async fn resolve(
    client: &RegistryClient,
    input: &str,
    verb: Verb,
) -> anyhow::Result<ResolvedImage> {
    let reference = ImageReference::parse(input)?;
    let resolved = resolve_image(client, &reference).await?;
    if resolved.from_tag {
        let (verb, done) = match verb {
            Verb::Sign => ("sign", "signed"),
            Verb::Verify => ("verify", "verified"),
        };
        tracing::warn!(
            "Image reference {input} uses a tag, not a digest, to identify the image to {verb}.\n    It was resolved once to {}; that digest is what is {done}. Use the digest to be sure.",
            resolved.pinned()
        );
    }
    Ok(resolved)
}

/// What a resolved image is for (only changes the wording of the tag warning).
#[derive(Clone, Copy, Debug)]
pub enum Verb {
    /// Signing or attaching.
    Sign,
    /// Verifying.
    Verify,
}

/// Read a local file, refusing anything larger than `limit` bytes.
pub fn read_small_file(path: &Path, limit: u64) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    let mut buf = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
    if buf.len() as u64 > limit {
        anyhow::bail!(Error::InvalidInput(format!(
            "{} is larger than the {limit}-byte limit",
            path.display()
        )));
    }
    Ok(buf)
}

/// `COSIGN_PASSWORD` held something that is not UTF-8.
pub struct NotUtf8;

/// `COSIGN_PASSWORD` as cosign reads it: set, even to the empty string, means use it.
pub fn cosign_password_env() -> Option<Result<SecretString, NotUtf8>> {
    std::env::var_os("COSIGN_PASSWORD")
        .map(|p| p.into_string().map(SecretString::from).map_err(|_| NotUtf8))
}

/// Passwords as cosign finds them: `COSIGN_PASSWORD` if set (even empty), else a prompt on a
/// terminal, else none (cosign would read all of stdin; we refuse rather than hang).
pub struct CosignPasswords;

impl PasswordSource for CosignPasswords {
    fn password_for(&self, _key: &Path) -> Result<Option<SecretString>, SignerError> {
        if let Some(p) = cosign_password_env() {
            return p.map(Some).map_err(|NotUtf8| {
                SignerError::new(
                    SignerErrorKind::Credentials,
                    "COSIGN_PASSWORD is not valid UTF-8",
                )
            });
        }
        if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
            return Ok(None);
        }
        let p = rpassword::prompt_password("Enter password for private key: ").map_err(|e| {
            SignerError::new(
                SignerErrorKind::Credentials,
                format!("reading the password: {e}"),
            )
        })?;
        Ok(Some(SecretString::from(p)))
    }
}

/// The exit code for an error that reached the binary's edge (the table is in the library:
/// [`ExitCode::for_chain`]).
pub fn exit_code_for(err: &anyhow::Error) -> ExitCode {
    ExitCode::for_chain(err.chain())
}
