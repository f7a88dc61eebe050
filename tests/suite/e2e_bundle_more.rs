//! More of cosign 3's format end to end, against a real docker-registry (fallback index) and
//! real cosign 3.1.1 and skopeo 1.18: `--format both` under a containers/image policy,
//! `--recursive` with bundles, and `COSIGN_REPOSITORY` for bundles both ways.

use std::path::Path;
use std::process::Output;

use serde_json::{json, Value};
use sigbridge_testkit::{
    push_image, push_index, skopeo_verify_with_policy, OutputExt, Registry, ToolCommand, Tools,
};

use crate::common::{self, assert_no_sig_tag, repo_name, sig_layers, Sandbox, TestKey};

const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
const INDEX_ACCEPT: &str = "application/vnd.oci.image.index.v1+json";

fn cosign3(reg: &Registry, cosign_repository: Option<&str>) -> ToolCommand {
    let mut cmd = Tools::cosign3();
    reg.write_docker_config(&cmd.home().join(".docker"));
    if let Some(r) = cosign_repository {
        cmd.env("COSIGN_REPOSITORY", r);
    }
    cmd
}

/// `cosign verify --key PUB --insecure-ignore-tlog` with cosign 3.1.1 (default flags).
fn cosign3_verify(
    reg: &Registry,
    public: &Path,
    image: &str,
    cosign_repository: Option<&str>,
) -> Output {
    let mut cmd = cosign3(reg, cosign_repository);
    cmd.args(["verify", "--key"])
        .arg(public)
        .arg("--insecure-ignore-tlog")
        .args(reg.cosign_args())
        .arg(image);
    cmd.run()
}

/// The fallback index at `sha256-<hex>` in `repo`, or `None` when the tag does not exist.
fn fallback_index(reg: &Registry, repo: &str, digest: &str) -> Option<Value> {
    let tag = digest.replace(':', "-");
    let mut req = reg
        .blocking_client()
        .get(format!("{}/v2/{repo}/manifests/{tag}", reg.url()))
        .header("Accept", INDEX_ACCEPT);
    if let Some(a) = reg.authorization(repo) {
        req = req.header("Authorization", a);
    }
    let resp = req.send().expect("GET the fallback index");
    let status = resp.status().as_u16();
    let body = resp.bytes().expect("read the index").to_vec();
    match status {
        200 => Some(serde_json::from_slice(&body).expect("the fallback index is JSON")),
        404 => None,
        other => panic!(
            "GET {repo}:{tag} answered {other}: {}",
            String::from_utf8_lossy(&body)
        ),
    }
}

/// The referrer manifests the fallback index of `digest` in `repo` lists, each fetched from
/// `repo` (empty when there is no index).
fn referrer_manifests(reg: &Registry, repo: &str, digest: &str) -> Vec<Value> {
    let Some(index) = fallback_index(reg, repo, digest) else {
        return Vec::new();
    };
    index["manifests"]
        .as_array()
        .expect("an index lists manifests")
        .iter()
        .map(|entry| {
            let (status, body) =
                common::get_manifest_raw(reg, repo, entry["digest"].as_str().unwrap());
            assert_eq!(status, 200, "referrer {entry} is missing from {repo}");
            serde_json::from_slice(&body).unwrap()
        })
        .collect()
}

fn sigbridge_verify(
    sb: &Sandbox,
    reg: &Registry,
    public: &Path,
    image: &str,
    extra: &[&str],
    cosign_repository: Option<&str>,
) -> common::Run {
    let mut cmd = sb
        .sigbridge()
        .arg("verify")
        .arg("--key")
        .arg(public)
        .args(extra)
        .registry(reg);
    if let Some(r) = cosign_repository {
        cmd = cmd.env("COSIGN_REPOSITORY", r);
    }
    cmd.arg(image).run()
}

/// A containers/image policy requiring a sigstore signature by the key at `key_path`
/// (`keyPath`, as an administrator writes it) under podman's default identity rule.
fn key_path_policy(key_path: &Path) -> String {
    json!({"default": [{
        "type": "sigstoreSigned",
        "keyPath": key_path,
        "signedIdentity": {"type": "matchRepoDigestOrExact"},
    }]})
    .to_string()
}

#[test]
fn format_both_is_accepted_by_a_skopeo_sigstore_signed_policy_and_refused_with_another_key() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let other = sb.pkcs8_key("other");
    let repo = "e2e/bundle-both-skopeo";
    let digest = push_image(&reg, repo, "v1");
    let by_tag = reg.image_ref(repo, "v1");

    sb.sigbridge()
        .arg("sign")
        .signer(&key)
        .args(["--format", "both", "--identity"])
        .arg(&by_tag)
        .registry(&reg)
        .arg(reg.image_ref(repo, &digest))
        .run()
        .ok();
    // Both were written: skopeo must find its `.sig` next to the bundle's fallback index.
    assert_eq!(sig_layers(&reg, repo, &digest).len(), 1);
    assert_eq!(referrer_manifests(&reg, repo, &digest).len(), 1);

    let accepted = skopeo_verify_with_policy(&reg, &key_path_policy(&key.public), &by_tag, &[]);
    assert!(
        accepted.accepted,
        "skopeo refused --format both: {}",
        accepted.stderr
    );
    let refused = skopeo_verify_with_policy(&reg, &key_path_policy(&other.public), &by_tag, &[]);
    assert!(!refused.accepted, "skopeo accepted a wrong key");
    assert!(
        refused.stderr.contains("signature"),
        "skopeo refused for another reason: {}",
        refused.stderr
    );
}

/// Sign `index` (tagged `tag` in `repo`) with `--recursive --format FORMAT`; check that the
/// index and every child got exactly one bundle, that cosign 3.1.1 and sigbridge verify each,
/// and return the run's JSON lines.
fn sign_recursive_and_check_bundles(
    sb: &Sandbox,
    reg: &Registry,
    key: &TestKey,
    repo: &str,
    tag: &str,
    format: &str,
    all: &[String],
) -> Vec<Value> {
    let run = sb
        .sigbridge()
        .arg("sign")
        .signer(key)
        .args(["--recursive", "-o", "json", "--format", format])
        .registry(reg)
        .arg(reg.image_ref(repo, tag))
        .run()
        .ok();
    for digest in all {
        let referrers = referrer_manifests(reg, repo, digest);
        assert_eq!(referrers.len(), 1, "{format}: bundles of {digest}");
        assert_eq!(referrers[0]["subject"]["digest"], digest.as_str());
        assert_eq!(referrers[0]["artifactType"], BUNDLE);
        let image = reg.image_ref(repo, digest);
        let cosign = cosign3_verify(reg, &key.public, &image, None);
        assert!(
            cosign.status.success(),
            "{format}: cosign 3.1.1 refused {digest}: {}",
            cosign.describe()
        );
        let printed: Value = serde_json::from_str(cosign.stdout_str().trim()).unwrap();
        assert_eq!(
            printed[0]["critical"]["image"]["docker-manifest-digest"],
            digest.as_str()
        );
        sigbridge_verify(sb, reg, &key.public, &image, &["--format", "bundle"], None).ok();
    }
    run.stdout_json_lines()
}

#[test]
fn recursive_bundle_signs_the_index_and_each_platform_and_cosign_3_verifies_each() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("multiarch");
    let repo = "e2e/bundle-recursive";
    let platforms = [("linux", "amd64"), ("linux", "arm64")];

    let (index, children) = push_index(&reg, repo, "bundle", &platforms);
    let all: Vec<String> = std::iter::once(index.clone()).chain(children).collect();
    let lines = sign_recursive_and_check_bundles(&sb, &reg, &key, repo, "bundle", "bundle", &all);
    let reported: Vec<&str> = lines
        .iter()
        .map(|l| l["digest"].as_str().unwrap())
        .collect();
    assert_eq!(reported, all, "the index first, then each platform");
    assert!(lines.iter().all(|l| l["format"] == "bundle"), "{lines:?}");
    for digest in &all {
        assert_no_sig_tag(&reg, repo, digest);
    }

    // `both`: a bundle and a `.sig` for the index and each platform.
    let (index, children) = push_index(&reg, repo, "both", &platforms);
    let all: Vec<String> = std::iter::once(index.clone()).chain(children).collect();
    let lines = sign_recursive_and_check_bundles(&sb, &reg, &key, repo, "both", "both", &all);
    assert_eq!(lines.len(), 2 * all.len(), "{lines:?}");
    for digest in &all {
        assert_eq!(
            sig_layers(&reg, repo, digest).len(),
            1,
            "`.sig` of {digest}"
        );
        sigbridge_verify(
            &sb,
            &reg,
            &key.public,
            &reg.image_ref(repo, digest),
            &["--format", "legacy"],
            None,
        )
        .ok();
    }
}

#[test]
fn cosign_repository_moves_sigbridge_bundles_there_and_cosign_3_finds_them_there() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let (repo, store) = ("e2e/bundle-cr-app", "e2e/bundle-cr-store");
    let digest = push_image(&reg, repo, "v1");
    let image = reg.image_ref(repo, &digest);
    let store_repo = repo_name(&reg, store);

    let run = sb
        .sigbridge()
        .arg("sign")
        .signer(&key)
        .args(["--format", "both", "-o", "json"])
        .env("COSIGN_REPOSITORY", &store_repo)
        .registry(&reg)
        .arg(&image)
        .run()
        .ok();
    for line in run.stdout_json_lines() {
        assert_eq!(line["signatureRepository"], store_repo, "{line}");
    }
    // Everything went to the store: the `.sig`, the fallback index and the referrer manifest
    // (subject = the image in its own repository); nothing next to the image.
    assert_eq!(sig_layers(&reg, store, &digest).len(), 1);
    let referrers = referrer_manifests(&reg, store, &digest);
    assert_eq!(referrers.len(), 1);
    assert_eq!(referrers[0]["subject"]["digest"], digest.as_str());
    assert_no_sig_tag(&reg, repo, &digest);
    assert!(fallback_index(&reg, repo, &digest).is_none());

    let cosign = cosign3_verify(&reg, &key.public, &image, Some(&store_repo));
    assert!(cosign.status.success(), "{}", cosign.describe());
    let printed: Value = serde_json::from_str(cosign.stdout_str().trim()).unwrap();
    assert_eq!(
        printed[0]["critical"]["type"], "https://sigstore.dev/cosign/sign/v1",
        "cosign 3.1.1 verified the bundle, not the `.sig`"
    );
    for format in ["bundle", "legacy"] {
        sigbridge_verify(
            &sb,
            &reg,
            &key.public,
            &image,
            &["--format", format],
            Some(&store_repo),
        )
        .ok();
    }
    // Without the variable neither looks in the store.
    let cosign = cosign3_verify(&reg, &key.public, &image, None);
    assert_eq!(cosign.status.code(), Some(10), "{}", cosign.describe());
    sigbridge_verify(&sb, &reg, &key.public, &image, &[], None)
        .code_is(common::exit::NO_SIGNATURES);
}

#[test]
fn a_cosign_3_bundle_signed_under_cosign_repository_verifies_with_sigbridge_there() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.cosign_key("cosign3", "pw-3");
    let (repo, store) = ("e2e/bundle-cr3-app", "e2e/bundle-cr3-store");
    let digest = push_image(&reg, repo, "v1");
    let image = reg.image_ref(repo, &digest);
    let store_repo = repo_name(&reg, store);

    let config = sb.join("signing-config.json");
    Tools::cosign3_signing_config(&config);
    let mut sign = cosign3(&reg, Some(&store_repo));
    sign.args(["sign", "-y", "--key"])
        .arg(&key.private)
        .arg("--signing-config")
        .arg(&config)
        .args(reg.cosign_args())
        .env("COSIGN_PASSWORD", key.password.as_deref().unwrap_or(""))
        .arg(&image);
    sign.run_ok();

    // What cosign 3.1.1 does with COSIGN_REPOSITORY (pinned, so a change shows up): the
    // referrer manifest, its blobs and the fallback index all go to that repository; the
    // subject is the image in its own repository, which gets nothing.
    let referrers = referrer_manifests(&reg, store, &digest);
    assert_eq!(referrers.len(), 1);
    assert_eq!(referrers[0]["subject"]["digest"], digest.as_str());
    let bundle = referrers[0]["layers"][0]["digest"].as_str().unwrap();
    let stored: Value = serde_json::from_slice(&common::get_blob(&reg, store, bundle)).unwrap();
    assert_eq!(stored["mediaType"], BUNDLE);
    assert!(fallback_index(&reg, repo, &digest).is_none());
    assert_no_sig_tag(&reg, repo, &digest);

    let ok = sigbridge_verify(&sb, &reg, &key.public, &image, &[], Some(&store_repo)).ok();
    let printed: Value = serde_json::from_str(ok.stdout().trim()).unwrap();
    let cosign = cosign3_verify(&reg, &key.public, &image, Some(&store_repo));
    assert!(cosign.status.success(), "{}", cosign.describe());
    let cosign_json: Value = serde_json::from_str(cosign.stdout_str().trim()).unwrap();
    assert_eq!(
        printed, cosign_json,
        "sigbridge prints what cosign 3.1.1 prints"
    );

    let other = sb.pkcs8_key("other");
    sigbridge_verify(&sb, &reg, &other.public, &image, &[], Some(&store_repo))
        .code_is(common::exit::NO_MATCHING_SIGNATURES);
    sigbridge_verify(&sb, &reg, &key.public, &image, &[], None)
        .code_is(common::exit::NO_SIGNATURES);
}

#[test]
fn attach_format_bundle_under_cosign_repository_stores_the_bundle_there() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("offline");
    let (repo, store) = ("e2e/bundle-cr-attach-app", "e2e/bundle-cr-attach-store");
    let digest = push_image(&reg, repo, "v1");
    let image = reg.image_ref(repo, &digest);
    let store_repo = repo_name(&reg, store);

    let pae = sb
        .sigbridge()
        .args(["generate", "--format", "bundle"])
        .arg(&image)
        .run()
        .ok()
        .out
        .stdout;
    let pae_file = sb.write("image.pae", &pae);
    // What `openssl dgst -sha256 -sign` gives: a DER signature over the PAE.
    let signature = sb.write("image.pae.sig", key.sign_der(&pae));
    sb.sigbridge()
        .args(["attach", "--format", "bundle", "--payload"])
        .arg(&pae_file)
        .arg("--signature")
        .arg(&signature)
        .arg("--key")
        .arg(&key.public)
        .env("COSIGN_REPOSITORY", &store_repo)
        .registry(&reg)
        .arg(&image)
        .run()
        .ok();

    assert_eq!(referrer_manifests(&reg, store, &digest).len(), 1);
    assert!(fallback_index(&reg, repo, &digest).is_none());
    let cosign = cosign3_verify(&reg, &key.public, &image, Some(&store_repo));
    assert!(cosign.status.success(), "{}", cosign.describe());
    sigbridge_verify(&sb, &reg, &key.public, &image, &[], Some(&store_repo)).ok();
}
