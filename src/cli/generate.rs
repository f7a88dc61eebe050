//! `sigbridge generate IMAGE [-a k=v]`: the payload, byte-identical to `cosign generate`.
//!
//! A digest reference needs no registry (the air-gapped flow makes payloads where the registry
//! may be out of reach); only a tag, or `--check-exists`, talks to it.

use std::io::Write as _;

use sigbridge::payload::{parse_annotations, SimpleSigningPayload};
use sigbridge::reference::ImageReference;
use sigbridge::ExitCode;

use super::common::{resolve, RegistryArgs, Verb};
use super::formats::OneFormat;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image. A digest (IMAGE@sha256:…) is used as is, offline; a tag is resolved to its
    /// digest once, at the registry.
    pub image: String,

    /// With a digest reference, ask the registry that the image exists (exit 11 if not)
    /// instead of working offline.
    #[arg(long)]
    pub check_exists: bool,

    /// Extra key=value pairs for the payload's `optional` section (repeatable, comma-separated).
    #[arg(short = 'a', long = "annotations", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,

    /// legacy: cosign's simple-signing payload; bundle: the DSSE pre-authentication encoding of
    /// cosign 3's in-toto statement (the exact bytes a key signs for a Sigstore bundle).
    #[arg(long, value_enum, default_value_t = OneFormat::Legacy)]
    pub format: OneFormat,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let annotations = parse_annotations(&args.annotations)?;
    let reference = ImageReference::parse(&args.image)?;
    let (repository, digest) = match reference.digest() {
        Some(digest) if !args.check_exists => (reference.repository().clone(), digest.clone()),
        _ => {
            let client = args.registry.client()?;
            let image = resolve(&client, &args.image, Verb::Sign).await?;
            (image.repository().clone(), image.digest.clone())
        }
    };
    let bytes = match args.format {
        // `cosign generate` claims no identity: always the repository name.
        OneFormat::Legacy => {
            SimpleSigningPayload::new(repository.name(), digest, annotations).to_bytes()
        }
        OneFormat::Bundle => sigbridge::format::bundle::signed_bytes(&digest, &annotations),
    };
    let mut out = std::io::stdout().lock();
    out.write_all(&bytes)?;
    out.flush()?;
    Ok(ExitCode::Success)
}
