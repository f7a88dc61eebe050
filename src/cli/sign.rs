//! `sigbridge sign --signer SIGNER IMAGE...`: the whole flow.

use anyhow::Context as _;
use sigbridge::payload::parse_annotations;
use sigbridge::sign::{sign_images, SignOptions};
use sigbridge::signer::{open_signer, SignerSpec};
use sigbridge::ExitCode;

use super::common::{resolve, signature_repository_override, CosignPasswords, RegistryArgs, Verb};
use super::OutputFormat;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The signer: a key file path, a `pkcs11:` URI or a `signpath://` URI.
    #[arg(
        long,
        visible_alias = "key",
        value_name = "SIGNER",
        env = "SIGBRIDGE_SIGNER"
    )]
    pub signer: String,

    /// Images to sign (tags are resolved to digests once, up front).
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,

    /// Extra key=value pairs for the payload's `optional` section (repeatable, comma-separated).
    #[arg(short = 'a', long = "annotations", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,

    /// The docker-reference to claim instead of the repository name, e.g. HOST/REPO:TAG (what
    /// podman/CRI-O default policies require). cosign calls this --sign-container-identity.
    #[arg(long, visible_alias = "sign-container-identity", value_name = "REF")]
    pub identity: Option<String>,

    /// Output on stdout: text (one signed reference per line) or json (one object per line).
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

    /// Accepted for cosign compatibility (sigbridge never prompts for confirmation).
    #[arg(long, short = 'y', hide = true)]
    pub yes: bool,

    /// Accepted for cosign compatibility; sigbridge has no transparency-log upload.
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "false")]
    pub tlog_upload: Option<bool>,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let annotations = parse_annotations(&args.annotations)?;
    if let Some(identity) = &args.identity {
        sigbridge::reference::ImageReference::parse(identity)
            .with_context(|| format!("--identity {identity:?} is not an image reference"))?;
    }
    let spec = SignerSpec::parse(&args.signer)?;
    let signer = open_signer(&spec, &CosignPasswords)?;
    let client = args.registry.client()?;
    let signature_repository = signature_repository_override()?;

    let mut images = Vec::with_capacity(args.images.len());
    for input in &args.images {
        images.push(resolve(&client, input, Verb::Sign).await?);
    }
    let opts = SignOptions {
        annotations,
        identity: args.identity.clone(),
        signature_repository,
        jobs: 8,
    };
    let results = sign_images(&client, signer.as_ref(), &images, &opts).await?;

    let mut worst = ExitCode::Success;
    for (image, result) in images.iter().zip(results) {
        match result {
            Ok(signed) => {
                eprintln!("Pushing signature to: {}", signed.signature_repository);
                match args.output {
                    OutputFormat::Text => println!("{}", signed.image),
                    OutputFormat::Json => println!("{}", serde_json::to_string(&signed)?),
                }
            }
            Err(e) => {
                let code = e.exit_code();
                eprintln!("Error: signing {}: {e}", image.pinned());
                if args.output == OutputFormat::Json {
                    let line = serde_json::json!({
                        "image": image.pinned(),
                        "digest": image.digest,
                        "error": e.to_string(),
                        "exitCode": code as u8,
                    });
                    println!("{line}");
                }
                if worst == ExitCode::Success {
                    worst = code;
                }
            }
        }
    }
    Ok(worst)
}
