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
use sigbridge::tlog::TlogPolicy;
use sigbridge::trust::TrustedRoot;
use sigbridge::verify::{
    verify_image, verify_layers, SignatureCheck, VerifiedSignature, VerifyOptions,
    DEFAULT_MAX_PAYLOAD_SIZE,
};
use sigbridge::ExitCode;
use sigbridge_signer::PublicKey;

mod keyless;

use super::common::{resolve, signature_repository_override, RegistryArgs, Verb};
use super::formats::OneFormat;
use super::go_json;
use super::key_source::{self, KeyFetch};
use super::OutputFormat;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The public key: a PEM file (PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE), env://VAR, an
    /// https:// URL (trusting the system roots and --registry-cacert), a signer URI such as
    /// `pkcs11:` (the key is read from the token, as cosign does), or a signer profile name
    /// from sigbridge.toml. Without it, keyless verification (the `--certificate-*` flags).
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,

    #[command(flatten)]
    pub keyless: keyless::KeylessArgs,

    /// Accept an http:// --key URL on this machine (127.0.0.1, ::1, localhost); plain HTTP
    /// elsewhere is always refused.
    #[arg(long)]
    pub allow_http_key_url: bool,

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

    /// Skip transparency-log checks: Rekor bundles and `tlogEntries` are neither read nor
    /// required (as cosign's flag).
    #[arg(long, conflicts_with = "require_tlog")]
    pub insecure_ignore_tlog: bool,

    /// A Sigstore trusted_root.json: the transparency logs (and certificate authorities)
    /// trusted, each within its validFor. Never fetched; see docs/verify.md to pin one.
    /// Without it, SIGSTORE_REKOR_PUBLIC_KEY (PEM log key) and SIGSTORE_ROOT_FILE (PEM roots)
    /// are read, as cosign reads them.
    #[arg(long, value_name = "FILE")]
    pub trusted_root: Option<std::path::PathBuf>,

    /// Fail a signature that has no verified transparency-log entry (by default, a key-signed
    /// signature without one passes; an entry present is always checked).
    #[arg(long)]
    pub require_tlog: bool,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let tlog = tlog_policy(&args)?;
    let check = match &args.key {
        Some(spec) => {
            let fetch = KeyFetch {
                ca_files: args.registry.registry_cacert.clone(),
                allow_loopback_http: args.allow_http_key_url,
            };
            SignatureCheck::Key(Box::new(key_source::load_public_key(spec, &fetch).await?))
        }
        None => SignatureCheck::Keyless(Box::new(args.keyless.check(tlog.root.as_ref())?)),
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
        tlog,
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
    if verified.iter().any(|v| v.tlog.is_some()) {
        writeln!(
            err,
            "  - Existence of the claims in the transparency log was verified offline"
        )?;
    }
    match &opts.check {
        SignatureCheck::Key(_) => writeln!(
            err,
            "  - The signatures were verified against the specified public key"
        )?,
        SignatureCheck::Keyless(_) => writeln!(
            err,
            "  - The code-signing certificate was verified using trusted certificate authority certificates"
        )?,
    }
    drop(err);

    let mut out = std::io::stdout().lock();
    match args.output {
        OutputFormat::Json => {
            let all: Vec<CosignView<'_>> = verified.iter().map(cosign_view).collect();
            // Go's encoder, as cosign prints: HTML characters escaped, float64 numbers.
            writeln!(out, "\n{}", go_json::to_string(&all)?)?;
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

/// The payload as cosign re-marshals it for output (canonical key spelling, unknown fields
/// dropped; a verified Rekor bundle as `optional.Bundle`, in the field order Go prints it).
fn cosign_view(v: &VerifiedSignature) -> CosignView<'_> {
    let p = &v.parsed;
    let mut optional: Option<BTreeMap<String, OptionalValue<'_>>> = p.optional.as_ref().map(|o| {
        o.iter()
            .map(|(k, v)| (k.clone(), OptionalValue::Plain(v.clone())))
            .collect()
    });
    if let Some(bundle) = v.tlog.as_ref().and_then(|t| t.rekor_bundle.as_ref()) {
        optional
            .get_or_insert_with(BTreeMap::new)
            .insert("Bundle".into(), OptionalValue::Bundle(bundle));
    }
    CosignView {
        critical: json!({
            "identity": {"docker-reference": p.docker_reference},
            "image": {"docker-manifest-digest": p.manifest_digest},
            "type": p.signature_type,
        }),
        optional,
    }
}

/// One verified signature as cosign prints it (Go sorts map keys, as `BTreeMap` does).
#[derive(serde::Serialize)]
struct CosignView<'a> {
    critical: Value,
    optional: Option<BTreeMap<String, OptionalValue<'a>>>,
}

#[derive(serde::Serialize)]
#[serde(untagged)]
enum OptionalValue<'a> {
    Plain(Value),
    Bundle(&'a sigbridge::tlog::RekorBundleView),
}

/// The transparency-log policy of this run, with the trust material from `--trusted-root` or,
/// without it, cosign's `SIGSTORE_REKOR_PUBLIC_KEY` / `SIGSTORE_ROOT_FILE`.
fn tlog_policy(args: &Args) -> anyhow::Result<TlogPolicy> {
    // Trust material that cannot be loaded is a key problem (exit 4), as an unreadable --key.
    let unavailable =
        |e: sigbridge::trust::TrustError| sigbridge::Error::TrustMaterial(e.to_string());
    let root = if let Some(path) = &args.trusted_root {
        for var in ["SIGSTORE_REKOR_PUBLIC_KEY", "SIGSTORE_ROOT_FILE"] {
            if std::env::var_os(var).is_some_and(|v| !v.is_empty()) {
                tracing::warn!("{var} is ignored: --trusted-root gives the trust material");
            }
        }
        Some(TrustedRoot::from_trusted_root_file(path).map_err(unavailable)?)
    } else {
        let mut root = TrustedRoot::default();
        if let Some(path) = non_empty_env("SIGSTORE_REKOR_PUBLIC_KEY") {
            root.add_rekor_public_keys_file(&path)
                .map_err(unavailable)?;
        }
        if let Some(path) = non_empty_env("SIGSTORE_ROOT_FILE") {
            root.add_fulcio_roots_file(&path).map_err(unavailable)?;
        }
        (root != TrustedRoot::default()).then_some(root)
    };
    Ok(TlogPolicy {
        root,
        require: args.require_tlog,
        ignore: args.insecure_ignore_tlog,
    })
}

fn non_empty_env(var: &str) -> Option<std::path::PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
}

/// The key `spec` names, as `verify --key` reads it (see `key_source`), with the system roots
/// only for a key URL.
pub async fn load_public_key(spec: &str) -> anyhow::Result<PublicKey> {
    key_source::load_public_key(spec, &KeyFetch::default()).await
}
