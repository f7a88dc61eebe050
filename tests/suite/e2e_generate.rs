//! `sigbridge generate` prints exactly the bytes `cosign generate` prints.

use crate::common;

use common::Sandbox;
use sigbridge_testkit::{cosign_generate, push_image, Registry, Tools};

/// Annotation sets, each as the `(key, value)` pairs passed one `-a key=value` at a time.
/// cosign 2.5 rejects `key=a=b`, so no value contains `=` except through the comma form.
const ANNOTATION_SETS: &[&[(&str, &str)]] = &[
    &[],
    &[("foo", "bar"), ("a", "1")],
    // One flag holding two pairs: `-a k1=v1,k2=v2` (pflag splits it on commas).
    &[("k1", "v1,k2=v2")],
    // Go's JSON escapes <, > and & (and U+2028); unicode stays as is.
    &[
        ("html", "<b>Tom & Jerry</b>"),
        ("unicode", "grüße 名前 ✓ \u{1F512}"),
        ("schlüssel", "x\u{2028}y"),
    ],
    // Duplicate keys: the last one wins.
    &[("dup", "first"), ("dup", "second")],
];

fn sigbridge_generate(sb: &Sandbox, reg: &Registry, image: &str, ann: &[(&str, &str)]) -> Vec<u8> {
    let mut cmd = sb.sigbridge().arg("generate").registry(reg);
    for (k, v) in ann {
        cmd = cmd.arg("-a").arg(format!("{k}={v}"));
    }
    cmd.arg(image).run().ok().out.stdout
}

#[test]
fn generate_is_byte_identical_to_cosign_generate() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let repo = "e2e/generate";
    let digest = push_image(&reg, repo, "v1");
    let refs = [
        reg.image_ref(repo, &digest),
        reg.image_ref(repo, "v1"),
        format!("{}@{digest}", reg.image_ref(repo, "v1")),
    ];
    let mut mismatches = Vec::new();
    for image in &refs {
        for ann in ANNOTATION_SETS {
            let ours = sigbridge_generate(&sb, &reg, image, ann);
            let theirs = cosign_generate(&reg, image, ann);
            if ours != theirs {
                mismatches.push(format!(
                    "{image} {ann:?}\n  sigbridge: {}\n  cosign:    {}",
                    String::from_utf8_lossy(&ours),
                    String::from_utf8_lossy(&theirs)
                ));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "payloads differ:\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn generate_names_the_digest_and_the_repository_without_a_trailing_newline() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let repo = "e2e/generate-shape";
    let digest = push_image(&reg, repo, "v1");
    let out = sb
        .sigbridge()
        .arg("generate")
        .arg(reg.image_ref(repo, &digest))
        .run()
        .ok();
    let stdout = out.out.stdout.clone();
    assert_ne!(stdout.last(), Some(&b'\n'), "{}", out.describe());
    let payload: serde_json::Value = serde_json::from_slice(&stdout).unwrap();
    assert_eq!(
        payload["critical"]["image"]["docker-manifest-digest"],
        digest,
        "{}",
        out.describe()
    );
    assert_eq!(
        payload["critical"]["identity"]["docker-reference"],
        common::repo_name(&reg, repo)
    );
    assert_eq!(
        payload["critical"]["type"],
        "cosign container image signature"
    );
    assert!(payload["optional"].is_null(), "{}", out.describe());
}

#[test]
fn generate_with_a_tag_warns_and_uses_the_resolved_digest() {
    let reg = Registry::shared_plain();
    let sb = Sandbox::new();
    let repo = "e2e/generate-tag";
    let digest = push_image(&reg, repo, "v1");
    let out = sb
        .sigbridge()
        .arg("generate")
        .arg(reg.image_ref(repo, "v1"))
        .run()
        .ok();
    assert!(out.stderr().contains("WARNING"), "{}", out.describe());
    let payload: serde_json::Value = serde_json::from_slice(&out.out.stdout).unwrap();
    assert_eq!(
        payload["critical"]["image"]["docker-manifest-digest"],
        digest,
        "{}",
        out.describe()
    );
}

/// A loopback address nothing listens on: bind a port, then let it go.
fn dead_registry() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr.to_string()
}

const OFFLINE_DIGEST: &str =
    "sha256:4aa3054270f7a70b4528f2064ee90961788e1e1518703592ae4463de3b889dec";

#[test]
fn generate_with_a_digest_needs_no_registry_and_matches_cosign() {
    let sb = Sandbox::new();
    let image = format!("{}/e2e/offline@{OFFLINE_DIGEST}", dead_registry());
    let out = sb
        .sigbridge()
        .args(["generate", "-a", "team=a", &image])
        .run()
        .ok();
    assert!(!out.stderr().contains("WARNING"), "{}", out.describe());
    // cosign generate is offline for a digest too: the same bytes.
    let mut cosign = Tools::cosign();
    cosign.args(["generate", "-a", "team=a", &image]);
    let theirs = cosign.run_ok().stdout;
    assert_eq!(
        String::from_utf8_lossy(&out.out.stdout),
        String::from_utf8_lossy(&theirs)
    );
}

#[test]
fn generate_check_exists_and_tags_still_need_the_registry() {
    let sb = Sandbox::new();
    let dead = dead_registry();
    let pinned = format!("{dead}/e2e/offline@{OFFLINE_DIGEST}");
    sb.sigbridge()
        .args(["generate", "--check-exists", &pinned])
        .run()
        .code_is(6);
    sb.sigbridge()
        .args(["generate", &format!("{dead}/e2e/offline:v1")])
        .run()
        .code_is(6);

    // --check-exists asks a live registry: a digest it does not hold is "image not found".
    let reg = Registry::shared_plain();
    let repo = "e2e/generate-check";
    let digest = push_image(&reg, repo, "v1");
    let out = sb
        .sigbridge()
        .arg("generate")
        .registry(&reg)
        .args(["--check-exists", &reg.image_ref(repo, &digest)])
        .run()
        .ok();
    let payload: serde_json::Value = serde_json::from_slice(&out.out.stdout).unwrap();
    assert_eq!(
        payload["critical"]["image"]["docker-manifest-digest"],
        digest
    );
    sb.sigbridge()
        .arg("generate")
        .registry(&reg)
        .args(["--check-exists", &reg.image_ref(repo, OFFLINE_DIGEST)])
        .run()
        .code_is(11);
}
