//! `sigstore-kms-sigbridge`: the cosign KMS plugin. cosign runs it for `--key sigbridge://REF`
//! as `sigstore-kms-sigbridge v1 <json>` with the message on stdin, and reads one JSON answer
//! from stdout; the protocol lives in `sigbridge::plugin`. cosign ignores the exit status, so
//! every failure is an `errorMessage` answer and the status is 0.

use std::io::{Read as _, Write as _};

use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    // Warnings only by default: nerdctl drains cosign's stdout before its stderr.
    let filter =
        EnvFilter::try_from_env("SIGBRIDGE_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .init();
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut stdin = Vec::new();
    let answer = match std::io::stdin().read_to_end(&mut stdin) {
        Err(e) => error_answer(&format!("reading the message from stdin: {e}")),
        Ok(_) => match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt.block_on(sigbridge::plugin::answer(&argv, &stdin)),
            Err(e) => error_answer(&format!("starting the async runtime: {e}")),
        },
    };
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{answer}")
        .and_then(|()| out.flush())
        .is_err()
    {
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}

fn error_answer(message: &str) -> String {
    serde_json::json!({ "errorMessage": message }).to_string()
}
