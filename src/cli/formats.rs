//! `--format`: which signature formats `sign` writes and `verify` reads, and the (format,
//! store) pairs each one means.

use std::collections::BTreeMap;

use clap::ValueEnum;
use sigbridge::format::bundle::BUNDLE_MEDIA_TYPE;
use sigbridge::format::{SigstoreBundle, SimpleSigning};
use sigbridge::reference::Repository;
use sigbridge::sign::SignTarget;
use sigbridge::store::{ReferrersStore, RegistryOps, SigTagStore};
use sigbridge_signer::PublicKey;

/// What `sign` writes.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq, Default)]
pub enum SignFormat {
    /// cosign's simple-signing payload at the `.sig` tag (cosign 2, containers/image).
    #[default]
    Legacy,
    /// cosign 3's Sigstore bundle v0.3 as an OCI 1.1 referrer.
    Bundle,
    /// Both, signed in one signer call (one approval).
    Both,
}

/// One format: where `verify` looks, what `generate` prints.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq, Default)]
pub enum OneFormat {
    /// cosign's simple-signing payload at the `.sig` tag.
    #[default]
    Legacy,
    /// cosign 3's Sigstore bundle among the referrers.
    Bundle,
}

/// The formats and stores of one `sign` run.
pub struct SignTargets<'c> {
    legacy: Option<(SimpleSigning, SigTagStore<'c>)>,
    bundle: Option<(SigstoreBundle, ReferrersStore<'c>)>,
}

impl<'c> SignTargets<'c> {
    /// The targets `format` means, with the run's annotations, identity and `COSIGN_REPOSITORY`.
    pub fn new(
        format: SignFormat,
        ops: &'c dyn RegistryOps,
        key: &PublicKey,
        annotations: &BTreeMap<String, String>,
        identity: Option<String>,
        signature_repository: Option<Repository>,
    ) -> Self {
        let bundle_repository = signature_repository.clone();
        let legacy = matches!(format, SignFormat::Legacy | SignFormat::Both).then(|| {
            (
                SimpleSigning {
                    identity,
                    annotations: annotations.clone(),
                },
                SigTagStore::new(ops, signature_repository),
            )
        });
        let bundle = matches!(format, SignFormat::Bundle | SignFormat::Both).then(|| {
            (
                SigstoreBundle::new(key, annotations.clone()),
                ReferrersStore::new(ops, BUNDLE_MEDIA_TYPE)
                    .with_repository_override(bundle_repository),
            )
        });
        Self { legacy, bundle }
    }

    /// The (format, store) pairs, legacy first.
    pub fn list(&self) -> Vec<SignTarget<'_>> {
        let mut out = Vec::new();
        if let Some((format, store)) = &self.legacy {
            out.push(SignTarget {
                format,
                store,
                label: None,
            });
        }
        if let Some((format, store)) = &self.bundle {
            out.push(SignTarget {
                format,
                store,
                label: Some("bundle"),
            });
        }
        out
    }
}
