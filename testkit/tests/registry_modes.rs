//! The kit's registries answer the distribution API the way real clients expect, through
//! each auth flow, using plain HTTP requests (no sigbridge code involved).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::blocking::Client;
use reqwest::StatusCode;
use sigbridge_testkit::{push_image_http, sha256_digest, Registry};

/// POST + PUT one blob, then HEAD it; `auth` is a ready `Authorization` value.
fn push_blob(client: &Client, reg: &Registry, repo: &str, auth: Option<&str>) {
    let with = |req: reqwest::blocking::RequestBuilder| match auth {
        Some(a) => req.header("Authorization", a),
        None => req,
    };
    let bytes = b"sigbridge testkit blob".to_vec();
    let digest = sha256_digest(&bytes);
    let start = with(client.post(format!("{}/v2/{repo}/blobs/uploads/", reg.url())))
        .send()
        .unwrap();
    assert_eq!(start.status(), StatusCode::ACCEPTED);
    let location = start.headers()["Location"].to_str().unwrap().to_owned();
    let location = if location.starts_with('/') {
        format!("{}{location}", reg.url())
    } else {
        location
    };
    let sep = if location.contains('?') { '&' } else { '?' };
    let put = with(client.put(format!("{location}{sep}digest={digest}")))
        .body(bytes)
        .send()
        .unwrap();
    assert_eq!(put.status(), StatusCode::CREATED);
    let head = with(client.head(format!("{}/v2/{repo}/blobs/{digest}", reg.url())))
        .send()
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
}

fn client_for(reg: &Registry) -> Client {
    reg.blocking_client()
}

#[test]
fn plain_registry_accepts_anonymous_pushes() {
    let reg = Registry::plain();
    assert!(reg.url().starts_with("http://127.0.0.1:"));
    let client = client_for(&reg);
    let ping = client.get(format!("{}/v2/", reg.url())).send().unwrap();
    assert_eq!(ping.status(), StatusCode::OK);
    push_blob(&client, &reg, "kit/plain", None);
    assert!(reg.root_dir().join("docker/registry/v2/blobs").is_dir());
}

#[test]
fn tls_registry_is_trusted_only_with_its_ca() {
    let reg = Registry::tls();
    assert!(reg.url().starts_with("https://127.0.0.1:"));
    assert!(reg.ca_pem_path().unwrap().is_file());
    assert!(reg.cert_dir().unwrap().join("ca.crt").is_file());
    let client = client_for(&reg);
    let ping = client.get(format!("{}/v2/", reg.url())).send().unwrap();
    assert_eq!(ping.status(), StatusCode::OK);
    push_blob(&client, &reg, "kit/tls", None);

    let untrusting = Client::builder()
        .tls_built_in_root_certs(false)
        .build()
        .unwrap();
    let err = untrusting
        .get(format!("{}/v2/", reg.url()))
        .send()
        .unwrap_err();
    assert!(err.is_connect() || err.is_request(), "{err:?}");
}

#[test]
fn basic_registry_wants_credentials() {
    let reg = Registry::basic("alice", "s3cret");
    assert_eq!(reg.credentials(), Some(("alice", "s3cret")));
    let client = client_for(&reg);
    let ping = client.get(format!("{}/v2/", reg.url())).send().unwrap();
    assert_eq!(ping.status(), StatusCode::UNAUTHORIZED);
    let challenge = ping.headers()["WWW-Authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Basic "), "{challenge}");

    let wrong = client
        .get(format!("{}/v2/", reg.url()))
        .basic_auth("alice", Some("wrong"))
        .send()
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let ok = client
        .get(format!("{}/v2/", reg.url()))
        .basic_auth("alice", Some("s3cret"))
        .send()
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    push_blob(
        &client,
        &reg,
        "kit/basic",
        reg.authorization("kit/basic").as_deref(),
    );
}

/// `Bearer realm="..",service="..",scope=".."` into its parameters.
fn challenge_params(challenge: &str) -> Vec<(String, String)> {
    let rest = challenge.strip_prefix("Bearer ").expect("bearer challenge");
    let mut params = Vec::new();
    let mut s = rest;
    while let Some((key, after)) = s.split_once("=\"") {
        let (value, tail) = after.split_once('"').unwrap();
        params.push((
            key.trim_start_matches(',').trim().to_owned(),
            value.to_owned(),
        ));
        s = tail;
    }
    params
}

#[test]
fn bearer_registry_runs_the_token_flow() {
    let reg = Registry::bearer("bob", "hunter2");
    let client = client_for(&reg);
    let repo = "kit/bearer";

    // 1. The registry challenges, naming realm, service and the scope it wants.
    let start = client
        .post(format!("{}/v2/{repo}/blobs/uploads/", reg.url()))
        .send()
        .unwrap();
    assert_eq!(start.status(), StatusCode::UNAUTHORIZED);
    let params = challenge_params(start.headers()["WWW-Authenticate"].to_str().unwrap());
    let get = |k: &str| {
        params
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let realm = get("realm").unwrap();
    assert_eq!(Some(realm.clone()), reg.token_realm());
    assert_eq!(get("service").as_deref(), Some(reg.token_service()));
    let scope = get("scope").unwrap();
    // distribution lists the actions in no fixed order.
    assert!(
        [":pull,push", ":push,pull"]
            .map(|a| format!("repository:{repo}{a}"))
            .contains(&scope),
        "{scope}"
    );

    // 2. No or wrong credentials get no token at all.
    let token_url = format!("{realm}?service={}&scope={scope}", reg.token_service());
    let anonymous = client.get(&token_url).send().unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let wrong = client
        .get(&token_url)
        .basic_auth("bob", Some("nope"))
        .send()
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(reg.tokens_issued(), 0);

    // 3. The right credentials get an ES256 JWT with x5c that grants what was asked.
    let resp = client
        .get(&token_url)
        .basic_auth("bob", Some("hunter2"))
        .send()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: serde_json::Value = serde_json::from_slice(&resp.bytes().unwrap()).unwrap();
    let token = body["token"].as_str().unwrap().to_owned();
    assert_eq!(body["access_token"], body["token"]);
    assert_eq!(reg.tokens_issued(), 1);
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["x5c"].as_array().unwrap().len(), 1);
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(claims["sub"], "bob");
    assert_eq!(claims["aud"], reg.token_service());
    let access = &claims["access"];
    assert_eq!(access.as_array().unwrap().len(), 1);
    assert_eq!(access[0]["type"], "repository");
    assert_eq!(access[0]["name"], repo);
    let mut actions: Vec<&str> = access[0]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    actions.sort();
    assert_eq!(actions, ["pull", "push"]);
    assert_eq!(URL_SAFE_NO_PAD.decode(parts[2]).unwrap().len(), 64);

    // 4. The registry accepts the token for the whole push.
    let auth = format!("Bearer {token}");
    let ping = client
        .get(format!("{}/v2/", reg.url()))
        .header("Authorization", &auth)
        .send()
        .unwrap();
    assert_eq!(ping.status(), StatusCode::OK);
    push_blob(&client, &reg, repo, Some(&auth));
    assert_eq!(reg.tokens_issued(), 1, "one token served the whole push");

    let log = reg.token_requests();
    assert_eq!(log.len(), 3);
    assert_eq!(log[0].user, None);
    assert!(!log[0].granted && !log[1].granted && log[2].granted);
    assert_eq!(log[2].scopes, vec![scope]);
}

#[test]
fn http_pushes_work_in_every_mode_and_inside_a_runtime() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Starting, pushing and dropping from async code must not trip reqwest's blocking checks.
    rt.block_on(async {
        for reg in [
            Registry::plain(),
            Registry::tls(),
            Registry::basic("u", "p"),
            Registry::bearer("u", "p"),
        ] {
            let digest = push_image_http(&reg, "kit/fast", "v1");
            assert!(digest.starts_with("sha256:"));
        }
    });
}

#[test]
fn dropping_a_registry_stops_it() {
    let reg = Registry::plain();
    let proc_dir = format!("/proc/{}", reg.pid());
    assert!(std::path::Path::new(&proc_dir).exists());
    drop(reg);
    // Killed and reaped: not even a zombie entry is left.
    assert!(!std::path::Path::new(&proc_dir).exists());
}

#[test]
fn a_shared_registry_is_one_per_kind_and_serves_each_mode() {
    let plain = &*Registry::shared_plain();
    assert!(std::ptr::eq(plain, &*Registry::shared_plain()));
    let tls = &*Registry::shared_tls();
    assert!(!std::ptr::eq(plain, tls));
    assert!(tls.is_tls() && !plain.is_tls());
    let basic = &*Registry::shared_basic("shared-user", "shared-pass");
    assert!(std::ptr::eq(
        basic,
        &*Registry::shared_basic("shared-user", "shared-pass")
    ));
    assert!(!std::ptr::eq(
        basic,
        &*Registry::shared_basic("other-user", "shared-pass")
    ));
    // Two tests' repositories side by side in one shared registry.
    let digests = push_image_http(plain, "shared/one", "v1");
    let other = push_image_http(plain, "shared/two", "v1");
    assert_ne!(digests, other);
    push_image_http(tls, "shared/tls", "v1");
    push_image_http(basic, "shared/basic", "v1");
}

/// Run only by [`a_shared_registry_stops_and_is_removed_when_its_process_exits`], in a child
/// process of this test binary.
#[test]
#[ignore = "helper: run in a child process by another test"]
fn helper_starts_a_shared_registry_and_exits() {
    let reg = Registry::shared_plain();
    println!(
        "shared-registry pid={} dir={}",
        reg.pid(),
        reg.work_dir().display()
    );
}

#[test]
fn a_shared_registry_stops_and_is_removed_when_its_process_exits() {
    let out = std::process::Command::new(std::env::current_exe().expect("test binary path"))
        .args(["--ignored", "--exact", "--nocapture", "--test-threads=1"])
        .arg("helper_starts_a_shared_registry_and_exits")
        .output()
        .expect("run the helper test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "helper failed\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        // libtest prints the test's name on the same line.
        .find_map(|l| l.split_once("shared-registry ").map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("helper printed no registry line\n{stdout}"));
    let (pid, dir) = line
        .strip_prefix("pid=")
        .and_then(|l| l.split_once(" dir="))
        .unwrap_or_else(|| panic!("unexpected helper line: {line}"));
    // Killed and reaped before the helper exited: no process, no zombie, no files.
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    assert!(
        !String::from_utf8_lossy(&cmdline).contains("docker-registry"),
        "docker-registry {pid} outlived its test process"
    );
    assert!(!std::path::Path::new(dir).exists(), "{dir} was left behind");
}
