//! The integration tests of sigbridge, in one test binary: each module was a test crate of its
//! own, and every crate linked the whole dependency graph. Modules run in parallel, so each test
//! uses its own sandbox and its own repositories; a shared registry per kind comes from
//! `Registry::shared_*` (sigbridge-testkit).
//!
//! - `e2e_*`: the real `sigbridge` binary against a real docker-registry, cosign and skopeo.
//! - `registry_*`: the library's registry client against fake and real registries.
//! - `reliability_*`: concurrent writers, faults injected by a proxy, size limits.
//! - `prop_*`: property tests of the parsers and the payload.
//! - `docs_blocks`: the runnable shell blocks of the guides.
//!
//! `tests/e2e_registry_hostile.rs` stays a binary of its own: it measures bytes and peak RSS.

mod common;
mod serve_support;
mod sigstore_fixtures;
mod support;

mod docs_blocks;
mod e2e_attach;
mod e2e_bad_input;
mod e2e_batch;
mod e2e_bundle;
mod e2e_bundle_more;
mod e2e_cosign_plugin;
mod e2e_generate;
mod e2e_interop;
mod e2e_keyless;
mod e2e_keys;
mod e2e_payload_differential;
mod e2e_pkcs11;
mod e2e_referrers_api;
mod e2e_registry_modes;
mod e2e_serve;
mod e2e_serve_browser;
mod e2e_serve_certificate;
mod e2e_serve_load;
mod e2e_signatures;
mod e2e_signpath;
mod e2e_signpath_bundle;
mod e2e_signpath_transport;
mod e2e_tlog;
mod e2e_vendors;
mod e2e_verify;
mod prop_parsers;
mod prop_payload_semantics;
mod registry_fake;
mod registry_modes;
mod registry_real;
mod reliability_concurrency;
mod reliability_faults;
mod reliability_limits;
