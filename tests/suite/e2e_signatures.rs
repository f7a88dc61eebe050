//! What `sigbridge sign` writes: the append semantics of the `.sig` manifest, its outputs, and
//! COSIGN_REPOSITORY.

use crate::common;

use common::{assert_no_sig_tag, repo_name, sig_layers, sig_tag, Sandbox};
use sigbridge_testkit::{
    cosign_sign, cosign_verify, push_image, sha256_digest, OutputExt, Registry,
};

#[test]
fn two_keys_leave_two_signatures_and_both_verify() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let (first, second) = (sb.pkcs8_key("first"), sb.pkcs8_key("second"));
    let repo = "e2e/two-keys";
    let digest = push_image(&reg, repo, "v1");
    let by_digest = reg.image_ref(repo, &digest);
    for key in [&first, &second] {
        sb.sigbridge()
            .arg("sign")
            .signer(key)
            .arg(&by_digest)
            .run()
            .ok();
    }
    assert_eq!(sig_layers(&reg, repo, &digest).len(), 2);
    for key in [&first, &second] {
        sb.sigbridge()
            .arg("verify")
            .arg("--key")
            .arg(&key.public)
            .arg(&by_digest)
            .run()
            .ok();
        let out = cosign_verify(&reg, &key.public, &by_digest, &[]);
        assert!(out.status.success(), "{}", out.describe());
    }
}

#[test]
fn signing_twice_with_the_same_key_keeps_one_signature() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let repo = "e2e/same-key";
    let digest = push_image(&reg, repo, "v1");
    let by_digest = reg.image_ref(repo, &digest);
    let sign = || {
        sb.sigbridge()
            .arg("sign")
            .signer(&key)
            .args(["-o", "json"])
            .arg(&by_digest)
            .run()
            .ok()
    };
    let first = sign().stdout_json_lines();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0]["outcome"], "attached", "{first:?}");
    let second = sign().stdout_json_lines();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0]["outcome"], "already-present", "{second:?}");
    assert_eq!(sig_layers(&reg, repo, &digest).len(), 1);
}

#[test]
fn sign_keeps_a_signature_cosign_made_before() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let cosign_key = sb.cosign_key("cosign", "pw");
    let ours = sb.pkcs8_key("ours");
    let repo = "e2e/keep-cosign";
    let digest = push_image(&reg, repo, "v1");
    let by_digest = reg.image_ref(repo, &digest);
    cosign_sign(&reg, &cosign_key.private, "pw", &by_digest, &[]);
    let before = sig_layers(&reg, repo, &digest);
    assert_eq!(before.len(), 1);

    sb.sigbridge()
        .arg("sign")
        .signer(&ours)
        .arg(&by_digest)
        .run()
        .ok();
    let after = sig_layers(&reg, repo, &digest);
    assert_eq!(after.len(), 2, "{after:?}");
    assert_eq!(after[0], before[0], "the existing layer must be kept as is");
    for public in [&cosign_key.public, &ours.public] {
        let out = cosign_verify(&reg, public, &by_digest, &[]);
        assert!(out.status.success(), "{}", out.describe());
    }
}

#[test]
fn sign_json_output_describes_what_was_written() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let repo = "e2e/json-output";
    let digest = push_image(&reg, repo, "v1");
    let run = sb
        .sigbridge()
        .arg("sign")
        .signer(&key)
        .args(["-o", "json"])
        .arg(reg.image_ref(repo, "v1"))
        .run()
        .ok();
    let lines = run.stdout_json_lines();
    assert_eq!(lines.len(), 1, "{}", run.describe());
    let line = &lines[0];
    let layers = sig_layers(&reg, repo, &digest);
    assert_eq!(layers.len(), 1);
    assert_eq!(line["digest"], digest, "{line}");
    assert_eq!(line["signatureRepository"], repo_name(&reg, repo), "{line}");
    assert_eq!(line["signatureTag"], sig_tag(&digest), "{line}");
    assert_eq!(line["dockerReference"], repo_name(&reg, repo), "{line}");
    assert_eq!(line["payloadDigest"], layers[0]["digest"], "{line}");
    assert_eq!(line["outcome"], "attached", "{line}");
    assert!(
        line["image"].as_str().is_some_and(|i| i.contains(repo)),
        "{line}"
    );
    // The payload blob is what was signed: its digest is the one reported.
    let blob = common::get_blob(&reg, repo, layers[0]["digest"].as_str().unwrap());
    assert_eq!(line["payloadDigest"], sha256_digest(&blob));
}

#[test]
fn sign_text_output_prints_one_digest_reference_per_image() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let (repo_a, repo_b) = ("e2e/text-a", "e2e/text-b");
    let digest_a = push_image(&reg, repo_a, "v1");
    let digest_b = push_image(&reg, repo_b, "v2");
    let run = sb
        .sigbridge()
        .arg("sign")
        .signer(&key)
        .arg(reg.image_ref(repo_a, "v1"))
        .arg(reg.image_ref(repo_b, "v2"))
        .run()
        .ok();
    let stdout = run.stdout();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        vec![
            reg.image_ref(repo_a, &digest_a),
            reg.image_ref(repo_b, &digest_b)
        ],
        "{}",
        run.describe()
    );
    assert_eq!(sig_layers(&reg, repo_a, &digest_a).len(), 1);
    assert_eq!(sig_layers(&reg, repo_b, &digest_b).len(), 1);
}

#[test]
fn cosign_repository_moves_signatures_to_that_repository() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let (repo, store) = ("e2e/app", "e2e/signatures");
    let digest = push_image(&reg, repo, "v1");
    let by_digest = reg.image_ref(repo, &digest);
    let store_repo = repo_name(&reg, store);

    let run = sb
        .sigbridge()
        .arg("sign")
        .signer(&key)
        .args(["-o", "json"])
        .env("COSIGN_REPOSITORY", &store_repo)
        .arg(&by_digest)
        .run()
        .ok();
    let line = &run.stdout_json_lines()[0];
    assert_eq!(line["signatureRepository"], store_repo, "{line}");
    assert_eq!(sig_layers(&reg, store, &digest).len(), 1);
    assert_no_sig_tag(&reg, repo, &digest);

    let out = common::cosign_verify_env(
        &reg,
        &key.public,
        &by_digest,
        &[("COSIGN_REPOSITORY", &store_repo)],
    );
    assert!(out.status.success(), "{}", out.describe());
    sb.sigbridge()
        .arg("verify")
        .arg("--key")
        .arg(&key.public)
        .env("COSIGN_REPOSITORY", &store_repo)
        .arg(&by_digest)
        .run()
        .ok();
    // Without the variable there is nothing in the image's own repository.
    sb.sigbridge()
        .arg("verify")
        .arg("--key")
        .arg(&key.public)
        .arg(&by_digest)
        .run()
        .code_is(common::exit::NO_SIGNATURES);
}

#[test]
fn sigbridge_verify_reads_a_cosign_signature_from_cosign_repository() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.cosign_key("cosign", "pw");
    let (repo, store) = ("e2e/app-cosign", "e2e/signatures-cosign");
    let digest = push_image(&reg, repo, "v1");
    let by_digest = reg.image_ref(repo, &digest);
    let store_repo = repo_name(&reg, store);

    let mut cosign = sigbridge_testkit::cosign_for(&reg);
    cosign
        .env("COSIGN_PASSWORD", "pw")
        .env("COSIGN_REPOSITORY", &store_repo)
        .arg("sign")
        .arg("--key")
        .arg(&key.private)
        .args(["--tlog-upload=false", "-y"])
        .args(reg.cosign_args())
        .arg(&by_digest);
    cosign.run_ok();
    assert_eq!(sig_layers(&reg, store, &digest).len(), 1);
    assert_no_sig_tag(&reg, repo, &digest);

    sb.sigbridge()
        .arg("verify")
        .arg("--key")
        .arg(&key.public)
        .env("COSIGN_REPOSITORY", &store_repo)
        .arg(&by_digest)
        .run()
        .ok();
}

#[test]
fn concurrent_signers_never_lose_a_reported_signature() {
    // Several processes append to the same .sig manifest at once. The registry itself may
    // fail some requests under this load (a signer may then exit 6, having attached nothing),
    // but every signer that reported success must still find its signature there.
    let reg = Registry::plain();
    let sb = Sandbox::new();
    let repo = "e2e/concurrent";
    let digest = push_image(&reg, repo, "v1");
    let by_digest = reg.image_ref(repo, &digest);
    let keys: Vec<_> = (0..6).map(|i| sb.pkcs8_key(&format!("k{i}"))).collect();
    let runs: Vec<common::Run> = std::thread::scope(|s| {
        let handles: Vec<_> = keys
            .iter()
            .map(|key| {
                let (sb, by_digest) = (&sb, &by_digest);
                s.spawn(move || {
                    // Real settle delays: this is the case they exist for.
                    sb.sigbridge()
                        .env_remove(common::DELAY_SCALE_VAR)
                        .arg("sign")
                        .signer(key)
                        .arg(by_digest)
                        .run()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut succeeded = 0;
    for (key, run) in keys.iter().zip(&runs) {
        match run.code() {
            Some(common::exit::OK) => {
                succeeded += 1;
                sb.sigbridge()
                    .arg("verify")
                    .arg("--key")
                    .arg(&key.public)
                    .arg(&by_digest)
                    .run()
                    .ok();
            }
            Some(common::exit::REGISTRY) => {}
            _ => panic!("unexpected outcome\n{}", run.describe()),
        }
    }
    assert!(succeeded > 0, "no signer succeeded");
    assert_eq!(sig_layers(&reg, repo, &digest).len(), succeeded);
}
