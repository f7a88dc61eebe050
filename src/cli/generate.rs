//! `sigbridge generate IMAGE [-a k=v]`: the payload, byte-identical to `cosign generate`.
//!
//! A digest reference needs no registry (the air-gapped flow makes payloads where the registry
//! may be out of reach); only a tag, or `--check-exists`, talks to it.

use std::io::Write as _;

use sigbridge::payload::{parse_annotations, SimpleSigningPayload};
use sigbridge::reference::ImageReference;
use sigbridge::ExitCode;

use super::common::{resolve, RegistryArgs, Verb};

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
    // `cosign generate` claims no identity: always the repository name.
    let payload = SimpleSigningPayload::new(repository.name(), digest, annotations);
    let mut out = std::io::stdout().lock();
    out.write_all(&payload.to_bytes())?;
    out.flush()?;
    Ok(ExitCode::Success)
}
