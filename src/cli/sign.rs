//! `sigbridge sign --signer SIGNER IMAGE...`: the whole flow, for one image or a release of
//! thousands, in one process with bounded concurrency.

use std::io::{BufRead as _, IsTerminal as _, Read as _, Write as _};
use std::time::Instant;

use anyhow::Context as _;
use futures::stream::StreamExt as _;
use sigbridge::payload::parse_annotations;
use sigbridge::providers::{SignerSpec, PROVIDERS};
use sigbridge::reference::ImageReference;
use sigbridge::resolve::{expand_recursive, resolve_image};
use sigbridge::sign::{
    sign_stream, ImageFailure, OpenedSigner, PendingRun, RunFailure, SignOptions,
};
use sigbridge::{Error, ExitCode};

use sigbridge_signer::{parse_duration, SignRequest, Ticket, Wait};

use super::common::{signature_repository_override, RegistryArgs};
use super::formats::{SignFormat, SignTargets};
use super::{LogFormat, OutputFormat};
use sigbridge::config::ProfileFormat;

/// Lines longer than this in --images-from are not image references.
const MAX_REFERENCE_LINE: usize = 4096;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(
        long,
        help = super::signer::signer_help(),
        visible_alias = "key",
        value_name = "SIGNER",
        env = "SIGBRIDGE_SIGNER"
    )]
    pub signer: String,

    /// Images to sign (tags are resolved to digests once, up front).
    #[arg(value_name = "IMAGE", required_unless_present = "images_from")]
    pub images: Vec<String>,

    /// Read more images from FILE, one reference per line (`-` for standard input; blank lines
    /// and lines starting with `#` are skipped).
    #[arg(long, value_name = "FILE")]
    pub images_from: Option<String>,

    /// Also sign every manifest an index lists (cosign's --recursive), so containers/image
    /// policies, which check each platform, accept multi-arch images.
    #[arg(long, short = 'r')]
    pub recursive: bool,

    /// How many registry requests for different images are in flight at once. The default
    /// keeps a registry 50-80 ms away busy (docs/performance.md); lower it for a registry
    /// that throttles, raise it for one further away.
    #[arg(long, short = 'j', default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,

    /// Stop starting new work after the first failure.
    #[arg(long)]
    pub fail_fast: bool,

    /// Extra key=value pairs for the payload's `optional` section (repeatable, comma-separated).
    #[arg(short = 'a', long = "annotations", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,

    /// The docker-reference to claim instead of the repository name, e.g. HOST/REPO:TAG (what
    /// podman/CRI-O default policies require). cosign calls this --sign-container-identity.
    #[arg(long, visible_alias = "sign-container-identity", value_name = "REF")]
    pub identity: Option<String>,

    /// Signature format: legacy (cosign 2's `.sig` tag, the one podman, CRI-O and skopeo
    /// read), bundle (cosign 3's Sigstore bundle as an OCI 1.1 referrer) or both (one signer
    /// call for both). Default: the signer profile's `format`, else legacy.
    #[arg(long, value_enum)]
    pub format: Option<SignFormat>,

    /// Output on stdout: text (one signed reference per line) or json (one object per line,
    /// failures included).
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

    /// Signers that wait for approval: submit the signing request, print its id and exit 0
    /// without waiting or attaching; finish later with `--resume ID`.
    #[arg(long, conflicts_with = "resume")]
    pub no_wait: bool,

    /// Signers that wait for approval: do not submit; pick up the existing signing request ID
    /// (after the process was stopped, or after `--no-wait`) for the same images, annotations
    /// and identity.
    #[arg(long, value_name = "ID")]
    pub resume: Option<String>,

    /// Signers that wait for approval: how long to wait for approval and signing (e.g. 90m,
    /// 6h; default: the signer's own, 6h for signing services). The request stays on the
    /// service when the wait ends; `--resume` picks it up.
    #[arg(long, value_name = "DURATION")]
    pub wait_timeout: Option<String>,

    /// Accepted for cosign compatibility (sigbridge never prompts for confirmation).
    #[arg(long, short = 'y', hide = true)]
    pub yes: bool,

    /// Accepted for cosign compatibility; sigbridge uploads nothing to a transparency log, so
    /// anything but `--tlog-upload=false` prints a warning (cosign's default is true).
    #[arg(
        long,
        hide = true,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pub tlog_upload: Option<bool>,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub async fn run(args: Args, log_format: LogFormat) -> anyhow::Result<ExitCode> {
    let annotations = parse_annotations(&args.annotations)?;
    if let Some(identity) = &args.identity {
        ImageReference::parse(identity)
            .with_context(|| format!("--identity {identity:?} is not an image reference"))?;
    }
    if args.tlog_upload == Some(true) {
        tracing::warn!(
            "sigbridge uploads nothing to a transparency log (--tlog-upload is accepted for cosign compatibility only): verify with `cosign verify --key ... --insecure-ignore-tlog`"
        );
    }
    // Every reference is parsed before anything touches a registry or a key, so a typo in line
    // 900 of a release list fails the run before anything was signed.
    let list = collect_references(&args)?;
    if list.duplicates > 0 {
        eprintln!(
            "Note: {} duplicate image reference(s) in the list were dropped; each image is signed once.",
            list.duplicates
        );
    }
    let references = list.references;
    // The profile is resolved once; the provider table does the rest.
    let uri = super::signer::resolve(&args.signer)?;
    let spec = SignerSpec::parse(&uri)?;
    let (request, resume) = deferral(&args, &spec)?;
    let signer = spec.open(&super::signer::context(
        &args.signer,
        log_format,
        resume.clone(),
    ))?;
    // The signer is opened (module, login, key; password; a service's key check) before any
    // registry work: a wrong PIN or password fails the run once, with nothing touched.
    let opened = OpenedSigner::open(signer.as_ref()).await?;
    let client = args.registry.client()?;
    let signature_repository = signature_repository_override()?;
    let jobs = usize::from(args.jobs);

    let tag_warnings = references
        .iter()
        .filter(|(_, r)| r.digest().is_none())
        .count();
    if tag_warnings > 0 {
        tracing::warn!(
            "{tag_warnings} image reference(s) use a tag, not a digest. Each tag is resolved once, now, and the digest is what is signed and printed."
        );
    }
    let progress = Progress::new(
        references.len() as u64,
        args.output,
        std::io::stderr().is_terminal(),
    );

    // Resolution runs in its own task so the registry lookups of the next batch overlap with
    // signing and attaching the current one.
    let (tx, rx) = tokio::sync::mpsc::channel(jobs * 4);
    let resolver = {
        let client = client.clone();
        let recursive = args.recursive;
        tokio::spawn(async move {
            let mut resolved = futures::stream::iter(references)
                .map(|(input, reference)| {
                    let client = client.clone();
                    async move {
                        let image = match resolve_image(&client, &reference).await {
                            Ok(i) => i,
                            Err(e) => return vec![Err(ImageFailure::new(input, &e))],
                        };
                        if !recursive {
                            return vec![Ok(image)];
                        }
                        let pinned = image.pinned();
                        match expand_recursive(&client, image).await {
                            Ok(all) => all.into_iter().map(Ok).collect(),
                            Err(e) => vec![Err(ImageFailure::new(pinned, &e))],
                        }
                    }
                })
                .buffered(jobs);
            while let Some(items) = resolved.next().await {
                for item in items {
                    if tx.send(item).await.is_err() {
                        return;
                    }
                }
            }
        })
    };

    let format = match args.format {
        Some(f) => f,
        None => match sigbridge::config::profile_format(&args.signer)? {
            Some(ProfileFormat::Legacy) | None => SignFormat::Legacy,
            Some(ProfileFormat::Bundle) => SignFormat::Bundle,
            Some(ProfileFormat::Both) => SignFormat::Both,
        },
    };
    let targets = SignTargets::new(
        format,
        &client,
        opened.key(),
        &annotations,
        args.identity.clone(),
        signature_repository.clone(),
    );
    let targets = targets.list();
    let opts = SignOptions {
        annotations,
        identity: args.identity.clone(),
        signature_repository,
        jobs,
        request,
        resume,
    };
    let started = Instant::now();
    let images = tokio_stream_from(rx);
    let mut write_error: Option<std::io::Error> = None;
    let summary = sign_stream(&targets, &opened, images, &opts, args.fail_fast, |result| {
        progress.record(&result);
        let line = match (result, args.output) {
            (Ok(signed), OutputFormat::Text) => Some(signed.image.clone()),
            (Ok(signed), OutputFormat::Json) => serde_json::to_string(signed).ok(),
            (Err(failure), OutputFormat::Json) => Some(
                serde_json::json!({
                    "image": failure.image,
                    "error": failure.error,
                    "exitCode": failure.exit_code as u8,
                })
                .to_string(),
            ),
            (Err(_), OutputFormat::Text) => None,
        };
        if let Some(line) = line {
            // Each line is flushed as soon as the image is final, so a pipeline that dies
            // mid-run still knows what was done.
            if let Err(e) = progress.stdout_line(&line) {
                write_error.get_or_insert(e);
            }
        }
        if let Err(failure) = result {
            progress.println(&format!(
                "Error: signing {}: {}",
                failure.image, failure.error
            ));
        }
    })
    .await;
    resolver.abort();
    progress.finish();
    if let Some(e) = write_error {
        return Err(e).context("writing results to standard output");
    }
    if let Some(pending) = &summary.pending {
        finish_pending(pending, args.output, &args.signer);
        return Ok(ExitCode::Success);
    }

    let total = summary.attached + summary.already_present + summary.failed;
    let elapsed = started.elapsed().as_secs_f64();
    let duplicates = list.duplicates + summary.duplicates;
    if total > 1 || summary.failed > 0 || duplicates > 0 {
        let duplicates = if duplicates > 0 {
            format!(", {duplicates} duplicate(s) in the list skipped")
        } else {
            String::new()
        };
        eprintln!(
            "Signed {} image(s): {} attached, {} already signed, {} failed{duplicates} in {elapsed:.1} s ({} images/s)",
            total - summary.failed,
            summary.attached,
            summary.already_present,
            summary.failed,
            format_rate(total as f64 / elapsed.max(1e-9)),
        );
    }
    if let Some(failure) = &summary.run_failure {
        report_run_failure(failure, args.output)?;
    }
    Ok(summary.first_failure.unwrap_or(ExitCode::Success))
}

/// How the signer is asked to wait (`--no-wait`, `--wait-timeout`), and the ticket to collect
/// (`--resume`); refused for signers that never wait.
fn deferral(args: &Args, spec: &SignerSpec<'_>) -> anyhow::Result<(SignRequest, Option<Ticket>)> {
    // --wait-timeout may come from a variable set for every job, so it is ignored for signers
    // that never wait; --no-wait and --resume are refused there.
    if (args.no_wait || args.resume.is_some()) && !spec.provider().can_defer() {
        let deferring: Vec<String> = PROVIDERS
            .iter()
            .filter(|p| p.can_defer())
            .filter_map(|p| p.schemes().first())
            .map(|s| format!("{s} signers"))
            .collect();
        anyhow::bail!(Error::InvalidInput(format!(
            "--no-wait and --resume apply only to {}",
            deferring.join(" and ")
        )));
    }
    let wait = if args.no_wait {
        Wait::No
    } else if let Some(t) = &args.wait_timeout {
        Wait::UpTo(
            parse_duration(t).map_err(|e| Error::InvalidInput(format!("--wait-timeout: {e}")))?,
        )
    } else {
        Wait::SignerDefault
    };
    let resume = args
        .resume
        .as_ref()
        .map(|id| Ticket::new(spec.provider().name(), id.clone()));
    Ok((SignRequest { wait }, resume))
}

/// The signer answered "pending" (`--no-wait`): print the ticket (and, with `-o json`, the
/// pinned images in the order `--resume` needs them) and the command that finishes the run.
fn finish_pending(pending: &PendingRun, output: OutputFormat, signer: &str) {
    let resume = resume_command(signer, &pending.ticket, &pending.images);
    match output {
        OutputFormat::Text => println!("{}", pending.ticket),
        OutputFormat::Json => println!(
            "{}",
            serde_json::json!({
                "signingRequestId": pending.ticket.to_string(),
                "images": pending.images,
                "resumeCommand": resume,
            })
        ),
    }
    eprintln!("Once the request is approved, attach the signatures with (same images, same order):\n    {resume}");
}

/// `sigbridge sign --signer SIGNER --resume ID IMAGE...`, quoted for a POSIX shell.
fn resume_command(signer: &str, ticket: &Ticket, images: &[String]) -> String {
    let id = ticket.to_string();
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

/// The signer failed for a whole group: one line on stderr (and one JSON line), not one per
/// image.
fn report_run_failure(failure: &RunFailure, output: OutputFormat) -> anyhow::Result<()> {
    let rest = if failure.rest_not_started {
        "; the images after them were not started"
    } else {
        ""
    };
    eprintln!(
        "Error: {} ({} image(s) not signed{rest})",
        failure.error,
        failure.images.len()
    );
    if output == OutputFormat::Json {
        let line = serde_json::json!({
            "error": failure.error,
            "exitCode": failure.exit_code as u8,
            "imagesNotSigned": failure.images.len(),
            "restNotStarted": failure.rest_not_started,
        });
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")?;
        out.flush()?;
    }
    Ok(())
}

/// A rate as a whole number per second (`12`), or with one decimal below 10 (`0.4`), so a
/// progress line does not show `116.2163/s`.
fn format_rate(per_sec: f64) -> String {
    if !per_sec.is_finite() || per_sec <= 0.0 {
        "0".to_string()
    } else if per_sec < 10.0 {
        format!("{per_sec:.1}")
    } else {
        format!("{}", per_sec.round() as u64)
    }
}

/// The references to sign, each parsed, in list order, without repeats.
struct ReferenceList {
    /// (the input as given, the parsed reference).
    references: Vec<(String, ImageReference)>,
    /// Inputs dropped because the same reference came earlier.
    duplicates: usize,
}

/// References from the arguments and --images-from, each parsed up front. An error names the
/// place (`FILE:LINE`, or the argument) of the line it is about. The same reference given
/// twice is kept once (before any registry lookup, so 10,000 identical lines cost one);
/// different references to the same image are dropped later, once resolved.
fn collect_references(args: &Args) -> anyhow::Result<ReferenceList> {
    let mut inputs: Vec<(String, String)> = args
        .images
        .iter()
        .enumerate()
        .map(|(n, image)| (format!("image argument {}", n + 1), image.clone()))
        .collect();
    if let Some(source) = &args.images_from {
        let mut reader: Box<dyn std::io::BufRead> = if source == "-" {
            Box::new(std::io::BufReader::new(std::io::stdin()))
        } else {
            let file = std::fs::File::open(source).map_err(|e| Error::Io {
                path: source.clone(),
                source: e,
            })?;
            Box::new(std::io::BufReader::new(file))
        };
        let mut n = 0usize;
        loop {
            // Bounded: never buffer more than the limit (plus a line ending) for one line, so
            // a huge or endless line is refused after a few KiB instead of read whole.
            let mut buf = Vec::new();
            let read = (&mut reader)
                .take(MAX_REFERENCE_LINE as u64 + 2)
                .read_until(b'\n', &mut buf)
                .map_err(|e| Error::Io {
                    path: format!("{source}:{}", n + 1),
                    source: e,
                })?;
            if read == 0 {
                break;
            }
            n += 1;
            if buf.last() == Some(&b'\n') {
                buf.pop();
                if buf.last() == Some(&b'\r') {
                    buf.pop();
                }
            }
            if buf.len() > MAX_REFERENCE_LINE {
                anyhow::bail!(Error::InvalidInput(format!(
                    "{source}:{n}: line longer than {MAX_REFERENCE_LINE} bytes"
                )));
            }
            let line = String::from_utf8(buf).map_err(|_| {
                Error::InvalidInput(format!(
                    "{source}:{n}: not valid UTF-8: the list must be UTF-8 text, one image reference per line"
                ))
            })?;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            inputs.push((format!("{source}:{n}"), line.to_string()));
        }
    }
    if inputs.is_empty() {
        anyhow::bail!(Error::InvalidInput("no images to sign".into()));
    }
    let mut seen = std::collections::HashSet::new();
    let mut duplicates = 0;
    let mut references = Vec::with_capacity(inputs.len());
    for (place, input) in inputs {
        let reference = ImageReference::parse(&input)
            .map_err(|e| Error::InvalidInput(format!("{place}: {input:?}: {e}")))?;
        if !seen.insert(reference.to_string()) {
            duplicates += 1;
            continue;
        }
        references.push((input, reference));
    }
    Ok(ReferenceList {
        references,
        duplicates,
    })
}

fn tokio_stream_from<T>(mut rx: tokio::sync::mpsc::Receiver<T>) -> impl futures::Stream<Item = T> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// A progress bar on stderr when stderr is a terminal (done/total, rate, failures); nothing
/// otherwise, where the per-image lines on stdout are the record. The bar is drawn from the
/// first result on, so it never draws over a PIN or password prompt or a signing service's own
/// wait display, and advances by one per image.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    failures: std::sync::atomic::AtomicUsize,
}

impl Progress {
    fn new(total: u64, output: OutputFormat, terminal: bool) -> Self {
        let show = terminal && (total > 1 || output == OutputFormat::Json);
        let bar = show.then(|| {
            let bar = indicatif::ProgressBar::hidden();
            bar.set_length(total);
            let style = indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {rate} {msg}",
            )
            .map(|style| {
                style.with_key(
                    "rate",
                    |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = write!(w, "{}/s", format_rate(state.per_sec()));
                    },
                )
            })
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        });
        Self {
            bar,
            failures: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    fn record<T>(&self, result: &Result<T, &ImageFailure>) {
        if let Some(bar) = &self.bar {
            if bar.is_hidden() {
                bar.reset_elapsed();
                bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                bar.enable_steady_tick(std::time::Duration::from_millis(200));
            }
            if result.is_err() {
                let n = self
                    .failures
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    + 1;
                bar.set_message(format!("{n} failed"));
            }
            // An index's children (--recursive) are only known once it is fetched.
            if bar.position() + 1 > bar.length().unwrap_or(0) {
                bar.inc_length(1);
            }
            bar.inc(1);
        }
    }

    /// One line on stdout, flushed; drawn around the bar so no stale bar is left when stdout
    /// is the same terminal.
    fn stdout_line(&self, line: &str) -> std::io::Result<()> {
        let write = || {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{line}")?;
            out.flush()
        };
        match &self.bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }

    fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) if !bar.is_hidden() => bar.suspend(|| eprintln!("{line}")),
            _ => eprintln!("{line}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    /// An early return (an error) must not leave a half-drawn bar behind.
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_whole_numbers_above_ten_and_one_decimal_below() {
        assert_eq!(format_rate(116.2163), "116");
        assert_eq!(format_rate(12.5), "13");
        assert_eq!(format_rate(3.04), "3.0");
        assert_eq!(format_rate(0.0), "0");
        assert_eq!(format_rate(f64::NAN), "0");
        assert_eq!(format_rate(f64::INFINITY), "0");
    }

    fn sign_args(args: &[&str]) -> Args {
        use clap::Parser as _;
        let argv = ["sigbridge", "sign"].iter().chain(args).copied();
        match super::super::Cli::try_parse_from(argv).unwrap().command {
            super::super::Command::Sign(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn waiting_flags_are_generic_and_refused_for_signers_that_never_wait() {
        let spec = SignerSpec::parse("./cosign.key").unwrap();
        for flags in [&["--no-wait"][..], &["--resume", "42"]] {
            let args = sign_args(&[&["--signer", "./cosign.key"], flags, &["img"]].concat());
            let e = deferral(&args, &spec).unwrap_err();
            assert!(e.to_string().contains("apply only to"), "{e}");
        }
        // Not a refusal: --wait-timeout may come from a variable set for every job.
        let args = sign_args(&["--signer", "./cosign.key", "--wait-timeout", "5m", "img"]);
        assert!(deferral(&args, &spec).is_ok());

        let deferring = PROVIDERS
            .iter()
            .find(|p| p.can_defer())
            .expect("one provider defers");
        let uri = format!("{}host/org/project/policy", deferring.schemes()[0]);
        let spec = SignerSpec::parse(&uri).unwrap();
        let args = sign_args(&["--signer", &uri, "--no-wait", "img"]);
        assert_eq!(deferral(&args, &spec).unwrap().0.wait, Wait::No);
        let args = sign_args(&["--signer", &uri, "--wait-timeout", "90s", "img"]);
        let (request, resume) = deferral(&args, &spec).unwrap();
        assert_eq!(request.wait, Wait::UpTo(std::time::Duration::from_secs(90)));
        assert!(resume.is_none());
        let args = sign_args(&["--signer", &uri, "--resume", "5f0c", "img"]);
        let (request, resume) = deferral(&args, &spec).unwrap();
        assert_eq!(request.wait, Wait::SignerDefault);
        assert_eq!(resume, Some(Ticket::new(deferring.name(), "5f0c")));
        let args = sign_args(&["--signer", &uri, "--wait-timeout", "soon", "img"]);
        assert!(deferral(&args, &spec).is_err());
    }

    #[test]
    fn without_a_terminal_there_is_no_bar() {
        assert!(Progress::new(600, OutputFormat::Json, false).bar.is_none());
        assert!(Progress::new(600, OutputFormat::Text, false).bar.is_none());
        assert!(Progress::new(600, OutputFormat::Text, true).bar.is_some());
    }
}
