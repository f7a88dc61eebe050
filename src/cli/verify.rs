//! `sigbridge verify --key PUB IMAGE`: cosign's checks, output layout and exit codes. Without
//! `--key`, keyless: the `--certificate-*` flags select the signer (see [`keyless_args`]).

use std::collections::BTreeMap;
use std::io::Write as _;

use anyhow::Context as _;
use serde_json::{json, Value};
use sigbridge::format::bundle::{BUNDLE_MEDIA_TYPE, SIGN_PREDICATE_TYPE};
use sigbridge::format::{SigstoreBundle, SimpleSigning};
use sigbridge::payload::parse_annotations;
use sigbridge::registry::manifest::Descriptor;
use sigbridge::resolve::ResolvedImage;
use sigbridge::store::{ReferrersStore, SigTagStore, SignatureStore};
use sigbridge::verify::{
    verify_image, verify_layers, SignatureCheck, VerifiedSignature, VerifyOptions,
    DEFAULT_MAX_PAYLOAD_SIZE,
};
use sigbridge::ExitCode;
use sigbridge_signer::PublicKey;

use sigbridge::providers::SignerSpec;

mod keyless;

use super::common::{read_small_file, resolve, signature_repository_override, RegistryArgs, Verb};
use super::formats::OneFormat;
use super::OutputFormat;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The public key: a PEM file (PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE), env://VAR, a
    /// signer URI such as `pkcs11:` (the key is read from the token, as cosign does), or a
    /// signer profile name from sigbridge.toml. Without it, keyless verification (the
    /// `--certificate-*` flags).
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,

    #[command(flatten)]
    pub keyless: keyless::KeylessArgs,

    /// The image to verify.
    pub image: String,

    /// Require these key=value annotations (string values) in the payload.
    #[arg(short = 'a', long = "annotations", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,

    /// stdout format: json (cosign's default: the verified payloads as a JSON array) or text
    /// (each raw payload on its own line).
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Json)]
    pub output: OutputFormat,

    /// Look only at this format's signatures. Without it, as cosign 3: Sigstore bundles among
    /// the image's referrers if there is any, else the legacy `.sig` signatures.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<OneFormat>,

    /// Accepted for cosign compatibility: sigbridge never consults a transparency log.
    #[arg(long, hide = true)]
    pub insecure_ignore_tlog: bool,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let check = match &args.key {
        Some(spec) => SignatureCheck::Key(Box::new(load_public_key(spec).await?)),
        None => SignatureCheck::Keyless(Box::new(args.keyless.check()?)),
    };
    let annotations = parse_annotations(&args.annotations)?;
    let client = args.registry.client()?;
    let image = resolve(&client, &args.image, Verb::Verify).await?;
    // COSIGN_REPOSITORY holds both kinds, as cosign 3.1.1 looks for both there.
    let signature_repository = signature_repository_override()?;
    let legacy_store = SigTagStore::new(&client, signature_repository.clone());
    let bundle_store = ReferrersStore::new(&client, BUNDLE_MEDIA_TYPE)
        .with_repository_override(signature_repository);
    let max_payload_size = match std::env::var("COSIGN_MAX_ATTACHMENT_SIZE") {
        Ok(v) => v.parse().with_context(|| {
            format!("COSIGN_MAX_ATTACHMENT_SIZE={v:?} is not a number of bytes")
        })?,
        Err(_) => DEFAULT_MAX_PAYLOAD_SIZE,
    };
    let opts = VerifyOptions {
        check,
        annotations: annotations.clone(),
        max_payload_size,
    };
    // The key hint is only written when signing; any key does for reading.
    let bundle_format = match &opts.check {
        SignatureCheck::Key(key) => SigstoreBundle::new(key, BTreeMap::new()),
        SignatureCheck::Keyless(_) => SigstoreBundle::reader(),
    };
    let legacy_format = SimpleSigning::default();
    let (bundles, mut verified) = match args.format {
        Some(OneFormat::Bundle) => (
            true,
            verify_image(&bundle_format, &bundle_store, &image, &opts).await?,
        ),
        Some(OneFormat::Legacy) => (
            false,
            verify_image(&legacy_format, &legacy_store, &image, &opts).await?,
        ),
        // The bundles found while deciding are the ones verified: read once, not twice.
        None => match bundles_of(&bundle_store, &image).await {
            Some(found) => (
                true,
                verify_layers(&bundle_format, &bundle_store, &image, &found, &opts).await?,
            ),
            None => (
                false,
                verify_image(&legacy_format, &legacy_store, &image, &opts).await?,
            ),
        },
    };
    if bundles {
        // cosign 3 prints the verified reference where a legacy payload has its identity.
        for v in &mut verified {
            if v.parsed.signature_type == SIGN_PREDICATE_TYPE {
                v.parsed.docker_reference = image.pinned();
            }
        }
    }
    if matches!(opts.check, SignatureCheck::Keyless(_)) {
        verified
            .iter_mut()
            .for_each(keyless::add_certificate_fields);
    }

    let name = match image.reference.tag() {
        Some(tag) if image.from_tag => format!("{}:{tag}", image.repository()),
        _ => image.pinned(),
    };
    let mut err = std::io::stderr().lock();
    writeln!(err, "\nVerification for {name} --")?;
    writeln!(
        err,
        "The following checks were performed on each of these signatures:"
    )?;
    if !annotations.is_empty() {
        writeln!(err, "  - The specified annotations were verified.")?;
    }
    writeln!(err, "  - The cosign claims were validated")?;
    match &opts.check {
        SignatureCheck::Key(_) => writeln!(
            err,
            "  - The signatures were verified against the specified public key"
        )?,
        SignatureCheck::Keyless(_) => {
            writeln!(
                err,
                "  - Existence of the claims in the transparency log was verified offline"
            )?;
            writeln!(err, "  - The code-signing certificate was verified using trusted certificate authority certificates")?;
        }
    }
    drop(err);

    let mut out = std::io::stdout().lock();
    match args.output {
        OutputFormat::Json => {
            let all: Vec<Value> = verified.iter().map(cosign_view).collect();
            writeln!(out, "\n{}", serde_json::to_string(&all)?)?;
        }
        OutputFormat::Text => {
            for v in &verified {
                out.write_all(&v.payload)?;
                writeln!(out)?;
            }
        }
    }
    out.flush()?;
    Ok(ExitCode::Success)
}

/// The image's Sigstore bundle v0.3 referrers, if it has any (cosign 3 then verifies bundles
/// only). A registry that fails to list them is read as having none: the legacy signatures
/// are still checked with the key.
async fn bundles_of(store: &ReferrersStore<'_>, image: &ResolvedImage) -> Option<Vec<Descriptor>> {
    match store.read(image).await {
        Ok(found) if found.iter().any(|d| d.media_type == BUNDLE_MEDIA_TYPE) => Some(found),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(
                "could not list the referrers of {}: {e}; checking legacy signatures only",
                image.pinned()
            );
            None
        }
    }
}

/// The payload as cosign re-marshals it for output (canonical key spelling, unknown fields dropped).
fn cosign_view(v: &VerifiedSignature) -> Value {
    let p = &v.parsed;
    json!({
        "critical": {
            "identity": {"docker-reference": p.docker_reference},
            "image": {"docker-manifest-digest": p.manifest_digest},
            "type": p.signature_type,
        },
        "optional": p.optional.clone().map(Value::Object).unwrap_or(Value::Null),
    })
}

/// A key from a file or `env://VAR`, as cosign's `--key` accepts them, or the public key of a
/// signer (a URI a provider claims, or a profile naming any signer), read the way
/// `public-key --signer` reads it.
pub async fn load_public_key(spec: &str) -> anyhow::Result<PublicKey> {
    let resolved = super::signer::resolve(spec)?;
    let is_signer = resolved != spec || SignerSpec::parse(&resolved).is_ok_and(|s| s.is_uri());
    if is_signer {
        let ctx = super::signer::context(spec, super::LogFormat::Text, None);
        let signer = SignerSpec::parse(&resolved)?.open(&ctx)?;
        return signer.public_key().await.map_err(|source| {
            anyhow::Error::from(sigbridge::Error::Signer {
                signer: signer.describe(),
                source,
            })
        });
    }
    let pem = if let Some(var) = spec.strip_prefix("env://") {
        std::env::var(var).map_err(|_| {
            sigbridge::Error::KeyUnavailable(format!(
                "--key {spec}: environment variable {var} is not set"
            ))
        })?
    } else {
        // An unreadable or oversized key file is a key problem (exit 4), not malformed input.
        let bytes = read_small_file(std::path::Path::new(spec), 1024 * 1024)
            .map_err(|e| sigbridge::Error::KeyUnavailable(format!("--key {spec}: {e:#}")))?;
        String::from_utf8(bytes).map_err(|_| {
            sigbridge::Error::KeyUnavailable(format!("--key {spec}: not a PEM text file"))
        })?
    };
    PublicKey::from_pem(&pem).map_err(|source| {
        anyhow::Error::from(sigbridge::Error::InvalidKey {
            context: format!("loading public key {spec}"),
            source,
        })
    })
}
