//! Shared test kit for sigbridge: real `docker-registry` processes (plain, TLS, Basic, bearer
//! token), random sample images pushed with the real skopeo, and helpers driving the real cosign
//! 2.5 and skopeo 1.18 as independent signers and verifiers.
//!
//! It deliberately does not depend on the `sigbridge` crate, so a bug there cannot hide in the
//! harness. [`OciRegistry`] is an in-process registry with the OCI 1.1 referrers API, which no
//! registry that runs locally has. [`Browser`] drives Debian's headless Chromium for the web
//! pages of `sigbridge serve`. Every server binds 127.0.0.1 only and is stopped on drop; a
//! missing tool panics with the command that installs it (tests never skip silently).

mod background;
mod browser;
pub mod certs;
mod cosign;
mod http;
mod image;
mod oci_registry;
pub mod proxy;
mod registry;
mod skopeo;
mod softhsm;
mod token;
mod tools;

pub use browser::{Browser, BrowserCookie, Tab};
pub use cosign::{
    cosign_attach_signature, cosign_for, cosign_generate, cosign_generate_key_pair, cosign_sign,
    cosign_verify,
};
pub use image::{
    push_image, push_image_http, push_images_http, push_index, push_sample, sha256_digest,
    write_oci_layout, SampleImage, OCI_CONFIG, OCI_INDEX, OCI_LAYER_TAR, OCI_MANIFEST,
};
pub use oci_registry::{OciRegistry, OciRequest};
pub use registry::{Auth, Registry, RegistryBuilder, SharedRegistry};
pub use skopeo::{
    sigstore_policy, skopeo_generate_key, skopeo_sign, skopeo_verify, skopeo_verify_with_policy,
    IdentityRule, SkopeoKey, Verdict,
};
pub use softhsm::{
    HsmKey, HsmKeyType, HsmToken, IssuedCertificate, SoftHsm, StandardToken, SOFTHSM_MODULE,
    SOFTHSM_SO_PIN, SOFTHSM_USER_PIN,
};
pub use token::{TokenRequest, TOKEN_TTL_SECS};
pub use tools::{OutputExt, ToolCommand, Tools};
