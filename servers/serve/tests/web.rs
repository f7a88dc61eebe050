//! The approvers' web page over real HTTP: an in-process service on loopback with a local key
//! signer, requests submitted through the API, and a cookie-keeping reqwest client in the role
//! of the browser (the headless-Chromium run lives in the end-to-end suite).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use p256::ecdsa::signature::Verifier as _;
use reqwest::StatusCode;
use sigbridge_serve::{policy_key, ServeConfig, Signers, Store};
use sigbridge_signer::Signer;

const ORG: &str = "org";
const PASSWORD: &str = "correct horse battery staple";
const WAIT: Duration = Duration::from_secs(30);

/// One argon2 hash for every account (hashing is slow in debug builds; the accounts differ by
/// name, which is what these tests are about).
fn password_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        sigbridge_serve::web::password::hash(PASSWORD)
            .unwrap()
            .as_str()
            .to_string()
    })
}

struct Fixture {
    dir: tempfile::TempDir,
    ci_token: String,
    signer: Arc<dyn Signer>,
    key: p256::ecdsa::VerifyingKey,
}

struct Server {
    base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), sigbridge_serve::ServeError>>,
}

impl Server {
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

impl Fixture {
    fn new() -> Self {
        use p256::pkcs8::{EncodePrivateKey as _, LineEnding};
        let secret = p256::SecretKey::random(&mut rand_core::OsRng);
        let pem = secret.to_pkcs8_pem(LineEnding::LF).unwrap();
        let local = sigbridge_local::KeyFile::parse(pem.as_bytes(), "test key")
            .unwrap()
            .decrypt(None)
            .unwrap();
        Self {
            dir: tempfile::tempdir().unwrap(),
            ci_token: String::new(),
            signer: Arc::new(local),
            key: secret.public_key().into(),
        }
    }

    /// Write serve.toml: ci submits (and is listed as an approver, which must not let it
    /// approve its own requests), alice and bob approve through a group, mallory has an
    /// account but no role. `extra` is appended (a `[web]` table).
    fn config(&mut self, approvals: u32, extra: &str) -> PathBuf {
        let (token, hash) = sigbridge_serve::token::new_token();
        self.ci_token = token;
        let pw = password_hash();
        let text = format!(
            r#"listen = "127.0.0.1:0"
database = "state.db"
organization_id = "{ORG}"
[[identities]]
name = "ci"
token_sha256 = "{hash}"
password_argon2 = "{pw}"
[[identities]]
name = "alice"
password_argon2 = "{pw}"
[[identities]]
name = "bob"
password_argon2 = "{pw}"
[[identities]]
name = "mallory"
password_argon2 = "{pw}"
[[groups]]
name = "release-managers"
members = ["alice", "bob"]
[[policies]]
project = "p"
slug = "s"
signer = "unused: the test hands the signer over"
approvals_required = {approvals}
submitters = ["ci"]
approvers = ["ci", "group:release-managers"]
{extra}"#
        );
        let path = self.dir.path().join("serve.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    async fn start(&self, config: &Path) -> Server {
        let config = ServeConfig::load(config).unwrap();
        let signers: Signers = [(policy_key("p", "s"), self.signer.clone())]
            .into_iter()
            .collect();
        let bound = sigbridge_serve::bind(&config).await.unwrap();
        let base = format!("http://{}", bound.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(sigbridge_serve::serve(bound, config, signers, async move {
            let _ = stopped.await;
        }));
        Server { base, stop, task }
    }

    fn store(&self) -> Store {
        Store::open(&self.dir.path().join("state.db")).unwrap()
    }
}

/// Three cosign payloads for three images; one annotation is markup.
fn payloads() -> Vec<(String, Vec<u8>)> {
    (1..=3)
        .map(|i| {
            let body = serde_json::json!({
                "critical": {
                    "identity": {"docker-reference": format!("registry.test/app{i}")},
                    "image": {"docker-manifest-digest": format!("sha256:{}", format!("{i}").repeat(64))},
                    "type": "cosign container image signature"
                },
                "optional": {"note": "<script>alert(1)</script>", "build": format!("#{i}")}
            });
            (format!("payloads/00{i}.json"), body.to_string().into_bytes())
        })
        .collect()
}

async fn submit(base: &str, token: &str) -> String {
    let zip = sigbridge_serve::artifact::signed_zip(&payloads(), &[]).unwrap();
    let form = reqwest::multipart::Form::new()
        .text("projectSlug", "p")
        .text("signingPolicySlug", "s")
        .text("description", "release <b>1.0</b>")
        .part(
            "artifact",
            reqwest::multipart::Part::bytes(zip).file_name("payloads.zip"),
        );
    let r = reqwest::Client::new()
        .post(format!(
            "{base}/API/v1/{ORG}/SigningRequests/SubmitWithArtifact"
        ))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: serde_json::Value = r.json().await.unwrap();
    v["signingRequestId"].as_str().unwrap().to_string()
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn browser_from(addr: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .local_address(addr)
        .build()
        .unwrap()
}

/// The first CSRF token in a page's forms.
fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .unwrap_or_else(|| panic!("no CSRF field in {page}"))
        + "name=\"csrf\" value=\"".len();
    page[at..].split('"').next().unwrap().to_string()
}

async fn get(c: &reqwest::Client, url: &str) -> (StatusCode, String) {
    let r = c.get(url).send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

async fn post(
    c: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
) -> (StatusCode, String, String) {
    let r = c.post(url).form(form).send().await.unwrap();
    let location = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (r.status(), location, r.text().await.unwrap())
}

async fn login(
    c: &reqwest::Client,
    base: &str,
    name: &str,
    password: &str,
) -> (StatusCode, String, String) {
    let (status, page) = get(c, &format!("{base}/web/login")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("<form id=\"login\""), "{page}");
    let csrf = csrf_of(&page);
    post(
        c,
        &format!("{base}/web/login"),
        &[("name", name), ("password", password), ("csrf", &csrf)],
    )
    .await
}

async fn logged_in(base: &str, name: &str) -> reqwest::Client {
    let c = browser();
    let (status, location, body) = login(&c, base, name, PASSWORD).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(location, "/web/requests");
    c
}

fn status_word(page: &str) -> &str {
    let at = page.find("id=\"status\">").expect("no #status") + "id=\"status\">".len();
    page[at..].split('<').next().unwrap()
}

async fn wait_for_status(c: &reqwest::Client, url: &str, want: &str) -> String {
    let start = std::time::Instant::now();
    loop {
        let (code, page) = get(c, url).await;
        assert_eq!(code, StatusCode::OK, "{page}");
        if status_word(&page) == want {
            return page;
        }
        assert!(start.elapsed() < WAIT, "never reached {want}: {page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approver_signs_in_sees_every_image_escaped_and_approves_and_the_request_is_signed() {
    let mut f = Fixture::new();
    let config = f.config(1, "");
    let server = f.start(&config).await;
    let base = server.base.clone();
    let id = submit(&base, &f.ci_token).await;

    // `/` leads to the list, which leads a stranger to the login form.
    let anon = browser();
    let r = anon.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/web/requests");
    let r = anon
        .get(format!("{base}/web/requests"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/web/login");

    let alice = logged_in(&base, "alice").await;
    let (_, list) = get(&alice, &format!("{base}/web/requests")).await;
    assert!(
        list.contains(&format!(
            "<a class=\"request\" data-id=\"{id}\" href=\"/web/requests/{id}\">"
        )),
        "{list}"
    );
    let url = format!("{base}/web/requests/{id}");
    let r = alice.get(&url).send().await.unwrap();
    let h = r.headers().clone();
    assert!(h["content-security-policy"]
        .to_str()
        .unwrap()
        .starts_with("default-src 'none'"));
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["cache-control"], "no-store");
    let page = r.text().await.unwrap();
    assert_eq!(status_word(&page), "WaitingForApproval");
    for (i, (name, bytes)) in payloads().iter().enumerate() {
        let n = i + 1;
        let image = format!("registry.test/app{n}@sha256:{}", format!("{n}").repeat(64));
        assert!(page.contains(&image), "{image} missing: {page}");
        use sha2::Digest as _;
        assert!(
            page.contains(&hex::encode(sha2::Sha256::digest(bytes))),
            "{name}"
        );
        assert!(page.contains(&format!("#{n}")));
    }
    // Markup from the upload and the description is shown, not run.
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{page}"
    );
    assert!(!page.contains("<script"), "{page}");
    assert!(page.contains("release &lt;b&gt;1.0&lt;/b&gt;"));
    assert!(page.contains("<dd id=\"submitter\">ci</dd>"), "{page}");
    assert!(
        page.contains("<dd id=\"submitted-from\">127.0.0.1:"),
        "{page}"
    );
    assert!(page.contains("<dd id=\"policy\">p/s</dd>"));
    assert!(page.contains("0 of 1"));
    assert!(page.contains("<form id=\"approve\"") && page.contains("<form id=\"deny\""));

    let (code, location, body) = post(
        &alice,
        &format!("{url}/approve"),
        &[("csrf", &csrf_of(&page))],
    )
    .await;
    assert_eq!(code, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(location, format!("/web/requests/{id}"));
    let page = wait_for_status(&alice, &url, "Completed").await;
    assert!(page.contains("1 of 1 (alice)"), "{page}");

    // The signed artifact holds a valid signature over each payload.
    let zip = reqwest::Client::new()
        .get(format!(
            "{base}/API/v1/{ORG}/SigningRequests/{id}/SignedArtifact"
        ))
        .bearer_auth(&f.ci_token)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip.to_vec())).unwrap();
    for (name, bytes) in payloads() {
        let mut der = Vec::new();
        std::io::Read::read_to_end(
            &mut archive.by_name(&format!("{name}.sig")).unwrap(),
            &mut der,
        )
        .unwrap();
        f.key
            .verify(&bytes, &p256::ecdsa::Signature::from_der(&der).unwrap())
            .unwrap();
    }
    server.stop().await;
    let entries = f.store().audit_entries().unwrap();
    sigbridge_serve::audit::verify_entries(&entries).unwrap();
    assert!(entries
        .iter()
        .any(|e| e.action == "approve" && e.actor == "alice" && e.request_id == id));
    assert!(entries
        .iter()
        .any(|e| e.action == "login" && e.actor == "alice"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_and_forms_without_their_csrf_token_are_refused() {
    let mut f = Fixture::new();
    let config = f.config(1, "");
    let server = f.start(&config).await;
    let base = server.base.clone();
    let id = submit(&base, &f.ci_token).await;

    let c = browser();
    let (code, _, body) = login(&c, &base, "alice", "not the password at all").await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert!(body.contains("Wrong name or password."), "{body}");
    let (code, _, _) = login(&c, &base, "nobody", PASSWORD).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    // A login form posted without its token (say, from another site) is refused even with
    // the right password.
    let (code, _, body) = post(
        &browser(),
        &format!("{base}/web/login"),
        &[("name", "alice"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    assert!(body.contains("CSRF"), "{body}");

    let alice = logged_in(&base, "alice").await;
    let url = format!("{base}/web/requests/{id}");
    let (code, _, body) = post(&alice, &format!("{url}/approve"), &[]).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    assert!(
        body.contains("CSRF token is missing or does not belong to your session"),
        "{body}"
    );
    // Bob's token does not fit Alice's session.
    let bob = logged_in(&base, "bob").await;
    let (_, bob_page) = get(&bob, &url).await;
    let (code, _, _) = post(
        &alice,
        &format!("{url}/approve"),
        &[("csrf", &csrf_of(&bob_page))],
    )
    .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    let (_, page) = get(&alice, &url).await;
    assert_eq!(status_word(&page), "WaitingForApproval");

    server.stop().await;
    let entries = f.store().audit_entries().unwrap();
    let failed: Vec<_> = entries
        .iter()
        .filter(|e| e.action == "login-failed")
        .collect();
    assert_eq!(failed.len(), 2, "{entries:?}");
    assert!(failed
        .iter()
        .any(|e| e.actor == "alice" && e.detail.contains("127.0.0.1")));
    assert!(!entries
        .iter()
        .any(|e| e.detail.contains("not the password")));
    assert!(!entries.iter().any(|e| e.action == "approve"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_submitter_others_and_second_approvals_are_refused_and_a_denial_needs_a_reason() {
    let mut f = Fixture::new();
    let config = f.config(2, "");
    let server = f.start(&config).await;
    let base = server.base.clone();
    let id = submit(&base, &f.ci_token).await;
    let url = format!("{base}/web/requests/{id}");

    // ci submitted it: it sees the request but no approve form, and a forged POST is refused.
    let ci = logged_in(&base, "ci").await;
    let (_, page) = get(&ci, &url).await;
    assert!(!page.contains("<form id=\"approve\""), "{page}");
    assert!(page.contains("ci submitted signing request"), "{page}");
    let (code, _, body) = post(&ci, &format!("{url}/approve"), &[("csrf", &csrf_of(&page))]).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    assert!(
        body.contains("ci submitted signing request") && body.contains("cannot approve"),
        "{body}"
    );

    // mallory has an account but no role in the policy.
    let mallory = logged_in(&base, "mallory").await;
    let (code, page) = get(&mallory, &url).await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{page}");
    let (_, list) = get(&mallory, &format!("{base}/web/requests")).await;
    assert!(!list.contains(&id));
    let (code, _, _) = post(
        &mallory,
        &format!("{url}/approve"),
        &[("csrf", &csrf_of(&list))],
    )
    .await;
    assert_eq!(code, StatusCode::FORBIDDEN);

    // alice approves once; a second approval by her is refused and does not count.
    let alice = logged_in(&base, "alice").await;
    let (_, page) = get(&alice, &url).await;
    let token = csrf_of(&page);
    let (code, _, _) = post(&alice, &format!("{url}/approve"), &[("csrf", &token)]).await;
    assert_eq!(code, StatusCode::SEE_OTHER);
    let (code, _, body) = post(&alice, &format!("{url}/approve"), &[("csrf", &token)]).await;
    assert_eq!(code, StatusCode::CONFLICT);
    assert!(body.contains("alice has already approved"), "{body}");
    let (_, page) = get(&alice, &url).await;
    assert!(
        page.contains("1 of 2 (alice)") && !page.contains("<form id=\"approve\""),
        "{page}"
    );

    // bob denies: without a reason it is refused, with one it ends the request.
    let bob = logged_in(&base, "bob").await;
    let (_, page) = get(&bob, &url).await;
    let token = csrf_of(&page);
    let (code, _, body) = post(
        &bob,
        &format!("{url}/deny"),
        &[("csrf", &token), ("reason", "  ")],
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(body.contains("A denial needs a reason"), "{body}");
    let (code, _, _) = post(
        &bob,
        &format!("{url}/deny"),
        &[("csrf", &token), ("reason", "not a <release> build")],
    )
    .await;
    assert_eq!(code, StatusCode::SEE_OTHER);
    let (_, page) = get(&bob, &url).await;
    assert_eq!(status_word(&page), "Denied");
    assert!(page.contains("not a &lt;release&gt; build"), "{page}");
    // The API sees the same denial.
    let v: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}/API/v1/{ORG}/SigningRequests/{id}"))
        .bearer_auth(&f.ci_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "Denied");
    assert_eq!(v["reason"], "not a <release> build");
    server.stop().await;
    let entries = f.store().audit_entries().unwrap();
    assert!(entries
        .iter()
        .any(|e| e.action == "deny" && e.actor == "bob"));
    assert_eq!(entries.iter().filter(|e| e.action == "approve").count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_survives_a_restart_and_ends_at_logout() {
    let mut f = Fixture::new();
    let config = f.config(1, "");
    let server = f.start(&config).await;
    let id = submit(&server.base, &f.ci_token).await;
    let alice = logged_in(&server.base, "alice").await;
    server.stop().await;

    // A new process on another port: cookies are per host, not per port.
    let server = f.start(&config).await;
    let base = server.base.clone();
    let (code, page) = get(&alice, &format!("{base}/web/requests/{id}")).await;
    assert_eq!(code, StatusCode::OK, "{page}");
    assert!(page.contains("<span id=\"user\">alice</span>"), "{page}");
    let (code, _, _) = post(
        &alice,
        &format!("{base}/web/requests/{id}/approve"),
        &[("csrf", &csrf_of(&page))],
    )
    .await;
    assert_eq!(code, StatusCode::SEE_OTHER);
    wait_for_status(&alice, &format!("{base}/web/requests/{id}"), "Completed").await;

    let (_, page) = get(&alice, &format!("{base}/web/requests")).await;
    let (code, location, _) = post(
        &alice,
        &format!("{base}/web/logout"),
        &[("csrf", &csrf_of(&page))],
    )
    .await;
    assert_eq!(
        (code, location.as_str()),
        (StatusCode::SEE_OTHER, "/web/login")
    );
    let r = alice
        .get(format!("{base}/web/requests"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/web/login");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_rate_limited_even_before_the_right_password() {
    let mut f = Fixture::new();
    let config = f.config(1, "[web]\nmax_login_failures_per_minute = 2\n");
    let server = f.start(&config).await;
    let base = server.base.clone();
    let c = browser();
    for _ in 0..2 {
        let (code, _, _) = login(&c, &base, "bob", "wrong wrong wrong").await;
        assert_eq!(code, StatusCode::UNAUTHORIZED);
    }
    let (code, _, body) = login(&c, &base, "bob", PASSWORD).await;
    assert_eq!(code, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(body.contains("Too many failed sign-ins"), "{body}");
    server.stop().await;
    let entries = f.store().audit_entries().unwrap();
    assert!(entries
        .iter()
        .any(|e| e.action == "login-refused" && e.actor == "bob"));
    assert!(!entries.iter().any(|e| e.action == "login"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_header_mode_believes_only_trusted_proxies() {
    let mut f = Fixture::new();
    // The "proxy" is 127.0.0.2; the test's other client connects from 127.0.0.1.
    let config = f.config(
        1,
        "[web]\nauth = \"proxy-header\"\nheader = \"X-Forwarded-User\"\ntrusted_proxies = [\"127.0.0.2\"]\n",
    );
    let server = f.start(&config).await;
    let base = server.base.clone();
    let id = submit(&base, &f.ci_token).await;
    let url = format!("{base}/web/requests/{id}");

    let proxy = browser_from("127.0.0.2".parse().unwrap());
    let as_alice = |r: reqwest::RequestBuilder| r.header("X-Forwarded-User", "alice");
    let r = as_alice(proxy.get(&url)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    assert!(page.contains("<span id=\"user\">alice</span>"), "{page}");

    // The same header from an address that is not a trusted proxy is not believed.
    let direct = browser();
    let r = direct
        .get(&url)
        .header("X-Forwarded-User", "alice")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = direct
        .post(format!("{url}/approve"))
        .header("X-Forwarded-User", "alice")
        .form(&[("csrf", csrf_of(&page))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // From the proxy: no header is 401, an unknown name 403.
    assert_eq!(
        proxy.get(&url).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let r = proxy
        .get(&url)
        .header("X-Forwarded-User", "eve")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // CSRF stays on: a POST without the page's token is refused.
    let r = as_alice(proxy.post(format!("{url}/approve")))
        .form(&[("x", "y")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // With it, Alice approves through the proxy.
    let r = as_alice(proxy.post(format!("{url}/approve")))
        .form(&[("csrf", csrf_of(&page))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let start = std::time::Instant::now();
    loop {
        let page = as_alice(proxy.get(&url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if status_word(&page) == "Completed" {
            break;
        }
        assert!(start.elapsed() < WAIT, "never signed: {page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A client through the proxy that never returns cookies leaves nothing behind.
    let cookieless = reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<IpAddr>().unwrap())
        .build()
        .unwrap();
    for _ in 0..5 {
        let r = as_alice(cookieless.get(&url)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    server.stop().await;
    let sessions: i64 = rusqlite::Connection::open(f.dir.path().join("state.db"))
        .unwrap()
        .query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sessions, 0, "proxy-header mode stores no sessions");
    let entries = f.store().audit_entries().unwrap();
    assert!(entries
        .iter()
        .any(|e| e.action == "approve" && e.actor == "alice"));
}
