//! A fault-injecting HTTP/1.1 proxy on 127.0.0.1, put between a client and a plain-HTTP
//! registry to make it flaky on purpose: error statuses, 429 with `Retry-After`, connections
//! closed without an answer (before or after the registry saw the request), stalls and
//! truncated bodies, for the Nth matching request, every one, or a seeded fraction.
//!
//! Every client connection carries exactly one exchange (`Connection: close` both ways), which
//! keeps the proxy simple and makes each request a separate decision. Request bodies must
//! carry `Content-Length` (chunked request bodies are answered 501). The `Host` header is
//! passed through, so the registry builds upload `Location`s that point back at the proxy.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

/// What happens to a request a rule picks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer this status (e.g. 500, 502, 503) without asking the registry.
    Status(u16),
    /// Answer 429 with `Retry-After: secs` without asking the registry.
    TooManyRequests {
        /// The `Retry-After` value in seconds.
        retry_after_secs: u32,
    },
    /// Close the connection without answering; the registry never sees the request.
    Drop,
    /// Forward the request, then close the connection without passing on the answer: the
    /// registry did the work but the client cannot know.
    DropResponse,
    /// Wait this long, then forward normally.
    Stall(Duration),
    /// Forward, then pass on the status line, the headers and only half the body (the
    /// announced `Content-Length` stays), and close.
    Truncate,
}

/// When a rule fires, counted over the requests it matches (1-based).
#[derive(Clone, Debug)]
pub enum Trigger {
    /// Only the Nth matching request.
    Nth(usize),
    /// The first N matching requests.
    FirstN(usize),
    /// Every matching request.
    Always,
    /// A deterministic pseudo-random fraction `per_mille / 1000` of the matching requests,
    /// decided by `seed` and the request's position.
    Fraction {
        /// Out of 1000.
        per_mille: u32,
        /// Same seed, same decisions.
        seed: u64,
    },
}

/// One fault rule: which requests, when, and what.
#[derive(Clone, Debug)]
pub struct Rule {
    method: Option<String>,
    path_contains: Vec<String>,
    trigger: Trigger,
    fault: Fault,
    matched: usize,
}

impl Rule {
    /// A rule that applies `fault` to every request (narrow it with the other methods).
    pub fn new(fault: Fault) -> Self {
        Self {
            method: None,
            path_contains: Vec::new(),
            trigger: Trigger::Always,
            fault,
            matched: 0,
        }
    }

    /// Only requests with this method (`GET`, `HEAD`, `PUT`, `POST`, ...).
    pub fn method(mut self, method: &str) -> Self {
        self.method = Some(method.to_ascii_uppercase());
        self
    }

    /// Only requests whose path (with query) contains `part`; repeatable (all must match).
    pub fn path_contains(mut self, part: &str) -> Self {
        self.path_contains.push(part.to_string());
        self
    }

    /// When it fires among the matching requests.
    pub fn trigger(mut self, trigger: Trigger) -> Self {
        self.trigger = trigger;
        self
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.method.as_deref().is_none_or(|m| m == method)
            && self.path_contains.iter().all(|p| path.contains(p.as_str()))
    }

    /// Counts a matching request and says whether the fault applies to it.
    fn fires(&mut self) -> bool {
        self.matched += 1;
        let n = self.matched;
        match &self.trigger {
            Trigger::Nth(k) => n == *k,
            Trigger::FirstN(k) => n <= *k,
            Trigger::Always => true,
            Trigger::Fraction { per_mille, seed } => {
                (splitmix64(seed ^ (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)) % 1000)
                    < u64::from(*per_mille)
            }
        }
    }
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One request the proxy saw.
#[derive(Clone, Debug)]
pub struct Exchange {
    /// The method.
    pub method: String,
    /// The path with query.
    pub path: String,
    /// The fault applied, if any.
    pub fault: Option<Fault>,
    /// The registry's status, when the request reached it and an answer came back.
    pub upstream_status: Option<u16>,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    log: Vec<Exchange>,
    in_flight: usize,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panicking connection thread must not take the test's view of the log with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The proxy; stops accepting when dropped (connections in flight finish on their own).
pub struct FaultProxy {
    port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

/// Longest request head accepted.
const MAX_HEAD: usize = 64 * 1024;

impl FaultProxy {
    /// Starts a proxy on an ephemeral 127.0.0.1 port in front of `127.0.0.1:upstream_port`
    /// (a plain-HTTP registry).
    pub fn start(upstream_port: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        thread::Builder::new()
            .name(format!("fault-proxy-{port}"))
            .spawn(move || {
                for conn in listener.incoming() {
                    if sp.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let st = st.clone();
                    lock(&st).in_flight += 1;
                    let spawned = thread::Builder::new()
                        .name("fault-proxy-conn".into())
                        .spawn(move || {
                            handle(conn, upstream_port, &st);
                            lock(&st).in_flight -= 1;
                        });
                    if spawned.is_err() {
                        panic!("cannot spawn a proxy connection thread");
                    }
                }
            })
            .expect("spawn proxy");
        Self { port, state, stop }
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`: use it as the registry host in image references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `HOST/REPO:TAG`, or `HOST/REPO@DIGEST` for `sha256:` digests, through the proxy.
    pub fn image_ref(&self, repo: &str, tag_or_digest: &str) -> String {
        let sep = if tag_or_digest.starts_with("sha256:") {
            '@'
        } else {
            ':'
        };
        format!("{}/{repo}{sep}{tag_or_digest}", self.host())
    }

    /// Adds a rule; the first rule that matches a request and fires decides its fate.
    pub fn add(&self, rule: Rule) {
        lock(&self.state).rules.push(rule);
    }

    /// Removes every rule (the proxy then passes everything through).
    pub fn clear(&self) {
        lock(&self.state).rules.clear();
    }

    /// Every request seen so far, in arrival order.
    pub fn exchanges(&self) -> Vec<Exchange> {
        lock(&self.state).log.clone()
    }

    /// Waits until no connection is being handled (stalled requests have been forwarded),
    /// for at most `limit`; returns whether it became idle.
    pub fn wait_idle(&self, limit: Duration) -> bool {
        let started = std::time::Instant::now();
        while started.elapsed() < limit {
            if lock(&self.state).in_flight == 0 {
                return true;
            }
            thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// How many requests had a fault applied.
    pub fn faults_injected(&self) -> usize {
        lock(&self.state)
            .log
            .iter()
            .filter(|e| e.fault.is_some())
            .count()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("port", &self.port)
            .finish()
    }
}

struct Request {
    method: String,
    path: String,
    head: Vec<u8>,
    body: Vec<u8>,
}

fn handle(mut client: TcpStream, upstream_port: u16, state: &Mutex<State>) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(60)));
    let req = match read_request(&mut client) {
        Ok(Some(r)) => r,
        Ok(None) => return,
        Err(status) => {
            let _ = client.write_all(simple_response(status, None).as_bytes());
            return;
        }
    };
    let fault = {
        let mut st = lock(state);
        let fault = st
            .rules
            .iter_mut()
            .filter(|r| r.matches(&req.method, &req.path))
            .find_map(|r| r.fires().then(|| r.fault.clone()));
        st.log.push(Exchange {
            method: req.method.clone(),
            path: req.path.clone(),
            fault: fault.clone(),
            upstream_status: None,
        });
        fault
    };
    let index = lock(state).log.len() - 1;
    match &fault {
        Some(Fault::Status(code)) => {
            let _ = client.write_all(simple_response(*code, None).as_bytes());
            return;
        }
        Some(Fault::TooManyRequests { retry_after_secs }) => {
            let _ = client.write_all(simple_response(429, Some(*retry_after_secs)).as_bytes());
            return;
        }
        Some(Fault::Drop) => {
            let _ = client.shutdown(Shutdown::Both);
            return;
        }
        Some(Fault::Stall(d)) => thread::sleep(*d),
        _ => {}
    }
    let Some(response) = forward(&req, upstream_port) else {
        let _ = client.write_all(simple_response(502, None).as_bytes());
        return;
    };
    let head_end = find(&response, b"\r\n\r\n").map_or(response.len(), |i| i + 4);
    let status = std::str::from_utf8(&response[..head_end.min(response.len())])
        .ok()
        .and_then(|h| h.split(' ').nth(1))
        .and_then(|s| s.parse::<u16>().ok());
    lock(state).log[index].upstream_status = status;
    match fault {
        Some(Fault::DropResponse) => {
            let _ = client.shutdown(Shutdown::Both);
        }
        Some(Fault::Truncate) => {
            let body = &response[head_end..];
            let _ = client.write_all(&response[..head_end]);
            let _ = client.write_all(&body[..body.len() / 2]);
            let _ = client.flush();
            let _ = client.shutdown(Shutdown::Both);
        }
        _ => {
            let _ = client.write_all(&response);
        }
    }
}

/// Reads one request; `Ok(None)` when the client closed first, `Err(status)` when it is not
/// something this proxy handles.
fn read_request(client: &mut TcpStream) -> Result<Option<Request>, u16> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        // Not HTTP (a client probing for TLS first sends a handshake record): answer as
        // Go's server does, so the client falls back to plain HTTP at once.
        if buf.first().is_some_and(|b| !b.is_ascii_uppercase()) {
            return Err(400);
        }
        if buf.len() > MAX_HEAD {
            return Err(431);
        }
        match client.read(&mut chunk) {
            Ok(0) | Err(_) => return Ok(None),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head_text = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head_text.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_string();
    let path = request_line.next().unwrap_or_default().to_string();
    let mut length = 0usize;
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    for line in lines.filter(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let lname = name.trim().to_ascii_lowercase();
        match lname.as_str() {
            "content-length" => length = value.trim().parse().map_err(|_| 400u16)?,
            "transfer-encoding" => return Err(501),
            "connection" | "keep-alive" | "proxy-connection" => continue,
            _ => {}
        }
        head.push_str(line);
        head.push_str("\r\n");
    }
    head.push_str("Connection: close\r\n\r\n");
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        match client.read(&mut chunk) {
            Ok(0) | Err(_) => return Ok(None),
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    body.truncate(length);
    Ok(Some(Request {
        method,
        path,
        head: head.into_bytes(),
        body,
    }))
}

/// Sends the request upstream and reads the whole answer (the upstream closes after it);
/// the answer's `Connection` header is replaced by `Connection: close`.
fn forward(req: &Request, upstream_port: u16) -> Option<Vec<u8>> {
    let mut up = connect_upstream(upstream_port)?;
    let said = |what: &str, e: std::io::Error| {
        eprintln!(
            "fault proxy: {what} {} {} to the registry failed: {e}",
            req.method, req.path
        );
    };
    up.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
    if let Err(e) = up
        .write_all(&req.head)
        .and_then(|()| up.write_all(&req.body))
    {
        said("sending", e);
        return None;
    }
    let mut response = Vec::new();
    if let Err(e) = up.read_to_end(&mut response) {
        said("reading the answer to", e);
        return None;
    }
    let head_end = find(&response, b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&response[..head_end]).to_string();
    let mut out = String::new();
    for line in head.split("\r\n").filter(|l| !l.is_empty()) {
        if line.to_ascii_lowercase().starts_with("connection:") {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&response[head_end..]);
    Some(bytes)
}

/// A connection to the registry behind the proxy. A failed connect is the harness's problem,
/// not a fault under test (a loaded machine can briefly run out of loopback ports or accept
/// slots), so it is retried a few times, and said on stderr if it still fails: the caller then
/// answers 502, which a test would otherwise take for an injected fault.
fn connect_upstream(upstream_port: u16) -> Option<TcpStream> {
    let mut last = None;
    for attempt in 0..5u64 {
        match TcpStream::connect(("127.0.0.1", upstream_port)) {
            Ok(s) => return Some(s),
            Err(e) => {
                last = Some(e);
                thread::sleep(Duration::from_millis(20 * (attempt + 1)));
            }
        }
    }
    if let Some(e) = last {
        eprintln!("fault proxy: cannot reach the registry on 127.0.0.1:{upstream_port}: {e}");
    }
    None
}

fn simple_response(status: u16, retry_after: Option<u32>) -> String {
    let body =
        format!(r#"{{"errors":[{{"code":"UNKNOWN","message":"injected fault {status}"}}]}}"#);
    let retry = retry_after
        .map(|s| format!("Retry-After: {s}\r\n"))
        .unwrap_or_default();
    format!(
        "HTTP/1.1 {status} Injected\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{retry}Connection: close\r\n\r\n{body}",
        body.len()
    )
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fraction_trigger_is_deterministic_and_roughly_right() {
        let picks = |seed| {
            let mut r = Rule::new(Fault::Drop).trigger(Trigger::Fraction {
                per_mille: 300,
                seed,
            });
            (0..1000).map(|_| r.fires()).collect::<Vec<_>>()
        };
        assert_eq!(picks(7), picks(7));
        assert_ne!(picks(7), picks(8));
        let n = picks(7).iter().filter(|b| **b).count();
        assert!((200..400).contains(&n), "{n}");
    }

    #[test]
    fn nth_and_first_n() {
        let mut r = Rule::new(Fault::Drop).trigger(Trigger::Nth(2));
        assert_eq!([r.fires(), r.fires(), r.fires()], [false, true, false]);
        let mut r = Rule::new(Fault::Drop).trigger(Trigger::FirstN(2));
        assert_eq!([r.fires(), r.fires(), r.fires()], [true, true, false]);
    }
}
