//! The binary against each registry mode: plain HTTP, TLS with a private CA, Basic auth
//! (docker config.json and environment) and bearer tokens. Also: secrets stay out of the output.

use crate::common;

use common::{exit, sig_layers, Sandbox, TestKey};
use sigbridge_testkit::{cosign_verify, push_image, OutputExt, Registry};

/// Signs `repo@digest` and verifies it with sigbridge, both with `extra` flags/env applied.
fn sign_and_verify(
    sb: &Sandbox,
    reg: &Registry,
    key: &TestKey,
    repo: &str,
    prepare: impl Fn(common::Sigbridge) -> common::Sigbridge,
) -> String {
    let digest = push_image(reg, repo, "v1");
    let by_digest = reg.image_ref(repo, &digest);
    prepare(sb.sigbridge().arg("sign").signer(key))
        .arg(&by_digest)
        .run()
        .ok();
    assert_eq!(sig_layers(reg, repo, &digest).len(), 1);
    prepare(sb.sigbridge().arg("verify").arg("--key").arg(&key.public))
        .arg(reg.image_ref(repo, "v1"))
        .run()
        .ok();
    by_digest
}

#[test]
fn plain_http_on_loopback_needs_no_flag() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    sign_and_verify(&sb, &reg, &key, "e2e/plain", |c| c);
}

#[test]
fn tls_registry_with_registry_cacert() {
    let reg = Registry::shared_tls();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let ca = reg.ca_pem_path().unwrap().to_path_buf();
    let by_digest = sign_and_verify(&sb, &reg, &key, "e2e/tls", |c| {
        c.arg("--registry-cacert").arg(&ca)
    });
    let out = cosign_verify(&reg, &key.public, &by_digest, &[]);
    assert!(out.status.success(), "{}", out.describe());
}

#[test]
fn tls_registry_without_its_ca_exits_6_and_says_why() {
    let reg = Registry::shared_tls();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let repo = "e2e/tls-untrusted";
    let digest = push_image(&reg, repo, "v1");
    let by_digest = reg.image_ref(repo, &digest);
    for cmd in [
        sb.sigbridge().arg("sign").signer(&key),
        sb.sigbridge().arg("verify").arg("--key").arg(&key.public),
        // A digest needs no registry for `generate`; `--check-exists` asks it.
        sb.sigbridge().args(["generate", "--check-exists"]),
    ] {
        let out = cmd.arg(&by_digest).run().code_is(exit::REGISTRY);
        let stderr = out.stderr().to_lowercase();
        assert!(
            stderr.contains("certificate") || stderr.contains(" ca"),
            "the error should name the certificate problem\n{}",
            out.describe()
        );
    }
    assert!(sig_layers(&reg, repo, &digest).is_empty());
}

#[test]
fn allow_insecure_registry_skips_tls_verification() {
    let reg = Registry::shared_tls();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    sign_and_verify(&sb, &reg, &key, "e2e/tls-insecure", |c| {
        c.arg("--allow-insecure-registry")
    });
}

#[test]
fn basic_auth_from_docker_config_flag() {
    let reg = Registry::shared_basic("alice", "alice-registry-pw");
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let config = reg.write_docker_config(&sb.subdir("dockercfg"));
    sign_and_verify(&sb, &reg, &key, "e2e/basic-config", |c| {
        c.arg("--docker-config").arg(&config)
    });
}

#[test]
fn basic_auth_from_docker_config_env() {
    let reg = Registry::shared_basic("alice", "alice-registry-pw");
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let dir = sb.subdir("dockercfg");
    reg.write_docker_config(&dir);
    sign_and_verify(&sb, &reg, &key, "e2e/basic-docker-config-env", |c| {
        c.env("DOCKER_CONFIG", &dir)
    });
}

#[test]
fn basic_auth_from_environment_variables() {
    let reg = Registry::shared_basic("alice", "alice-registry-pw");
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    sign_and_verify(&sb, &reg, &key, "e2e/basic-env", |c| {
        c.env("SIGBRIDGE_REGISTRY_USERNAME", "alice")
            .env("SIGBRIDGE_REGISTRY_PASSWORD", "alice-registry-pw")
    });
}

#[test]
fn basic_auth_without_or_with_wrong_credentials_exits_6() {
    let reg = Registry::shared_basic("alice", "alice-registry-pw");
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let repo = "e2e/basic-denied";
    let digest = push_image(&reg, repo, "v1");
    let by_digest = reg.image_ref(repo, &digest);
    sb.sigbridge()
        .arg("sign")
        .signer(&key)
        .arg(&by_digest)
        .run()
        .code_is(exit::REGISTRY);
    sb.sigbridge()
        .arg("sign")
        .signer(&key)
        .env("SIGBRIDGE_REGISTRY_USERNAME", "alice")
        .env("SIGBRIDGE_REGISTRY_PASSWORD", "not-the-password")
        .arg(&by_digest)
        .run()
        .code_is(exit::REGISTRY);
    assert!(sig_layers(&reg, repo, &digest).is_empty());
}

#[test]
fn bearer_token_auth_sign_and_verify_then_cosign_verifies() {
    let reg = Registry::bearer("bob", "bob-registry-pw");
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let config = reg.write_docker_config(&sb.subdir("dockercfg"));
    let before = reg.tokens_issued();
    let by_digest = sign_and_verify(&sb, &reg, &key, "e2e/bearer", |c| {
        c.arg("--docker-config").arg(&config)
    });
    assert!(reg.tokens_issued() > before, "sigbridge fetched no token");
    let denied: Vec<_> = reg
        .token_requests()
        .into_iter()
        .filter(|r| !r.granted)
        .collect();
    assert!(denied.is_empty(), "denied token requests: {denied:?}");
    let out = cosign_verify(&reg, &key.public, &by_digest, &[]);
    assert!(out.status.success(), "{}", out.describe());
}

#[test]
fn verbose_logs_never_contain_the_key_or_registry_password() {
    let key_password = "key-pw-Vq7XzR2m";
    let registry_password = "reg-pw-K9wTt4bY";
    let reg = Registry::shared_bearer("carol", registry_password);
    let sb = Sandbox::new();
    let key = sb.cosign_key("cosign", key_password);
    let repo = "e2e/secrets";
    let digest = push_image(&reg, repo, "v1");
    let by_digest = reg.image_ref(repo, &digest);
    let basic = common::b64(format!("carol:{registry_password}").as_bytes());
    let creds = |c: common::Sigbridge| {
        c.env("SIGBRIDGE_REGISTRY_USERNAME", "carol")
            .env("SIGBRIDGE_REGISTRY_PASSWORD", registry_password)
    };

    let runs = [
        creds(sb.sigbridge().arg("-vvv").arg("sign").signer(&key))
            .arg(&by_digest)
            .run()
            .ok(),
        creds(
            sb.sigbridge()
                .args(["-vvv", "--log-format", "json", "sign"])
                .signer(&key)
                .args(["-o", "json"]),
        )
        .arg(&by_digest)
        .run()
        .ok(),
        creds(
            sb.sigbridge()
                .arg("-vvv")
                .arg("verify")
                .arg("--key")
                .arg(&key.public),
        )
        .arg(&by_digest)
        .run()
        .ok(),
    ];
    for run in &runs {
        let all = format!("{}\n{}", run.stdout(), run.stderr());
        assert!(
            !run.stderr().trim().is_empty(),
            "-vvv should log something\n{}",
            run.describe()
        );
        for secret in [key_password, registry_password, basic.as_str()] {
            assert!(
                !all.contains(secret),
                "output contains a secret ({secret})\n{}",
                run.describe()
            );
        }
    }
    assert_eq!(sig_layers(&reg, repo, &digest).len(), 1);
}
