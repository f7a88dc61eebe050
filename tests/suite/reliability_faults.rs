//! Issue 6, faults: `sigbridge sign` through a fault-injecting proxy in front of a real
//! docker-registry. Each run must end with the signature attached exactly once (exit 0) or with
//! a clear error and a non-zero exit, and the registry must never hold a signature manifest
//! that lost layers or points at a missing blob — also when the process is interrupted.

use crate::support;

use std::process::{Command, Output};
use std::time::Duration;

use sigbridge_testkit::proxy::{Fault, FaultProxy, Rule, Trigger};
use sigbridge_testkit::{push_image_http, Registry};
use support::{checked_sig_layers, describe, keys_present, p256_key, run, sigbridge, Key};

/// Where a fault is aimed: (label, method, path fragment).
const TARGETS: &[(&str, Option<&str>, &str)] = &[
    ("image manifest", None, "/manifests/sha256:"),
    ("signature manifest read", Some("GET"), "/manifests/sha256-"),
    (
        "signature manifest write",
        Some("PUT"),
        "/manifests/sha256-",
    ),
    ("blob upload", Some("POST"), "/blobs/uploads/"),
];

fn faults() -> Vec<Fault> {
    vec![
        Fault::Status(500),
        Fault::Status(502),
        Fault::Status(503),
        Fault::TooManyRequests {
            retry_after_secs: 1,
        },
        Fault::Drop,
        Fault::DropResponse,
        Fault::Stall(Duration::from_millis(300)),
        Fault::Truncate,
    ]
}

struct Env {
    reg: Registry,
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("home")).expect("home");
        Self {
            reg: Registry::plain(),
            dir,
        }
    }

    fn key(&self, name: &str) -> Key {
        p256_key(self.dir.path(), name)
    }

    fn sign(&self, key: &Key, images: &[String]) -> Command {
        let mut c = sigbridge(&self.dir.path().join("home"));
        c.args(["-vv", "sign", "--signer"])
            .arg(&key.private)
            .args(images);
        c
    }
}

/// The invariant every faulty run must keep; returns whether the signature is attached.
fn check_outcome(env: &Env, what: &str, repo: &str, digest: &str, key: &Key, out: &Output) -> bool {
    let layers = checked_sig_layers(&env.reg, repo, digest);
    let mine = layers
        .iter()
        .filter(|l| l.verifies_with(&key.verifying))
        .count();
    let code = out.status.code();
    if out.status.success() {
        assert_eq!(
            mine,
            1,
            "{what}: exit 0 but {mine} layers for the key\n{}",
            describe(out)
        );
        true
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            matches!(code, Some(c) if (1..=20).contains(&c)),
            "{what}: not a documented exit code\n{}",
            describe(out)
        );
        assert!(
            !stderr.contains("panicked"),
            "{what}: panic\n{}",
            describe(out)
        );
        assert!(
            stderr.contains("Error: "),
            "{what}: no error message\n{}",
            describe(out)
        );
        assert!(mine <= 1, "{what}: {mine} layers for the key");
        false
    }
}

/// One fault, once, at each step: transient statuses and stalls are retried to success;
/// anything else ends either attached exactly once or with a clear error.
#[test]
fn single_faults_at_each_step_attach_once_or_fail_clearly() {
    let env = Env::new();
    let mut cases = Vec::new();
    for (label, method, path) in TARGETS {
        for fault in faults() {
            cases.push((*label, *method, *path, fault));
        }
    }
    let results: Vec<(String, bool)> = std::thread::scope(|s| {
        let handles: Vec<_> = cases
            .chunks(cases.len().div_ceil(4))
            .enumerate()
            .map(|(worker, chunk)| {
                let env = &env;
                s.spawn(move || {
                    let mut results = Vec::new();
                    for (i, (label, method, path, fault)) in chunk.iter().enumerate() {
                        let proxy = FaultProxy::start(env.reg.port());
                        let repo = format!("faults/once-{worker}-{i}");
                        let digest = push_image_http(&env.reg, &repo, "v1");
                        let key = env.key(&format!("once-{worker}-{i}"));
                        let mut rule = Rule::new(fault.clone())
                            .path_contains(path)
                            .trigger(Trigger::Nth(1));
                        if let Some(m) = method {
                            rule = rule.method(m);
                        }
                        proxy.add(rule);
                        let out = run(&mut env.sign(&key, &[proxy.image_ref(&repo, &digest)]));
                        proxy.wait_idle(Duration::from_secs(30));
                        let what = format!("{fault:?} on {label}");
                        assert_eq!(proxy.faults_injected(), 1, "{what}: fault not hit");
                        let ok = check_outcome(env, &what, &repo, &digest, &key, &out);
                        let retried = matches!(
                            fault,
                            Fault::Status(502 | 503)
                                | Fault::TooManyRequests { .. }
                                | Fault::Stall(_)
                        ) || (*fault == Fault::Status(500)
                            && *method != Some("PUT")
                            && *method != Some("POST"));
                        if retried {
                            assert!(
                                ok,
                                "{what}: a transient fault was not retried\n{}",
                                describe(&out)
                            );
                        }
                        results.push((what, ok));
                    }
                    results
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("worker"))
            .collect()
    });
    for (what, ok) in &results {
        eprintln!("{what}: {}", if *ok { "attached" } else { "clear error" });
    }
}

/// A registry that keeps failing: the run gives up after a bounded number of attempts with a
/// registry error (exit 6), and leaves nothing half-written.
#[test]
fn persistent_faults_give_up_with_exit_6_after_bounded_retries() {
    let env = Env::new();
    let cases = [
        (Fault::Status(503), Some("PUT"), "/manifests/sha256-"),
        (Fault::Status(500), Some("GET"), "/manifests/sha256-"),
        (Fault::Drop, Some("POST"), "/blobs/uploads/"),
        (Fault::Truncate, Some("GET"), "/manifests/sha256-"),
    ];
    for (i, (fault, method, path)) in cases.into_iter().enumerate() {
        let proxy = FaultProxy::start(env.reg.port());
        let repo = format!("faults/persistent-{i}");
        let digest = push_image_http(&env.reg, &repo, "v1");
        let key = env.key(&format!("persistent-{i}"));
        let mut rule = Rule::new(fault.clone()).path_contains(path);
        if let Some(m) = method {
            rule = rule.method(m);
        }
        proxy.add(rule);
        let out = run(&mut env.sign(&key, &[proxy.image_ref(&repo, &digest)]));
        proxy.wait_idle(Duration::from_secs(30));
        let what = format!("always {fault:?} on {method:?} {path}");
        assert!(!check_outcome(&env, &what, &repo, &digest, &key, &out));
        assert_eq!(out.status.code(), Some(6), "{what}\n{}", describe(&out));
        let attempts = proxy.faults_injected();
        assert!(
            (1..=12).contains(&attempts),
            "{what}: {attempts} attempts is not a bounded retry"
        );
        // A failure after the manifest write (here: the confirmation read) may leave the
        // signature attached; check_outcome has already made sure it is there at most once.
        let attached = keys_present(
            &checked_sig_layers(&env.reg, &repo, &digest),
            &[&key.verifying],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        let error = stderr
            .lines()
            .find(|l| l.starts_with("Error: "))
            .unwrap_or_default()
            .to_string();
        eprintln!("{what}: gave up after {attempts} attempts, {attached} attached: {error}");
    }
}

/// A flaky registry: a seeded mixture of every fault on a quarter of all requests, for a
/// batch of images. Every image ends signed exactly once or the run fails clearly; a second
/// run without faults completes the batch with no duplicate.
#[test]
fn seeded_random_faults_over_a_batch() {
    let env = Env::new();
    for seed in 1..=4u64 {
        let proxy = FaultProxy::start(env.reg.port());
        for (j, fault) in faults().into_iter().enumerate() {
            proxy.add(Rule::new(fault).trigger(Trigger::Fraction {
                per_mille: 35,
                seed: seed * 100 + j as u64,
            }));
        }
        let key = env.key(&format!("random-{seed}"));
        let images: Vec<(String, String)> = (0..4)
            .map(|i| {
                let repo = format!("faults/random-{seed}-{i}");
                let digest = push_image_http(&env.reg, &repo, "v1");
                (repo, digest)
            })
            .collect();
        let refs: Vec<String> = images.iter().map(|(r, d)| proxy.image_ref(r, d)).collect();
        let out = run(&mut env.sign(&key, &refs));
        proxy.wait_idle(Duration::from_secs(30));
        let mut attached = 0;
        for (repo, digest) in &images {
            let layers = checked_sig_layers(&env.reg, repo, digest);
            let mine = keys_present(&layers, &[&key.verifying]);
            assert_eq!(layers.len(), mine, "seed {seed}: only this key signs");
            attached += mine;
        }
        if out.status.success() {
            assert_eq!(attached, images.len(), "seed {seed}\n{}", describe(&out));
        } else {
            check_outcome(&env, "batch", &images[0].0, &images[0].1, &key, &out);
        }
        // Without faults the same command finishes the batch and adds no duplicate.
        proxy.clear();
        let again = run(&mut env.sign(&key, &refs));
        assert!(
            again.status.success(),
            "seed {seed} rerun\n{}",
            describe(&again)
        );
        for (repo, digest) in &images {
            let layers = checked_sig_layers(&env.reg, repo, digest);
            assert_eq!(
                layers.len(),
                1,
                "seed {seed}: exactly one signature per image"
            );
        }
        eprintln!(
            "seed {seed}: {} faults injected in {} requests; first run {}, {attached}/4 attached",
            proxy.faults_injected(),
            proxy.exchanges().len(),
            if out.status.success() {
                "succeeded"
            } else {
                "failed clearly"
            }
        );
    }
}

/// SIGINT or SIGTERM at several points of a batch (the proxy slows every request down so the
/// signal lands mid-flight, and stalls keep requests in flight after the process is gone):
/// every signature manifest left behind is consistent, and a rerun completes the batch.
#[test]
fn interrupted_batches_leave_the_registry_consistent() {
    let env = Env::new();
    let points = [
        ("INT", 3usize),
        ("TERM", 8),
        ("INT", 14),
        ("TERM", 20),
        ("TERM", 26),
    ];
    for (n, (signal, after)) in points.into_iter().enumerate() {
        let proxy = FaultProxy::start(env.reg.port());
        proxy.add(Rule::new(Fault::Stall(Duration::from_millis(150))));
        let key = env.key(&format!("interrupt-{n}"));
        let images: Vec<(String, String)> = (0..5)
            .map(|i| {
                let repo = format!("faults/interrupt-{n}-{i}");
                let digest = push_image_http(&env.reg, &repo, "v1");
                (repo, digest)
            })
            .collect();
        let refs: Vec<String> = images.iter().map(|(r, d)| proxy.image_ref(r, d)).collect();
        let mut cmd = env.sign(&key, &refs);
        cmd.arg("--jobs").arg("2");
        let child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start sigbridge");
        let pid = child.id();
        let waited = std::time::Instant::now();
        while proxy.exchanges().len() < after && waited.elapsed() < support::HANG_GUARD {
            std::thread::sleep(Duration::from_millis(5));
        }
        let kill = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .expect("kill");
        assert!(kill.success());
        let out = support::wait_output(child);
        // Let the stalled requests reach the registry before looking.
        assert!(proxy.wait_idle(Duration::from_secs(30)));
        let seen = proxy.exchanges().len();
        let mut attached = 0;
        for (repo, digest) in &images {
            let layers = checked_sig_layers(&env.reg, repo, digest);
            assert!(layers.len() <= 1, "{repo}: {} layers", layers.len());
            attached += keys_present(&layers, &[&key.verifying]);
        }
        eprintln!(
            "SIG{signal} after {after} requests ({seen} seen): exit {:?}, {attached}/5 attached",
            out.status.code()
        );
        let again = run(&mut env.sign(&key, &refs));
        assert!(again.status.success(), "rerun\n{}", describe(&again));
        for (repo, digest) in &images {
            assert_eq!(checked_sig_layers(&env.reg, repo, digest).len(), 1);
        }
    }
}
