//! End to end: cosign 3 bundles signed through the in-process SignPath-compatible server (the
//! file the service signs is the DSSE PAE) with a manual approval, one request for the whole
//! release, verified with real cosign 3.1.1 (bundles), cosign 2.5 (legacy) and `sigbridge verify`.

use std::process::Output;

use sigbridge_testkit::{OutputExt, Tools};
use signpath_compatible_server::Approval;

use crate::e2e_signpath::{assert_code, Fixture};

/// `cosign verify --key --insecure-ignore-tlog` with cosign 3.1.1 and its default flags.
fn cosign3_verify(fx: &Fixture, image: &str) -> Output {
    let mut cmd = Tools::cosign3();
    fx.reg.write_docker_config(&cmd.home().join(".docker"));
    cmd.args(["verify", "--key"])
        .arg(&fx.public_key)
        .arg("--insecure-ignore-tlog")
        .args(fx.reg.cosign_args())
        .arg(image);
    cmd.run()
}

#[track_caller]
fn assert_verifies(what: &str, out: &Output) {
    assert!(out.status.success(), "{what} failed:\n{}", out.describe());
}

/// `sigbridge verify --key` (restricted to `format` when given) passes for `image`.
fn sigbridge_verify(fx: &Fixture, image: &str, format: Option<&str>) {
    let key = fx.public_key.display().to_string();
    let mut args = vec!["verify", "--key", key.as_str()];
    if let Some(f) = format {
        args.extend(["--format", f]);
    }
    args.push(image);
    let out = fx.sigbridge(&args);
    assert_verifies(&format!("sigbridge verify {format:?}"), &out);
}

/// What `sigbridge generate --format FORMAT IMAGE` prints: the exact bytes to sign.
fn generated(fx: &Fixture, format: &str, image: &str) -> Vec<u8> {
    let out = fx.sigbridge(&["generate", "--format", format, image]);
    assert_code(&out, 0);
    out.stdout
}

fn release(fx: &Fixture, repos: &[&str]) -> Vec<(String, String)> {
    repos.iter().map(|r| fx.image(r)).collect()
}

/// The one request's uploaded files are `expected` (name, bytes), in order.
#[track_caller]
fn assert_uploaded(fx: &Fixture, expected: &[(String, Vec<u8>)]) {
    let requests = fx.server.requests();
    assert_eq!(requests.len(), 1, "one signing request for the release");
    assert_eq!(requests[0].artifact_name, "payloads.zip");
    let files = requests[0].unsigned_files();
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    let want: Vec<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, want);
    for ((name, bytes), (_, want)) in files.iter().zip(expected) {
        assert!(
            bytes == want,
            "{name} is not what `sigbridge generate` prints"
        );
    }
}

fn entry(n: usize, digest: &str, ext: &str, bytes: Vec<u8>) -> (String, Vec<u8>) {
    let hex = digest.trim_start_matches("sha256:");
    (format!("payloads/{n:03}-sha256-{hex}.{ext}"), bytes)
}

#[test]
fn a_bundle_release_is_one_approved_request_of_pae_files_and_verifies_with_cosign_3() {
    let fx = Fixture::new(Approval::Manual);
    let repos = ["spb/api", "spb/web", "spb/worker"];
    let images = release(&fx, &repos);
    let refs: Vec<&str> = images.iter().map(|(i, _)| i.as_str()).collect();
    let out = std::thread::scope(|s| {
        s.spawn(|| fx.approve_nth(1));
        fx.sign(&["--format", "bundle"], &refs)
    });
    assert_code(&out, 0);
    assert_eq!(fx.server.submits(), 1);
    let expected: Vec<_> = images
        .iter()
        .enumerate()
        .map(|(i, (image, digest))| entry(i + 1, digest, "pae", generated(&fx, "bundle", image)))
        .collect();
    assert_uploaded(&fx, &expected);
    for ((image, digest), repo) in images.iter().zip(repos) {
        assert_verifies("cosign 3.1.1 verify", &cosign3_verify(&fx, image));
        sigbridge_verify(&fx, image, None);
        // Bundles only: no legacy `.sig` tag was written.
        fx.assert_nothing_attached(repo, digest);
    }
}

#[test]
fn both_formats_go_in_one_request_and_each_verifier_finds_its_own() {
    let fx = Fixture::new(Approval::Manual);
    let images = release(&fx, &["spb-both/api", "spb-both/web", "spb-both/worker"]);
    let refs: Vec<&str> = images.iter().map(|(i, _)| i.as_str()).collect();
    let out = std::thread::scope(|s| {
        s.spawn(|| fx.approve_nth(1));
        fx.sign(&["--format", "both"], &refs)
    });
    assert_code(&out, 0);
    assert_eq!(fx.server.submits(), 1);
    // Each image's legacy payload, then its PAE: distinct names an artifact configuration
    // selects by extension.
    let mut expected = Vec::new();
    for (image, digest) in &images {
        let n = expected.len();
        expected.push(entry(
            n + 1,
            digest,
            "json",
            generated(&fx, "legacy", image),
        ));
        expected.push(entry(n + 2, digest, "pae", generated(&fx, "bundle", image)));
    }
    assert_uploaded(&fx, &expected);
    // Approvers are told of three images and both formats, not of six payloads.
    let description = fx.server.requests()[0].fields["description"].clone();
    assert!(
        description.starts_with("sigbridge: cosign signatures and cosign 3 bundles for 3 images: "),
        "{description}"
    );
    for (image, _) in &images {
        assert!(description.contains(image.as_str()), "{description}");
    }
    for (image, _) in &images {
        assert_verifies("cosign 3.1.1 verify", &cosign3_verify(&fx, image));
        fx.verify_with_cosign(image); // cosign 2.5 reads the legacy `.sig` signature
        sigbridge_verify(&fx, image, Some("bundle"));
        sigbridge_verify(&fx, image, Some("legacy"));
    }
}

#[test]
fn a_deferred_bundle_request_is_collected_with_resume() {
    let fx = Fixture::new(Approval::Manual);
    let images = release(&fx, &["spb-later/api", "spb-later/web", "spb-later/worker"]);
    let refs: Vec<&str> = images.iter().map(|(i, _)| i.as_str()).collect();
    let out = fx.sign(&["--format", "bundle", "--no-wait"], &refs);
    assert_code(&out, 0);
    let id = out.stdout_str().trim().to_string();
    fx.server.approve(&id).unwrap();

    // The same request collected as another format holds other files: refused, nothing written.
    let out = fx.sign(&["--format", "legacy", "--resume", &id], &refs);
    assert_code(&out, 5);
    let stderr = out.stderr_str();
    assert!(stderr.contains("--format"), "{stderr}");
    assert!(stderr.contains("3 .pae"), "{stderr}");
    for ((_, digest), repo) in
        images
            .iter()
            .zip(["spb-later/api", "spb-later/web", "spb-later/worker"])
    {
        fx.assert_nothing_attached(repo, digest);
    }

    let out = fx.sign(&["--format", "bundle", "--resume", &id], &refs);
    assert_code(&out, 0);
    assert_eq!(fx.server.submits(), 1, "resume must not submit again");
    for (image, _) in &images {
        assert_verifies("cosign 3.1.1 verify", &cosign3_verify(&fx, image));
        sigbridge_verify(&fx, image, None);
    }
}

#[test]
fn one_image_in_bundle_format_is_payload_pae_at_the_root() {
    let fx = Fixture::new(Approval::Auto);
    let (image, _) = fx.image("spb-one/app");
    let out = fx.sign(&["--format", "bundle"], &[&image]);
    assert_code(&out, 0);
    let requests = fx.server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].artifact_name, "payload.pae.zip");
    let files = requests[0].unsigned_files();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].0, "payload.pae");
    assert!(files[0].1 == generated(&fx, "bundle", &image));
    assert_verifies("cosign 3.1.1 verify", &cosign3_verify(&fx, &image));
}
