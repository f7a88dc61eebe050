//! The certificate path: the leaf chains to a certificate authority of the trusted root that
//! is valid at the signing time, every certificate on the path (the root included) is valid at
//! that time, and the leaf (and any intermediate that says) allows code signing.
//!
//! Path validation is rustls-webpki's (`verify_for_usage` at an explicit time, ring's
//! algorithms). It understands Fulcio's critical Subject Alternative Name (a URI, email or
//! otherName behind an empty subject) and rejects unknown critical extensions; Fulcio's own
//! extensions are not critical. The EKU rule is Go's, which cosign and sigstore-go use: code
//! signing is required where a certificate lists extended key usages. Trust anchors come only
//! from the trusted root (the last certificate of each authority's chain); certificates offered
//! with the signature only help to build the path.

use std::time::{Duration, SystemTime};

use der::Decode as _;
use rustls_pki_types::{CertificateDer, UnixTime};
use webpki::{EndEntityCert, KeyUsage};
use x509_cert::Certificate;

use super::error::rfc3339;
use super::KeylessError;
use crate::trust::{CertificateAuthority, TrustedRoot};

/// id-kp-codeSigning (1.3.6.1.5.5.7.3.3), the OID's DER content bytes.
const CODE_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03];

/// Check that `leaf` chains, at `at`, to an authority of `root` valid at `at`. Returns the
/// authority's URI.
pub fn verify_chain<'r>(
    leaf: &[u8],
    offered: &[Vec<u8>],
    root: &'r TrustedRoot,
    at: SystemTime,
) -> Result<&'r CertificateAuthority, KeylessError> {
    // The leaf first, named, so an out-of-time signature says so before anything else.
    check_validity(leaf, at, "the signing certificate")?;
    let authorities: Vec<&CertificateAuthority> = root.authorities_at(at).collect();
    if authorities.is_empty() {
        return Err(KeylessError::NoAuthorityAt(at));
    }
    let since_epoch =
        at.duration_since(SystemTime::UNIX_EPOCH)
            .map_err(|_| KeylessError::OutsideValidity {
                at,
                what: "a signing time before 1970".into(),
            })?;
    let time = UnixTime::since_unix_epoch(since_epoch);
    let leaf_der = CertificateDer::from(leaf);
    let ee = EndEntityCert::try_from(&leaf_der)
        .map_err(|e| KeylessError::Malformed(format!("the signing certificate: {e}")))?;
    let mut failures = Vec::new();
    for authority in authorities {
        match verify_with(&ee, offered, authority, time, at) {
            Ok(()) => return Ok(authority),
            Err(e) => failures.push(e),
        }
    }
    // The most telling failure: anything beats "another root".
    let pick = failures
        .iter()
        .position(|e| !matches!(e, KeylessError::UntrustedChain { .. }))
        .unwrap_or(0);
    Err(failures.swap_remove(pick))
}

fn verify_with(
    ee: &EndEntityCert<'_>,
    offered: &[Vec<u8>],
    authority: &CertificateAuthority,
    time: UnixTime,
    at: SystemTime,
) -> Result<(), KeylessError> {
    let Some((anchor_der, intermediates)) = authority.chain_der.split_last() else {
        return Err(KeylessError::UntrustedChain {
            at,
            reason: format!("the authority {} has no certificates", authority.uri),
        });
    };
    let anchor_cert = CertificateDer::from(anchor_der.as_slice());
    let anchor = webpki::anchor_from_trusted_cert(&anchor_cert).map_err(|e| {
        KeylessError::UntrustedChain {
            at,
            reason: format!("the root of {} is unusable: {e}", authority.uri),
        }
    })?;
    let pool: Vec<CertificateDer<'_>> = intermediates
        .iter()
        .chain(offered.iter())
        .map(|c| CertificateDer::from(c.as_slice()))
        .collect();
    ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &[anchor],
        &pool,
        time,
        KeyUsage::required_if_present(CODE_SIGNING),
        None,
        None,
    )
    .map_err(|e| classify(e, authority, at))?;
    // webpki does not look at an anchor's own dates; cosign's Go x509 does.
    check_validity(anchor_der, at, &format!("the root of {}", authority.uri))
}

fn classify(e: webpki::Error, authority: &CertificateAuthority, at: SystemTime) -> KeylessError {
    use webpki::Error as W;
    match e {
        W::CertExpired { not_after, .. } => KeylessError::OutsideValidity {
            at,
            what: format!(
                "a certificate of the chain to {} expired at {}",
                authority.uri,
                rfc3339(unix(not_after.as_secs()))
            ),
        },
        W::CertNotValidYet { not_before, .. } => KeylessError::OutsideValidity {
            at,
            what: format!(
                "a certificate of the chain to {} is valid only from {}",
                authority.uri,
                rfc3339(unix(not_before.as_secs()))
            ),
        },
        #[allow(deprecated)]
        W::RequiredEkuNotFound | W::RequiredEkuNotFoundContext(_) => {
            KeylessError::WrongKeyUsage(format!(
                "a certificate of the chain to {} lists extended key usages without code signing",
                authority.uri
            ))
        }
        W::UnknownIssuer => KeylessError::UntrustedChain {
            at,
            reason: format!("no path to the root of {}", authority.uri),
        },
        other => KeylessError::UntrustedChain {
            at,
            reason: format!("path to {} refused: {other:?}", authority.uri),
        },
    }
}

/// Whether the DER certificate `der` is valid at `at` (both ends included, as Go checks).
fn check_validity(der: &[u8], at: SystemTime, what: &str) -> Result<(), KeylessError> {
    let cert = Certificate::from_der(der)
        .map_err(|e| KeylessError::Malformed(format!("{what} is not X.509: {e}")))?;
    let v = &cert.tbs_certificate.validity;
    let (from, to) = (v.not_before.to_system_time(), v.not_after.to_system_time());
    if at < from || at > to {
        return Err(KeylessError::OutsideValidity {
            at,
            what: format!("{what} is valid from {} to {}", rfc3339(from), rfc3339(to)),
        });
    }
    Ok(())
}

/// `secs` after 1970, for tests and callers holding Unix times (Rekor's integrated time).
pub fn unix(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}
