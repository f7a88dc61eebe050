//! SignPath transport failures before any signing request exists: a wrong port or a TLS URI
//! pointing at a plain-HTTP server must fail quickly with a clear message, and every retry is
//! reported at the default verbosity. Runs the real binary against loopback sockets; asserts
//! on attempt counts and on what was printed, never on time.

use crate::common;

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::Sandbox;
use sigbridge_testkit::{push_image_http, Registry};

const TOKEN: &str = "test-api-token-0123456789abcdef";

/// A loopback port nothing listens on (bound, then closed).
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A plain-HTTP server on 127.0.0.1 that answers every connection with a 400 and counts the
/// connections. Stops when dropped.
struct PlainHttp {
    port: u16,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PlainHttp {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, s) = (accepted.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        a.fetch_add(1, Ordering::Relaxed);
                        let _ = conn.set_nonblocking(false);
                        let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                        let mut buf = [0u8; 4096];
                        let _ = conn.read(&mut buf);
                        let _ = conn.write_all(
                            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Self {
            port,
            accepted,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for PlainHttp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn retry_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("retrying in"))
        .collect()
}

#[test]
fn refused_connection_before_a_request_fails_after_two_reported_retries() {
    let sb = Sandbox::new();
    let uri = format!(
        "signpath+http://127.0.0.1:{}/org-1/proj/policy",
        closed_port()
    );
    let run = sb
        .sigbridge()
        .args(["public-key", "--signer", &uri])
        .env("SIGNPATH_API_TOKEN", TOKEN)
        .run()
        .code_is(8);
    let err = run.stderr();
    let retries = retry_lines(&err);
    assert_eq!(retries.len(), 2, "{err}");
    for line in &retries {
        assert!(
            line.contains("fetching the signing policy's certificate failed"),
            "{line}"
        );
        assert!(line.to_lowercase().contains("refused"), "{line}");
    }
    assert!(err.contains("gave up after 3 attempts"), "{err}");
    assert!(err.contains("check the host and port"), "{err}");
    assert!(!err.contains(TOKEN), "{err}");
}

#[test]
fn tls_uri_at_a_plain_http_server_is_not_retried_and_says_what_to_use() {
    let sb = Sandbox::new();
    let server = PlainHttp::start();
    let uri = format!("signpath://127.0.0.1:{}/org-1/proj/policy", server.port);
    let run = sb
        .sigbridge()
        .args(["public-key", "--signer", &uri])
        .env("SIGNPATH_API_TOKEN", TOKEN)
        .run()
        .code_is(8);
    let err = run.stderr();
    assert!(retry_lines(&err).is_empty(), "{err}");
    assert!(
        err.contains("the server does not speak TLS; use signpath+http:// for a plain-HTTP server"),
        "{err}"
    );
    assert_eq!(server.accepted.load(Ordering::Relaxed), 1, "{err}");
    assert!(!err.contains(TOKEN), "{err}");
}

#[test]
fn a_refused_sign_fails_fast_before_anything_is_submitted() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("k");
    let digest = push_image_http(&reg, "sp/transport", "v1");
    let image = reg.image_ref("sp/transport", &digest);
    // A configured public key is checked against the policy's certificate before any
    // submission, so that fetch is the first request and the one that is refused.
    let uri = format!(
        "signpath+http://127.0.0.1:{}/org-1/proj/policy?public-key={}",
        closed_port(),
        key.public.display()
    );
    let run = sb
        .sigbridge()
        .args(["sign", "--signer", &uri, &image])
        .registry(&reg)
        .env("SIGNPATH_API_TOKEN", TOKEN)
        .run()
        .code_is(8);
    let err = run.stderr();
    let retries = retry_lines(&err);
    assert_eq!(retries.len(), 2, "{err}");
    assert!(
        retries
            .iter()
            .all(|l| l.contains("fetching the signing policy's certificate failed")),
        "{err}"
    );
    assert!(err.contains("gave up after 3 attempts"), "{err}");
    assert!(!err.contains("submitting the signing request"), "{err}");
    common::assert_no_sig_tag(&reg, "sp/transport", &digest);
}
