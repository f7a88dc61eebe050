//! An in-process OCI registry that implements distribution-spec 1.1, referrers API included.
//!
//! No registry that runs locally has the referrers API (docker-registry 2.8 and 3.x answer 404),
//! so this one exists to drive sigbridge, cosign 3 and oras through the API path end to end. It
//! keeps everything in memory, serves plain HTTP on 127.0.0.1 without authentication, and stops
//! on drop. It is honest where clients could be wrong: every blob and manifest push is checked
//! against its digest, and a manifest that references blobs (or an index that references
//! manifests) the repository does not hold is refused with `MANIFEST_BLOB_UNKNOWN`, as CNCF
//! distribution refuses it. A `subject` need not exist (distribution-spec 1.1 requires
//! registries to accept such manifests), and a manifest PUT that carries one is answered with
//! `OCI-Subject`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use rand_core::{OsRng, RngCore};
use serde_json::{json, Value};

use crate::background::BackgroundServer;
use crate::image::{http_push, sha256_digest, SampleImage, OCI_INDEX, OCI_MANIFEST};

/// Largest manifest accepted, as distribution and sigbridge bound it (4 MiB).
const MAX_MANIFEST: usize = 4 << 20;
/// Largest request body (blobs in tests are small; this keeps a runaway client bounded).
const MAX_BODY: usize = 64 << 20;

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const IMAGE_MANIFESTS: [&str; 2] = [OCI_MANIFEST, DOCKER_MANIFEST];
const INDEXES: [&str; 2] = [OCI_INDEX, DOCKER_LIST];

/// One request the registry answered: method, path (with query) and status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciRequest {
    pub method: String,
    pub path: String,
    pub status: u16,
}

#[derive(Clone)]
struct StoredManifest {
    media_type: String,
    bytes: Bytes,
    /// The digest of the manifest's `subject`, if it has one.
    subject: Option<String>,
    /// `artifactType`, else the config's media type (what the referrers API reports).
    artifact_type: Option<String>,
    annotations: Option<Value>,
}

#[derive(Default)]
struct Repo {
    blobs: HashMap<String, Bytes>,
    manifests: HashMap<String, StoredManifest>,
    tags: BTreeMap<String, String>,
}

#[derive(Default)]
struct Inner {
    repos: HashMap<String, Repo>,
    /// Upload id -> (repository, bytes received so far).
    uploads: HashMap<String, (String, Vec<u8>)>,
    log: Vec<OciRequest>,
}

type Shared = Arc<Mutex<Inner>>;

fn lock(shared: &Shared) -> MutexGuard<'_, Inner> {
    // A handler that panicked cannot leave the maps half-updated (each update is one insert),
    // so a poisoned lock is still consistent.
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

/// The registry; stops serving (and drops all content) when dropped.
pub struct OciRegistry {
    shared: Shared,
    server: BackgroundServer,
}

impl OciRegistry {
    /// Binds 127.0.0.1 on a free port and serves from its own thread and runtime, so blocking
    /// tests and `#[tokio::test]`s can both use it.
    pub fn start() -> Self {
        let shared: Shared = Arc::default();
        let app = Router::new()
            .fallback(handle)
            .layer(DefaultBodyLimit::max(MAX_BODY))
            .with_state(shared.clone());
        let server = BackgroundServer::start("oci-registry", app);
        Self { server, shared }
    }

    /// `127.0.0.1:PORT`, the registry part of image references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.server.port())
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.host())
    }

    /// `HOST/REPO@DIGEST` or `HOST/REPO:TAG`.
    pub fn image_ref(&self, repo: &str, tag_or_digest: &str) -> String {
        let sep = if tag_or_digest.contains(':') {
            '@'
        } else {
            ':'
        };
        format!("{}/{repo}{sep}{tag_or_digest}", self.host())
    }

    /// cosign's flags for this plain-HTTP registry.
    pub fn cosign_args(&self) -> Vec<String> {
        vec![
            "--allow-http-registry".into(),
            "--allow-insecure-registry".into(),
        ]
    }

    /// Pushes a fresh random linux/amd64 image as `repo:tag` over HTTP (the same requests as
    /// [`crate::push_image_http`]); returns its digest.
    pub fn push_image(&self, repo: &str, tag: &str) -> String {
        let image = SampleImage::random("linux", "amd64");
        let base = self.url();
        crate::http::off_runtime(|| {
            http_push(&crate::http::client(None), &base, repo, tag, None, &image)
        });
        image.digest
    }

    /// `GET /v2/<repo>/referrers/<digest>` (with `?artifactType=` when given): the index.
    pub fn get_referrers(&self, repo: &str, digest: &str, artifact_type: Option<&str>) -> Value {
        let mut url = format!("{}/v2/{repo}/referrers/{digest}", self.url());
        if let Some(t) = artifact_type {
            // Query values are form-encoded: a raw `+` (as in `...+json`) would read as a space.
            let t: String = form_urlencoded::byte_serialize(t.as_bytes()).collect();
            url.push_str(&format!("?artifactType={t}"));
        }
        crate::http::off_runtime(|| {
            let resp = crate::http::client(None)
                .get(&url)
                .send()
                .expect("GET referrers");
            assert_eq!(resp.status().as_u16(), 200, "GET {url}");
            serde_json::from_slice(&resp.bytes().expect("read referrers"))
                .expect("the referrers API answers JSON")
        })
    }

    /// The tags of `repo`, sorted.
    pub fn tags(&self, repo: &str) -> Vec<String> {
        lock(&self.shared)
            .repos
            .get(repo)
            .map(|r| r.tags.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Every request answered so far, in order.
    pub fn requests(&self) -> Vec<OciRequest> {
        lock(&self.shared).log.clone()
    }

    /// How many `GET /v2/<repo>/referrers/<digest>` requests were answered (any repository).
    pub fn referrers_requests(&self) -> usize {
        lock(&self.shared)
            .log
            .iter()
            .filter(|r| r.method == "GET" && r.path.contains("/referrers/"))
            .count()
    }
}

/// What a `/v2/...` path names.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Ping,
    Tags(String),
    Manifest(String, String),
    Blob(String, String),
    UploadStart(String),
    Upload(String, String),
    Referrers(String, String),
}

/// Repository names may hold `/`, so the route is read from the end of the path.
fn route(path: &str) -> Option<Route> {
    let rest = path.strip_prefix("/v2/")?;
    if rest.is_empty() {
        return Some(Route::Ping);
    }
    let segs: Vec<&str> = rest.split('/').collect();
    let n = segs.len();
    let name = |k: usize| -> Option<String> {
        let name = segs[..n - k].join("/");
        valid_repo(&name).then_some(name)
    };
    let last = |i: usize| segs.get(n.wrapping_sub(i)).copied();
    match (last(3), last(2), last(1)) {
        (Some("blobs"), Some("uploads"), Some("")) if n > 3 => Some(Route::UploadStart(name(3)?)),
        (Some("blobs"), Some("uploads"), Some(id)) if n > 3 => {
            Some(Route::Upload(name(3)?, id.to_owned()))
        }
        (_, Some("blobs"), Some("uploads")) if n > 2 => Some(Route::UploadStart(name(2)?)),
        (_, Some("tags"), Some("list")) if n > 2 => Some(Route::Tags(name(2)?)),
        (_, Some("manifests"), Some(r)) if n > 2 => Some(Route::Manifest(name(2)?, r.to_owned())),
        (_, Some("blobs"), Some(d)) if n > 2 => Some(Route::Blob(name(2)?, d.to_owned())),
        (_, Some("referrers"), Some(d)) if n > 2 => Some(Route::Referrers(name(2)?, d.to_owned())),
        _ => None,
    }
}

/// distribution-spec's repository name grammar: lowercase components joined by `/`, each
/// alphanumeric runs separated by `.`, `_`, `__` or dashes.
fn valid_repo(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.split('/').all(|c| {
            let b = c.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && c.bytes()
                    .all(|x| x.is_ascii_lowercase() || x.is_ascii_digit() || b"._-".contains(&x))
                && !c.contains("..")
                && !c.contains("___")
                && !c.contains("._")
                && !c.contains("_.")
                && !c.contains(".-")
                && !c.contains("-.")
                && !c.contains("_-")
                && !c.contains("-_")
        })
}

fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|x| x.is_ascii_alphanumeric() || b"._-".contains(x))
}

/// Only sha256 is stored; anything else is refused as an invalid digest.
fn valid_digest(d: &str) -> bool {
    d.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({"errors": [{"code": code, "message": message.into()}]});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn header_value(s: &str) -> HeaderValue {
    // Every value built here is ASCII (digests, media types from validated JSON or our paths).
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

fn query_param(uri: &Uri, key: &str) -> Option<String> {
    form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

async fn handle(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let resp = dispatch(&shared, &method, &uri, &headers, body);
    lock(&shared).log.push(OciRequest {
        method: method.to_string(),
        path: uri
            .path_and_query()
            .map_or_else(|| uri.path().to_owned(), |p| p.to_string()),
        status: resp.status().as_u16(),
    });
    resp
}

fn dispatch(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let Some(route) = route(uri.path()) else {
        return error(
            StatusCode::NOT_FOUND,
            "NAME_INVALID",
            format!(
                "no such endpoint or invalid repository name in {}",
                uri.path()
            ),
        );
    };
    let mut inner = lock(shared);
    let head = *method == Method::HEAD;
    match (route, method.as_str()) {
        (Route::Ping, "GET" | "HEAD") => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            "{}",
        )
            .into_response(),
        (Route::Blob(repo, digest), "GET" | "HEAD") => get_blob(&inner, &repo, &digest, head),
        (Route::UploadStart(repo), "POST") => start_upload(&mut inner, &repo, uri, body),
        (Route::Upload(repo, id), "PATCH") => patch_upload(&mut inner, &repo, &id, headers, body),
        (Route::Upload(repo, id), "PUT") => finish_upload(&mut inner, &repo, &id, uri, body),
        (Route::Upload(repo, id), "GET") => upload_status(&inner, &repo, &id),
        (Route::Upload(repo, id), "DELETE") => match inner.uploads.remove(&id) {
            Some((r, _)) if r == repo => StatusCode::NO_CONTENT.into_response(),
            _ => error(
                StatusCode::NOT_FOUND,
                "BLOB_UPLOAD_UNKNOWN",
                "no such upload",
            ),
        },
        (Route::Manifest(repo, reference), "GET" | "HEAD") => {
            get_manifest(&inner, &repo, &reference, head)
        }
        (Route::Manifest(repo, reference), "PUT") => {
            put_manifest(&mut inner, &repo, &reference, headers, body)
        }
        (Route::Tags(repo), "GET") => list_tags(&inner, &repo, uri),
        (Route::Referrers(repo, digest), "GET") => referrers(&inner, &repo, &digest, uri),
        _ => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            format!("{method} is not supported here"),
        ),
    }
}

fn get_blob(inner: &Inner, repo: &str, digest: &str, head: bool) -> Response {
    if !valid_digest(digest) {
        return error(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            format!("{digest} is not a sha256 digest"),
        );
    }
    let Some(bytes) = inner.repos.get(repo).and_then(|r| r.blobs.get(digest)) else {
        return error(
            StatusCode::NOT_FOUND,
            "BLOB_UNKNOWN",
            format!("blob {digest} is not in {repo}"),
        );
    };
    content(bytes.clone(), "application/octet-stream", digest, head)
}

/// 200 with the headers of a stored object; HEAD gets them with no body.
fn content(bytes: Bytes, media_type: &str, digest: &str, head: bool) -> Response {
    let len = bytes.len();
    let mut resp = if head {
        ().into_response()
    } else {
        bytes.into_response()
    };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, header_value(media_type));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert("docker-content-digest", header_value(digest));
    resp
}

fn new_upload_id() -> String {
    let mut id = [0u8; 16];
    OsRng.fill_bytes(&mut id);
    id.iter().map(|b| format!("{b:02x}")).collect()
}

fn upload_accepted(repo: &str, id: &str, len: usize) -> Response {
    let mut resp = StatusCode::ACCEPTED.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::LOCATION,
        header_value(&format!("/v2/{repo}/blobs/uploads/{id}")),
    );
    // An empty upload has no last byte; distribution answers `0-0` then too.
    h.insert(
        header::RANGE,
        header_value(&format!("0-{}", len.saturating_sub(1))),
    );
    h.insert("docker-upload-uuid", header_value(id));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    resp
}

fn blob_created(repo: &str, digest: &str) -> Response {
    let mut resp = StatusCode::CREATED.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::LOCATION,
        header_value(&format!("/v2/{repo}/blobs/{digest}")),
    );
    h.insert("docker-content-digest", header_value(digest));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    resp
}

/// Stores `bytes` as `digest` in `repo` if they hash to it.
fn store_blob(inner: &mut Inner, repo: &str, digest: &str, bytes: Bytes) -> Response {
    if !valid_digest(digest) {
        return error(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            format!("{digest} is not a sha256 digest"),
        );
    }
    let actual = sha256_digest(&bytes);
    if actual != digest {
        return error(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            format!("the content hashes to {actual}, not {digest}"),
        );
    }
    inner
        .repos
        .entry(repo.to_owned())
        .or_default()
        .blobs
        .insert(digest.to_owned(), bytes);
    blob_created(repo, digest)
}

fn start_upload(inner: &mut Inner, repo: &str, uri: &Uri, body: Bytes) -> Response {
    if let (Some(mount), Some(from)) = (query_param(uri, "mount"), query_param(uri, "from")) {
        let found = inner
            .repos
            .get(&from)
            .and_then(|r| r.blobs.get(&mount))
            .cloned();
        if let Some(bytes) = found {
            inner
                .repos
                .entry(repo.to_owned())
                .or_default()
                .blobs
                .insert(mount.clone(), bytes);
            return blob_created(repo, &mount);
        }
        // Not mountable: fall through to a new upload session, as the spec allows.
    }
    if let Some(digest) = query_param(uri, "digest") {
        return store_blob(inner, repo, &digest, body);
    }
    let id = new_upload_id();
    let len = body.len();
    inner
        .uploads
        .insert(id.clone(), (repo.to_owned(), body.to_vec()));
    upload_accepted(repo, &id, len)
}

fn patch_upload(
    inner: &mut Inner,
    repo: &str,
    id: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let Some((r, data)) = inner.uploads.get_mut(id) else {
        return error(
            StatusCode::NOT_FOUND,
            "BLOB_UPLOAD_UNKNOWN",
            "no such upload",
        );
    };
    if r != repo {
        return error(
            StatusCode::NOT_FOUND,
            "BLOB_UPLOAD_UNKNOWN",
            "no such upload in this repository",
        );
    }
    // A chunk must start where the upload ends (distribution-spec: 416 otherwise).
    if let Some(range) = headers
        .get(header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
    {
        let start = range
            .split('-')
            .next()
            .and_then(|s| s.trim().parse::<usize>().ok());
        if start != Some(data.len()) {
            return error(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "BLOB_UPLOAD_INVALID",
                format!("chunk {range} does not start at {}", data.len()),
            );
        }
    }
    data.extend_from_slice(&body);
    let len = data.len();
    upload_accepted(repo, id, len)
}

fn upload_status(inner: &Inner, repo: &str, id: &str) -> Response {
    match inner.uploads.get(id) {
        Some((r, data)) if r == repo => {
            let mut resp = upload_accepted(repo, id, data.len());
            *resp.status_mut() = StatusCode::NO_CONTENT;
            resp
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "BLOB_UPLOAD_UNKNOWN",
            "no such upload",
        ),
    }
}

fn finish_upload(inner: &mut Inner, repo: &str, id: &str, uri: &Uri, body: Bytes) -> Response {
    let Some(digest) = query_param(uri, "digest") else {
        return error(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            "the final PUT of an upload needs ?digest=",
        );
    };
    // The session ends here whatever the outcome, as in distribution.
    let Some((r, mut data)) = inner.uploads.remove(id) else {
        return error(
            StatusCode::NOT_FOUND,
            "BLOB_UPLOAD_UNKNOWN",
            "no such upload",
        );
    };
    if r != repo {
        return error(
            StatusCode::NOT_FOUND,
            "BLOB_UPLOAD_UNKNOWN",
            "no such upload in this repository",
        );
    }
    data.extend_from_slice(&body);
    store_blob(inner, repo, &digest, Bytes::from(data))
}

fn get_manifest(inner: &Inner, repo: &str, reference: &str, head: bool) -> Response {
    let Some(r) = inner.repos.get(repo) else {
        return error(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            format!("repository {repo} is not known"),
        );
    };
    let digest = if reference.contains(':') {
        if !valid_digest(reference) {
            return error(
                StatusCode::BAD_REQUEST,
                "DIGEST_INVALID",
                format!("{reference} is not a sha256 digest"),
            );
        }
        reference.to_owned()
    } else {
        match r.tags.get(reference) {
            Some(d) => d.clone(),
            None => {
                return error(
                    StatusCode::NOT_FOUND,
                    "MANIFEST_UNKNOWN",
                    format!("tag {reference} is not in {repo}"),
                )
            }
        }
    };
    match r.manifests.get(&digest) {
        Some(m) => content(m.bytes.clone(), &m.media_type, &digest, head),
        None => error(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            format!("manifest {digest} is not in {repo}"),
        ),
    }
}

fn digest_of(v: &Value) -> Option<&str> {
    v.get("digest").and_then(Value::as_str)
}

fn put_manifest(
    inner: &mut Inner,
    repo: &str,
    reference: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let invalid = |msg: String| error(StatusCode::BAD_REQUEST, "MANIFEST_INVALID", msg);
    if body.len() > MAX_MANIFEST {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "SIZE_INVALID",
            format!("manifests are at most {MAX_MANIFEST} bytes"),
        );
    }
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_owned())
        .unwrap_or_default();
    if !IMAGE_MANIFESTS.contains(&media_type.as_str()) && !INDEXES.contains(&media_type.as_str()) {
        return invalid(format!(
            "Content-Type {media_type:?} is not a manifest media type"
        ));
    }
    let parsed: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return invalid("the manifest is not a JSON object".into()),
        Err(e) => return invalid(format!("the manifest is not JSON: {e}")),
    };
    if parsed.get("schemaVersion").and_then(Value::as_u64) != Some(2) {
        return invalid("schemaVersion must be 2".into());
    }
    if let Some(declared) = parsed.get("mediaType").and_then(Value::as_str) {
        if declared != media_type {
            return invalid(format!(
                "mediaType {declared} does not match Content-Type {media_type}"
            ));
        }
    }
    let digest = sha256_digest(&body);
    if reference.contains(':') {
        if !valid_digest(reference) {
            return error(
                StatusCode::BAD_REQUEST,
                "DIGEST_INVALID",
                format!("{reference} is not a sha256 digest"),
            );
        }
        if reference != digest {
            return error(
                StatusCode::BAD_REQUEST,
                "DIGEST_INVALID",
                format!("the manifest hashes to {digest}, not {reference}"),
            );
        }
    } else if !valid_tag(reference) {
        return error(
            StatusCode::BAD_REQUEST,
            "TAG_INVALID",
            format!("{reference:?} is not a valid tag"),
        );
    }

    let repo_state = inner.repos.entry(repo.to_owned()).or_default();
    let is_index = INDEXES.contains(&media_type.as_str());
    let references: Vec<&Value> = if is_index {
        match parsed.get("manifests").and_then(Value::as_array) {
            Some(m) => m.iter().collect(),
            None => return invalid("an index needs a manifests array".into()),
        }
    } else {
        let Some(config) = parsed.get("config") else {
            return invalid("an image manifest needs a config descriptor".into());
        };
        let layers = parsed
            .get("layers")
            .and_then(Value::as_array)
            .map(|l| l.iter())
            .into_iter()
            .flatten();
        std::iter::once(config).chain(layers).collect()
    };
    for d in references {
        let Some(ref_digest) = digest_of(d) else {
            return invalid("a descriptor has no digest".into());
        };
        if d.get("size").and_then(Value::as_u64).is_none()
            || d.get("mediaType").and_then(Value::as_str).is_none()
        {
            return invalid(format!("descriptor {ref_digest} needs mediaType and size"));
        }
        let present = if is_index {
            repo_state.manifests.contains_key(ref_digest)
        } else {
            repo_state.blobs.contains_key(ref_digest)
        };
        if !present {
            return error(
                StatusCode::BAD_REQUEST,
                "MANIFEST_BLOB_UNKNOWN",
                format!("{ref_digest} is not in {repo}; push it first"),
            );
        }
    }
    let subject = match parsed.get("subject") {
        None => None,
        Some(s) => match digest_of(s) {
            Some(d) if valid_digest(d) => Some(d.to_owned()),
            _ => return invalid("subject needs a sha256 digest".into()),
        },
    };
    let artifact_type = parsed
        .get("artifactType")
        .and_then(Value::as_str)
        .or_else(|| {
            parsed
                .get("config")
                .and_then(|c| c.get("mediaType"))
                .and_then(Value::as_str)
        })
        .map(str::to_owned);
    repo_state.manifests.insert(
        digest.clone(),
        StoredManifest {
            media_type,
            bytes: body,
            subject: subject.clone(),
            artifact_type,
            annotations: parsed.get("annotations").cloned(),
        },
    );
    if !reference.contains(':') {
        repo_state.tags.insert(reference.to_owned(), digest.clone());
    }
    let mut resp = StatusCode::CREATED.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::LOCATION,
        header_value(&format!("/v2/{repo}/manifests/{digest}")),
    );
    h.insert("docker-content-digest", header_value(&digest));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    if let Some(s) = subject {
        // distribution-spec 1.1: tells the client the registry indexes this subject itself.
        h.insert("oci-subject", header_value(&s));
    }
    resp
}

fn list_tags(inner: &Inner, repo: &str, uri: &Uri) -> Response {
    let Some(r) = inner.repos.get(repo) else {
        return error(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            format!("repository {repo} is not known"),
        );
    };
    let last = query_param(uri, "last");
    let n = query_param(uri, "n").and_then(|n| n.parse::<usize>().ok());
    let tags: Vec<&String> = r
        .tags
        .keys()
        .filter(|t| last.as_ref().is_none_or(|l| *t > l))
        .take(n.unwrap_or(usize::MAX))
        .collect();
    let body = json!({"name": repo, "tags": tags});
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn referrers(inner: &Inner, repo: &str, subject: &str, uri: &Uri) -> Response {
    if !valid_digest(subject) {
        return error(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            format!("{subject} is not a sha256 digest"),
        );
    }
    let filter = query_param(uri, "artifactType");
    let mut entries: Vec<(&String, &StoredManifest)> = inner
        .repos
        .get(repo)
        .map(|r| {
            r.manifests
                .iter()
                .filter(|(_, m)| m.subject.as_deref() == Some(subject))
                .filter(|(_, m)| filter.is_none() || m.artifact_type == filter)
                .collect()
        })
        .unwrap_or_default();
    // A stable order makes listings comparable between calls.
    entries.sort_by(|a, b| a.0.cmp(b.0));
    let manifests: Vec<Value> = entries
        .into_iter()
        .map(|(digest, m)| {
            let mut d = json!({"mediaType": m.media_type, "digest": digest, "size": m.bytes.len()});
            if let Some(t) = &m.artifact_type {
                d["artifactType"] = json!(t);
            }
            if let Some(a) = &m.annotations {
                d["annotations"] = a.clone();
            }
            d
        })
        .collect();
    let body = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
    let mut resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, OCI_INDEX)],
        body.to_string(),
    )
        .into_response();
    if filter.is_some() {
        resp.headers_mut().insert(
            "oci-filters-applied",
            HeaderValue::from_static("artifactType"),
        );
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_read_from_the_end_of_the_path() {
        assert_eq!(route("/v2/"), Some(Route::Ping));
        assert_eq!(
            route("/v2/a/b/manifests/v1"),
            Some(Route::Manifest("a/b".into(), "v1".into()))
        );
        assert_eq!(
            route("/v2/x/manifests/manifests/v1"),
            Some(Route::Manifest("x/manifests".into(), "v1".into()))
        );
        assert_eq!(
            route("/v2/a/blobs/uploads/"),
            Some(Route::UploadStart("a".into()))
        );
        assert_eq!(
            route("/v2/a/blobs/uploads/abc"),
            Some(Route::Upload("a".into(), "abc".into()))
        );
        assert_eq!(route("/v2/a/tags/list"), Some(Route::Tags("a".into())));
        assert_eq!(
            route("/v2/a/referrers/sha256:00"),
            Some(Route::Referrers("a".into(), "sha256:00".into()))
        );
        assert_eq!(
            route("/v2/A/manifests/v1"),
            None,
            "upper case is not a repository name"
        );
        assert_eq!(route("/v2/manifests/v1"), None, "no repository");
        assert_eq!(route("/v1/a/manifests/v1"), None);
    }

    use reqwest::blocking::{Client, Response as Resp};

    const EMPTY: &str = "application/vnd.oci.empty.v1+json";
    const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

    fn json_of(resp: Resp) -> Value {
        serde_json::from_slice(&resp.bytes().unwrap()).unwrap()
    }

    fn client() -> Client {
        crate::http::client(None)
    }

    fn code(resp: Resp) -> (u16, String) {
        let status = resp.status().as_u16();
        let body = resp.text().unwrap();
        let code = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["errors"][0]["code"].as_str().map(str::to_owned))
            .unwrap_or_default();
        (status, code)
    }

    fn monolithic(c: &Client, reg: &OciRegistry, repo: &str, bytes: &[u8]) -> String {
        let digest = sha256_digest(bytes);
        let resp = c
            .post(format!(
                "{}/v2/{repo}/blobs/uploads/?digest={digest}",
                reg.url()
            ))
            .body(bytes.to_vec())
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201);
        digest
    }

    fn put(
        c: &Client,
        reg: &OciRegistry,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> Resp {
        c.put(format!("{}/v2/{repo}/manifests/{reference}", reg.url()))
            .header("Content-Type", media_type)
            .body(body.to_vec())
            .send()
            .unwrap()
    }

    /// An artifact manifest about `subject` (as cosign 3 writes one), with its layer pushed.
    fn artifact(
        c: &Client,
        reg: &OciRegistry,
        repo: &str,
        subject: &str,
        artifact_type: &str,
        note: &str,
    ) -> Vec<u8> {
        let config = monolithic(c, reg, repo, b"{}");
        let layer = monolithic(c, reg, repo, note.as_bytes());
        json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": {"mediaType": EMPTY, "digest": config, "size": 2},
            "layers": [{"mediaType": artifact_type, "digest": layer, "size": note.len()}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": 1},
            "annotations": {"note": note},
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn blobs_upload_in_chunks_or_at_once_and_bad_digests_are_refused() {
        let reg = OciRegistry::start();
        crate::http::off_runtime(|| {
            let c = client();
            assert_eq!(
                c.get(format!("{}/v2/", reg.url()))
                    .send()
                    .unwrap()
                    .status()
                    .as_u16(),
                200
            );

            // Chunked: POST, two PATCHes, PUT with the digest.
            let start = c
                .post(format!("{}/v2/r/a/blobs/uploads/", reg.url()))
                .send()
                .unwrap();
            assert_eq!(start.status().as_u16(), 202);
            let location = start.headers()["location"].to_str().unwrap().to_owned();
            let patch = |range: &str, chunk: &[u8]| {
                c.patch(format!("{}{location}", reg.url()))
                    .header("Content-Range", range)
                    .body(chunk.to_vec())
                    .send()
                    .unwrap()
            };
            assert_eq!(patch("0-4", b"hello").headers()["range"], "0-4");
            let (status, err) = code(patch("0-5", b" world"));
            assert_eq!(
                (status, err.as_str()),
                (416, "BLOB_UPLOAD_INVALID"),
                "a chunk must start at the end"
            );
            assert_eq!(patch("5-10", b" world").status().as_u16(), 202);
            let digest = sha256_digest(b"hello world!");
            let done = c
                .put(format!("{}{location}?digest={digest}", reg.url()))
                .body("!")
                .send()
                .unwrap();
            assert_eq!(done.status().as_u16(), 201);
            assert_eq!(done.headers()["docker-content-digest"], digest.as_str());

            let head = c
                .head(format!("{}/v2/r/a/blobs/{digest}", reg.url()))
                .send()
                .unwrap();
            assert_eq!(head.status().as_u16(), 200);
            assert_eq!(head.headers()["content-length"], "12");
            assert_eq!(head.headers()["docker-content-digest"], digest.as_str());
            let got = c
                .get(format!("{}/v2/r/a/blobs/{digest}", reg.url()))
                .send()
                .unwrap();
            assert_eq!(got.bytes().unwrap().as_ref(), b"hello world!");
            // Blobs belong to a repository.
            assert_eq!(
                c.head(format!("{}/v2/other/blobs/{digest}", reg.url()))
                    .send()
                    .unwrap()
                    .status()
                    .as_u16(),
                404
            );

            // Monolithic with a digest the bytes do not have.
            let wrong = sha256_digest(b"something else");
            let resp = c
                .post(format!(
                    "{}/v2/r/a/blobs/uploads/?digest={wrong}",
                    reg.url()
                ))
                .body("hello")
                .send()
                .unwrap();
            assert_eq!(code(resp), (400, "DIGEST_INVALID".to_owned()));
            assert_eq!(
                c.head(format!("{}/v2/r/a/blobs/{wrong}", reg.url()))
                    .send()
                    .unwrap()
                    .status()
                    .as_u16(),
                404
            );
            // Session upload finished with a wrong digest: refused, and the session is gone.
            let start = c
                .post(format!("{}/v2/r/a/blobs/uploads/", reg.url()))
                .send()
                .unwrap();
            let location = start.headers()["location"].to_str().unwrap().to_owned();
            let resp = c
                .put(format!("{}{location}?digest={wrong}", reg.url()))
                .body("hello")
                .send()
                .unwrap();
            assert_eq!(code(resp), (400, "DIGEST_INVALID".to_owned()));
            let again = c
                .put(format!(
                    "{}{location}?digest={}",
                    reg.url(),
                    sha256_digest(b"hello")
                ))
                .body("hello")
                .send()
                .unwrap();
            assert_eq!(code(again), (404, "BLOB_UPLOAD_UNKNOWN".to_owned()));

            // A mount from a repository that has the blob links it; otherwise a new session.
            let mount = c
                .post(format!(
                    "{}/v2/r/b/blobs/uploads/?mount={digest}&from=r/a",
                    reg.url()
                ))
                .send()
                .unwrap();
            assert_eq!(mount.status().as_u16(), 201);
            assert_eq!(
                c.head(format!("{}/v2/r/b/blobs/{digest}", reg.url()))
                    .send()
                    .unwrap()
                    .status()
                    .as_u16(),
                200
            );
            let fallback = c
                .post(format!(
                    "{}/v2/r/c/blobs/uploads/?mount={digest}&from=nowhere",
                    reg.url()
                ))
                .send()
                .unwrap();
            assert_eq!(fallback.status().as_u16(), 202);
        });
    }

    #[test]
    fn manifests_are_checked_stored_with_their_media_type_and_tagged() {
        let reg = OciRegistry::start();
        let digest = reg.push_image("img/one", "v1");
        crate::http::off_runtime(|| {
            let c = client();
            let by_tag = c
                .get(format!("{}/v2/img/one/manifests/v1", reg.url()))
                .send()
                .unwrap();
            assert_eq!(by_tag.status().as_u16(), 200);
            assert_eq!(by_tag.headers()["content-type"], OCI_MANIFEST);
            assert_eq!(by_tag.headers()["docker-content-digest"], digest.as_str());
            let bytes = by_tag.bytes().unwrap();
            assert_eq!(sha256_digest(&bytes), digest);
            let head = c
                .head(format!("{}/v2/img/one/manifests/{digest}", reg.url()))
                .send()
                .unwrap();
            assert_eq!(
                head.headers()["content-length"],
                bytes.len().to_string().as_str()
            );

            // By digest: the bytes must hash to it.
            let wrong = sha256_digest(b"not it");
            assert_eq!(
                code(put(&c, &reg, "img/one", &wrong, OCI_MANIFEST, &bytes)),
                (400, "DIGEST_INVALID".to_owned())
            );
            assert_eq!(
                put(&c, &reg, "img/one", &digest, OCI_MANIFEST, &bytes)
                    .status()
                    .as_u16(),
                201
            );
            // The media type must match the body's.
            assert_eq!(
                code(put(&c, &reg, "img/one", "v2", OCI_INDEX, &bytes)).1,
                "MANIFEST_INVALID"
            );
            // Blobs it names must be in the repository (distribution refuses them too).
            assert_eq!(
                code(put(&c, &reg, "img/two", "v1", OCI_MANIFEST, &bytes)),
                (400, "MANIFEST_BLOB_UNKNOWN".to_owned())
            );
            // An index may only name manifests the repository holds.
            let index = |d: &str| {
                json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{"mediaType": OCI_MANIFEST, "digest": d, "size": 1}]}).to_string()
            };
            assert_eq!(
                code(put(
                    &c,
                    &reg,
                    "img/one",
                    "idx",
                    OCI_INDEX,
                    index(&wrong).as_bytes()
                ))
                .1,
                "MANIFEST_BLOB_UNKNOWN"
            );
            assert_eq!(
                put(
                    &c,
                    &reg,
                    "img/one",
                    "idx",
                    OCI_INDEX,
                    index(&digest).as_bytes()
                )
                .status()
                .as_u16(),
                201
            );
            assert_eq!(
                code(put(&c, &reg, "img/one", "-bad", OCI_MANIFEST, &bytes)).1,
                "TAG_INVALID"
            );

            let tags = json_of(
                c.get(format!("{}/v2/img/one/tags/list", reg.url()))
                    .send()
                    .unwrap(),
            );
            assert_eq!(tags, json!({"name": "img/one", "tags": ["idx", "v1"]}));
            assert_eq!(
                code(
                    c.get(format!("{}/v2/img/one/manifests/nope", reg.url()))
                        .send()
                        .unwrap()
                ),
                (404, "MANIFEST_UNKNOWN".to_owned())
            );
        });
        assert_eq!(reg.tags("img/one"), ["idx", "v1"]);
    }

    #[test]
    fn referrers_list_manifests_by_subject_and_filter_by_artifact_type() {
        let reg = OciRegistry::start();
        let image = reg.push_image("ref/img", "v1");
        crate::http::off_runtime(|| {
            let c = client();
            let url = format!("{}/v2/ref/img/referrers/{image}", reg.url());
            let empty = c.get(&url).send().unwrap();
            assert_eq!(
                empty.status().as_u16(),
                200,
                "an image without referrers still answers 200"
            );
            assert_eq!(empty.headers()["content-type"], OCI_INDEX);
            assert_eq!(json_of(empty)["manifests"], json!([]));

            let a = artifact(&c, &reg, "ref/img", &image, BUNDLE, "a");
            let a_digest = sha256_digest(&a);
            let pushed = put(&c, &reg, "ref/img", &a_digest, OCI_MANIFEST, &a);
            assert_eq!(pushed.status().as_u16(), 201);
            assert_eq!(pushed.headers()["oci-subject"], image.as_str());
            let b = artifact(&c, &reg, "ref/img", &image, "application/example", "b");
            put(&c, &reg, "ref/img", &sha256_digest(&b), OCI_MANIFEST, &b);
            // About another image (which need not exist): not listed here.
            let other = artifact(&c, &reg, "ref/img", &sha256_digest(b"absent"), BUNDLE, "c");
            assert!(put(
                &c,
                &reg,
                "ref/img",
                &sha256_digest(&other),
                OCI_MANIFEST,
                &other
            )
            .status()
            .is_success());

            let all = c.get(&url).send().unwrap();
            assert!(all.headers().get("oci-filters-applied").is_none());
            let all = json_of(all);
            assert_eq!(all["mediaType"], OCI_INDEX);
            assert_eq!(all["manifests"].as_array().unwrap().len(), 2);

            let encoded: String = form_urlencoded::byte_serialize(BUNDLE.as_bytes()).collect();
            let filtered = c
                .get(format!("{url}?artifactType={encoded}"))
                .send()
                .unwrap();
            assert_eq!(filtered.headers()["oci-filters-applied"], "artifactType");
            let filtered = json_of(filtered);
            assert_eq!(
                filtered["manifests"],
                json!([{"mediaType": OCI_MANIFEST, "digest": a_digest, "size": a.len(), "artifactType": BUNDLE, "annotations": {"note": "a"}}])
            );
            // A manifest without a subject gets no OCI-Subject.
            let plain = reg.push_image("ref/img", "v2");
            let got = c
                .get(format!("{}/v2/ref/img/manifests/{plain}", reg.url()))
                .send()
                .unwrap()
                .bytes()
                .unwrap();
            assert!(put(&c, &reg, "ref/img", "v3", OCI_MANIFEST, &got)
                .headers()
                .get("oci-subject")
                .is_none());
            assert_eq!(
                code(
                    c.get(format!("{}/v2/ref/img/referrers/latest", reg.url()))
                        .send()
                        .unwrap()
                ),
                (400, "DIGEST_INVALID".to_owned())
            );
        });
        assert_eq!(reg.referrers_requests(), 4);
    }
}
