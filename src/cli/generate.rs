//! `sigbridge generate IMAGE [-a k=v]`: the payload, byte-identical to `cosign generate`.

use std::io::Write as _;

use sigbridge::payload::{parse_annotations, SimpleSigningPayload};
use sigbridge::ExitCode;

use super::common::{resolve, RegistryArgs, Verb};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image (a tag is resolved to its digest once).
    pub image: String,

    /// Extra key=value pairs for the payload's `optional` section (repeatable, comma-separated).
    #[arg(short = 'a', long = "annotations", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let annotations = parse_annotations(&args.annotations)?;
    let client = args.registry.client()?;
    let image = resolve(&client, &args.image, Verb::Sign).await?;
    // `cosign generate` claims no identity: always the repository name.
    let payload =
        SimpleSigningPayload::new(image.repository().name(), image.digest.clone(), annotations);
    let mut out = std::io::stdout().lock();
    out.write_all(&payload.to_bytes())?;
    out.flush()?;
    Ok(ExitCode::Success)
}
