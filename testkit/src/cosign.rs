//! Helpers around the real cosign 2.5 (key-based, no transparency log).

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::registry::Registry;
use crate::tools::{ToolCommand, Tools};

/// [`Tools::cosign`] with a private DOCKER_CONFIG holding this registry's credentials (if any).
/// Add `reg.cosign_args()` after the subcommand for its TLS/HTTP flags.
pub fn cosign_for(reg: &Registry) -> ToolCommand {
    let tool = Tools::cosign();
    reg.write_docker_config(&tool.home().join(".docker"));
    tool
}

/// `cosign generate-key-pair` in `dir` (with `COSIGN_PASSWORD`); returns
/// `(dir/cosign.key, dir/cosign.pub)`. Panics if they already exist (cosign would prompt).
pub fn cosign_generate_key_pair(dir: &Path, password: &str) -> (PathBuf, PathBuf) {
    let (key, public) = (dir.join("cosign.key"), dir.join("cosign.pub"));
    assert!(!key.exists(), "{} already exists", key.display());
    let mut cosign = Tools::cosign();
    cosign
        .current_dir(dir)
        .env("COSIGN_PASSWORD", password)
        .args(["generate-key-pair", "--output-key-prefix", "cosign"]);
    cosign.run_ok();
    (key, public)
}

/// `cosign sign --key KEY --tlog-upload=false -y <registry flags> EXTRA REF`, password in
/// `COSIGN_PASSWORD`. Panics with both streams if cosign fails.
pub fn cosign_sign(
    reg: &Registry,
    key: &Path,
    password: &str,
    image_ref: &str,
    extra_args: &[&str],
) -> Output {
    let mut cosign = cosign_for(reg);
    cosign
        .env("COSIGN_PASSWORD", password)
        .arg("sign")
        .arg("--key")
        .arg(key)
        .args(["--tlog-upload=false", "-y"])
        .args(reg.cosign_args())
        .args(extra_args)
        .arg(image_ref);
    cosign.run_ok()
}

/// `cosign verify --key PUB --insecure-ignore-tlog <registry flags> EXTRA REF`. Does not panic
/// on failure: rejection is an expected outcome; check `status`.
pub fn cosign_verify(
    reg: &Registry,
    public_key: &Path,
    image_ref: &str,
    extra_args: &[&str],
) -> Output {
    let mut cosign = cosign_for(reg);
    cosign
        .arg("verify")
        .arg("--key")
        .arg(public_key)
        .arg("--insecure-ignore-tlog")
        .args(reg.cosign_args())
        .args(extra_args)
        .arg(image_ref);
    cosign.run()
}

/// `cosign generate [-a k=v]... REF`: the simple-signing payload bytes cosign would sign.
pub fn cosign_generate(reg: &Registry, image_ref: &str, annotations: &[(&str, &str)]) -> Vec<u8> {
    let mut cosign = cosign_for(reg);
    cosign.arg("generate").args(reg.cosign_args());
    for (k, v) in annotations {
        cosign.arg("-a").arg(format!("{k}={v}"));
    }
    cosign.arg(image_ref);
    cosign.run_ok().stdout
}

/// `cosign attach signature --payload P --signature S EXTRA REF` (S holds the base64
/// signature). Does not panic on failure.
pub fn cosign_attach_signature(
    reg: &Registry,
    image_ref: &str,
    payload: &Path,
    signature: &Path,
    extra_args: &[&str],
) -> Output {
    let mut cosign = cosign_for(reg);
    cosign
        .args(["attach", "signature", "--payload"])
        .arg(payload)
        .arg("--signature")
        .arg(signature)
        .args(reg.cosign_args())
        .args(extra_args)
        .arg(image_ref);
    cosign.run()
}
