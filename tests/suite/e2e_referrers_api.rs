//! cosign 3's format through the OCI 1.1 referrers API, end to end: no registry that runs
//! locally has the API, so these run against the kit's in-process [`OciRegistry`] with the real
//! `sigbridge`, cosign 3.1.1 and 2.5, and oras 1.3.3 (which is also checked against the real
//! docker-registry's fallback index).

use std::path::Path;
use std::process::Output;

use serde_json::Value;
use sigbridge_testkit::{push_image, OciRegistry, OutputExt, Registry, Tools};

use crate::common::{self, Sandbox, TestKey};

const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

fn fallback_tag(digest: &str) -> String {
    digest.replace(':', "-")
}

fn sign(sb: &Sandbox, key: &TestKey, image: &str, format: &str) {
    sb.sigbridge()
        .arg("sign")
        .signer(key)
        .args(["--format", format])
        .arg(image)
        .run()
        .ok();
}

fn verify(sb: &Sandbox, public: &Path, image: &str, extra: &[&str]) -> common::Run {
    sb.sigbridge()
        .arg("verify")
        .arg("--key")
        .arg(public)
        .args(extra)
        .arg(image)
        .run()
}

/// `cosign verify --key PUB --insecure-ignore-tlog` with cosign 3.1.1 (default flags).
fn cosign3_verify(reg: &OciRegistry, public: &Path, image: &str) -> Output {
    let mut cmd = Tools::cosign3();
    cmd.args(["verify", "--key"])
        .arg(public)
        .arg("--insecure-ignore-tlog")
        .args(reg.cosign_args())
        .arg(image);
    cmd.run()
}

/// The referrers the API lists for `digest`, all of them `BUNDLE` artifacts about it.
fn bundle_referrers(reg: &OciRegistry, repo: &str, digest: &str) -> Vec<Value> {
    let index = reg.get_referrers(repo, digest, None);
    let entries = index["manifests"].as_array().expect("manifests").clone();
    for e in &entries {
        assert_eq!(e["artifactType"], BUNDLE, "{index}");
        assert_eq!(e["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    }
    entries
}

/// Nothing was written to the fallback tag: the registry's API did the indexing.
fn assert_no_fallback_tag(reg: &OciRegistry, repo: &str, digest: &str) {
    let tag = fallback_tag(digest);
    assert!(!reg.tags(repo).contains(&tag), "tags: {:?}", reg.tags(repo));
    let wrote = reg
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT" && r.path.ends_with(&format!("/manifests/{tag}")))
        .count();
    assert_eq!(wrote, 0, "a PUT to the fallback tag");
}

#[test]
fn a_sigbridge_bundle_is_stored_through_the_referrers_api_and_cosign_3_verifies_it() {
    let reg = OciRegistry::start();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let repo = "api/sign";
    let digest = reg.push_image(repo, "v1");
    let image = reg.image_ref(repo, &digest);

    sign(&sb, &key, &image, "bundle");
    assert_no_fallback_tag(&reg, repo, &digest);
    assert_eq!(reg.tags(repo), ["v1"], "no `.sig` either");
    assert_eq!(bundle_referrers(&reg, repo, &digest).len(), 1);

    let seen_before = reg.requests().len();
    let ours = verify(&sb, &key.public, &image, &[]).ok();
    // Deciding that the image has bundles and verifying them share one read: each referrer
    // manifest and each bundle blob is fetched once.
    let referrer = bundle_referrers(&reg, repo, &digest)[0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let verify_requests = reg.requests().split_off(seen_before);
    let referrer_gets = verify_requests
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with(&format!("/manifests/{referrer}")))
        .count();
    assert_eq!(referrer_gets, 1, "{verify_requests:#?}");
    let blob_gets = verify_requests
        .iter()
        .filter(|r| r.method == "GET" && r.path.contains("/blobs/"))
        .count();
    assert_eq!(blob_gets, 1, "{verify_requests:#?}");
    let before = reg.referrers_requests();
    let cosign = cosign3_verify(&reg, &key.public, &image);
    assert!(cosign.status.success(), "{}", cosign.describe());
    assert!(
        reg.referrers_requests() > before,
        "cosign 3.1.1 looked through the referrers API"
    );
    let cosign_json: Value = serde_json::from_str(cosign.stdout_str().trim()).unwrap();
    let ours_json: Value = serde_json::from_str(ours.stdout().trim()).unwrap();
    assert_eq!(
        ours_json, cosign_json,
        "sigbridge prints what cosign 3.1.1 prints"
    );
    assert_eq!(
        cosign_json[0]["critical"]["image"]["docker-manifest-digest"],
        digest
    );
}

#[test]
fn a_cosign_3_bundle_stored_through_the_api_verifies_with_sigbridge_and_not_with_another_key() {
    let reg = OciRegistry::start();
    let sb = Sandbox::new();
    let key = sb.cosign_key("cosign3", "pw-3");
    let repo = "api/cosign3";
    let digest = reg.push_image(repo, "v1");
    let image = reg.image_ref(repo, &digest);

    let config = sb.join("signing-config.json");
    Tools::cosign3_signing_config(&config);
    let mut cosign = Tools::cosign3();
    cosign
        .args(["sign", "-y", "--key"])
        .arg(&key.private)
        .arg("--signing-config")
        .arg(&config)
        .args(["-a", "team=blue"])
        .args(reg.cosign_args())
        .env("COSIGN_PASSWORD", key.password.as_deref().unwrap_or(""))
        .arg(&image);
    cosign.run_ok();
    assert_no_fallback_tag(&reg, repo, &digest);
    assert_eq!(bundle_referrers(&reg, repo, &digest).len(), 1);

    let before = reg.referrers_requests();
    let ok = verify(&sb, &key.public, &image, &["-a", "team=blue"]).ok();
    assert!(reg.referrers_requests() > before, "sigbridge asked the API");
    let printed: Value = serde_json::from_str(ok.stdout().trim()).unwrap();
    assert_eq!(printed[0]["optional"]["team"], "blue");
    let other = sb.pkcs8_key("other");
    verify(&sb, &other.public, &image, &[]).code_is(12);
}

#[test]
fn sixteen_concurrent_signers_through_the_api_leave_sixteen_referrers() {
    let reg = OciRegistry::start();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let repo = "api/concurrent";
    let digest = reg.push_image(repo, "v1");
    let image = reg.image_ref(repo, &digest);
    // Distinct statements: the local signer's ECDSA is deterministic.
    let cmds = (0..16)
        .map(|i| {
            sb.sigbridge()
                .arg("sign")
                .signer(&key)
                .args(["--format", "bundle", "-a", &format!("signer={i}")])
                .arg(&image)
                .command()
        })
        .collect();
    for out in crate::support::run_together(cmds) {
        assert!(out.status.success(), "{}", out.describe());
    }
    assert_eq!(bundle_referrers(&reg, repo, &digest).len(), 16);
    assert_no_fallback_tag(&reg, repo, &digest);
    for i in [0, 15] {
        verify(&sb, &key.public, &image, &["-a", &format!("signer={i}")]).ok();
    }
}

#[test]
fn format_both_through_the_api_verifies_with_cosign_2_legacy_and_cosign_3_bundle() {
    let reg = OciRegistry::start();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");
    let repo = "api/both";
    let digest = reg.push_image(repo, "v1");
    let image = reg.image_ref(repo, &digest);

    sign(&sb, &key, &image, "both");
    assert_no_fallback_tag(&reg, repo, &digest);
    assert_eq!(
        reg.tags(repo),
        [format!("{}.sig", fallback_tag(&digest)), "v1".to_owned()]
    );
    assert_eq!(bundle_referrers(&reg, repo, &digest).len(), 1);

    let mut cosign2 = Tools::cosign();
    cosign2
        .args(["verify", "--key"])
        .arg(&key.public)
        .arg("--insecure-ignore-tlog")
        .args(reg.cosign_args())
        .arg(&image);
    let cosign2 = cosign2.run();
    assert!(cosign2.status.success(), "{}", cosign2.describe());
    let cosign3 = cosign3_verify(&reg, &key.public, &image);
    assert!(cosign3.status.success(), "{}", cosign3.describe());
    let printed: Value = serde_json::from_str(cosign3.stdout_str().trim()).unwrap();
    assert_eq!(
        printed[0]["critical"]["type"],
        "https://sigstore.dev/cosign/sign/v1"
    );
    for format in ["legacy", "bundle"] {
        verify(&sb, &key.public, &image, &["--format", format]).ok();
    }
}

/// `oras discover --format json --plain-http IMAGE`, parsed.
fn oras_discover(image: &str, extra: &[&str]) -> Value {
    let mut oras = Tools::oras();
    oras.args(["discover", "--format", "json", "--plain-http"])
        .args(extra)
        .arg(image);
    let out = oras.run_ok();
    serde_json::from_str(out.stdout_str().trim())
        .unwrap_or_else(|e| panic!("oras printed no JSON ({e})\n{}", out.describe()))
}

#[test]
fn oras_discover_lists_sigbridge_bundles_through_the_api_and_from_the_fallback_index() {
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("signer");

    // The API: oras reports the manifest's artifactType, as the registry lists it.
    let api = OciRegistry::start();
    let repo = "api/oras";
    let digest = api.push_image(repo, "v1");
    sign(&sb, &key, &api.image_ref(repo, &digest), "bundle");
    let listed = bundle_referrers(&api, repo, &digest);
    let before = api.referrers_requests();
    let found = oras_discover(&api.image_ref(repo, &digest), &[]);
    assert!(api.referrers_requests() > before, "oras asked the API");
    let referrers = found["referrers"].as_array().expect("referrers");
    assert_eq!(referrers.len(), 1, "{found}");
    assert_eq!(referrers[0]["digest"], listed[0]["digest"]);
    assert_eq!(referrers[0]["artifactType"], BUNDLE, "{found}");
    let filtered = oras_discover(&api.image_ref(repo, &digest), &["--artifact-type", BUNDLE]);
    assert_eq!(
        filtered["referrers"].as_array().unwrap().len(),
        1,
        "{filtered}"
    );

    // docker-registry has no API (404), so oras reads the `sha256-<hex>` fallback index, and
    // reports each entry's artifactType as the index holds it: the config's media type, which
    // is what cosign 3.1.1 (go-containerregistry) writes there and sigbridge writes alike.
    let reg = Registry::shared_plain();
    let repo = "e2e/oras-fallback";
    let digest = push_image(&reg, repo, "v1");
    sb.sigbridge()
        .arg("sign")
        .signer(&key)
        .args(["--format", "bundle"])
        .registry(&reg)
        .arg(reg.image_ref(repo, &digest))
        .run()
        .ok();
    let found = oras_discover(&reg.image_ref(repo, &digest), &[]);
    let referrers = found["referrers"].as_array().expect("referrers");
    assert_eq!(referrers.len(), 1, "{found}");
    let (_, manifest) =
        common::get_manifest_raw(&reg, repo, referrers[0]["digest"].as_str().unwrap());
    let manifest: Value = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(manifest["artifactType"], BUNDLE);
    assert_eq!(manifest["subject"]["digest"], digest);
    assert_eq!(
        referrers[0]["artifactType"], "application/vnd.oci.empty.v1+json",
        "{found}"
    );
    // So a filter on the bundle type finds nothing there (the same holds for cosign 3.1.1's
    // own fallback entries); pinned so a change on either side shows up.
    let filtered = oras_discover(&reg.image_ref(repo, &digest), &["--artifact-type", BUNDLE]);
    assert_eq!(filtered["referrers"], serde_json::json!([]), "{filtered}");
}
