//! Batch and multi-arch signing through the real binary: many images in one process,
//! `--images-from`, `--recursive` over an index, failures that do not stop the others, and
//! what containers/image (which checks every platform) and cosign make of the result.

use crate::common;

use common::{exit, sig_layers, Sandbox};
use sigbridge_testkit::{
    cosign_verify, push_image_http, push_index, sigstore_policy, skopeo_verify_with_policy,
    IdentityRule, OutputExt, Registry,
};

#[test]
fn images_from_file_signs_every_image_and_reports_each_as_json() {
    let reg = Registry::shared_plain();
    let sandbox = Sandbox::new();
    let key = sandbox.pkcs8_key("release");
    let digests: Vec<String> = (0..12)
        .map(|n| push_image_http(&reg, "batch/app", &format!("v{n}")))
        .collect();
    let mut list = String::from("# release 1.0\n\n");
    for (n, d) in digests.iter().enumerate() {
        // Mix digest references and tags: both are accepted, tags resolved once.
        if n % 2 == 0 {
            list.push_str(&format!("{}\n", reg.image_ref("batch/app", d)));
        } else {
            list.push_str(&format!(
                "{}\n",
                reg.image_ref("batch/app", &format!("v{n}"))
            ));
        }
    }
    let file = sandbox.write("images.txt", &list);

    let run = sandbox
        .sigbridge()
        .arg("sign")
        .signer(&key)
        .arg("--images-from")
        .arg(&file)
        .args(["--jobs", "4", "-o", "json"])
        .run()
        .ok();
    let lines = run.stdout_json_lines();
    assert_eq!(lines.len(), digests.len(), "{}", run.describe());
    for line in &lines {
        assert_eq!(line["outcome"], "attached", "{line}");
    }
    for d in &digests {
        assert!(
            lines.iter().any(|l| l["digest"] == d.as_str()),
            "no report line for {d}"
        );
        assert_eq!(sig_layers(&reg, "batch/app", d).len(), 1, "{d}");
        let out = cosign_verify(&reg, &key.public, &reg.image_ref("batch/app", d), &[]);
        assert!(
            out.status.success(),
            "cosign rejected {d}: {}",
            out.describe()
        );
    }
    assert!(run.stderr().contains("12 attached"), "{}", run.describe());
}

#[test]
fn images_from_stdin_is_accepted() {
    let reg = Registry::shared_plain();
    let sandbox = Sandbox::new();
    let key = sandbox.pkcs8_key("k");
    let a = push_image_http(&reg, "stdin/a", "1");
    let b = push_image_http(&reg, "stdin/b", "1");
    let list = format!(
        "{}\n{}\n",
        reg.image_ref("stdin/a", &a),
        reg.image_ref("stdin/b", &b)
    );
    sandbox
        .sigbridge()
        .arg("sign")
        .signer(&key)
        .args(["--images-from", "-"])
        .stdin(list)
        .run()
        .ok();
    assert_eq!(sig_layers(&reg, "stdin/a", &a).len(), 1);
    assert_eq!(sig_layers(&reg, "stdin/b", &b).len(), 1);
}

#[test]
fn one_missing_image_fails_alone_and_sets_the_exit_code() {
    let reg = Registry::shared_plain();
    let sandbox = Sandbox::new();
    let key = sandbox.pkcs8_key("k");
    let good: Vec<String> = (0..3)
        .map(|n| push_image_http(&reg, "partial/app", &format!("t{n}")))
        .collect();
    let mut images: Vec<String> = good
        .iter()
        .map(|d| reg.image_ref("partial/app", d))
        .collect();
    images.insert(1, reg.image_ref("partial/app", "no-such-tag"));

    let run = sandbox
        .sigbridge()
        .arg("sign")
        .signer(&key)
        .args(["-o", "json"])
        .args(&images)
        .run()
        .code_is(exit::IMAGE_NOT_FOUND);
    let lines = run.stdout_json_lines();
    assert_eq!(lines.len(), 4, "{}", run.describe());
    let failed: Vec<_> = lines.iter().filter(|l| l.get("error").is_some()).collect();
    assert_eq!(failed.len(), 1, "{}", run.describe());
    assert_eq!(failed[0]["exitCode"], exit::IMAGE_NOT_FOUND);
    assert!(failed[0]["image"].as_str().unwrap().contains("no-such-tag"));
    for d in &good {
        assert_eq!(
            sig_layers(&reg, "partial/app", d).len(),
            1,
            "{d} was not signed"
        );
    }
    assert!(run.stderr().contains("1 failed"), "{}", run.describe());
}

#[test]
fn a_malformed_reference_anywhere_in_the_list_signs_nothing() {
    let reg = Registry::shared_plain();
    let sandbox = Sandbox::new();
    let key = sandbox.pkcs8_key("k");
    let d = push_image_http(&reg, "typo/app", "1");
    let file = sandbox.write(
        "images.txt",
        format!("{}\nNot A Reference!\n", reg.image_ref("typo/app", &d)),
    );
    let run = sandbox
        .sigbridge()
        .arg("sign")
        .signer(&key)
        .arg("--images-from")
        .arg(&file)
        .run()
        .code_is(exit::INVALID_INPUT);
    assert!(
        run.stderr().contains("Not A Reference!"),
        "{}",
        run.describe()
    );
    assert!(sig_layers(&reg, "typo/app", &d).is_empty());
}

#[test]
fn recursive_signs_the_index_and_every_platform_so_containers_image_accepts_all() {
    let reg = Registry::shared_plain();
    let sandbox = Sandbox::new();
    let key = sandbox.pkcs8_key("multiarch");
    let (index, children) = push_index(
        &reg,
        "multi/app",
        "1.0",
        &[("linux", "amd64"), ("linux", "arm64"), ("linux", "s390x")],
    );
    let tagged = reg.image_ref("multi/app", "1.0");

    // Without --recursive only the index is signed: containers/image, checking each platform,
    // refuses the copy of all platforms.
    sandbox
        .sigbridge()
        .arg("sign")
        .signer(&key)
        .arg(reg.image_ref("multi/app", &index))
        .run()
        .ok();
    assert_eq!(sig_layers(&reg, "multi/app", &index).len(), 1);
    for c in &children {
        assert!(sig_layers(&reg, "multi/app", c).is_empty());
    }
    let policy = sigstore_policy(key.public_pem().as_bytes(), &IdentityRule::MatchRepository);
    let verdict = skopeo_verify_with_policy(&reg, &policy, &tagged, &["--all"]);
    assert!(!verdict.accepted, "unsigned platforms were accepted");

    // With --recursive every child gets its own signature with the same identity.
    let run = sandbox
        .sigbridge()
        .arg("sign")
        .signer(&key)
        .args(["--recursive", "-o", "json"])
        .arg(&tagged)
        .run()
        .ok();
    let lines = run.stdout_json_lines();
    assert_eq!(lines.len(), 1 + children.len(), "{}", run.describe());
    assert_eq!(lines[0]["digest"], index.as_str(), "the index comes first");
    assert_eq!(lines[0]["outcome"], "already-present");
    for c in &children {
        let layers = sig_layers(&reg, "multi/app", c);
        assert_eq!(layers.len(), 1, "child {c}");
        let out = cosign_verify(&reg, &key.public, &reg.image_ref("multi/app", c), &[]);
        assert!(
            out.status.success(),
            "cosign rejected child {c}: {}",
            out.describe()
        );
    }
    let verdict = skopeo_verify_with_policy(&reg, &policy, &tagged, &["--all"]);
    assert!(
        verdict.accepted,
        "skopeo --all rejected: {}",
        verdict.stderr
    );
}

#[test]
fn the_same_image_listed_many_times_is_signed_once_and_reported_truthfully() {
    let reg = Registry::shared_plain();
    let sandbox = Sandbox::new();
    let key = sandbox.pkcs8_key("dupes");
    let digest = push_image_http(&reg, "dupes/app", "1.0");
    // 20 identical lines, plus the tag that resolves to the same digest.
    let mut list = format!("{}\n", reg.image_ref("dupes/app", &digest)).repeat(20);
    list.push_str(&format!("{}\n", reg.image_ref("dupes/app", "1.0")));
    let file = sandbox.write("images.txt", &list);

    let run = sandbox
        .sigbridge()
        .arg("sign")
        .signer(&key)
        .arg("--images-from")
        .arg(&file)
        .args(["-o", "json"])
        .run()
        .ok();
    let lines = run.stdout_json_lines();
    assert_eq!(lines.len(), 1, "{}", run.describe());
    assert_eq!(lines[0]["outcome"], "attached", "{}", run.describe());
    assert_eq!(sig_layers(&reg, "dupes/app", &digest).len(), 1);
    let stderr = run.stderr();
    assert!(
        stderr.contains("19 duplicate image reference(s)"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "1 attached, 0 already signed, 0 failed, 20 duplicate(s) in the list skipped"
        ),
        "{stderr}"
    );
}

#[test]
fn json_lines_come_out_while_the_run_goes_on() {
    use std::io::BufRead as _;
    use std::process::Stdio;

    let reg = Registry::shared_plain();
    let sandbox = Sandbox::new();
    let key = sandbox.pkcs8_key("stream");
    // Fewer than one signer batch (256): the whole run is one batch.
    let refs = common::push_distinct_images(&reg, "stream/app", 200);
    let file = sandbox.write("images.txt", refs.join("\n"));

    let mut child = sandbox
        .sigbridge()
        .arg("sign")
        .signer(&key)
        .arg("--images-from")
        .arg(&file)
        .args(["--jobs", "2", "-o", "json"])
        .command()
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sigbridge");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut first = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut first)
        .expect("read stdout");
    // Killed as soon as one line is out, as a dying pipeline would be.
    let _ = child.kill();
    let _ = child.wait();

    let line: serde_json::Value = serde_json::from_str(first.trim())
        .unwrap_or_else(|e| panic!("first stdout line {first:?} is not JSON: {e}"));
    assert_eq!(line["outcome"], "attached", "{line}");
    let reported = line["digest"].as_str().expect("digest");
    assert_eq!(
        sig_layers(&reg, "stream/app", reported).len(),
        1,
        "a reported image carries its signature"
    );
    let unsigned = refs
        .iter()
        .filter_map(|r| r.rsplit_once('@').map(|(_, d)| d))
        .filter(|d| sig_layers(&reg, "stream/app", d).is_empty())
        .count();
    assert!(
        unsigned > 0,
        "the first line came out only after every image was signed"
    );
}

#[test]
fn list_errors_name_the_file_and_line() {
    let reg = Registry::shared_plain();
    let sandbox = Sandbox::new();
    let key = sandbox.pkcs8_key("lines");
    let d = push_image_http(&reg, "lines/app", "1");
    let good = reg.image_ref("lines/app", &d);
    let file = sandbox.write("images.txt", format!("# list\n{good}\nNot A Reference!\n"));
    let run = sandbox
        .sigbridge()
        .arg("sign")
        .signer(&key)
        .arg("--images-from")
        .arg(&file)
        .run()
        .code_is(exit::INVALID_INPUT);
    assert!(run.stderr().contains("images.txt:3"), "{}", run.describe());

    let mut bytes = format!("{good}\n").into_bytes();
    bytes.extend_from_slice(b"\xff\xfe\n");
    let file = sandbox.write("binary.txt", bytes);
    let run = sandbox
        .sigbridge()
        .arg("sign")
        .signer(&key)
        .arg("--images-from")
        .arg(&file)
        .run()
        .code_is(exit::INVALID_INPUT);
    assert!(run.stderr().contains("binary.txt:2"), "{}", run.describe());
    assert!(sig_layers(&reg, "lines/app", &d).is_empty());
}

#[test]
fn tlog_upload_true_warns_that_nothing_goes_to_a_transparency_log() {
    let reg = Registry::shared_plain();
    let sandbox = Sandbox::new();
    let key = sandbox.pkcs8_key("tlog");
    let d = push_image_http(&reg, "tlog/app", "1");
    let image = reg.image_ref("tlog/app", &d);
    for flag in ["--tlog-upload", "--tlog-upload=true"] {
        let run = sandbox
            .sigbridge()
            .arg("sign")
            .signer(&key)
            .arg(flag)
            .arg(&image)
            .run()
            .ok();
        assert!(
            run.stderr()
                .contains("WARNING: sigbridge uploads nothing to a transparency log"),
            "{}",
            run.describe()
        );
        assert!(run.stderr().contains("--insecure-ignore-tlog"));
    }
    let run = sandbox
        .sigbridge()
        .arg("sign")
        .signer(&key)
        .arg("--tlog-upload=false")
        .arg(&image)
        .run()
        .ok();
    assert!(!run.stderr().contains("WARNING"), "{}", run.describe());
}

#[test]
fn a_wrong_key_password_is_one_error_and_no_registry_request() {
    let reg = Registry::plain();
    let sandbox = Sandbox::new();
    let key = sandbox.cosign_key("locked", "right-password");
    let refs = common::push_distinct_images(&reg, "password/app", 5);
    let file = sandbox.write("images.txt", refs.join("\n"));
    let requests_before = reg.log().lines().count();
    let run = sandbox
        .sigbridge()
        .arg("sign")
        .signer(&key)
        .env("COSIGN_PASSWORD", "wrong-password")
        .arg("--images-from")
        .arg(&file)
        .args(["-o", "json"])
        .run()
        .code_is(exit::KEY);
    let errors = run
        .stderr()
        .lines()
        .filter(|l| l.starts_with("Error"))
        .count();
    assert_eq!(errors, 1, "{}", run.describe());
    assert!(run.stdout().is_empty(), "{}", run.describe());
    assert_eq!(
        reg.log().lines().count(),
        requests_before,
        "the registry was contacted:\n{}",
        reg.log()
    );
}
