//! The browser harness against a small server-rendered app of its own on 127.0.0.1: a login form
//! that sets a session cookie, pages that read it, and approve/deny forms with a hidden field,
//! the shapes of `sigbridge serve`'s approver pages.

use std::net::TcpListener;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use sigbridge_testkit::Browser;
use tokio::sync::oneshot;

const PASSWORD: &str = "correct horse battery staple";

/// What the app saw: (approver, request id from the hidden field, decision, reason).
type Decisions = Arc<Mutex<Vec<(String, String, String, String)>>>;

/// The app on its own thread and runtime; dropping it stops it.
struct App {
    base: String,
    decisions: Decisions,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl App {
    fn start() -> App {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        listener.set_nonblocking(true).expect("nonblocking");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let decisions = Decisions::default();
        let router = Router::new()
            .route("/login", get(login_page).post(login))
            .route("/requests", get(requests))
            .route("/requests/{id}", get(request_page))
            .route("/requests/{id}/decide", post(decide))
            .with_state(decisions.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                tokio::spawn(async move {
                    let _ = axum::serve(listener, router).await;
                });
                let _ = rx.await;
            });
        });
        App {
            base,
            decisions,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html><head><meta charset=utf-8><title>{title}</title></head>\
         <body><h1>{title}</h1>{body}</body></html>"
    ))
}

fn form_fields(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

fn field(fields: &[(String, String)], name: &str) -> String {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// The signed-in user from the `session` cookie (the test app trusts it; the real one must not).
fn user(headers: &HeaderMap) -> Option<String> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    cookies
        .split(';')
        .filter_map(|c| c.trim().strip_prefix("session="))
        .map(str::to_string)
        .next()
}

/// Minimal escaping for the few values echoed into pages.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const LOGIN_FORM: &str = "<form id=login method=post action=/login>\
    <label>Name <input name=name></label>\
    <label>Password <input name=password type=password></label>\
    <button type=submit>Sign in</button></form>";

async fn login_page() -> Html<String> {
    page("Sign in", LOGIN_FORM)
}

async fn login(body: Bytes) -> Response {
    let fields = form_fields(&body);
    let name = field(&fields, "name");
    if field(&fields, "password") != PASSWORD || name.is_empty() {
        let body = format!("<p id=status>wrong name or password</p>{LOGIN_FORM}");
        return (StatusCode::UNAUTHORIZED, page("Sign in", &body)).into_response();
    }
    let cookie = format!("session={name}; Path=/; HttpOnly; SameSite=Strict");
    (
        [(header::SET_COOKIE, cookie)],
        Redirect::to("/requests"), // 303 See Other: the browser follows with a GET
    )
        .into_response()
}

async fn requests(headers: HeaderMap) -> Response {
    let Some(user) = user(&headers) else {
        return Redirect::to("/login").into_response();
    };
    let body = format!(
        "<p id=status>signed in as {}</p><ul>\
         <li><a class=request data-id=42 href=/requests/42>repo@sha256:4242</a></li></ul>",
        esc(&user)
    );
    page("Pending requests", &body).into_response()
}

async fn request_page(Path(id): Path<String>, headers: HeaderMap) -> Response {
    if user(&headers).is_none() {
        return Redirect::to("/login").into_response();
    }
    let id = esc(&id);
    let body = format!(
        "<form id=approve method=post action=/requests/{id}/decide>\
         <input type=hidden name=request value={id}><input type=hidden name=decision value=approve>\
         <button type=submit>Approve</button></form>\
         <form id=deny method=post action=/requests/{id}/decide>\
         <input type=hidden name=request value={id}><input type=hidden name=decision value=deny>\
         <textarea name=reason></textarea><button type=submit>Deny</button></form>"
    );
    page(&format!("Request {id}"), &body).into_response()
}

async fn decide(
    State(decisions): State<Decisions>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(user) = user(&headers) else {
        return (StatusCode::FORBIDDEN, "no session").into_response();
    };
    let fields = form_fields(&body);
    let (request, decision) = (field(&fields, "request"), field(&fields, "decision"));
    let reason = field(&fields, "reason");
    let done = match decision.as_str() {
        "approve" => "approved",
        "deny" => "denied",
        _ => return (StatusCode::BAD_REQUEST, "unknown decision").into_response(),
    };
    decisions.lock().expect("decisions").push((
        user.clone(),
        request.clone(),
        decision.clone(),
        reason.clone(),
    ));
    let body = format!(
        "<p id=status>{} {done} request {} (form for {})</p><p id=reason>{}</p>",
        esc(&user),
        esc(&request),
        esc(&id),
        esc(&reason)
    );
    page("Decision recorded", &body).into_response()
}

/// Asserts `path` is a real PNG screenshot, not an empty or placeholder file.
fn assert_png(path: &std::path::Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        path.display()
    );
    // A rendered 1280x900 page with text is tens of KB; a blank or failed capture is far less.
    assert!(
        bytes.len() > 8 * 1024,
        "{} is only {} bytes",
        path.display(),
        bytes.len()
    );
}

#[test]
fn login_redirects_sets_an_http_only_session_and_screenshots() {
    let app = App::start();
    let browser = Browser::launch();
    let tab = browser.new_tab();

    // Not signed in: the list redirects to the login form.
    tab.goto(&app.url("/requests"));
    assert_eq!(tab.current_url(), app.url("/login"));
    assert!(tab.exists("#login"));
    assert!(tab.cookie("session").is_none());

    // A wrong password stays on the form with a message and no cookie.
    tab.fill("#login input[name=name]", "alice")
        .fill("#login input[name=password]", "wrong")
        .click_and_wait("#login button[type=submit]");
    assert_eq!(tab.text("#status"), "wrong name or password");
    assert!(tab.cookie("session").is_none());

    tab.fill("#login input[name=name]", "alice")
        .fill("#login input[name=password]", PASSWORD)
        .click_and_wait("#login button[type=submit]");
    assert_eq!(tab.current_url(), app.url("/requests"));
    assert_eq!(tab.text("#status"), "signed in as alice");
    let cookie = tab.cookie("session").expect("session cookie after login");
    assert_eq!(cookie.value, "alice");
    assert!(cookie.http_only, "{cookie:?}");

    let shot = tab.screenshot("requests");
    assert!(shot.starts_with(browser.output_dir()), "{}", shot.display());
    assert_eq!(
        browser.output_dir().file_name().and_then(|n| n.to_str()),
        Some("login_redirects_sets_an_http_only_session_and_screenshots")
    );
    assert_png(&shot);

    // A second tab of the same browser shares the session.
    let second = browser.new_tab();
    second.goto(&app.url("/requests"));
    assert_eq!(second.text("#status"), "signed in as alice");
}

#[test]
fn approve_and_deny_forms_post_their_hidden_fields() {
    let app = App::start();
    let browser = Browser::launch();
    let tab = browser.new_tab();
    tab.goto(&app.url("/login"))
        .fill("#login input[name=name]", "bob")
        .fill("#login input[name=password]", PASSWORD)
        .click_and_wait("#login button[type=submit]");

    assert_eq!(tab.attr("a.request", "data-id").as_deref(), Some("42"));
    assert_eq!(tab.attr("a.request", "data-missing"), None);
    tab.click_and_wait("a.request[data-id='42']");
    assert_eq!(tab.current_url(), app.url("/requests/42"));
    assert!(tab.exists("#approve") && tab.exists("#deny"));
    assert!(!tab.exists("#status"));
    assert_png(&tab.screenshot("request-42"));

    tab.click_and_wait("#approve button[type=submit]");
    assert_eq!(tab.text("#status"), "bob approved request 42 (form for 42)");

    tab.goto(&app.url("/requests/42"))
        .fill("#deny textarea[name=reason]", "wrong digest <b>")
        .click_and_wait("#deny button[type=submit]");
    assert_eq!(tab.text("#status"), "bob denied request 42 (form for 42)");
    assert_eq!(tab.text("#reason"), "wrong digest <b>");
    assert_png(&tab.screenshot("denied"));

    let seen = app.decisions.lock().expect("decisions").clone();
    assert_eq!(
        seen,
        [
            ("bob", "42", "approve", ""),
            ("bob", "42", "deny", "wrong digest <b>")
        ]
        .map(|(a, b, c, d)| (a.into(), b.into(), c.into(), d.into()))
    );
}

#[test]
fn a_second_browser_is_an_independent_user() {
    let app = App::start();
    let first = Browser::launch();
    let second = Browser::launch();
    assert_ne!(first.output_dir(), std::path::Path::new(""));

    let a = first.new_tab();
    a.goto(&app.url("/login"))
        .fill("#login input[name=name]", "alice")
        .fill("#login input[name=password]", PASSWORD)
        .click_and_wait("#login button[type=submit]");
    assert_eq!(a.text("#status"), "signed in as alice");

    let b = second.new_tab();
    b.goto(&app.url("/requests"));
    assert_eq!(b.current_url(), app.url("/login"), "no cookie of the first");
    assert!(b.cookie("session").is_none());
    b.fill("#login input[name=name]", "carol")
        .fill("#login input[name=password]", PASSWORD)
        .click_and_wait("#login button[type=submit]");
    assert_eq!(b.text("#status"), "signed in as carol");

    // Each keeps its own session.
    a.goto(&app.url("/requests"));
    assert_eq!(a.text("#status"), "signed in as alice");
}

fn panic_message(f: impl FnOnce()) -> String {
    let err = catch_unwind(AssertUnwindSafe(f)).expect_err("the call must fail");
    err.downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn failures_name_the_selector_and_the_page() {
    let app = App::start();
    let browser = Browser::launch();
    let tab = browser.new_tab();
    let url = app.url("/login");
    tab.goto(&url).set_wait(std::time::Duration::from_secs(2));

    let msg = panic_message(|| {
        tab.text("#no-such-element");
    });
    assert!(msg.contains("#no-such-element"), "{msg}");
    assert!(msg.contains(&url), "{msg}");

    let msg = panic_message(|| {
        tab.exists("a[");
    });
    assert!(msg.contains("a[") && msg.contains(&url), "{msg}");

    // A click that loads nothing new is a failure, not a silent pass.
    let msg = panic_message(|| {
        tab.click_and_wait("h1");
    });
    assert!(msg.contains("h1") && msg.contains(&url), "{msg}");

    // The tab still works afterwards.
    assert_eq!(tab.text("h1"), "Sign in");
}

#[test]
fn dropping_the_browser_removes_its_profile() {
    let app = App::start();
    // Several rounds: Chromium's helper processes outliving the main one made the removal
    // fail only now and then.
    for round in 0..6 {
        let browser = Browser::launch();
        let profile = browser.profile_dir().to_path_buf();
        {
            let tab = browser.new_tab();
            tab.goto(&app.url("/login"))
                .fill("#login input[name=name]", "alice")
                .fill("#login input[name=password]", PASSWORD)
                .click_and_wait("#login button[type=submit]");
        }
        assert!(profile.join("profile").is_dir(), "{}", profile.display());
        drop(browser);
        assert!(
            !profile.exists(),
            "round {round}: {} is left behind",
            profile.display()
        );
    }
}
