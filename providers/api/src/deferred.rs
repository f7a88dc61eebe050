//! Deferred signing: a sign call may answer "pending" with a [`Ticket`] that is collected later
//! (a request waiting for a person's approval, a queue), instead of failing or blocking.

use std::fmt;
use std::time::Duration;

/// How long a sign (or collect) call may wait for a signer that is not immediate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Wait {
    /// Do not wait: a signer that would have to wait answers [`SignOutcome::Pending`].
    No,
    /// Wait as long as the signer's own configuration allows.
    #[default]
    SignerDefault,
    /// Wait up to this long, then give up with an error that says how to collect later.
    UpTo(Duration),
}

/// What the caller asks of one sign call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SignRequest {
    /// Whether and how long to wait.
    pub wait: Wait,
}

/// A pending signing job, as the provider that made it names it. Printed, it is the id alone
/// (what `sign --resume ID` takes back); [`Ticket::provider`] says which provider may collect it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ticket {
    provider: String,
    id: String,
}

impl Ticket {
    /// A ticket `id` made (or to be collected) by `provider`.
    pub fn new(provider: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            provider: provider.into(),
            id: id.into(),
        }
    }

    /// The provider's name (as in the provider table).
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The provider's own id for the job; opaque to everyone else.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl fmt::Display for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

/// The answer to a sign or collect call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignOutcome {
    /// One signature per payload, in order, in the provider's native encoding.
    Signed(Vec<Vec<u8>>),
    /// Not signed yet; collect later with [`crate::Signer::collect`] and the same payloads.
    Pending(Ticket),
}

impl SignOutcome {
    /// The signatures, or an error naming the ticket: for callers that asked to wait and have
    /// no way to collect later.
    pub fn into_signed(self) -> Result<Vec<Vec<u8>>, crate::SignerError> {
        match self {
            Self::Signed(signatures) => Ok(signatures),
            Self::Pending(ticket) => Err(crate::SignerError::new(
                crate::SignerErrorKind::Unavailable,
                format!(
                    "the signer has not signed yet (pending {} job {ticket})",
                    ticket.provider()
                ),
            )),
        }
    }
}

/// What a signer can do beyond signing on the spot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// The signer may answer [`SignOutcome::Pending`] and can [`crate::Signer::collect`].
    pub deferred: bool,
    /// Signing is safe to expose to callers who can time many signatures (a server, a plugin
    /// another tool drives). False for a local RSA key: the `rsa` crate's private-key operation
    /// carries a timing side channel (RUSTSEC-2023-0071, "Marvin"), see docs/security.md.
    pub safe_for_remote_callers: bool,
}

impl Default for Capabilities {
    fn default() -> Self {
        Self {
            deferred: false,
            safe_for_remote_callers: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PublicKey, Signer, SignerError, SignerErrorKind};

    /// A signer that signs nothing: enough to see the contract's defaults.
    struct Immediate {
        remote_safe: bool,
    }

    #[async_trait::async_trait]
    impl Signer for Immediate {
        fn describe(&self) -> String {
            "immediate".into()
        }
        async fn public_key(&self) -> Result<PublicKey, SignerError> {
            Err(SignerError::new(SignerErrorKind::InvalidKey, "none"))
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities {
                deferred: false,
                safe_for_remote_callers: self.remote_safe,
            }
        }
        async fn sign(
            &self,
            payloads: &[Vec<u8>],
            _request: &SignRequest,
        ) -> Result<SignOutcome, SignerError> {
            Ok(SignOutcome::Signed(payloads.to_vec()))
        }
    }

    #[test]
    fn tickets_print_as_their_id_and_keep_their_provider() {
        let t = Ticket::new("svc", "5f0c-1");
        assert_eq!(t.to_string(), "5f0c-1");
        assert_eq!(t.provider(), "svc");
        assert_eq!(t.id(), "5f0c-1");
    }

    #[tokio::test]
    async fn signers_that_never_wait_have_nothing_to_collect() {
        let s = Immediate { remote_safe: true };
        let outcome = s
            .sign(&[b"p".to_vec()], &SignRequest { wait: Wait::No })
            .await;
        assert_eq!(outcome.unwrap(), SignOutcome::Signed(vec![b"p".to_vec()]));
        let e = s
            .collect(&Ticket::new("svc", "1"), &[], Wait::SignerDefault)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), SignerErrorKind::Unsupported);
        assert!(e.to_string().contains("immediate"), "{e}");
    }

    #[test]
    fn pending_is_an_error_for_callers_that_cannot_collect() {
        let e = SignOutcome::Pending(Ticket::new("svc", "42"))
            .into_signed()
            .unwrap_err();
        assert!(e.to_string().contains("42"), "{e}");
    }

    #[test]
    fn remote_callers_are_refused_signers_with_timing_leaks() {
        assert!(crate::require_safe_for_remote_callers(&Immediate { remote_safe: true }).is_ok());
        let e =
            crate::require_safe_for_remote_callers(&Immediate { remote_safe: false }).unwrap_err();
        assert_eq!(e.kind(), SignerErrorKind::Unsupported);
        assert!(e.to_string().contains("RUSTSEC-2023-0071"), "{e}");
    }
}
