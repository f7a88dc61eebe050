//! The registry client against an in-process fake registry, for answers a real registry will
//! not give on demand: challenges with extra scopes, 429/503 storms, odd upload locations,
//! manifests that do not match their digest, oversize content.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use base64::Engine as _;
use bytes::Bytes;
use secrecy::SecretString;
use sigbridge::reference::{Digest, Repository};
use sigbridge::registry::manifest::media_types;
use sigbridge::registry::{RegistryClient, RegistryError, RegistryOptions};

/// One request as the fake saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Bytes,
}

impl Seen {
    fn auth(&self) -> Option<&str> {
        self.headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
    }
}

type Script = dyn Fn(&Seen, &Ctx) -> Response + Send + Sync;

/// What a script can see besides the request.
struct Ctx {
    port: u16,
    /// Requests so far (this one excluded).
    log: Arc<Mutex<Vec<Seen>>>,
}

impl Ctx {
    fn count(&self, method: &str, path: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.method == method && s.path == path)
            .count()
    }
}

#[derive(Clone)]
struct AppState {
    script: Arc<Script>,
    ctx: Arc<Ctx>,
}

struct Fake {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Fake {
    async fn start(script: impl Fn(&Seen, &Ctx) -> Response + Send + Sync + 'static) -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap(), script).await
    }

    async fn start_on(
        bind: SocketAddr,
        script: impl Fn(&Seen, &Ctx) -> Response + Send + Sync + 'static,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let state = AppState {
            script: Arc::new(script),
            ctx: Arc::new(Ctx {
                port: addr.port(),
                log: log.clone(),
            }),
        };
        let app = axum::Router::new().fallback(handle).with_state(state);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Fake { addr, log, task }
    }

    fn registry(&self) -> String {
        self.addr.to_string()
    }

    fn repo(&self, path: &str) -> Repository {
        Repository::parse(&format!("{}/{path}", self.registry())).unwrap()
    }

    fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }

    fn count(&self, method: &str, path: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.method == method && s.path == path)
            .count()
    }
}

async fn handle(State(state): State<AppState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 64 << 20)
        .await
        .unwrap_or_default();
    let seen = Seen {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers: parts.headers,
        body,
    };
    let resp = (state.script)(&seen, &state.ctx);
    state.ctx.log.lock().unwrap().push(seen);
    resp
}

fn reply(status: u16) -> axum::http::response::Builder {
    Response::builder().status(status)
}

fn empty(status: u16) -> Response {
    reply(status).body(Body::empty()).unwrap()
}

fn json(status: u16, body: &str) -> Response {
    reply(status)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn manifest_response(bytes: &[u8], digest_header: Option<&str>) -> Response {
    let mut b = reply(200).header("content-type", media_types::OCI_MANIFEST);
    if let Some(d) = digest_header {
        b = b.header("docker-content-digest", d);
    }
    b.body(Body::from(bytes.to_vec())).unwrap()
}

fn sample_manifest() -> Vec<u8> {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","size":2,"digest":"{}"}},"layers":[]}}"#,
        media_types::OCI_MANIFEST,
        media_types::OCI_CONFIG,
        Digest::of(b"{}")
    )
    .into_bytes()
}

fn client(opts: RegistryOptions) -> RegistryClient {
    RegistryClient::new(RegistryOptions {
        // No stray credentials from the machine running the tests.
        docker_config: Some("/nonexistent/sigbridge-test/config.json".into()),
        request_timeout: Duration::from_secs(20),
        ..opts
    })
    .unwrap()
}

fn anonymous() -> RegistryClient {
    client(RegistryOptions::default())
}

fn with_password(user: &str, password: &str) -> RegistryClient {
    client(RegistryOptions {
        username: Some(user.to_string()),
        password: Some(SecretString::from(password.to_string())),
        ..Default::default()
    })
}

fn query_values(query: Option<&str>, name: &str) -> Vec<String> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .collect()
}

#[tokio::test]
async fn bearer_challenge_token_cache_and_extra_scope() {
    let manifest = sample_manifest();
    let digest = Digest::of(&manifest);
    let blob = Digest::of(b"blob");
    let m = manifest.clone();
    let blob_path = format!("/v2/demo/app/blobs/{blob}");
    let fake = Fake::start(move |req, ctx| {
        let challenge = |scope: &str| {
            reply(401)
                .header(
                    "www-authenticate",
                    format!(
                        r#"Bearer realm="http://127.0.0.1:{}/token",service="fake",scope="{scope}",error="insufficient_scope""#,
                        ctx.port
                    ),
                )
                .header("content-type", "application/json")
                .body(Body::from(
                    r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
                ))
                .unwrap()
        };
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/v2/") => reply(401)
                .header(
                    "www-authenticate",
                    format!(r#"Bearer realm="http://127.0.0.1:{}/token",service="fake""#, ctx.port),
                )
                .body(Body::empty())
                .unwrap(),
            ("GET", "/token") => {
                let expected = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode("alice:s3cret")
                );
                if req.auth() != Some(expected.as_str()) {
                    return empty(401);
                }
                assert_eq!(query_values(req.query.as_deref(), "service"), ["fake"]);
                let scopes = query_values(req.query.as_deref(), "scope");
                json(200, &format!(r#"{{"token":"T:{}","expires_in":300}}"#, scopes.join("+")))
            }
            ("GET", "/v2/demo/app/manifests/v1") => {
                if req.auth() == Some("Bearer T:repository:demo/app:pull") {
                    manifest_response(&m, Some(&Digest::of(&m).to_string()))
                } else {
                    challenge("repository:demo/app:pull")
                }
            }
            ("HEAD", p) if p == blob_path => {
                // Needs a token that also covers another repository (as a mount would).
                match req.auth() {
                    Some(a) if a.contains("repository:other/x:pull") => {
                        reply(200).header("content-length", "4").body(Body::empty()).unwrap()
                    }
                    _ => challenge("repository:demo/app:pull repository:other/x:pull"),
                }
            }
            _ => empty(404),
        }
    })
    .await;
    let c = with_password("alice", "s3cret");
    let repo = fake.repo("demo/app");

    let got = c.get_manifest(&repo, "v1").await.unwrap().unwrap();
    assert_eq!(got.digest, digest);
    assert_eq!(got.media_type, media_types::OCI_MANIFEST);
    assert_eq!(got.bytes.as_ref(), manifest.as_slice());
    assert_eq!(fake.count("GET", "/token"), 1);

    // Cached token: no new token request, no 401 round trip.
    c.clone().get_manifest(&repo, "v1").await.unwrap().unwrap();
    assert_eq!(fake.count("GET", "/token"), 1);
    assert_eq!(fake.count("GET", "/v2/demo/app/manifests/v1"), 2);

    // A challenge naming an extra scope: one new token for both, one retry.
    assert!(c.blob_exists(&repo, &blob).await.unwrap());
    let tokens: Vec<_> = fake
        .seen()
        .into_iter()
        .filter(|s| s.path == "/token")
        .collect();
    assert_eq!(tokens.len(), 2);
    let scopes = query_values(tokens[1].query.as_deref(), "scope");
    assert_eq!(
        scopes,
        ["repository:demo/app:pull", "repository:other/x:pull"]
    );
    assert_eq!(fake.count("HEAD", &format!("/v2/demo/app/blobs/{blob}")), 2);
}

#[tokio::test]
async fn wrong_credentials_fail_with_actionable_error_and_no_secret() {
    const PASSWORD: &str = "hunter2-very-secret";
    let fake = Fake::start(|req, _| {
        if req.path == "/v2/" {
            return reply(401)
                .header("www-authenticate", r#"Basic realm="fake""#)
                .body(Body::empty())
                .unwrap();
        }
        reply(401)
            .header("www-authenticate", r#"Basic realm="fake""#)
            .header("content-type", "application/json")
            .body(Body::from(
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#,
            ))
            .unwrap()
    })
    .await;
    let c = with_password("alice", PASSWORD);
    let err = c
        .get_manifest(&fake.repo("demo/app"), "v1")
        .await
        .unwrap_err();
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("alice:{PASSWORD}"));
    for text in [
        err.to_string(),
        format!("{err:?}"),
        format!("{c:?}"),
        format!(
            "{:?}",
            RegistryOptions {
                password: Some(SecretString::from(PASSWORD.to_string())),
                ..Default::default()
            }
        ),
    ] {
        assert!(!text.contains(PASSWORD), "{text}");
        assert!(!text.contains(&encoded), "{text}");
    }
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("authentication to {} failed", fake.registry())),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("docker login {}", fake.registry())),
        "{msg}"
    );
    assert!(msg.contains("UNAUTHORIZED: bad credentials"), "{msg}");
    assert!(err.is_auth());
    // The credentials were offered (once: no retry loop on a refused Basic login).
    let sent: Vec<_> = fake
        .seen()
        .into_iter()
        .filter(|s| s.path == "/v2/demo/app/manifests/v1")
        .collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].auth(), Some(format!("Basic {encoded}").as_str()));
}

#[tokio::test]
async fn forbidden_names_the_action() {
    let fake = Fake::start(|req, _| match req.path.as_str() {
        "/v2/" => empty(200),
        _ => json(403, r#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#),
    })
    .await;
    let err = anonymous()
        .put_manifest(
            &fake.repo("demo/app"),
            "v1",
            media_types::OCI_MANIFEST,
            Bytes::from(sample_manifest()),
        )
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, RegistryError::Forbidden { .. }), "{err:?}");
    assert!(msg.contains("denied push access to demo/app"), "{msg}");
    assert!(msg.contains("DENIED: requested access"), "{msg}");
}

#[tokio::test]
async fn honours_retry_after_on_429() {
    let manifest = sample_manifest();
    let fake = Fake::start(move |req, ctx| match req.path.as_str() {
        "/v2/" => empty(200),
        "/v2/demo/app/manifests/v1" => {
            if ctx.count("GET", "/v2/demo/app/manifests/v1") == 0 {
                reply(429)
                    .header("retry-after", "1")
                    .body(Body::empty())
                    .unwrap()
            } else {
                manifest_response(&manifest, None)
            }
        }
        _ => empty(404),
    })
    .await;
    let started = Instant::now();
    let got = anonymous()
        .get_manifest(&fake.repo("demo/app"), "v1")
        .await
        .unwrap();
    assert!(got.is_some());
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(fake.count("GET", "/v2/demo/app/manifests/v1"), 2);
}

#[tokio::test]
async fn retries_503_then_succeeds_and_gives_up_eventually() {
    let manifest = sample_manifest();
    let fake = Fake::start(move |req, ctx| match req.path.as_str() {
        "/v2/" => empty(200),
        "/v2/demo/app/manifests/v1" => {
            if ctx.count("GET", "/v2/demo/app/manifests/v1") < 2 {
                empty(503)
            } else {
                manifest_response(&manifest, None)
            }
        }
        "/v2/demo/app/manifests/down" => json(
            503,
            r#"{"errors":[{"code":"UNAVAILABLE","message":"maintenance"}]}"#,
        ),
        _ => empty(404),
    })
    .await;
    let c = anonymous();
    let repo = fake.repo("demo/app");
    assert!(c.get_manifest(&repo, "v1").await.unwrap().is_some());
    assert_eq!(fake.count("GET", "/v2/demo/app/manifests/v1"), 3);

    let err = c.get_manifest(&repo, "down").await.unwrap_err();
    assert!(
        matches!(err, RegistryError::Status { status: 503, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("UNAVAILABLE: maintenance"),
        "{err}"
    );
    // One try and three retries, then stop.
    assert_eq!(fake.count("GET", "/v2/demo/app/manifests/down"), 4);
}

#[tokio::test]
async fn blob_upload_follows_relative_and_absolute_locations() {
    let fake = Fake::start(|req, ctx| {
        let path = req.path.as_str();
        match (req.method.as_str(), path) {
            ("GET", "/v2/") => empty(200),
            ("HEAD", p) if p.starts_with("/v2/demo/app/blobs/sha256:") => empty(404),
            ("POST", "/v2/demo/app/blobs/uploads/") => {
                let location = if ctx.count("POST", path) == 0 {
                    "/v2/demo/app/blobs/uploads/u1?_state=abc%2Bdef&x=1".to_string()
                } else {
                    format!("http://127.0.0.1:{}/elsewhere/u2?sig=zzz", ctx.port)
                };
                reply(202)
                    .header("location", location)
                    .body(Body::empty())
                    .unwrap()
            }
            ("PUT", "/v2/demo/app/blobs/uploads/u1") | ("PUT", "/elsewhere/u2") => {
                let digest = query_values(req.query.as_deref(), "digest");
                assert_eq!(digest.len(), 1, "{:?}", req.query);
                assert_eq!(digest[0], Digest::of(&req.body).to_string());
                reply(201)
                    .header("docker-content-digest", digest[0].as_str())
                    .body(Body::empty())
                    .unwrap()
            }
            _ => empty(404),
        }
    })
    .await;
    let c = anonymous();
    let repo = fake.repo("demo/app");
    let one = Bytes::from_static(b"first blob");
    c.put_blob(&repo, &Digest::of(&one), one.clone())
        .await
        .unwrap();
    let two = Bytes::from_static(b"second blob");
    c.put_blob(&repo, &Digest::of(&two), two.clone())
        .await
        .unwrap();

    let puts: Vec<_> = fake
        .seen()
        .into_iter()
        .filter(|s| s.method == "PUT")
        .collect();
    assert_eq!(puts.len(), 2);
    assert_eq!(puts[0].path, "/v2/demo/app/blobs/uploads/u1");
    let q = puts[0].query.as_deref().unwrap();
    assert!(q.starts_with("_state=abc%2Bdef&x=1&digest=sha256"), "{q}");
    assert_eq!(puts[0].body, one);
    assert_eq!(
        puts[0].headers.get("content-type"),
        Some(&HeaderValue::from_static("application/octet-stream"))
    );
    assert_eq!(puts[1].path, "/elsewhere/u2");
    assert!(puts[1]
        .query
        .as_deref()
        .unwrap()
        .starts_with("sig=zzz&digest="));
    assert_eq!(puts[1].body, two);

    // Bytes that are not what the digest says are never uploaded.
    let err = c
        .put_blob(&repo, &Digest::of(b"other"), one.clone())
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::DigestMismatch { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn existing_blob_is_not_uploaded_again() {
    let fake = Fake::start(|req, _| match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/v2/") => empty(200),
        ("HEAD", _) => reply(200)
            .header("content-length", "3")
            .body(Body::empty())
            .unwrap(),
        _ => empty(500),
    })
    .await;
    let body = Bytes::from_static(b"abc");
    anonymous()
        .put_blob(&fake.repo("demo/app"), &Digest::of(&body), body)
        .await
        .unwrap();
    assert!(fake
        .seen()
        .iter()
        .all(|s| s.method != "POST" && s.method != "PUT"));
}

#[tokio::test]
async fn manifests_that_do_not_match_their_digest_are_refused() {
    let real = sample_manifest();
    let other = br#"{"schemaVersion":2,"config":{"mediaType":"x","size":1,"digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},"layers":[]}"#.to_vec();
    let wanted = Digest::of(&real);
    let wanted_path = format!("/v2/demo/app/manifests/{wanted}");
    let served = other.clone();
    let announced = wanted.to_string();
    let fake = Fake::start(move |req, _| match req.path.as_str() {
        "/v2/" => empty(200),
        p if p == wanted_path => manifest_response(&served, None),
        // A tag whose Docker-Content-Digest disagrees with the bytes.
        "/v2/demo/app/manifests/lying" => manifest_response(&served, Some(&announced)),
        _ => empty(404),
    })
    .await;
    let c = anonymous();
    let repo = fake.repo("demo/app");
    let err = c
        .get_manifest(&repo, &wanted.to_string())
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::DigestMismatch { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains(&wanted.to_string()), "{err}");
    let err = c.get_manifest(&repo, "lying").await.unwrap_err();
    assert!(
        matches!(err, RegistryError::DigestMismatch { .. }),
        "{err:?}"
    );
    // HEAD without a digest falls back to GET, which checks.
    let err = c
        .head_manifest(&repo, &wanted.to_string())
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::DigestMismatch { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn oversize_manifests_and_blobs_are_refused() {
    let big = vec![b' '; 5 * 1024 * 1024];
    let big_digest = Digest::of(&big);
    let blob = b"0123456789A".to_vec();
    let blob_digest = Digest::of(&blob);
    let (b1, b2) = (big.clone(), blob.clone());
    let fake = Fake::start(move |req, _| match req.path.as_str() {
        "/v2/" => empty(200),
        "/v2/demo/app/manifests/big" => manifest_response(&b1, None),
        "/v2/demo/app/manifests/bigchunked" => {
            // No Content-Length: the limit must hold while streaming.
            let chunks: Vec<Result<Bytes, std::io::Error>> = b1
                .chunks(64 * 1024)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect();
            reply(200)
                .header("content-type", media_types::OCI_MANIFEST)
                .body(Body::from_stream(futures::stream::iter(chunks)))
                .unwrap()
        }
        p if p.starts_with("/v2/demo/app/blobs/") => {
            let chunks: Vec<Result<Bytes, std::io::Error>> = b2
                .chunks(3)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect();
            reply(200)
                .body(Body::from_stream(futures::stream::iter(chunks)))
                .unwrap()
        }
        _ => empty(404),
    })
    .await;
    let c = anonymous();
    let repo = fake.repo("demo/app");
    for tag in ["big", "bigchunked"] {
        let err = c.get_manifest(&repo, tag).await.unwrap_err();
        assert!(
            matches!(err, RegistryError::TooLarge { .. }),
            "{tag}: {err:?}"
        );
    }
    let err = c.get_blob(&repo, &blob_digest, 10).await.unwrap_err();
    assert!(
        matches!(err, RegistryError::TooLarge { limit: 10, .. }),
        "{err:?}"
    );
    assert_eq!(
        c.get_blob(&repo, &blob_digest, 11).await.unwrap().as_ref(),
        blob.as_slice()
    );
    // Wrong bytes for the digest asked for.
    let err = c.get_blob(&repo, &big_digest, 100).await.unwrap_err();
    assert!(
        matches!(err, RegistryError::DigestMismatch { .. }),
        "{err:?}"
    );
    // Pushing an oversize manifest is refused before anything is sent.
    let err = c
        .put_manifest(&repo, "x", media_types::OCI_MANIFEST, Bytes::from(big))
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::TooLarge { .. }), "{err:?}");
}

#[tokio::test]
async fn not_found_head_fallback_and_media_types() {
    let manifest = sample_manifest();
    let digest = Digest::of(&manifest);
    let m = manifest.clone();
    let fake = Fake::start(
        move |req, _| match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/v2/") => empty(200),
            // A HEAD that gives no digest: the client must GET.
            ("HEAD", "/v2/demo/app/manifests/v1") => reply(200)
                .header("content-type", media_types::OCI_MANIFEST)
                .header("content-length", m.len().to_string())
                .body(Body::empty())
                .unwrap(),
            ("GET", "/v2/demo/app/manifests/v1") => reply(200)
                // Old registries: generic content type; the body tells.
                .header("content-type", "application/json; charset=utf-8")
                .body(Body::from(m.clone()))
                .unwrap(),
            ("GET", "/v2/demo/app/manifests/schema1") => reply(200)
                .header(
                    "content-type",
                    "application/vnd.docker.distribution.manifest.v1+prettyjws",
                )
                .body(Body::from(r#"{"schemaVersion":1}"#))
                .unwrap(),
            ("PUT", "/v2/demo/app/manifests/v2") => {
                assert_eq!(
                    req.headers.get("content-type").unwrap(),
                    media_types::OCI_MANIFEST
                );
                reply(201)
                    .header("docker-content-digest", Digest::of(&req.body).to_string())
                    .body(Body::empty())
                    .unwrap()
            }
            ("PUT", "/v2/demo/app/manifests/v3") => reply(201)
                .header("docker-content-digest", Digest::of(b"nope").to_string())
                .body(Body::empty())
                .unwrap(),
            _ => json(
                404,
                r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
            ),
        },
    )
    .await;
    let c = anonymous();
    let repo = fake.repo("demo/app");
    assert!(c.get_manifest(&repo, "missing").await.unwrap().is_none());
    assert!(c.head_manifest(&repo, "missing").await.unwrap().is_none());
    let d = c.head_manifest(&repo, "v1").await.unwrap().unwrap();
    assert_eq!(d.digest, digest);
    assert_eq!(d.size, manifest.len() as u64);
    assert_eq!(d.media_type, media_types::OCI_MANIFEST);
    let err = c.get_manifest(&repo, "schema1").await.unwrap_err();
    assert!(
        matches!(err, RegistryError::UnsupportedMediaType { .. }),
        "{err:?}"
    );
    let err = c.get_blob(&repo, &digest, 100).await.unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert!(!c.blob_exists(&repo, &digest).await.unwrap());

    let pushed = c
        .put_manifest(
            &repo,
            "v2",
            media_types::OCI_MANIFEST,
            Bytes::from(manifest.clone()),
        )
        .await
        .unwrap();
    assert_eq!(pushed, digest);
    let err = c
        .put_manifest(
            &repo,
            "v3",
            media_types::OCI_MANIFEST,
            Bytes::from(manifest.clone()),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::DigestMismatch { .. }),
        "{err:?}"
    );
    // A digest reference must match the body before anything is sent.
    let err = c
        .put_manifest(
            &repo,
            &Digest::of(b"x").to_string(),
            media_types::OCI_MANIFEST,
            Bytes::from(manifest),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::DigestMismatch { .. }),
        "{err:?}"
    );
    let err = c.get_manifest(&repo, "../../etc").await.unwrap_err();
    assert!(
        matches!(err, RegistryError::InvalidReference { .. }),
        "{err:?}"
    );
    // One ping for the whole client: the scheme decision is remembered.
    assert_eq!(fake.count("GET", "/v2/"), 1);
}

#[tokio::test]
async fn unreachable_loopback_registry_reports_both_schemes() {
    // A port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let repo = Repository::parse(&format!("127.0.0.1:{port}/demo/app")).unwrap();
    let err = anonymous().head_manifest(&repo, "v1").await.unwrap_err();
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(matches!(err, RegistryError::Unreachable { .. }), "{err:?}");
    assert!(msg.contains("HTTPS") && msg.contains("plain HTTP"), "{msg}");
}

/// A non-loopback address of this machine (the fake listens there), read from the local
/// interface list: nothing is sent anywhere to find it.
fn non_loopback_ip() -> std::net::IpAddr {
    let out = std::process::Command::new("hostname")
        .arg("-I")
        .output()
        .expect("run `hostname -I` to list this machine's addresses");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|a| a.parse::<std::net::IpAddr>().ok())
        .find(|ip| !ip.is_loopback() && !ip.is_unspecified())
        .expect("this test needs a non-loopback address on the machine (`hostname -I` lists none)")
}

#[tokio::test]
async fn plain_http_off_loopback_only_when_allowed() {
    let ip = non_loopback_ip();
    let fake = Fake::start_on(SocketAddr::new(ip, 0), |req, _| match req.path.as_str() {
        "/v2/" => empty(200),
        _ => empty(404),
    })
    .await;
    let repo = fake.repo("demo/app");
    let err = anonymous().head_manifest(&repo, "v1").await.unwrap_err();
    eprintln!("{err}");
    assert!(matches!(err, RegistryError::Tls { .. }), "{err:?}");
    assert!(err.to_string().contains("--allow-http-registry"), "{err}");
    assert_eq!(
        fake.count("GET", "/v2/"),
        0,
        "no plain HTTP request may be made"
    );

    let allowed = client(RegistryOptions {
        allow_http: true,
        ..Default::default()
    });
    assert!(allowed.head_manifest(&repo, "v1").await.unwrap().is_none());
}

// ---------------------------------------------------------------------------------------------
// Issue 9: redirects, digests from bytes, exact-size blobs

/// A registry whose manifest GET redirects to `location(port)`.
async fn redirecting(location: impl Fn(u16) -> String + Send + Sync + 'static) -> Fake {
    Fake::start(move |req, ctx| match req.path.as_str() {
        "/v2/" => empty(200),
        "/v2/demo/app/manifests/v1" => reply(307)
            .header("location", location(ctx.port))
            .body(Body::empty())
            .unwrap(),
        _ => empty(404),
    })
    .await
}

#[tokio::test]
async fn redirect_loops_and_unknown_schemes_are_refused_without_retries() {
    let looping =
        redirecting(|port| format!("http://127.0.0.1:{port}/v2/demo/app/manifests/v1")).await;
    let err = anonymous()
        .get_manifest(&looping.repo("demo/app"), "v1")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("redirect refused"), "{err}");
    // The first request and 10 redirects, once: never repeated as if the network had failed.
    assert_eq!(
        looping.count("GET", "/v2/demo/app/manifests/v1"),
        11,
        "{err}"
    );

    let gopher = redirecting(|_| "gopher://127.0.0.1:70/1x".to_string()).await;
    let err = anonymous()
        .get_manifest(&gopher.repo("demo/app"), "v1")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("unsupported gopher"), "{err}");
    assert_eq!(gopher.count("GET", "/v2/demo/app/manifests/v1"), 1, "{err}");
}

#[tokio::test]
async fn every_redirect_hop_obeys_the_plain_http_rule() {
    // Off loopback: a plain-HTTP target needs --allow-http-registry, as a registry there does.
    let ip = non_loopback_ip();
    let manifest = sample_manifest();
    let m = manifest.clone();
    let target = Fake::start_on(SocketAddr::new(ip, 0), move |req, _| {
        match req.path.as_str() {
            "/elsewhere" => manifest_response(&m, None),
            _ => empty(404),
        }
    })
    .await;
    let there = format!("http://{}/elsewhere", target.addr);
    let fake = redirecting(move |_| there.clone()).await;
    let repo = fake.repo("demo/app");
    let err = anonymous().get_manifest(&repo, "v1").await.unwrap_err();
    assert!(err.to_string().contains("--allow-http-registry"), "{err}");
    assert_eq!(
        target.count("GET", "/elsewhere"),
        0,
        "no plain HTTP request off loopback"
    );
    assert_eq!(
        fake.count("GET", "/v2/demo/app/manifests/v1"),
        1,
        "not retried"
    );
    let allowed = client(RegistryOptions {
        allow_http: true,
        ..Default::default()
    });
    let got = allowed.get_manifest(&repo, "v1").await.unwrap().unwrap();
    assert_eq!(got.digest, Digest::of(&manifest));

    // IPv4-mapped loopback is loopback, for a redirect target and for a registry alike.
    let m = manifest.clone();
    let local = Fake::start(move |req, _| match req.path.as_str() {
        "/v2/" => empty(200),
        "/v2/demo/app/manifests/v1" | "/mapped" => manifest_response(&m, None),
        _ => empty(404),
    })
    .await;
    let port = local.addr.port();
    let fake = redirecting(move |_| format!("http://[::ffff:127.0.0.1]:{port}/mapped")).await;
    let got = anonymous()
        .get_manifest(&fake.repo("demo/app"), "v1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.digest, Digest::of(&manifest));
    assert_eq!(local.count("GET", "/mapped"), 1);
    let mapped = Repository::parse(&format!("[::ffff:127.0.0.1]:{port}/demo/app")).unwrap();
    let got = anonymous()
        .get_manifest(&mapped, "v1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.digest, Digest::of(&manifest));
}

#[tokio::test]
async fn a_tag_resolves_to_the_digest_of_the_bytes_not_a_header() {
    use sigbridge::reference::ImageReference;
    use sigbridge::resolve::resolve_image;
    let manifest = sample_manifest();
    let real = Digest::of(&manifest);
    let made_up = Digest::of(b"no such manifest");
    let (m, lie) = (manifest.clone(), made_up.to_string());
    let fake = Fake::start(
        move |req, _| match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/v2/") => empty(200),
            // HEAD answers a made-up digest; GET serves the real bytes without a digest.
            ("HEAD", "/v2/demo/app/manifests/v1") => reply(200)
                .header("content-type", media_types::OCI_MANIFEST)
                .header("docker-content-digest", lie.as_str())
                .header("content-length", "100")
                .body(Body::empty())
                .unwrap(),
            ("GET", "/v2/demo/app/manifests/v1") => manifest_response(&m, None),
            // A GET whose header lies about its own bytes.
            ("GET", "/v2/demo/app/manifests/lying") => manifest_response(&m, Some(&lie)),
            // A registry that does not allow HEAD.
            ("HEAD", "/v2/demo/app/manifests/nohead") => empty(405),
            ("GET", "/v2/demo/app/manifests/nohead") => manifest_response(&m, None),
            _ => empty(404),
        },
    )
    .await;
    let c = anonymous();
    let image = ImageReference::parse(&format!("{}/demo/app:v1", fake.registry())).unwrap();
    let resolved = resolve_image(&c, &image).await.unwrap();
    assert_eq!(resolved.digest, real);
    // One round trip for the manifest, as a HEAD would be.
    assert_eq!(fake.count("GET", "/v2/demo/app/manifests/v1"), 1);
    assert_eq!(fake.count("HEAD", "/v2/demo/app/manifests/v1"), 0);

    let image = ImageReference::parse(&format!("{}/demo/app:lying", fake.registry())).unwrap();
    let err = resolve_image(&c, &image).await.unwrap_err();
    assert!(err.to_string().contains("digest mismatch"), "{err}");
    assert!(err.to_string().contains(&made_up.to_string()), "{err}");

    let d = c
        .head_manifest(&fake.repo("demo/app"), "nohead")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.digest, real);
}

/// A blob body of `len` bytes in 64 KiB chunks, counting what was actually produced.
fn counted_stream(len: u64, produced: Arc<std::sync::atomic::AtomicU64>) -> Body {
    use std::sync::atomic::Ordering;
    const CHUNK: u64 = 64 * 1024;
    let stream = futures::stream::unfold(0u64, move |sent| {
        let produced = produced.clone();
        async move {
            if sent >= len {
                return None;
            }
            let n = CHUNK.min(len - sent);
            produced.fetch_add(n, Ordering::Relaxed);
            Some((
                Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; n as usize])),
                sent + n,
            ))
        }
    });
    Body::from_stream(stream)
}

#[tokio::test]
async fn a_blob_is_read_to_its_declared_size_and_no_further() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let produced = Arc::new(AtomicU64::new(0));
    let p = produced.clone();
    let fake = Fake::start(move |req, _| match req.path.as_str() {
        "/v2/" => empty(200),
        // 128 MiB, no Content-Length.
        "/v2/demo/app/blobs/sha256:1111111111111111111111111111111111111111111111111111111111111111" => {
            reply(200)
                .body(counted_stream(128 << 20, p.clone()))
                .unwrap()
        }
        // Announces more than declared.
        "/v2/demo/app/blobs/sha256:2222222222222222222222222222222222222222222222222222222222222222" => {
            reply(200)
                .header("content-length", "1000")
                .body(Body::from(vec![b'x'; 1000]))
                .unwrap()
        }
        // Ends early (streamed, so no Content-Length gives it away).
        p if p.starts_with("/v2/demo/app/blobs/") => reply(200)
            .body(Body::from_stream(futures::stream::iter([Ok::<_, std::io::Error>(
                Bytes::from_static(b"short"),
            )])))
            .unwrap(),
        _ => empty(404),
    })
    .await;
    let c = anonymous();
    let repo = fake.repo("demo/app");
    let d = |c: char| -> Digest {
        format!("sha256:{}", c.to_string().repeat(64))
            .parse()
            .unwrap()
    };
    let err = c.get_blob_sized(&repo, &d('1'), 100).await.unwrap_err();
    assert!(
        matches!(err, RegistryError::SizeMismatch { declared: 100, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("longer"), "{err}");
    // Stopped after the first chunks, not 128 MiB (hyper may have a few buffered).
    let served = produced.load(Ordering::Relaxed);
    assert!(served < 4 << 20, "the fake produced {served} bytes");

    let err = c.get_blob_sized(&repo, &d('2'), 100).await.unwrap_err();
    assert!(err.to_string().contains("announced 1000 bytes"), "{err}");
    let err = c.get_blob_sized(&repo, &d('3'), 100).await.unwrap_err();
    assert!(err.to_string().contains("ended after 5 bytes"), "{err}");
    // Right size, right bytes.
    let ok = Digest::of(b"short");
    assert_eq!(
        c.get_blob_sized(&repo, &ok, 5).await.unwrap().as_ref(),
        b"short"
    );
}

// ---------------------------------------------------------------------------------------------
// Issue 12: the bundle path's reads (referrers API answers, referrer manifests by descriptor)

#[tokio::test]
async fn a_referrer_manifest_is_read_to_its_listed_size_and_digest_only() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let manifest = sample_manifest();
    let real = Digest::of(&manifest);
    let size = manifest.len() as u64;
    let produced = Arc::new(AtomicU64::new(0));
    let (m, p) = (manifest.clone(), produced.clone());
    let (endless, announced, lying) = (
        Digest::of(b"endless"),
        Digest::of(b"announced"),
        Digest::of(b"lying"),
    );
    let paths = [
        endless.clone(),
        announced.clone(),
        lying.clone(),
        real.clone(),
    ]
    .map(|d| format!("/v2/demo/app/manifests/{d}"));
    let fake = Fake::start(move |req, _| match req.path.as_str() {
        "/v2/" => empty(200),
        // 128 MiB, no Content-Length.
        x if x == paths[0] => reply(200)
            .header("content-type", media_types::OCI_MANIFEST)
            .body(counted_stream(128 << 20, p.clone()))
            .unwrap(),
        // Announces 3 MiB: under the manifest limit, over the listed size.
        x if x == paths[1] => reply(200)
            .header("content-type", media_types::OCI_MANIFEST)
            .header("content-length", (3u64 << 20).to_string())
            .body(Body::from(vec![b' '; 3 << 20]))
            .unwrap(),
        // The listed size, other bytes.
        x if x == paths[2] || x == paths[3] => manifest_response(&m, None),
        _ => empty(404),
    })
    .await;
    let c = anonymous();
    let repo = fake.repo("demo/app");

    let err = c
        .get_manifest_sized(&repo, &endless, size)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::SizeMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains("the body is longer"), "{err}");
    let served = produced.load(Ordering::Relaxed);
    assert!(served < 4 << 20, "the fake produced {served} bytes");

    let err = c
        .get_manifest_sized(&repo, &announced, size)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("announced 3145728 bytes"), "{err}");
    let err = c.get_manifest_sized(&repo, &lying, size).await.unwrap_err();
    assert!(
        matches!(err, RegistryError::DigestMismatch { .. }),
        "{err:?}"
    );
    // Listed over the 4 MiB manifest limit: refused without asking.
    let before = fake.seen().len();
    let err = c
        .get_manifest_sized(&repo, &real, (4 << 20) + 1)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::TooLarge { .. }), "{err:?}");
    assert_eq!(fake.seen().len(), before, "a request was made");

    let got = c
        .get_manifest_sized(&repo, &real, size)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.bytes.as_ref(), manifest.as_slice());
    assert!(c
        .get_manifest_sized(&repo, &Digest::of(b"absent"), 10)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn a_referrers_answer_is_bounded_and_must_be_an_index() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let subject = Digest::of(b"subject");
    let produced = Arc::new(AtomicU64::new(0));
    let p = produced.clone();
    let fake = Fake::start(move |req, _| {
        let path = req.path.as_str();
        let repo = path
            .strip_prefix("/v2/")
            .and_then(|r| r.split("/referrers/").next())
            .unwrap_or("");
        match repo {
            "" => empty(200),
            "endless/app" => reply(200)
                .header("content-type", media_types::OCI_INDEX)
                .body(counted_stream(128 << 20, p.clone()))
                .unwrap(),
            "announced/app" => reply(200)
                .header("content-type", media_types::OCI_INDEX)
                .header("content-length", (64u64 << 20).to_string())
                .body(counted_stream(64 << 20, p.clone()))
                .unwrap(),
            "html/app" => reply(200)
                .header("content-type", "text/html")
                .body(Body::from("<html>hello</html>"))
                .unwrap(),
            "manifest/app" => manifest_response(&sample_manifest(), None),
            "empty/app" => json(
                200,
                &format!(
                    r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[]}}"#,
                    media_types::OCI_INDEX
                ),
            ),
            _ => empty(404),
        }
    })
    .await;
    let c = anonymous();
    let err = c
        .get_referrers(&fake.repo("endless/app"), &subject)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::TooLarge { .. }), "{err:?}");
    let served = produced.load(Ordering::Relaxed);
    assert!(served < 32 << 20, "the fake produced {served} bytes");
    let err = c
        .get_referrers(&fake.repo("announced/app"), &subject)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::TooLarge { .. }), "{err:?}");
    for not_an_index in ["html/app", "manifest/app"] {
        let err = c
            .get_referrers(&fake.repo(not_an_index), &subject)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("is not an OCI image index"),
            "{not_an_index}: {err}"
        );
    }
    let none = c
        .get_referrers(&fake.repo("empty/app"), &subject)
        .await
        .unwrap()
        .unwrap();
    assert!(none.manifests.is_empty());
    // No referrers API: 404.
    assert!(c
        .get_referrers(&fake.repo("other/app"), &subject)
        .await
        .unwrap()
        .is_none());
}

/// A paged referrers list (`Link: <…>; rel="next"`) is read to its end; a link to another host
/// is refused rather than followed, and a registry that links forever is refused after a
/// bounded number of pages.
#[tokio::test]
async fn a_paged_referrers_list_is_followed_on_the_same_registry_only() {
    let subject = Digest::of(b"subject");
    let page = move |entries: std::ops::Range<u32>, next: Option<String>| {
        let manifests: Vec<String> = entries
            .map(|n| {
                format!(
                    r#"{{"mediaType":"{}","digest":"{}","size":10}}"#,
                    media_types::OCI_MANIFEST,
                    Digest::of(&n.to_be_bytes())
                )
            })
            .collect();
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{}]}}"#,
            media_types::OCI_INDEX,
            manifests.join(",")
        );
        let mut r = reply(200).header("content-type", media_types::OCI_INDEX);
        if let Some(link) = next {
            r = r.header("link", format!(r#"<{link}>; rel="next""#));
        }
        r.body(Body::from(body)).unwrap()
    };
    let fake = Fake::start(move |req, _| {
        let path = req.path.as_str();
        let query = req.query.clone().unwrap_or_default();
        let repo = path
            .strip_prefix("/v2/")
            .and_then(|r| r.split("/referrers/").next())
            .unwrap_or("");
        let n: u32 = query
            .strip_prefix("page=")
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        match repo {
            "" => empty(200),
            "paged/app" if n < 2 => page(n * 3..n * 3 + 3, Some(format!("{path}?page={}", n + 1))),
            "paged/app" => page(6..7, None),
            "elsewhere/app" => page(0..1, Some("http://192.0.2.1:5000/v2/x".into())),
            "forever/app" => page(0..0, Some(format!("{path}?page={}", n + 1))),
            _ => empty(404),
        }
    })
    .await;
    let c = anonymous();
    let all = c
        .get_referrers(&fake.repo("paged/app"), &subject)
        .await
        .unwrap()
        .expect("an index");
    assert_eq!(all.manifests.len(), 7, "three pages: 3 + 3 + 1 entries");
    let err = c
        .get_referrers(&fake.repo("elsewhere/app"), &subject)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("another host"), "{err}");
    let err = c
        .get_referrers(&fake.repo("forever/app"), &subject)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("more than 64 pages"), "{err}");
    assert_eq!(
        fake.count("GET", &format!("/v2/forever/app/referrers/{subject}")),
        64
    );
}
