//! `sigbridge signpath status|cancel ID --signer URI`. (`sign --no-wait`/`--resume` are generic
//! sign flags; the provider answers them through the Signer contract.)

use sigbridge::providers::{open_error, SignerSpec};
use sigbridge::{Error, ExitCode};
use sigbridge_signer::SignerError;
use sigbridge_signpath::{open_signpath, ClientError, RequestId, SignPathSigner, PROVIDER_NAME};

use super::{LogFormat, OutputFormat};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(Debug, clap::Subcommand)]
pub enum Sub {
    /// Show a signing request's status (WaitingForApproval, InProgress, Completed, Denied,
    /// Failed, Canceled).
    Status(IdArgs),
    /// Cancel a signing request that has not reached a final status.
    Cancel(IdArgs),
}

#[derive(Debug, clap::Args)]
pub struct IdArgs {
    /// The signing request id (a UUID, as printed by `sign`).
    #[arg(value_name = "ID")]
    pub id: String,

    /// The `signpath://` URI of the signing policy (the token comes from SIGNPATH_API_TOKEN
    /// or a token file, never from the command line).
    #[arg(long, value_name = "SIGNER", env = "SIGBRIDGE_SIGNER")]
    pub signer: String,

    /// Output on stdout.
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// The SignPath signer `--signer` names (after profile resolution), for `flag`.
fn open(signer: &str, flag: &str) -> anyhow::Result<SignPathSigner> {
    let uri = super::signer::resolve(signer)?;
    let spec = SignerSpec::parse(&uri)?;
    if spec.provider().name() != PROVIDER_NAME {
        anyhow::bail!(Error::InvalidInput(format!(
            "{flag} needs a signpath:// signer, not {signer:?}"
        )));
    }
    let ctx = super::signer::context(signer, LogFormat::Text, None);
    Ok(open_signpath(spec.uri(), &ctx).map_err(open_error)?)
}

fn request_id(text: &str) -> anyhow::Result<RequestId> {
    text.parse::<RequestId>()
        .map_err(|e| Error::InvalidInput(e.to_string()).into())
}

fn signer_error(e: ClientError) -> anyhow::Error {
    Error::Signer {
        signer: "signpath".into(),
        source: SignerError::wrap(e.kind(), e),
    }
    .into()
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Sub::Status(a) => status(a).await,
        Sub::Cancel(a) => cancel(a).await,
    }
}

fn print_status(
    id: &RequestId,
    status: &sigbridge_signpath::RequestStatus,
    output: OutputFormat,
) -> anyhow::Result<()> {
    match output {
        OutputFormat::Json => {
            let mut v = serde_json::to_value(status)?;
            if let Some(o) = v.as_object_mut() {
                o.insert("id".into(), serde_json::Value::String(id.to_string()));
            }
            println!("{v}");
        }
        OutputFormat::Text => {
            println!("Signing request: {id}");
            println!("Status:          {}", status.status);
            if let Some(w) = &status.workflow_status {
                println!("Workflow status: {w}");
            }
            println!(
                "Final:           {}",
                if status.is_final { "yes" } else { "no" }
            );
            let rows = [
                ("Project", &status.project_slug),
                ("Signing policy", &status.signing_policy_slug),
                ("Artifact config", &status.artifact_configuration_slug),
                ("Description", &status.description),
                ("Web link", &status.web_link),
            ];
            for (name, value) in rows {
                if let Some(v) = value {
                    println!("{:<16} {v}", format!("{name}:"));
                }
            }
        }
    }
    Ok(())
}

async fn status(args: IdArgs) -> anyhow::Result<ExitCode> {
    let id = request_id(&args.id)?;
    let signer = open(&args.signer, "signpath status")?;
    let status = signer
        .client()
        .get_request(&id)
        .await
        .map_err(signer_error)?;
    print_status(&id, &status, args.output)?;
    Ok(ExitCode::Success)
}

async fn cancel(args: IdArgs) -> anyhow::Result<ExitCode> {
    let id = request_id(&args.id)?;
    let signer = open(&args.signer, "signpath cancel")?;
    let client = signer.client();
    if let Err(e) = client.cancel(&id).await {
        // A request that is already final cannot be canceled: say which final status it has.
        if matches!(e.status(), Some(400 | 409)) {
            if let Ok(s) = client.get_request(&id).await {
                if s.is_final {
                    // Not a signer failure (8): the request is fine, just already over.
                    anyhow::bail!(Error::AlreadyFinal(format!(
                        "signing request {id} is already {} and can no longer be canceled; nothing was changed",
                        s.status
                    )));
                }
            }
        }
        return Err(signer_error(e));
    }
    eprintln!("Canceled signing request {id}");
    let status = client.get_request(&id).await.map_err(signer_error)?;
    print_status(&id, &status, args.output)?;
    Ok(ExitCode::Success)
}
