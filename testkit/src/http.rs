//! Blocking HTTP for the kit's own needs (readiness probes, fast pushes, token fetches).

use std::path::Path;

/// Runs `f` on a fresh thread and returns its result.
///
/// reqwest's blocking client panics when built, used or dropped on a thread that is inside a
/// tokio runtime, and the kit is also called from `#[tokio::test]`s; a plain thread is always
/// outside any runtime.
pub(crate) fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// A client trusting only `ca` (if given): test registries never use public roots, and loading
/// the system's roots for every client would be slow.
pub(crate) fn client(ca: Option<&Path>) -> reqwest::blocking::Client {
    let mut builder = reqwest::blocking::Client::builder()
        .tls_built_in_root_certs(false)
        .no_proxy();
    if let Some(ca) = ca {
        let pem = std::fs::read(ca).expect("read CA PEM");
        builder = builder
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("CA is valid PEM"));
    }
    builder.build().expect("build HTTP client")
}
