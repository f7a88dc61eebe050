//! Bounded reads: every input sigbridge reads from a file or a registry has a size limit, and
//! going over it is a clear error with the documented exit code, never a crash, an unbounded
//! allocation or a partial write. Runs the real binary against a real docker-registry.

use crate::common;

use common::{
    assert_no_sig_tag, b64, exit, get_manifest_raw, put_blob, put_manifest, sig_tag, Sandbox,
};
use sigbridge_testkit::{push_image_http, Registry};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
const SIG_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// sigbridge's (and docker-registry's) manifest limit, `MAX_MANIFEST_SIZE`.
const MAX_MANIFEST: usize = 4 * 1024 * 1024;

/// A signature manifest with `layers` copies of one (stored) payload layer, whose first layer
/// carries `extra_annotation` bytes of padding. Returns the manifest bytes.
fn signature_manifest(
    reg: &Registry,
    repo: &str,
    layers: usize,
    extra_annotation: usize,
) -> Vec<u8> {
    let config = br#"{"architecture":"","os":"","config":{}}"#;
    let config_digest = put_blob(reg, repo, config);
    let payload = br#"{"critical":{"identity":{"docker-reference":"x/y"},"image":{"docker-manifest-digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000"},"type":"cosign container image signature"},"optional":null}"#;
    let payload_digest = put_blob(reg, repo, payload);
    let layer = |i: usize| {
        let mut annotations = serde_json::Map::new();
        annotations.insert(
            SIG_ANNOTATION.into(),
            b64(format!("not a signature {i}").as_bytes()).into(),
        );
        if i == 0 && extra_annotation > 0 {
            annotations.insert("padding".into(), "p".repeat(extra_annotation).into());
        }
        serde_json::json!({
            "mediaType": SIMPLE_SIGNING,
            "size": payload.len(),
            "digest": payload_digest,
            "annotations": annotations,
        })
    };
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "size": config.len(),
            "digest": config_digest,
        },
        "layers": (0..layers).map(layer).collect::<Vec<_>>(),
    });
    serde_json::to_vec(&manifest).expect("manifest serialises")
}

/// Raw manifest PUT: the registry's status code.
fn try_put_manifest(reg: &Registry, repo: &str, reference: &str, body: &[u8]) -> u16 {
    let client = reg.blocking_client();
    client
        .put(format!("{}/v2/{repo}/manifests/{reference}", reg.url()))
        .header("Content-Type", OCI_MANIFEST)
        .body(body.to_vec())
        .send()
        .expect("PUT manifest")
        .status()
        .as_u16()
}

#[test]
fn signature_manifest_with_1001_layers_is_refused_by_verify_and_sign() {
    let reg = Registry::plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("k");
    let repo = "limits/layers";
    let digest = push_image_http(&reg, repo, "v1");
    let image = reg.image_ref(repo, &digest);
    let manifest = signature_manifest(&reg, repo, 1001, 0);
    put_manifest(&reg, repo, &sig_tag(&digest), &manifest, OCI_MANIFEST);
    let (_, before) = get_manifest_raw(&reg, repo, &sig_tag(&digest));

    let run = sb
        .sigbridge()
        .arg("verify")
        .arg("--key")
        .arg(&key.public)
        .arg(&image)
        .run()
        .code_is(exit::REGISTRY);
    assert!(
        run.stderr().contains("1001 layers") && run.stderr().contains("1000"),
        "{}",
        run.describe()
    );

    let run = sb
        .sigbridge()
        .arg("sign")
        .signer(&key)
        .arg(&image)
        .run()
        .code_is(exit::REGISTRY);
    assert!(
        run.stderr().contains("1001 layers") && run.stderr().contains("1000"),
        "{}",
        run.describe()
    );
    let (status, after) = get_manifest_raw(&reg, repo, &sig_tag(&digest));
    assert_eq!(status, 200);
    assert_eq!(after, before, "sign must not rewrite a manifest it refused");
}

#[test]
fn huge_signature_manifest_annotations_hit_the_4_mib_manifest_limit() {
    let reg = Registry::plain();
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("k");
    let repo = "limits/annotations";
    let digest = push_image_http(&reg, repo, "v1");
    let image = reg.image_ref(repo, &digest);
    let tag = sig_tag(&digest);

    // A 5 MiB annotation: docker-registry itself refuses to store the manifest (its limit is
    // also 4 MiB), so nothing that large can be served to sigbridge by this registry.
    let five_mib = signature_manifest(&reg, repo, 1, 5 * 1024 * 1024);
    let status = try_put_manifest(&reg, repo, &tag, &five_mib);
    assert!(
        (400..500).contains(&status),
        "docker-registry stored a {}-byte manifest (status {status})",
        five_mib.len()
    );
    assert_no_sig_tag(&reg, repo, &digest);

    // The largest manifest the registry accepts: 64 bytes under 4 MiB, almost all of it one
    // annotation.
    let base = signature_manifest(&reg, repo, 1, 1).len() - 1;
    let near_limit = signature_manifest(&reg, repo, 1, MAX_MANIFEST - 64 - base);
    assert_eq!(near_limit.len(), MAX_MANIFEST - 64);
    put_manifest(&reg, repo, &tag, &near_limit, OCI_MANIFEST);
    let (_, before) = get_manifest_raw(&reg, repo, &tag);

    // verify reads it (it is within the limit) and finds no signature that verifies.
    let run = sb
        .sigbridge()
        .arg("verify")
        .arg("--key")
        .arg(&key.public)
        .arg(&image)
        .run();
    assert_eq!(
        run.code(),
        Some(exit::NO_MATCHING_SIGNATURES),
        "{}",
        run.describe()
    );

    // sign would append a layer and push a manifest over 4 MiB: refused before the upload.
    let run = sb
        .sigbridge()
        .arg("sign")
        .signer(&key)
        .arg(&image)
        .run()
        .code_is(exit::REGISTRY);
    assert!(
        run.stderr()
            .contains(&format!("larger than the limit of {MAX_MANIFEST} bytes")),
        "{}",
        run.describe()
    );
    let (status, after) = get_manifest_raw(&reg, repo, &tag);
    assert_eq!(status, 200);
    assert_eq!(
        after, before,
        "the refused sign must leave the manifest as it was"
    );
}

#[test]
fn key_file_over_1_mib_is_refused_with_exit_4() {
    let sb = Sandbox::new();
    let mut big = b"-----BEGIN PRIVATE KEY-----\n".to_vec();
    big.resize(1024 * 1024 + 1, b'A');
    let path = sb.write("big.key", &big);
    let run = sb
        .sigbridge()
        .arg("public-key")
        .arg("--signer")
        .arg(&path)
        .run()
        .code_is(exit::KEY);
    assert!(
        run.stderr().contains("larger than 1048576 bytes"),
        "{}",
        run.describe()
    );
}

/// `attach` with a payload of `payload_len` bytes and a signature file of `signature_len`.
fn attach_with_sizes(payload_len: usize, signature_len: usize) -> (common::Run, Registry, String) {
    let reg = Registry::plain();
    let sb = Sandbox::new();
    let repo = "limits/attach";
    let digest = push_image_http(&reg, repo, "v1");
    let image = reg.image_ref(repo, &digest);
    let payload = sb.write("payload.json", vec![b' '; payload_len]);
    let signature = sb.write("payload.sig", vec![b'A'; signature_len]);
    let run = sb
        .sigbridge()
        .arg("attach")
        .arg("--payload")
        .arg(&payload)
        .arg("--signature")
        .arg(&signature)
        .arg(&image)
        .run();
    (run, reg, digest)
}

#[test]
fn attach_payload_over_1_mib_is_refused_with_exit_3() {
    let (run, reg, digest) = attach_with_sizes(1024 * 1024 + 1, 8);
    let run = run.code_is(exit::INVALID_INPUT);
    assert!(
        run.stderr().contains("larger than the 1048576-byte limit"),
        "{}",
        run.describe()
    );
    assert_no_sig_tag(&reg, "limits/attach", &digest);
}

#[test]
fn attach_signature_over_64_kib_is_refused_with_exit_3() {
    let reg = Registry::plain();
    let sb = Sandbox::new();
    let repo = "limits/attach-sig";
    let digest = push_image_http(&reg, repo, "v1");
    let image = reg.image_ref(repo, &digest);
    let payload_bytes = sb
        .sigbridge()
        .arg("generate")
        .arg(&image)
        .run()
        .ok()
        .out
        .stdout;
    let payload = sb.write("payload.json", &payload_bytes);
    let signature = sb.write("payload.sig", vec![b'A'; 64 * 1024 + 1]);
    let run = sb
        .sigbridge()
        .arg("attach")
        .arg("--payload")
        .arg(&payload)
        .arg("--signature")
        .arg(&signature)
        .arg(&image)
        .run()
        .code_is(exit::INVALID_INPUT);
    assert!(
        run.stderr().contains("larger than the 65536-byte limit"),
        "{}",
        run.describe()
    );
    assert_no_sig_tag(&reg, repo, &digest);
}

#[test]
fn images_from_line_over_4_kib_is_refused_with_exit_3() {
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("k");
    // One 8 MiB line with no newline, on stdin: refused after the first 4 KiB.
    let run = sb
        .sigbridge()
        .arg("sign")
        .signer(&key)
        .args(["--images-from", "-"])
        .stdin(vec![b'a'; 8 * 1024 * 1024])
        .run()
        .code_is(exit::INVALID_INPUT);
    assert!(
        run.stderr().contains("-:1: line longer than 4096 bytes"),
        "{}",
        run.describe()
    );
    // A line of exactly 4096 bytes (CRLF-terminated) passes the length check and fails as a
    // reference instead.
    let mut list = b"# comment\r\n".to_vec();
    list.extend(vec![b'a'; 4096]);
    list.extend(b"\r\n");
    let path = sb.write("list.txt", &list);
    let run = sb
        .sigbridge()
        .arg("sign")
        .signer(&key)
        .arg("--images-from")
        .arg(&path)
        .run()
        .code_is(exit::INVALID_INPUT);
    assert!(!run.stderr().contains("line longer"), "{}", run.describe());
}

#[test]
fn registry_ca_file_over_1_mib_or_endless_is_refused_with_exit_6() {
    let sb = Sandbox::new();
    let key = sb.pkcs8_key("k");
    // Nothing is contacted: the client is refused while it is being built.
    let image = "127.0.0.1:1/limits/ca@sha256:0000000000000000000000000000000000000000000000000000000000000000";
    let big = sb.write("big-ca.pem", vec![b'A'; 1024 * 1024 + 1]);
    for (ca, via_env) in [
        (big.as_path(), false),
        (std::path::Path::new("/dev/zero"), true),
    ] {
        let mut cmd = sb.sigbridge().arg("verify").arg("--key").arg(&key.public);
        cmd = if via_env {
            cmd.env("SIGBRIDGE_REGISTRY_CACERT", ca)
        } else {
            cmd.arg("--registry-cacert").arg(ca)
        };
        let run = cmd.arg(image).run().code_is(exit::REGISTRY);
        assert!(
            run.stderr().contains("larger than 1048576 bytes"),
            "{}",
            run.describe()
        );
    }
}
