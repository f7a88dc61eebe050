//! Showing a long wait: a spinner line with elapsed time on a terminal, log lines otherwise.

use std::io::IsTerminal as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::id::RequestId;
use crate::status::RequestStatus;
use sigbridge_signer::format_elapsed;

/// Receives the events of one signing request's life.
pub trait WaitReporter: Send + Sync {
    /// A request was created; `resume` is the command that picks it up again.
    fn submitted(&self, id: &RequestId, payloads: usize, resume: &str);
    /// A status was read.
    fn status(&self, id: &RequestId, status: &RequestStatus, elapsed: Duration);
    /// The wait is over (whatever the outcome).
    fn finished(&self);
}

/// Which reporter to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reporter {
    /// A spinner on a terminal, else plain lines on stderr and `tracing` events.
    #[default]
    Console,
    /// Only `tracing` events.
    Quiet,
    /// One JSON object per line on stderr instead of plain lines (`--log-format json`).
    Json,
}

impl Reporter {
    pub(crate) fn build(self) -> Box<dyn WaitReporter> {
        match self {
            Self::Console if std::io::stderr().is_terminal() => Box::new(Spinner {
                bar: Mutex::new(None),
            }),
            Self::Console => Box::new(Lines {
                last: Mutex::new(None),
                echo: Echo::Text,
            }),
            Self::Quiet => Box::new(Lines {
                last: Mutex::new(None),
                echo: Echo::None,
            }),
            Self::Json => Box::new(Lines {
                last: Mutex::new(None),
                echo: Echo::Json,
            }),
        }
    }
}

fn submitted_line(id: &RequestId, payloads: usize, resume: &str) -> String {
    format!(
        "Submitted SignPath signing request {id} ({payloads} payload{}). If this process stops, pick it up again with `{resume}` (the same images, annotations and identity, in the same order).",
        if payloads == 1 { "" } else { "s" }
    )
}

struct Spinner {
    bar: Mutex<Option<ProgressBar>>,
}

impl WaitReporter for Spinner {
    fn submitted(&self, id: &RequestId, payloads: usize, resume: &str) {
        eprintln!("{}", submitted_line(id, payloads, resume));
    }

    fn status(&self, id: &RequestId, status: &RequestStatus, _elapsed: Duration) {
        let Ok(mut guard) = self.bar.lock() else {
            return;
        };
        let bar = guard.get_or_insert_with(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed} elapsed)") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        let waiting = match status.status {
            crate::Status::WaitingForApproval => "waiting for approval: ",
            _ if status
                .workflow_status
                .as_deref()
                .is_some_and(|w| w.eq_ignore_ascii_case("WaitingForApproval")) =>
            {
                "waiting for approval: "
            }
            _ => "",
        };
        bar.set_message(format!(
            "SignPath signing request {id}: {waiting}{}",
            status.display()
        ));
    }

    fn finished(&self) {
        if let Ok(mut guard) = self.bar.lock() {
            if let Some(bar) = guard.take() {
                bar.finish_and_clear();
            }
        }
    }
}

struct Lines {
    /// Last status shown and when a line was last written.
    last: Mutex<Option<(String, Instant)>>,
    echo: Echo,
}

/// How [`Lines`] shows events on stderr besides the `tracing` events.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Echo {
    None,
    Text,
    /// In the shape of the JSON log lines (`level`, `fields.message`).
    Json,
}

impl Echo {
    fn line(self, id: &RequestId, message: &str) {
        match self {
            Echo::None => {}
            Echo::Text => eprintln!("{message}"),
            Echo::Json => eprintln!(
                "{}",
                serde_json::json!({
                    "level": "INFO",
                    "fields": {"message": message, "signing_request": id.to_string()},
                })
            ),
        }
    }
}

/// How often an unchanged status is logged again.
const REPEAT_EVERY: Duration = Duration::from_secs(60);

impl WaitReporter for Lines {
    fn submitted(&self, id: &RequestId, payloads: usize, resume: &str) {
        tracing::info!(signing_request = %id, payloads, "submitted SignPath signing request");
        self.echo.line(id, &submitted_line(id, payloads, resume));
    }

    fn status(&self, id: &RequestId, status: &RequestStatus, elapsed: Duration) {
        let shown = status.display();
        let Ok(mut last) = self.last.lock() else {
            return;
        };
        let changed = last.as_ref().is_none_or(|(s, _)| *s != shown);
        let due = last
            .as_ref()
            .is_none_or(|(_, t)| t.elapsed() >= REPEAT_EVERY);
        if !(changed || due) {
            return;
        }
        *last = Some((shown.clone(), Instant::now()));
        tracing::info!(
            signing_request = %id,
            status = %status.status,
            workflow_status = status.workflow_status.as_deref().unwrap_or(""),
            is_final = status.is_final,
            elapsed_s = elapsed.as_secs(),
            "SignPath signing request status"
        );
        if changed {
            self.echo.line(
                id,
                &format!(
                    "SignPath signing request {id}: {shown} (after {})",
                    format_elapsed(elapsed)
                ),
            );
        }
    }

    fn finished(&self) {}
}
