//! End to end: the real `sigbridge serve` (a child process with a temp config, a key file and
//! SQLite state), real `sigbridge sign` against it over a shared docker-registry, approvals
//! through the API as other identities, and real cosign 2.5 verifying the result. The approvers'
//! web page in Chromium: e2e_serve_browser.

use sigbridge_testkit::{cosign_verify, OutputExt};

use crate::serve_support::{finish, sigbridge_bin, Fixture, ORG};

#[test]
fn three_images_approved_by_another_identity_verify_with_cosign_and_the_audit_log_detects_tampering(
) {
    let mut fx = Fixture::new();
    fx.start();
    let images = fx.images(3);
    let sign = fx.spawn_sign("release-signing", &images);
    let id = fx.wait_for_request(&fx.alice);

    // ci is an approver of this policy but submitted the request: refused.
    let (code, body) = fx.api(
        "POST",
        &fx.ci,
        &format!("SigningRequests/{id}/Approve"),
        None,
    );
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("cannot approve"), "{body}");

    let (code, body) = fx.api(
        "POST",
        &fx.alice,
        &format!("SigningRequests/{id}/Approve"),
        None,
    );
    assert_eq!(code, 200, "{body}");

    let out = finish(sign);
    assert!(
        out.status.success(),
        "sign failed:\n{}\n{}",
        out.describe(),
        fx.log()
    );
    for (image, _, _) in &images {
        let v = cosign_verify(&fx.reg, &fx.public_key, image, &[]);
        assert!(
            v.status.success(),
            "cosign verify {image}:\n{}",
            v.describe()
        );
    }

    // The request's data names who submitted and who approved.
    let (code, body) = fx.api("GET", &fx.alice, &format!("SigningRequests/{id}"), None);
    assert_eq!(code, 200, "{body}");
    let data: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(data["status"], "Completed");
    assert_eq!(data["submitter"], "ci");
    assert_eq!(data["approvals"], serde_json::json!(["alice"]));

    let verify = fx.serve_cmd(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", verify.describe());
    let export = fx.serve_cmd(&["audit", "export"]);
    assert!(export.status.success(), "{}", export.describe());
    let entries: Vec<serde_json::Value> = export
        .stdout_str()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["submit", "approve", "sign", "download"],
        "{entries:?}"
    );
    let submitted: serde_json::Value =
        serde_json::from_str(entries[0]["detail"].as_str().unwrap()).unwrap();
    assert_eq!(
        submitted["payloads"].as_array().unwrap().len(),
        3,
        "{submitted}"
    );

    // Someone with the database file rewrites who approved.
    fx.kill();
    let db = rusqlite::Connection::open(fx.dir.path().join("state.db")).unwrap();
    db.execute_batch(
        "DROP TRIGGER audit_no_update; UPDATE audit SET actor = 'mallory' WHERE seq = 2;",
    )
    .unwrap();
    drop(db);
    let verify = fx.serve_cmd(&["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(5), "{}", verify.describe());
    assert!(
        verify.stderr_str().contains("audit log broken at entry 2"),
        "{}",
        verify.describe()
    );
}

#[test]
fn a_denial_with_a_reason_makes_the_client_exit_7_and_a_non_loopback_listen_is_refused() {
    let mut fx = Fixture::new();
    fx.start();
    let images = fx.images(1);
    let sign = fx.spawn_sign("release-signing", &images);
    let id = fx.wait_for_request(&fx.bob);

    let (code, body) = fx.api("POST", &fx.bob, &format!("SigningRequests/{id}/Deny"), None);
    assert_eq!(code, 400, "a denial without a reason: {body}");
    let (code, body) = fx.api(
        "POST",
        &fx.bob,
        &format!("SigningRequests/{id}/Deny"),
        Some(r#"{"reason":"not a release build"}"#),
    );
    assert_eq!(code, 200, "{body}");

    let out = finish(sign);
    assert_eq!(out.status.code(), Some(7), "{}", out.describe());
    let (_, repo, digest) = &images[0];
    let tag = format!("{}.sig", digest.replacen("sha256:", "sha256-", 1));
    let resp = fx
        .reg
        .blocking_client()
        .get(format!("{}/v2/{repo}/manifests/{tag}", fx.reg.url()))
        .header("Accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404, "a signature was attached");
    let (_, body) = fx.api("GET", &fx.bob, &format!("SigningRequests/{id}"), None);
    assert!(body.contains("not a release build"), "{body}");

    let other = fx.write_config("open.toml", "0.0.0.0:0");
    let out = sigbridge_bin()
        .args(["serve", "--config"])
        .arg(other)
        .current_dir(fx.dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", out.describe());
    assert!(
        out.stderr_str().contains("refusing to listen on 0.0.0.0:0"),
        "{}",
        out.describe()
    );
}

#[test]
fn a_restart_while_a_request_waits_loses_nothing() {
    let mut fx = Fixture::new();
    fx.start();
    let images = fx.images(2);
    let sign = fx.spawn_sign("two-person", &images);
    let id = fx.wait_for_request(&fx.alice);
    let (code, body) = fx.api(
        "POST",
        &fx.alice,
        &format!("SigningRequests/{id}/Approve"),
        None,
    );
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"complete\":false"), "{body}");

    fx.kill();
    fx.start();

    assert_eq!(fx.wait_for_request(&fx.bob), id);
    let (code, body) = fx.api(
        "POST",
        &fx.bob,
        &format!("SigningRequests/{id}/Approve"),
        None,
    );
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"complete\":true"), "{body}");

    let out = finish(sign);
    assert!(
        out.status.success(),
        "sign failed:\n{}\n{}",
        out.describe(),
        fx.log()
    );
    for (image, _, _) in &images {
        let v = cosign_verify(&fx.reg, &fx.public_key, image, &[]);
        assert!(
            v.status.success(),
            "cosign verify {image}:\n{}",
            v.describe()
        );
    }
    let verify = fx.serve_cmd(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", verify.describe());
}

#[test]
fn over_tls_from_a_test_ca_the_client_fetches_the_policy_key_and_cosign_verifies() {
    let mut fx = Fixture::new();
    fx.use_tls();
    fx.start();
    let images = fx.images(1);
    let uri = fx.uri_fetching_key("unattended");

    // Without the CA the client must refuse the service's certificate, and say what to add.
    let out = finish(fx.spawn_sign_uri(&uri, &images));
    assert!(!out.status.success(), "{}", out.describe());
    assert!(
        out.stderr_str().contains("certificate") && out.stderr_str().contains("ca-file="),
        "not a certificate error with the ca-file= hint:\n{}",
        out.describe()
    );

    // ca-file= adds the test CA to the system's roots (percent-encoded like any URI value).
    let ca = fx.ca.clone().unwrap();
    let uri = format!(
        "{uri}&ca-file={}",
        ca.display()
            .to_string()
            .replace('%', "%25")
            .replace(' ', "%20")
    );
    let out = finish(fx.spawn_sign_uri(&uri, &images));
    assert!(
        out.status.success(),
        "sign over TLS failed:\n{}\n{}",
        out.describe(),
        fx.log()
    );
    let v = cosign_verify(&fx.reg, &fx.public_key, &images[0].0, &[]);
    assert!(v.status.success(), "cosign verify:\n{}", v.describe());
}

#[test]
fn a_burst_over_the_rate_limit_gets_429_with_retry_after_and_the_client_still_completes() {
    let mut fx = Fixture::new();
    // One call every 3 s after a burst of 20.
    fx.top = "max_requests_per_minute = 20".into();
    fx.write_config("serve.toml", "127.0.0.1:0");
    fx.start();
    let client = fx.reg.blocking_client();
    let url = format!("http://127.0.0.1:{}/API/v1/{ORG}/SigningRequests", fx.port);
    let mut refused = None;
    for _ in 0..100 {
        let resp = client.get(&url).bearer_auth(&fx.ci.token).send().unwrap();
        if resp.status().as_u16() == 429 {
            refused = Some(resp);
            break;
        }
        assert_eq!(resp.status().as_u16(), 200);
    }
    let resp = refused.expect("100 calls in a row were never limited");
    let retry_after: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3).contains(&retry_after), "Retry-After {retry_after}");
    assert!(resp.text().unwrap().contains("max_requests_per_minute"));
    // Another identity has its own allowance.
    let (code, body) = fx.api("GET", &fx.alice, "SigningRequests", None);
    assert_eq!(code, 200, "{body}");

    let images = fx.images(1);
    let out = finish(fx.spawn_sign_uri(&fx.uri_fetching_key("unattended"), &images));
    assert!(
        out.status.success(),
        "sign under the rate limit failed:\n{}\n{}",
        out.describe(),
        fx.log()
    );
    let v = cosign_verify(&fx.reg, &fx.public_key, &images[0].0, &[]);
    assert!(v.status.success(), "cosign verify:\n{}", v.describe());
    // The burst was refused once; the client, which starts with an empty allowance and needs
    // several calls, was refused too and waited.
    let refusals = fx.log().matches("rate limit: refused a call").count();
    assert!(refusals >= 2, "the client was never limited:\n{}", fx.log());
}
