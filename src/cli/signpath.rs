//! `sigbridge signpath status|cancel ID --signer URI`, and the SignPath parts of `sign`
//! (`--no-wait`, `--resume ID`, `--wait-timeout`).

use sigbridge::signer::{open_signpath, SignerSpec};
use sigbridge::{Error, ExitCode};
use sigbridge_signer::SignerError;
use sigbridge_signpath::{parse_duration, ClientError, Mode, Reporter, RequestId, SignPathOptions};

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

fn signpath_uri(signer: &str, flag: &str) -> anyhow::Result<String> {
    match SignerSpec::parse(signer)? {
        SignerSpec::SignPath(uri) => Ok(uri),
        _ => anyhow::bail!(Error::InvalidInput(format!(
            "{flag} needs a signpath:// signer, not {signer:?}"
        ))),
    }
}

fn request_id(text: &str) -> anyhow::Result<RequestId> {
    text.parse::<RequestId>()
        .map_err(|e| Error::InvalidInput(e.to_string()).into())
}

fn signer_error(e: ClientError) -> anyhow::Error {
    Error::Signer {
        signer: "signpath".into(),
        source: SignerError::new(e.kind(), e.to_string()),
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
    let uri = signpath_uri(&args.signer, "signpath status")?;
    let signer = open_signpath(&uri, &SignPathOptions::default())?;
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
    let uri = signpath_uri(&args.signer, "signpath cancel")?;
    let signer = open_signpath(&uri, &SignPathOptions::default())?;
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

/// The SignPath options `sign` hands to the signer, from its flags.
pub(super) fn sign_options(
    signer: &str,
    no_wait: bool,
    resume: Option<&str>,
    wait_timeout: Option<&str>,
    log_format: LogFormat,
) -> anyhow::Result<SignPathOptions> {
    let mut options = SignPathOptions::default();
    // --wait-timeout may come from SIGBRIDGE_SIGNPATH_WAIT_TIMEOUT set for every job, so it is
    // ignored for other signers; --no-wait and --resume are refused there.
    if (no_wait || resume.is_some())
        && !matches!(SignerSpec::parse(signer)?, SignerSpec::SignPath(_))
    {
        anyhow::bail!(Error::InvalidInput(
            "--no-wait and --resume apply only to signpath:// signers".into()
        ));
    }
    options.signer_arg = Some(
        shlex::try_quote(signer)
            .map(|q| q.into_owned())
            .unwrap_or_else(|_| signer.to_string()),
    );
    if log_format == LogFormat::Json {
        options.reporter = Reporter::Json;
    }
    if no_wait {
        options.mode = Mode::SubmitOnly;
    }
    if let Some(id) = resume {
        options.mode = Mode::Resume(request_id(id)?);
    }
    if let Some(t) = wait_timeout {
        options.wait_timeout =
            parse_duration(t).map_err(|e| Error::InvalidInput(format!("--wait-timeout: {e}")))?;
    }
    Ok(options)
}

/// With `--no-wait`: print the submitted request's id (and, with `-o json`, the pinned images
/// in the order `--resume` needs them), the command that finishes the run, and return the exit
/// code (0).
pub(super) fn finish_no_wait(
    options: &SignPathOptions,
    output: OutputFormat,
    signer: &str,
    images: &[String],
) -> Option<ExitCode> {
    if options.mode != Mode::SubmitOnly {
        return None;
    }
    let id = options.submitted.lock().ok()?.clone()?;
    let resume = resume_command(signer, &id, images);
    match output {
        OutputFormat::Text => println!("{id}"),
        OutputFormat::Json => println!(
            "{}",
            serde_json::json!({
                "signingRequestId": id.to_string(),
                "images": images,
                "resumeCommand": resume,
            })
        ),
    }
    eprintln!("Once the request is approved, attach the signatures with (same images, same order):\n    {resume}");
    Some(ExitCode::Success)
}

/// `sigbridge sign --signer SIGNER --resume ID IMAGE...`, quoted for a POSIX shell.
pub(super) fn resume_command(signer: &str, id: &RequestId, images: &[String]) -> String {
    let id = id.to_string();
    let mut words = vec![
        "sigbridge",
        "sign",
        "--signer",
        signer,
        "--resume",
        id.as_str(),
    ];
    words.extend(images.iter().map(String::as_str));
    shlex::try_join(words.iter().copied()).unwrap_or_else(|_| words.join(" "))
}
