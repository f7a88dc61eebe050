//! End to end through the approvers' web page: the real `sigbridge serve`, CI-style `sigbridge
//! sign` waiting on it, approvers (password accounts made with `sigbridge serve hash-password`)
//! signing in and deciding in real headless Chromium (testkit's `Browser`, one per approver),
//! cosign 2.5 verifying what was attached, and the audit log naming who decided.
//!
//! Screenshots land in target/test-output/<test name>/. The client is spawned first and waited
//! for last (with a deadlock guard only), so the browser acts while it really waits.

use std::time::{Duration, Instant};

use serde_json::Value;
use sigbridge_testkit::{cosign_verify, Browser, OutputExt, Tab};

use crate::serve_support::{finish_within, rand_suffix, Fixture, WAIT};

/// Only keeps a hung client from hanging the run; no test measures time with it.
const CLIENT_GUARD: Duration = Duration::from_secs(300);

/// A policy whose two approvals come from a group.
const TWO_BY_GROUP: &str = r#"
[[groups]]
name = "release-managers"
members = ["alice", "bob"]

[[policies]]
project = "my-images"
slug = "two-by-group"
signer = "service.pem"
approvals_required = 2
submitters = ["ci"]
approvers = ["group:release-managers"]
"#;

/// Signs `name` in on a fresh tab of `browser`, which must not have a session yet (each
/// approver has a Chromium of their own).
fn sign_in<'b>(browser: &'b Browser, fx: &Fixture, name: &str, password: &str) -> Tab<'b> {
    let tab = browser.new_tab();
    tab.goto(&fx.web("/web/requests"));
    assert!(
        tab.current_url().ends_with("/web/login") && tab.exists("#login"),
        "{name}'s browser was not sent to the sign-in form: {}",
        tab.current_url()
    );
    tab.fill("#login input[name=name]", name)
        .fill("#login input[name=password]", password)
        .click_and_wait("#login button[type=submit]");
    assert!(
        tab.current_url().ends_with("/web/requests"),
        "{name} did not land on the list after signing in: {}\n{}",
        tab.current_url(),
        fx.log()
    );
    assert_eq!(tab.text("#user"), name);
    tab
}

/// Reloads the list until the request the client submits (while the approver signs in) is
/// waiting there; returns its id.
fn waiting_request(tab: &Tab<'_>, fx: &Fixture) -> String {
    let start = Instant::now();
    loop {
        tab.goto(&fx.web("/web/requests"));
        if tab.exists("#pending a.request") {
            assert!(
                !tab.exists("#pending tbody tr:nth-child(2)"),
                "more than one waiting request: {}",
                tab.text("#pending")
            );
            return tab
                .attr("#pending a.request", "data-id")
                .expect("a.request has data-id");
        }
        assert!(
            start.elapsed() < WAIT,
            "no request appeared in the list:\n{}",
            fx.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Opens request `id` from the list by its link.
fn open_from_list(tab: &Tab<'_>, id: &str) {
    tab.click_and_wait(&format!("#pending a.request[data-id=\"{id}\"]"));
    assert!(
        tab.current_url().ends_with(&format!("/web/requests/{id}")),
        "the link led to {}",
        tab.current_url()
    );
}

/// Each payload row of a request page: (image `repo@sha256:…`, payload SHA-256 hex), sorted.
fn payload_rows(tab: &Tab<'_>) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    for n in 1.. {
        let row = format!("#payloads tbody tr.payload:nth-child({n})");
        if !tab.exists(&row) {
            break;
        }
        rows.push((
            tab.text(&format!("{row} code.image")),
            tab.text(&format!("{row} code.digest")),
        ));
    }
    rows.sort();
    rows
}

/// The status and body of the registry's answer for the `.sig` manifest of `repo@digest`.
fn signature_manifest(fx: &Fixture, repo: &str, digest: &str) -> (u16, String) {
    let tag = format!("{}.sig", digest.replacen("sha256:", "sha256-", 1));
    let resp = fx
        .reg
        .blocking_client()
        .get(format!("{}/v2/{repo}/manifests/{tag}", fx.reg.url()))
        .header("Accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .unwrap();
    (resp.status().as_u16(), resp.text().unwrap())
}

/// The SHA-256 of the payload the signature attached to `repo@digest` signs: the digest of the
/// `.sig` manifest's one layer, as the registry has it.
fn attached_payload_sha256(fx: &Fixture, repo: &str, digest: &str) -> String {
    let (code, body) = signature_manifest(fx, repo, digest);
    assert_eq!(code, 200, "no signature on {repo}@{digest}: {body}");
    let manifest: Value = serde_json::from_str(&body).unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{manifest}");
    layers[0]["digest"]
        .as_str()
        .unwrap()
        .strip_prefix("sha256:")
        .unwrap()
        .to_string()
}

/// The waiting client finishes with success and cosign verifies every image.
fn assert_signed_and_verified(
    sign: std::process::Child,
    fx: &Fixture,
    images: &[(String, String, String)],
) {
    let out = finish_within(sign, CLIENT_GUARD);
    assert!(
        out.status.success(),
        "sign failed:\n{}\n{}",
        out.describe(),
        fx.log()
    );
    assert_cosign_verifies(fx, images);
}

fn assert_cosign_verifies(fx: &Fixture, images: &[(String, String, String)]) {
    for (image, _, _) in images {
        let v = cosign_verify(&fx.reg, &fx.public_key, image, &[]);
        assert!(
            v.status.success(),
            "cosign verify {image}:\n{}",
            v.describe()
        );
    }
}

/// `audit verify` passes; the exported entries.
fn verified_audit(fx: &Fixture) -> Vec<Value> {
    let verify = fx.serve_cmd(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", verify.describe());
    let export = fx.serve_cmd(&["audit", "export"]);
    assert!(export.status.success(), "{}", export.describe());
    export
        .stdout_str()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// (action, actor) of the entries about request `id`, in order.
fn trail(entries: &[Value], id: &str) -> Vec<(String, String)> {
    entries
        .iter()
        .filter(|e| e["request_id"] == id)
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["actor"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn detail(entry: &Value) -> Value {
    serde_json::from_str(entry["detail"].as_str().unwrap()).unwrap()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn an_approver_in_chromium_sees_all_three_images_with_their_payload_digests_and_approves() {
    let mut fx = Fixture::new();
    let password = fx.add_password("alice");
    fx.start();
    let images = fx.images(3);
    let sign = fx.spawn_sign_uri(&fx.uri_fetching_key("release-signing"), &images);

    let browser = Browser::launch();
    let tab = sign_in(&browser, &fx, "alice", &password);
    let id = waiting_request(&tab, &fx);
    let pending = tab.text("#pending");
    for shown in [
        "my-images/release-signing",
        "ci",
        "0/1",
        "yours to approve or deny",
    ] {
        assert!(
            pending.contains(shown),
            "{shown:?} not in the list: {pending}"
        );
    }
    tab.screenshot("1-requests");

    open_from_list(&tab, &id);
    assert_eq!(tab.text("#status"), "WaitingForApproval");
    assert_eq!(tab.text("#submitter"), "ci");
    let from = tab.text("#submitted-from");
    assert!(from.starts_with("127.0.0.1:"), "submitted from {from}");
    assert_eq!(tab.text("#approvals"), "0 of 1 (none yet)");
    let rows = payload_rows(&tab);
    let mut expected: Vec<&str> = images.iter().map(|(r, _, _)| r.as_str()).collect();
    expected.sort();
    let shown: Vec<&str> = rows.iter().map(|(image, _)| image.as_str()).collect();
    assert_eq!(shown, expected, "the page's images");
    assert!(tab.exists("#approve") && tab.exists("#deny"));
    tab.screenshot("2-request");

    tab.click_and_wait("#approve button[type=submit]");
    assert!(tab.current_url().ends_with(&format!("/web/requests/{id}")));
    assert_eq!(tab.text("#approvals"), "1 of 1 (alice)");
    assert!(!tab.exists("#approve"), "an approve form after approving");

    assert_signed_and_verified(sign, &fx, &images);
    // The digests the approver was shown are those of the payloads now signed in the registry.
    for (image, repo, digest) in &images {
        let on_page = &rows.iter().find(|(i, _)| i == image).unwrap().1;
        assert_eq!(
            on_page,
            &attached_payload_sha256(&fx, repo, digest),
            "{image}"
        );
    }

    tab.goto(&fx.web(&format!("/web/requests/{id}")));
    assert_eq!(tab.text("#status"), "Completed");
    assert!(!tab.exists("#approve") && !tab.exists("#deny"));
    tab.screenshot("3-completed");

    tab.click_and_wait("#logout button[type=submit]");
    assert!(tab.current_url().ends_with("/web/login"));
    tab.goto(&fx.web(&format!("/web/requests/{id}")));
    assert!(
        tab.exists("#login"),
        "signed out, the request page still shows"
    );

    let entries = verified_audit(&fx);
    assert_eq!(
        trail(&entries, &id),
        pairs(&[
            ("submit", "ci"),
            ("approve", "alice"),
            ("sign", "service"),
            ("download", "ci")
        ]),
        "{entries:#?}"
    );
    let sessions: Vec<(&str, &str)> = entries
        .iter()
        .filter(|e| e["request_id"] == "")
        .map(|e| (e["action"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(sessions, [("login", "alice"), ("logout", "alice")]);
}

#[test]
fn two_approvals_from_a_group_need_a_second_approver_in_a_second_browser() {
    let mut fx = Fixture::new();
    fx.extra = TWO_BY_GROUP.into();
    let alice_pw = fx.add_password("alice");
    let bob_pw = fx.add_password("bob");
    fx.start();
    let images = fx.images(1);
    let mut sign = fx.spawn_sign_uri(&fx.uri_fetching_key("two-by-group"), &images);

    let alice_browser = Browser::launch();
    let alice = sign_in(&alice_browser, &fx, "alice", &alice_pw);
    let id = waiting_request(&alice, &fx);
    open_from_list(&alice, &id);
    assert_eq!(alice.text("#approvals"), "0 of 2 (none yet)");
    alice.click_and_wait("#approve button[type=submit]");
    assert_eq!(alice.text("#status"), "WaitingForApproval");
    assert_eq!(alice.text("#approvals"), "1 of 2 (alice)");
    assert_eq!(alice.text("#note"), "You approved this request.");
    assert!(!alice.exists("#approve") && alice.exists("#deny"));
    alice.screenshot("1-alice-approved-1-of-2");
    assert!(
        sign.try_wait().unwrap().is_none(),
        "the client finished after one of two approvals"
    );

    let bob_browser = Browser::launch();
    let bob = sign_in(&bob_browser, &fx, "bob", &bob_pw);
    assert_eq!(waiting_request(&bob, &fx), id);
    assert!(
        bob.text("#pending").contains("1/2"),
        "{}",
        bob.text("#pending")
    );
    open_from_list(&bob, &id);
    assert_eq!(bob.text("#approvals"), "1 of 2 (alice)");
    bob.screenshot("2-bob-request");
    bob.click_and_wait("#approve button[type=submit]");

    assert_signed_and_verified(sign, &fx, &images);
    bob.goto(&fx.web(&format!("/web/requests/{id}")));
    assert_eq!(bob.text("#status"), "Completed");
    assert_eq!(bob.text("#approvals"), "2 of 2 (alice, bob)");
    bob.screenshot("3-completed");

    let entries = verified_audit(&fx);
    assert_eq!(
        trail(&entries, &id),
        pairs(&[
            ("submit", "ci"),
            ("approve", "alice"),
            ("approve", "bob"),
            ("sign", "service"),
            ("download", "ci")
        ]),
        "{entries:#?}"
    );
    let approvals: Vec<Value> = entries
        .iter()
        .filter(|e| e["request_id"] == id.as_str() && e["action"] == "approve")
        .map(detail)
        .collect();
    assert_eq!(
        approvals,
        [
            serde_json::json!({"approvals": 1, "required": 2, "via": "web"}),
            serde_json::json!({"approvals": 2, "required": 2, "via": "web"})
        ]
    );
}

#[test]
fn the_submitter_signed_in_as_an_approver_gets_no_approve_form_and_another_approver_approves() {
    let mut fx = Fixture::new();
    // ci submits with its token and is also an approver of release-signing with a password.
    let ci_pw = fx.add_password("ci");
    let alice_pw = fx.add_password("alice");
    fx.start();
    let images = fx.images(1);
    let sign = fx.spawn_sign_uri(&fx.uri_fetching_key("release-signing"), &images);

    let ci_browser = Browser::launch();
    let ci = sign_in(&ci_browser, &fx, "ci", &ci_pw);
    let id = waiting_request(&ci, &fx);
    assert!(
        ci.text("#pending").contains("submitted by you"),
        "{}",
        ci.text("#pending")
    );
    open_from_list(&ci, &id);
    assert_eq!(ci.text("#status"), "WaitingForApproval");
    assert!(
        !ci.exists("#approve") && !ci.exists("#deny"),
        "the submitter is offered a decision on its own request"
    );
    assert_eq!(
        ci.text("#note"),
        format!("ci submitted signing request {id} and cannot approve or deny it; another approver must")
    );
    ci.screenshot("1-submitter-sees-no-approve");

    let alice_browser = Browser::launch();
    let alice = sign_in(&alice_browser, &fx, "alice", &alice_pw);
    assert_eq!(waiting_request(&alice, &fx), id);
    open_from_list(&alice, &id);
    alice.click_and_wait("#approve button[type=submit]");

    assert_signed_and_verified(sign, &fx, &images);
    ci.goto(&fx.web(&format!("/web/requests/{id}")));
    assert_eq!(ci.text("#status"), "Completed");
    assert_eq!(ci.text("#approvals"), "1 of 1 (alice)");
    ci.screenshot("2-completed");

    let entries = verified_audit(&fx);
    assert_eq!(
        trail(&entries, &id),
        pairs(&[
            ("submit", "ci"),
            ("approve", "alice"),
            ("sign", "service"),
            ("download", "ci")
        ]),
        "{entries:#?}"
    );
}

#[test]
fn a_denial_in_chromium_with_a_reason_makes_the_client_exit_7_with_that_reason() {
    let mut fx = Fixture::new();
    let password = fx.add_password("bob");
    fx.start();
    let images = fx.images(1);
    let sign = fx.spawn_sign_uri(&fx.uri_fetching_key("release-signing"), &images);
    let reason = format!(
        "not a release build: built from branch wip-{}",
        rand_suffix()
    );

    let browser = Browser::launch();
    let tab = sign_in(&browser, &fx, "bob", &password);
    let id = waiting_request(&tab, &fx);
    open_from_list(&tab, &id);
    tab.fill("#deny textarea[name=reason]", &reason);
    tab.screenshot("1-denying");
    tab.click_and_wait("#deny button[type=submit]");
    assert!(tab.current_url().ends_with(&format!("/web/requests/{id}")));
    assert_eq!(tab.text("#status"), "Denied");
    assert_eq!(tab.text("#reason"), reason);
    assert!(!tab.exists("#approve") && !tab.exists("#deny"));
    tab.screenshot("2-denied");

    let out = finish_within(sign, CLIENT_GUARD);
    assert_eq!(out.status.code(), Some(7), "{}", out.describe());
    assert!(
        out.stderr_str().contains(&reason),
        "the client does not say why it was denied:\n{}",
        out.describe()
    );
    let (_, repo, digest) = &images[0];
    let (code, body) = signature_manifest(&fx, repo, digest);
    assert_eq!(code, 404, "a signature was attached after a denial: {body}");

    let entries = verified_audit(&fx);
    assert_eq!(
        trail(&entries, &id),
        pairs(&[("submit", "ci"), ("deny", "bob")]),
        "{entries:#?}"
    );
    let denial = entries
        .iter()
        .find(|e| e["request_id"] == id.as_str() && e["action"] == "deny")
        .unwrap();
    assert_eq!(
        detail(denial),
        serde_json::json!({ "reason": reason, "via": "web" })
    );
}
