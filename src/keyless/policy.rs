//! Which signers are accepted: `--certificate-identity[-regexp]` against the SANs,
//! `--certificate-oidc-issuer[-regexp]` against the Fulcio issuer, and
//! `--certificate-github-workflow-*` against the workflow extensions, as cosign checks them.
//!
//! Regexes: cosign compiles with Go's `regexp` (RE2 syntax) and calls `MatchString`, which is
//! NOT anchored: `--certificate-identity-regexp 'github.com/acme/'` matches any SAN containing
//! it. The `regex` crate's `is_match` is the same unanchored search over the same RE2-like
//! syntax; write `^...$` to pin a whole identity, as with cosign.

use std::collections::BTreeMap;

use super::fulcio::{CertificateIdentity, Workflow};
use super::KeylessError;

/// One `--certificate-identity` / `--certificate-oidc-issuer` style constraint.
#[derive(Clone, Debug)]
pub enum Matcher {
    /// Equal, byte for byte.
    Exact(String),
    /// Go `regexp.MatchString`: found anywhere unless the pattern anchors itself.
    Regex(regex::Regex),
}

impl Matcher {
    /// From an exact flag and a regexp flag (cosign: the regexp wins when both are given; one
    /// of them is required).
    pub fn from_flags(
        exact: Option<&str>,
        regexp: Option<&str>,
        what: &str,
    ) -> Result<Self, String> {
        match (exact, regexp) {
            (_, Some(re)) => regex::Regex::new(re)
                .map(Self::Regex)
                .map_err(|e| format!("malformed {what} regexp {re:?}: {e}")),
            (Some(s), None) => Ok(Self::Exact(s.to_string())),
            (None, None) => Err(format!("no {what} given")),
        }
    }

    /// Whether `value` satisfies this constraint.
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Self::Exact(s) => s == value,
            Self::Regex(re) => re.is_match(value),
        }
    }
}

/// What a keyless signer must be.
#[derive(Clone, Debug)]
pub struct IdentityPolicy {
    /// Against any of the certificate's SANs.
    pub identity: Matcher,
    /// Against the certificate's OIDC issuer.
    pub issuer: Matcher,
    /// `--certificate-github-workflow-*`: each given value must equal the certificate's.
    pub workflow: BTreeMap<Workflow, String>,
}

impl IdentityPolicy {
    /// Check `cert` in cosign's order: workflow values first, then issuer and identity.
    pub fn check(&self, cert: &CertificateIdentity) -> Result<(), KeylessError> {
        for (field, wanted) in &self.workflow {
            let found = cert.workflow.get(field);
            if found != Some(wanted) {
                return Err(KeylessError::WorkflowMismatch {
                    field: field.cosign_name(),
                    wanted: wanted.clone(),
                    found: found.map_or_else(|| "none".to_string(), |f| format!("{f:?}")),
                });
            }
        }
        let issuer_ok = self.issuer.matches(&cert.issuer);
        let identity_ok = cert.subjects.iter().any(|s| self.identity.matches(s));
        if issuer_ok && identity_ok {
            return Ok(());
        }
        let mismatch = match (identity_ok, issuer_ok) {
            (false, false) => "neither the identity nor the OIDC issuer matches",
            (false, true) => "the identity does not match --certificate-identity[-regexp]",
            _ => "the OIDC issuer does not match --certificate-oidc-issuer[-regexp]",
        };
        Err(KeylessError::IdentityMismatch {
            subjects: cert.subjects.clone(),
            issuer: cert.issuer.clone(),
            mismatch: mismatch.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert() -> CertificateIdentity {
        CertificateIdentity {
            subjects: vec![
                "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main".into(),
            ],
            issuer: "https://token.actions.githubusercontent.com".into(),
            workflow: BTreeMap::from([(Workflow::Trigger, "push".to_string())]),
            other: BTreeMap::new(),
        }
    }

    fn policy(identity: Matcher, issuer: Matcher) -> IdentityPolicy {
        IdentityPolicy {
            identity,
            issuer,
            workflow: BTreeMap::new(),
        }
    }

    #[test]
    fn regexes_are_unanchored_as_go_match_string() {
        let p = policy(
            Matcher::from_flags(None, Some("github.com/acme/"), "identity").unwrap(),
            Matcher::from_flags(None, Some("actions"), "issuer").unwrap(),
        );
        p.check(&cert()).unwrap();
        let anchored = policy(
            Matcher::from_flags(None, Some("^github.com/acme/"), "identity").unwrap(),
            Matcher::Exact("https://token.actions.githubusercontent.com".into()),
        );
        let err = anchored.check(&cert()).unwrap_err().to_string();
        assert!(err.contains("the identity does not match"), "{err}");
    }

    #[test]
    fn the_regexp_flag_wins_over_the_exact_one_and_a_bad_regexp_is_named() {
        let m = Matcher::from_flags(Some("x"), Some("^a+$"), "identity").unwrap();
        assert!(m.matches("aaa") && !m.matches("x"));
        let err = Matcher::from_flags(None, Some("("), "identity").unwrap_err();
        assert!(err.starts_with("malformed identity regexp \"(\""), "{err}");
    }

    #[test]
    fn each_mismatch_is_named() {
        let good_id = || Matcher::Exact(cert().subjects[0].clone());
        let good_iss = || Matcher::Exact(cert().issuer);
        let wrong_issuer = policy(
            good_id(),
            Matcher::Exact("https://accounts.google.com".into()),
        );
        let err = wrong_issuer.check(&cert()).unwrap_err().to_string();
        assert!(err.starts_with("none of the expected identities matched what was in the certificate, got subjects [https://github.com/acme/app/"), "{err}");
        assert!(
            err.ends_with("(the OIDC issuer does not match --certificate-oidc-issuer[-regexp])"),
            "{err}"
        );

        let mut wrong_trigger = policy(good_id(), good_iss());
        wrong_trigger
            .workflow
            .insert(Workflow::Trigger, "release".into());
        let err = wrong_trigger.check(&cert()).unwrap_err().to_string();
        assert_eq!(err, "expected GitHub Workflow Trigger not found in certificate (wanted \"release\", the certificate has \"push\")");

        let mut absent = policy(good_id(), good_iss());
        absent.workflow.insert(Workflow::Sha, "abc".into());
        let err = absent.check(&cert()).unwrap_err().to_string();
        assert!(
            err.contains("GitHub Workflow SHA") && err.ends_with("has none)"),
            "{err}"
        );
    }
}
