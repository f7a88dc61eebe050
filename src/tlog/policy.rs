//! When a signature's log entry is checked, required or skipped (`sigbridge verify`'s
//! `--trusted-root`, `--require-tlog`, `--insecure-ignore-tlog`). With a key, as the issue's
//! policy: a signature without an entry passes unless one is required; an entry present is
//! always checked and a bad one always fails; no trust material for a present entry fails
//! (cosign would fetch it from TUF; we never go online).

use super::{verify_evidence, SignedMaterial, TlogEvidence, VerifiedTlog};
use crate::trust::TrustedRoot;

/// The run's log settings.
#[derive(Clone, Debug, Default)]
pub struct TlogPolicy {
    /// The trusted logs (`--trusted-root`, `SIGSTORE_REKOR_PUBLIC_KEY`); `None`: none given.
    pub root: Option<TrustedRoot>,
    /// `--require-tlog`: a signature without a verified entry fails.
    pub require: bool,
    /// `--insecure-ignore-tlog`: entries are neither read nor required.
    pub ignore: bool,
}

impl TlogPolicy {
    /// Apply the policy to one signature's log `evidence`; `Ok(None)`: accepted without an
    /// entry. Errors are one line naming what failed and what to do.
    pub fn check(
        &self,
        evidence: Option<&TlogEvidence>,
        signed: &SignedMaterial<'_>,
    ) -> Result<Option<VerifiedTlog>, String> {
        if self.ignore {
            return Ok(None);
        }
        let Some(evidence) = evidence else {
            if self.require {
                return Err("no transparency log entry, and --require-tlog requires one".into());
            }
            return Ok(None);
        };
        let root = match &self.root {
            Some(root) if !root.tlogs.is_empty() => root,
            _ => {
                return Err("the signature carries a transparency log entry but no log key is trusted: give --trusted-root FILE (a Sigstore trusted_root.json) or SIGSTORE_REKOR_PUBLIC_KEY=<PEM file>, or skip log checks with --insecure-ignore-tlog".into())
            }
        };
        verify_evidence(evidence, signed, root)
            .map(Some)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed() -> SignedMaterial<'static> {
        SignedMaterial {
            signature_b64: "",
            verifier_der: b"",
            payload: b"",
        }
    }

    #[test]
    fn without_an_entry_only_require_fails_and_ignore_skips_even_a_bad_entry() {
        let lax = TlogPolicy::default();
        assert_eq!(lax.check(None, &signed()), Ok(None));
        let strict = TlogPolicy {
            require: true,
            ..TlogPolicy::default()
        };
        let err = strict.check(None, &signed()).unwrap_err();
        assert!(err.contains("--require-tlog"), "{err}");
        let junk = TlogEvidence::RekorBundle("not json".into());
        let ignore = TlogPolicy {
            ignore: true,
            require: true,
            ..TlogPolicy::default()
        };
        assert_eq!(ignore.check(Some(&junk), &signed()), Ok(None));
    }

    #[test]
    fn an_entry_without_trust_material_fails_naming_where_to_get_it() {
        let junk = TlogEvidence::RekorBundle("{}".into());
        for root in [None, Some(TrustedRoot::default())] {
            let policy = TlogPolicy {
                root,
                ..TlogPolicy::default()
            };
            let err = policy.check(Some(&junk), &signed()).unwrap_err();
            assert!(
                err.contains("--trusted-root") && err.contains("SIGSTORE_REKOR_PUBLIC_KEY"),
                "{err}"
            );
        }
    }
}
