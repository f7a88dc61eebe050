//! What a Fulcio certificate says about who signed: its Subject Alternative Names and the
//! Fulcio extensions (<https://github.com/sigstore/fulcio/blob/main/docs/oid-info.md>).
//!
//! Read as cosign reads them: the OIDC issuer from `1.3.6.1.4.1.57264.1.1` (raw bytes, what
//! cosign's legacy path reads) and `.1.8` (a DER UTF8String, what sigstore-go's path reads);
//! the GitHub workflow values from the deprecated `.1.2`–`.1.6` (raw bytes), the only ones
//! cosign's `--certificate-github-workflow-*` flags compare with. The newer `.1.9`+ values are
//! read too (DER UTF8String) and kept for output; cosign has no flags for them.

use std::collections::BTreeMap;

use der::asn1::{Ia5StringRef, ObjectIdentifier, Utf8StringRef};
use der::Decode as _;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::Certificate;

use super::KeylessError;

/// Fulcio's arc: 1.3.6.1.4.1.57264.1.
const FULCIO_ARC: &str = "1.3.6.1.4.1.57264.1.";
/// subjectAltName (RFC 5280).
const OID_SAN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");
/// The OIDC issuer (deprecated form: raw bytes).
const OID_ISSUER_V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.1");
/// The OIDC issuer (DER UTF8String).
const OID_ISSUER_V2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.8");
/// The otherName SAN type Fulcio uses for usernames.
const OID_OTHERNAME_USERNAME: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.7");

/// A GitHub workflow value (deprecated extensions `.1.2`–`.1.6`, raw bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Workflow {
    /// `.1.2`: the event that triggered the run (`push`, ...).
    Trigger,
    /// `.1.3`: the commit SHA.
    Sha,
    /// `.1.4`: the workflow name.
    Name,
    /// `.1.5`: `owner/repo`.
    Repository,
    /// `.1.6`: the git ref.
    Ref,
}

impl Workflow {
    /// All of them, in OID order.
    pub const ALL: [Workflow; 5] = [
        Self::Trigger,
        Self::Sha,
        Self::Name,
        Self::Repository,
        Self::Ref,
    ];

    /// The OID's last arc.
    fn arc(self) -> u32 {
        match self {
            Self::Trigger => 2,
            Self::Sha => 3,
            Self::Name => 4,
            Self::Repository => 5,
            Self::Ref => 6,
        }
    }

    /// The key cosign prints it under in `optional`.
    fn cosign_key(self) -> &'static str {
        match self {
            Self::Trigger => "githubWorkflowTrigger",
            Self::Sha => "githubWorkflowSha",
            Self::Name => "githubWorkflowName",
            Self::Repository => "githubWorkflowRepository",
            Self::Ref => "githubWorkflowRef",
        }
    }

    /// As cosign names it in its messages ("expected GitHub Workflow SHA not found ...").
    pub fn cosign_name(self) -> &'static str {
        match self {
            Self::Trigger => "Trigger",
            Self::Sha => "SHA",
            Self::Name => "Name",
            Self::Repository => "Repository",
            Self::Ref => "Ref",
        }
    }
}

/// Who a certificate was issued to, as Fulcio wrote it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CertificateIdentity {
    /// Every SAN cosign compares `--certificate-identity` with, in Go's order: DNS names,
    /// emails, IP addresses, URIs, Fulcio's otherName username.
    pub subjects: Vec<String>,
    /// The OIDC issuer (`.1.8`, else `.1.1`); empty when the certificate has neither.
    pub issuer: String,
    /// The GitHub workflow values present.
    pub workflow: BTreeMap<Workflow, String>,
    /// Other Fulcio extensions (`.1.9` and later, DER strings), by OID.
    pub other: BTreeMap<String, String>,
}

impl CertificateIdentity {
    /// The fields cosign adds to a keyless signature's `optional` when it prints it: `Subject`
    /// (the first SAN), `Issuer` and its OID, each GitHub workflow value under its name and OID.
    pub fn cosign_optional(&self) -> Vec<(String, String)> {
        let mut out = vec![(
            "Subject".to_string(),
            self.subjects.first().cloned().unwrap_or_default(),
        )];
        if !self.issuer.is_empty() {
            out.push(("Issuer".into(), self.issuer.clone()));
            out.push((OID_ISSUER_V1.to_string(), self.issuer.clone()));
        }
        for (w, v) in &self.workflow {
            out.push((w.cosign_key().to_string(), v.clone()));
            out.push((format!("{FULCIO_ARC}{}", w.arc()), v.clone()));
        }
        out
    }

    /// Read the identity of the DER certificate `der`.
    pub fn of(der: &[u8]) -> Result<Self, KeylessError> {
        let cert = Certificate::from_der(der)
            .map_err(|e| KeylessError::Malformed(format!("not an X.509 certificate: {e}")))?;
        let mut out = Self::default();
        let mut issuer_v1 = None;
        let mut issuer_v2 = None;
        for ext in cert.tbs_certificate.extensions.iter().flatten() {
            let value = ext.extn_value.as_bytes();
            let oid = ext.extn_id;
            if oid == OID_SAN {
                out.subjects = subjects(value)?;
            } else if oid == OID_ISSUER_V1 {
                issuer_v1 = Some(raw_string(value, oid)?);
            } else if oid == OID_ISSUER_V2 {
                issuer_v2 = Some(der_string(value, oid)?);
            } else if let Some(arc) = fulcio_arc(oid) {
                match Workflow::ALL.iter().find(|w| w.arc() == arc) {
                    Some(w) => {
                        out.workflow.insert(*w, raw_string(value, oid)?);
                    }
                    // Unknown or later Fulcio extensions: kept when they read as a string.
                    None => {
                        if let Ok(s) = der_string(value, oid) {
                            out.other.insert(oid.to_string(), s);
                        }
                    }
                }
            }
        }
        // Fulcio writes both with the same value; two readers (cosign's legacy path reads .1.1,
        // sigstore-go .1.8) must not see two issuers, so a disagreement is refused.
        out.issuer = match (issuer_v1, issuer_v2) {
            (Some(a), Some(b)) if a != b => {
                return Err(KeylessError::Malformed(format!(
                    "the OIDC issuer extensions disagree ({OID_ISSUER_V1}: {a:?}, {OID_ISSUER_V2}: {b:?})"
                )))
            }
            (_, Some(v)) | (Some(v), None) => v,
            (None, None) => String::new(),
        };
        Ok(out)
    }
}

/// The last arc of a Fulcio `1.3.6.1.4.1.57264.1.N` OID.
fn fulcio_arc(oid: ObjectIdentifier) -> Option<u32> {
    oid.to_string().strip_prefix(FULCIO_ARC)?.parse().ok()
}

/// The SANs as Go's x509 and cosign's `GetSubjectAlternateNames` list them.
fn subjects(value: &[u8]) -> Result<Vec<String>, KeylessError> {
    let san = SubjectAltName::from_der(value).map_err(|e| {
        KeylessError::Malformed(format!("the Subject Alternative Name is not DER: {e}"))
    })?;
    // Go's order (cosign prints the first as `Subject`): DNS names, emails, IPs, URIs, otherName.
    let (mut dns, mut email, mut ips, mut uris, mut other) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for name in san.0 {
        match name {
            GeneralName::DnsName(s) => dns.push(s.to_string()),
            GeneralName::Rfc822Name(s) => email.push(s.to_string()),
            GeneralName::UniformResourceIdentifier(s) => uris.push(s.to_string()),
            GeneralName::IpAddress(ip) => {
                let b = ip.as_bytes();
                let addr = match b.len() {
                    4 => <[u8; 4]>::try_from(b).map(std::net::IpAddr::from).ok(),
                    16 => <[u8; 16]>::try_from(b).map(std::net::IpAddr::from).ok(),
                    _ => None,
                };
                if let Some(a) = addr {
                    ips.push(a.to_string());
                }
            }
            GeneralName::OtherName(o) if o.type_id == OID_OTHERNAME_USERNAME => {
                let s: Utf8StringRef<'_> = o.value.decode_as().map_err(|e| {
                    KeylessError::Malformed(format!("the otherName SAN is not a UTF8String: {e}"))
                })?;
                other.push(s.as_str().to_string());
            }
            _ => {}
        }
    }
    let out: Vec<String> = [dns, email, ips, uris, other].concat();
    Ok(out)
}

/// A deprecated Fulcio extension: the value's bytes are the string.
fn raw_string(value: &[u8], oid: ObjectIdentifier) -> Result<String, KeylessError> {
    String::from_utf8(value.to_vec())
        .map_err(|_| KeylessError::Malformed(format!("extension {oid} is not UTF-8")))
}

/// A current Fulcio extension: a DER UTF8String (IA5String accepted too).
fn der_string(value: &[u8], oid: ObjectIdentifier) -> Result<String, KeylessError> {
    if let Ok(s) = Utf8StringRef::from_der(value) {
        return Ok(s.as_str().to_string());
    }
    Ia5StringRef::from_der(value)
        .map(|s| s.as_str().to_string())
        .map_err(|e| KeylessError::Malformed(format!("extension {oid} is not a DER string: {e}")))
}
