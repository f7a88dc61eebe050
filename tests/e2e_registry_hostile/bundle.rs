//! The bundle path (issue 12) against a hostile registry: the referrers API's answer, the
//! `sha256-<hex>` fallback index, the referrer manifests and the bundle layers must obey the
//! rules the legacy path obeys (bounded reads by declared size and by our caps, digests from
//! bytes, one total verify budget), for `verify` and for `sign` reading the index to append.

use std::collections::{BTreeMap, HashMap};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use serde_json::{json, Value};
use sigbridge::format::bundle::{signed_bytes, BUNDLE_MEDIA_TYPE};
use sigbridge::format::{Payload, SignatureFormat, SigstoreBundle};
use sigbridge::reference::Digest;
use sigbridge::registry::manifest::media_types;
use sigbridge_signer::PublicKey;

use super::common::{Sandbox, TestKey};
use super::{counted_stream, empty, image_manifest, run_measured, Fake};

const EMPTY_CONFIG_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// Far more than any bound of ours: a full read of it is the defect.
const ENDLESS: u64 = 128 << 20;
/// sigbridge's peak RSS must stay under this while a hostile registry streams.
const RSS_BOUND_KIB: u64 = 128 * 1024;

type Answer = Arc<dyn Fn() -> Response + Send + Sync>;

fn answer(f: impl Fn() -> Response + Send + Sync + 'static) -> Answer {
    Arc::new(f)
}

fn bytes_answer(content_type: &'static str, bytes: Vec<u8>) -> Answer {
    answer(move || {
        Response::builder()
            .status(200)
            .header("content-type", content_type)
            .body(Body::from(bytes.clone()))
            .unwrap()
    })
}

/// `len` bytes streamed without a `Content-Length`, counted into `produced`.
fn endless(content_type: &'static str, produced: &Arc<AtomicU64>) -> Answer {
    let produced = produced.clone();
    answer(move || {
        Response::builder()
            .status(200)
            .header("content-type", content_type)
            .body(counted_stream(ENDLESS, produced.clone()))
            .unwrap()
    })
}

/// `len` bytes announced in `Content-Length` and streamed, counted into `produced`.
fn announced(content_type: &'static str, len: u64, produced: &Arc<AtomicU64>) -> Answer {
    let produced = produced.clone();
    answer(move || {
        Response::builder()
            .status(200)
            .header("content-type", content_type)
            .header("content-length", len.to_string())
            .body(counted_stream(len, produced.clone()))
            .unwrap()
    })
}

/// One image `demo/app@digest` and whatever the test puts around it.
struct Hostile {
    image: Vec<u8>,
    digest: Digest,
    /// `None`: the registry has no referrers API (404).
    referrers: Option<Answer>,
    /// `None`: no fallback tag (404).
    fallback: Option<Answer>,
    /// Manifests by digest.
    manifests: HashMap<String, Answer>,
    /// Blobs by digest.
    blobs: HashMap<String, Answer>,
    /// What every stream produced.
    produced: Arc<AtomicU64>,
}

impl Hostile {
    fn new() -> Self {
        let image = image_manifest();
        let digest = Digest::of(&image);
        Self {
            image,
            digest,
            referrers: None,
            fallback: None,
            manifests: HashMap::new(),
            blobs: HashMap::new(),
            produced: Arc::new(AtomicU64::new(0)),
        }
    }

    fn fallback_tag(&self) -> String {
        format!("sha256-{}", self.digest.hex())
    }

    /// Serve it; uploads are accepted (201) and manifest PUTs answered 201, so `sign` can run.
    async fn start(&self) -> Fake {
        let image = self.image.clone();
        let image_path = format!("/v2/demo/app/manifests/{}", self.digest);
        let referrers_path = format!("/v2/demo/app/referrers/{}", self.digest);
        let fallback_path = format!("/v2/demo/app/manifests/{}", self.fallback_tag());
        let referrers = self.referrers.clone();
        let fallback = self.fallback.clone();
        let manifests = self.manifests.clone();
        let blobs = self.blobs.clone();
        Fake::start(move |method, path| match (method, path) {
            ("GET", "/v2/") => empty(200),
            ("GET" | "HEAD", p) if p == image_path => super::manifest(&image, None),
            ("GET", p) if p == referrers_path => {
                referrers.as_ref().map_or_else(|| empty(404), |a| a())
            }
            ("GET", p) if p == fallback_path => {
                fallback.as_ref().map_or_else(|| empty(404), |a| a())
            }
            ("GET", p) if p.starts_with("/v2/demo/app/manifests/") => manifests
                .get(p.trim_start_matches("/v2/demo/app/manifests/"))
                .map_or_else(|| empty(404), |a| a()),
            ("GET", p) if p.starts_with("/v2/demo/app/blobs/") => blobs
                .get(p.trim_start_matches("/v2/demo/app/blobs/"))
                .map_or_else(|| empty(404), |a| a()),
            ("HEAD", p) if p.starts_with("/v2/demo/app/blobs/") => empty(404),
            ("POST", "/v2/demo/app/blobs/uploads/") => empty(201),
            ("PUT", p) if p.starts_with("/v2/demo/app/manifests/") => empty(201),
            _ => empty(404),
        })
        .await
    }
}

/// A Sigstore bundle v0.3 for `digest`, signed by `key` (valid: sigbridge verifies it).
fn signed_bundle(key: &TestKey, digest: &Digest) -> Vec<u8> {
    let public = PublicKey::from_pem(&std::fs::read_to_string(&key.public).unwrap()).unwrap();
    let format = SigstoreBundle::new(&public, BTreeMap::new());
    let pae = signed_bytes(digest, &BTreeMap::new());
    let signature = key.sign_der(&pae);
    let payload = Payload {
        bytes: pae,
        identity: "demo/app".to_string(),
    };
    format.wrap(&payload, &signature, None).blob
}

/// A layer descriptor.
fn layer(media_type: &str, digest: &str, size: u64) -> Value {
    json!({"mediaType": media_type, "digest": digest, "size": size})
}

/// cosign 3's artifact manifest for `layers`, about `subject`; `salt` makes it unique.
fn artifact_manifest(
    subject: &Digest,
    image_len: usize,
    layers: Vec<Value>,
    salt: &str,
) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_MANIFEST,
        "artifactType": BUNDLE_MEDIA_TYPE,
        "config": {"mediaType": EMPTY_CONFIG_TYPE, "artifactType": BUNDLE_MEDIA_TYPE, "size": 2, "digest": Digest::of(b"{}").to_string()},
        "layers": layers,
        "annotations": {"dev.sigstore.bundle.content": "dsse-envelope", "salt": salt},
        "subject": {"mediaType": media_types::OCI_MANIFEST, "digest": subject.to_string(), "size": image_len},
    }))
    .unwrap()
}

/// An index entry for a referrer manifest, as the referrers API lists it.
fn entry(digest: &str, size: u64) -> Value {
    json!({"mediaType": media_types::OCI_MANIFEST, "digest": digest, "size": size, "artifactType": BUNDLE_MEDIA_TYPE})
}

fn index(entries: Vec<Value>) -> Vec<u8> {
    serde_json::to_vec(
        &json!({"schemaVersion": 2, "mediaType": media_types::OCI_INDEX, "manifests": entries}),
    )
    .unwrap()
}

/// `n` made-up referrer entries (never fetched if the count is refused).
fn many_entries(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            entry(
                &Digest::of(format!("referrer {i}").as_bytes()).to_string(),
                700,
            )
        })
        .collect()
}

/// Adds a referrer manifest with one bundle layer served by `blob`; returns its index entry.
fn add_referrer(h: &mut Hostile, layer_desc: Value, blob: Option<Answer>, salt: &str) -> Value {
    if let Some(blob) = blob {
        let d = layer_desc["digest"].as_str().unwrap().to_string();
        h.blobs.insert(d, blob);
    }
    let m = artifact_manifest(&h.digest, h.image.len(), vec![layer_desc], salt);
    let d = Digest::of(&m).to_string();
    let e = entry(&d, m.len() as u64);
    h.manifests
        .insert(d, bytes_answer(media_types::OCI_MANIFEST, m));
    e
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    peak_kib: u64,
}

/// `sigbridge ARGS… 127.0.0.1:PORT/demo/app@DIGEST`, measured.
async fn sigbridge(sb: &Sandbox, fake: &Fake, digest: &Digest, args: Vec<String>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sigbridge"));
    cmd.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", sb.join("home"))
        .current_dir(sb.path())
        .stdin(Stdio::null())
        .args(args)
        .arg(format!("{}/demo/app@{digest}", fake.addr));
    let (out, peak_kib) = tokio::task::spawn_blocking(move || run_measured(cmd))
        .await
        .unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        peak_kib,
    }
}

fn verify_args(key: &TestKey, format: Option<&str>) -> Vec<String> {
    let mut args = vec![
        "verify".to_string(),
        "--key".to_string(),
        key.public.display().to_string(),
    ];
    if let Some(f) = format {
        args.extend(["--format".to_string(), f.to_string()]);
    }
    args
}

/// Each hostile listing, through the referrers API and through the fallback index: `verify
/// --format bundle` refuses it (exit 6) with bounded memory and fetches no referrer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_refuses_hostile_referrer_listings() {
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("k");
    type Case = (&'static str, fn(&Arc<AtomicU64>) -> Answer, &'static str);
    let cases: [Case; 4] = [
        (
            "endless",
            |p| endless(media_types::OCI_INDEX, p),
            "larger than the limit of 4194304 bytes",
        ),
        (
            "announced 64 MiB",
            |p| announced(media_types::OCI_INDEX, 64 << 20, p),
            "larger than the limit of 4194304 bytes",
        ),
        (
            "not JSON",
            |_| bytes_answer(media_types::OCI_INDEX, b"<html>nope</html>".to_vec()),
            "not",
        ),
        (
            "1001 referrers",
            |_| bytes_answer(media_types::OCI_INDEX, index(many_entries(1001))),
            "lists 1001 referrers; sigbridge reads at most 1000",
        ),
    ];
    for api in [true, false] {
        for (name, make, expected) in &cases {
            let mut h = Hostile::new();
            let served = make(&h.produced);
            if api {
                h.referrers = Some(served);
            } else {
                h.fallback = Some(served);
            }
            let fake = h.start().await;
            let run = sigbridge(&sb, &fake, &h.digest, verify_args(&key, Some("bundle"))).await;
            let produced = h.produced.load(Ordering::Relaxed);
            let via = if api {
                "referrers API"
            } else {
                "fallback index"
            };
            eprintln!(
                "{via}, {name}: exit {:?}, fake produced {produced} bytes, peak RSS {} KiB",
                run.code, run.peak_kib
            );
            assert_eq!(run.code, Some(6), "{via}, {name}: {}", run.stderr);
            assert!(
                run.stderr.contains(expected),
                "{via}, {name}: {}",
                run.stderr
            );
            if *name == "not JSON" && !api {
                assert!(
                    run.stderr.contains("is not a referrers index"),
                    "{}",
                    run.stderr
                );
            }
            assert!(
                run.peak_kib < RSS_BOUND_KIB,
                "{via}, {name}: sigbridge peaked at {} KiB",
                run.peak_kib
            );
            assert!(
                produced < 32 << 20,
                "{via}, {name}: the fake produced {produced} bytes"
            );
            let fetched: Vec<_> = fake
                .requests("GET")
                .into_iter()
                .filter(|p| {
                    p.starts_with("/v2/demo/app/manifests/sha256:")
                        && !p.ends_with(&h.digest.to_string())
                })
                .collect();
            assert!(
                fetched.is_empty(),
                "{via}, {name}: fetched referrers {fetched:?}"
            );
        }
    }
}

/// Without `--format`, `verify` looks for bundles first (as cosign 3): a listing it cannot read
/// is reported and the `.sig` signatures are checked instead (none here: exit 10).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_without_format_reports_a_hostile_listing_and_checks_legacy_signatures() {
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("k");
    let mut h = Hostile::new();
    h.referrers = Some(endless(media_types::OCI_INDEX, &h.produced));
    let fake = h.start().await;
    let run = sigbridge(&sb, &fake, &h.digest, verify_args(&key, None)).await;
    assert_eq!(run.code, Some(10), "{}", run.stderr);
    assert!(
        run.stderr.contains("could not list the referrers"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("larger than the limit of 4194304 bytes"),
        "{}",
        run.stderr
    );
    assert!(
        fake.requests("GET").iter().any(|p| p.ends_with(".sig")),
        "{:?}",
        fake.requests("GET")
    );
    assert!(
        run.peak_kib < RSS_BOUND_KIB,
        "sigbridge peaked at {} KiB",
        run.peak_kib
    );
}

/// Referrer manifests are read by their index entry: bytes that do not hash to the listed
/// digest, a body longer than the listed size (streamed without end), a listed size over our
/// cap, are each refused and skipped (as cosign 3 skips a referrer it cannot read), and the
/// good referrer next to them still verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_reads_referrer_manifests_by_their_listed_digest_and_size() {
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("k");
    let mut h = Hostile::new();
    let bundle = signed_bundle(&key, &h.digest);
    let bundle_digest = Digest::of(&bundle).to_string();
    let good = add_referrer(
        &mut h,
        layer(BUNDLE_MEDIA_TYPE, &bundle_digest, bundle.len() as u64),
        Some(bytes_answer("application/octet-stream", bundle.clone())),
        "good",
    );
    // Listed under the digest of other bytes than those served.
    let served = artifact_manifest(
        &h.digest,
        h.image.len(),
        vec![layer(
            BUNDLE_MEDIA_TYPE,
            &bundle_digest,
            bundle.len() as u64,
        )],
        "swapped",
    );
    let listed = Digest::of(b"what the index promised").to_string();
    h.manifests.insert(
        listed.clone(),
        bytes_answer(media_types::OCI_MANIFEST, served.clone()),
    );
    let swapped = entry(&listed, served.len() as u64);
    // Listed as 600 bytes, streamed without end.
    let long = Digest::of(b"a manifest that never ends").to_string();
    h.manifests.insert(
        long.clone(),
        endless(media_types::OCI_MANIFEST, &h.produced),
    );
    let endless_entry = entry(&long, 600);
    // Listed as 5 MiB: over the cap, never asked for.
    let huge = Digest::of(b"a 5 MiB manifest").to_string();
    h.manifests.insert(
        huge.clone(),
        endless(media_types::OCI_MANIFEST, &h.produced),
    );
    let huge_entry = entry(&huge, 5 << 20);
    h.referrers = Some(bytes_answer(
        media_types::OCI_INDEX,
        index(vec![swapped, endless_entry, huge_entry, good]),
    ));
    let fake = h.start().await;

    for format in [Some("bundle"), None] {
        let run = sigbridge(&sb, &fake, &h.digest, verify_args(&key, format)).await;
        let produced = h.produced.load(Ordering::Relaxed);
        eprintln!(
            "--format {format:?}: exit {:?}, fake produced {produced} bytes, peak RSS {} KiB\n{}",
            run.code, run.peak_kib, run.stderr
        );
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        let verified: Vec<Value> = serde_json::from_str(run.stdout.trim()).unwrap();
        assert_eq!(verified.len(), 1, "{}", run.stdout);
        assert!(run.stderr.contains("digest mismatch"), "{}", run.stderr);
        assert!(
            run.stderr
                .contains("is not the 600 bytes its descriptor declares"),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr
                .contains(&format!("lists {huge} as 5242880 bytes")),
            "{}",
            run.stderr
        );
        assert!(
            run.peak_kib < RSS_BOUND_KIB,
            "sigbridge peaked at {} KiB",
            run.peak_kib
        );
    }
    assert!(
        fake.requests("GET").iter().all(|p| !p.ends_with(&huge)),
        "the over-cap referrer was fetched"
    );
    let produced = h.produced.load(Ordering::Relaxed);
    assert!(produced < 64 << 20, "the fake produced {produced} bytes");
}

/// A referrer manifest must hold exactly one layer, as cosign 3.1.1 requires (`Bundle`:
/// "expected exactly one layer"): two validly signed bundle layers in one manifest, or none,
/// are not signatures; a layer whose media type is not bundle v0.3 fails with its reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_refuses_referrers_without_exactly_one_v03_bundle_layer() {
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("k");
    let mut h = Hostile::new();
    let bundle = signed_bundle(&key, &h.digest);
    let bundle_digest = Digest::of(&bundle).to_string();
    h.blobs.insert(
        bundle_digest.clone(),
        bytes_answer("application/octet-stream", bundle.clone()),
    );
    let one = layer(BUNDLE_MEDIA_TYPE, &bundle_digest, bundle.len() as u64);
    let two = artifact_manifest(
        &h.digest,
        h.image.len(),
        vec![one.clone(), one.clone()],
        "two layers",
    );
    let none = artifact_manifest(&h.digest, h.image.len(), vec![], "no layer");
    let mut entries = Vec::new();
    for m in [two, none] {
        let d = Digest::of(&m).to_string();
        entries.push(entry(&d, m.len() as u64));
        h.manifests
            .insert(d, bytes_answer(media_types::OCI_MANIFEST, m));
    }
    h.referrers = Some(bytes_answer(media_types::OCI_INDEX, index(entries.clone())));
    let fake = h.start().await;
    let run = sigbridge(&sb, &fake, &h.digest, verify_args(&key, Some("bundle"))).await;
    assert_eq!(run.code, Some(10), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("holds 2 layers; a signature referrer holds exactly one"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("holds 0 layers"), "{}", run.stderr);
    assert!(
        fake.requests("GET")
            .iter()
            .all(|p| !p.ends_with(&bundle_digest)),
        "a layer of a refused referrer was read"
    );

    // The same signed bundle as a layer of type bundle v0.1: read as cosign would not
    // (its media type is not v0.3), refused unread with the documented exit code.
    let mut h2 = Hostile::new();
    h2.blobs.insert(
        bundle_digest.clone(),
        bytes_answer("application/octet-stream", bundle.clone()),
    );
    let old = add_referrer(
        &mut h2,
        layer(
            "application/vnd.dev.sigstore.bundle+json;version=0.1",
            &bundle_digest,
            bundle.len() as u64,
        ),
        None,
        "v0.1",
    );
    h2.referrers = Some(bytes_answer(media_types::OCI_INDEX, index(vec![old])));
    let fake = h2.start().await;
    let run = sigbridge(&sb, &fake, &h2.digest, verify_args(&key, Some("bundle"))).await;
    assert_eq!(run.code, Some(12), "{}", run.stderr);
    assert!(
        run.stderr.contains("only Sigstore bundle v0.3"),
        "{}",
        run.stderr
    );
    assert!(fake
        .requests("GET")
        .iter()
        .all(|p| !p.ends_with(&bundle_digest)));
}

/// Bundle layers as the registry serves them: a `Content-Length` other than the declared
/// size, an endless body, a declared size over the per-bundle cap, bytes that do not hash to
/// the digest. Each is refused with its reason (exit 12), in bounded memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_refuses_hostile_bundle_layers_in_bounded_memory() {
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("k");
    let mut h = Hostile::new();
    let bundle = signed_bundle(&key, &h.digest);
    let d = |s: &str| Digest::of(s.as_bytes()).to_string();
    let produced = h.produced.clone();
    let mut entries = vec![
        add_referrer(
            &mut h,
            layer(BUNDLE_MEDIA_TYPE, &d("announced"), 300),
            Some(answer(|| {
                Response::builder()
                    .status(200)
                    .header("content-length", "5000")
                    .body(Body::from(vec![b'x'; 5000]))
                    .unwrap()
            })),
            "announced",
        ),
        add_referrer(
            &mut h,
            layer(BUNDLE_MEDIA_TYPE, &d("endless"), 300),
            Some(endless("application/octet-stream", &produced)),
            "endless",
        ),
        add_referrer(
            &mut h,
            layer(BUNDLE_MEDIA_TYPE, &d("over cap"), 200 << 20),
            Some(endless("application/octet-stream", &produced)),
            "over cap",
        ),
    ];
    // The real signed bundle's bytes, listed under another digest.
    entries.push(add_referrer(
        &mut h,
        layer(
            BUNDLE_MEDIA_TYPE,
            &d("not these bytes"),
            bundle.len() as u64,
        ),
        Some(bytes_answer("application/octet-stream", bundle.clone())),
        "wrong digest",
    ));
    h.referrers = Some(bytes_answer(media_types::OCI_INDEX, index(entries)));
    let fake = h.start().await;
    let run = sigbridge(&sb, &fake, &h.digest, verify_args(&key, Some("bundle"))).await;
    let produced = h.produced.load(Ordering::Relaxed);
    eprintln!(
        "hostile bundle layers: exit {:?}, fake produced {produced} bytes, peak RSS {} KiB\n{}",
        run.code, run.peak_kib, run.stderr
    );
    assert_eq!(run.code, Some(12), "{}", run.stderr);
    for reason in [
        "the registry announced 5000 bytes",
        "is not the 300 bytes its descriptor declares (the body is longer)",
        "payload of 209715200 bytes exceeds the limit",
        "digest mismatch",
    ] {
        assert!(run.stderr.contains(reason), "{reason}: {}", run.stderr);
    }
    assert!(
        fake.requests("GET")
            .iter()
            .all(|p| !p.ends_with(&d("over cap"))),
        "the over-cap layer was fetched"
    );
    assert!(
        run.peak_kib < RSS_BOUND_KIB,
        "sigbridge peaked at {} KiB",
        run.peak_kib
    );
    assert!(produced < 32 << 20, "the fake produced {produced} bytes");
}

/// Bundle layers draw on the same total as legacy layers (`MAX_VERIFY_TOTAL`, 256 MiB): three
/// referrers declaring 128 MiB each, the first two refused on their `Content-Length`, the third
/// refused unread because it would pass the total.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundle_layers_count_towards_the_verify_total() {
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("k");
    let mut h = Hostile::new();
    let entries = (0..3)
        .map(|i| {
            let digest = Digest::of(format!("big {i}").as_bytes()).to_string();
            add_referrer(
                &mut h,
                layer(BUNDLE_MEDIA_TYPE, &digest, 128 << 20),
                Some(answer(|| {
                    Response::builder()
                        .status(200)
                        .header("content-length", "10")
                        .body(Body::from(vec![b'x'; 10]))
                        .unwrap()
                })),
                &format!("big {i}"),
            )
        })
        .collect();
    h.referrers = Some(bytes_answer(media_types::OCI_INDEX, index(entries)));
    let fake = h.start().await;
    let run = sigbridge(&sb, &fake, &h.digest, verify_args(&key, Some("bundle"))).await;
    assert_eq!(run.code, Some(12), "{}", run.stderr);
    assert_eq!(
        run.stderr
            .matches("the registry announced 10 bytes")
            .count(),
        2,
        "{}",
        run.stderr
    );
    assert_eq!(
        run.stderr
            .matches("would take this verify past its total of 268435456 bytes")
            .count(),
        1,
        "{}",
        run.stderr
    );
    let blob_gets = fake
        .requests("GET")
        .into_iter()
        .filter(|p| p.contains("/blobs/"))
        .count();
    assert_eq!(blob_gets, 2, "{:?}", fake.requests("GET"));
}

/// `sign --format bundle` reads the fallback index to append to it: endless, announced huge,
/// not an index, or over 1000 entries, it is refused (exit 6) in bounded memory and never
/// overwritten, so nothing listed there is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_refuses_a_hostile_fallback_index_and_never_overwrites_it() {
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("k");
    type Case = (&'static str, fn(&Arc<AtomicU64>) -> Answer, &'static str);
    let cases: [Case; 4] = [
        (
            "endless",
            |p| endless(media_types::OCI_INDEX, p),
            "larger than the limit of 4194304 bytes",
        ),
        (
            "announced 64 MiB",
            |p| announced(media_types::OCI_INDEX, 64 << 20, p),
            "larger than the limit of 4194304 bytes",
        ),
        (
            "not an index",
            |_| {
                bytes_answer(
                    media_types::OCI_INDEX,
                    b"{\"schemaVersion\":2,\"manifests\":\"no\"}".to_vec(),
                )
            },
            "is not a referrers index",
        ),
        (
            "1001 referrers",
            |_| bytes_answer(media_types::OCI_INDEX, index(many_entries(1001))),
            "lists 1001 referrers; sigbridge reads at most 1000",
        ),
    ];
    for (name, make, expected) in cases {
        let mut h = Hostile::new();
        h.fallback = Some(make(&h.produced));
        let fake = h.start().await;
        let args = vec![
            "sign".to_string(),
            "--format".to_string(),
            "bundle".to_string(),
            "--signer".to_string(),
            key.private.display().to_string(),
        ];
        let run = sigbridge(&sb, &fake, &h.digest, args).await;
        let produced = h.produced.load(Ordering::Relaxed);
        eprintln!("sign, fallback index {name}: exit {:?}, fake produced {produced} bytes, peak RSS {} KiB", run.code, run.peak_kib);
        assert_eq!(run.code, Some(6), "{name}: {}", run.stderr);
        assert!(run.stderr.contains(expected), "{name}: {}", run.stderr);
        let tag = format!("/v2/demo/app/manifests/{}", h.fallback_tag());
        assert!(
            !fake.requests("PUT").contains(&tag),
            "{name}: the fallback index was overwritten: {:?}",
            fake.requests("PUT")
        );
        assert!(
            run.peak_kib < RSS_BOUND_KIB,
            "{name}: sigbridge peaked at {} KiB",
            run.peak_kib
        );
        assert!(
            produced < 32 << 20,
            "{name}: the fake produced {produced} bytes"
        );
    }
}
