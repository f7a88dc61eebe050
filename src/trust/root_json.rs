//! The JSON of a Sigstore `trusted_root.json` (protojson of `dev.sigstore.trustroot.v1.
//! TrustedRoot`), only the fields a verify uses. Unknown fields (ctlogs, timestamp authorities,
//! subjects) are ignored, as protojson readers ignore them; every field used is checked.

use std::time::SystemTime;

use serde::Deserialize;
use sigbridge_signer::PublicKey;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::{CertificateAuthority, TransparencyLogKey, TrustedRoot, Validity};

/// The media type of the only trusted-root version read.
pub const TRUSTED_ROOT_MEDIA_TYPE: &str =
    "application/vnd.dev.sigstore.trustedroot+json;version=0.1";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TrustedRootJson {
    media_type: String,
    #[serde(default)]
    tlogs: Vec<TlogJson>,
    #[serde(default)]
    certificate_authorities: Vec<CaJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TlogJson {
    #[serde(default)]
    base_url: String,
    public_key: PublicKeyJson,
    log_id: LogIdJson,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PublicKeyJson {
    raw_bytes: Option<String>,
    valid_for: Option<TimeRangeJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogIdJson {
    key_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CaJson {
    #[serde(default)]
    uri: String,
    cert_chain: CertChainJson,
    valid_for: Option<TimeRangeJson>,
}

#[derive(Deserialize)]
struct CertChainJson {
    #[serde(default)]
    certificates: Vec<RawBytesJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBytesJson {
    raw_bytes: String,
}

#[derive(Deserialize)]
struct TimeRangeJson {
    start: Option<String>,
    end: Option<String>,
}

pub(super) fn convert(parsed: TrustedRootJson) -> Result<TrustedRoot, String> {
    if parsed.media_type != TRUSTED_ROOT_MEDIA_TYPE {
        return Err(format!(
            "mediaType is {:?}; only {TRUSTED_ROOT_MEDIA_TYPE:?} is read",
            parsed.media_type
        ));
    }
    let mut root = TrustedRoot::default();
    for (i, tlog) in parsed.tlogs.into_iter().enumerate() {
        let field = |name: &str| format!("tlogs[{i}].{name}");
        let raw = tlog
            .public_key
            .raw_bytes
            .ok_or_else(|| format!("{} is missing", field("publicKey.rawBytes")))?;
        let der = b64(&field("publicKey.rawBytes"), &raw)?;
        // Re-encoded canonically, as the verifier compares DER.
        let key = PublicKey::from_spki_der(&der)
            .map_err(|e| format!("{}: {e}", field("publicKey.rawBytes")))?;
        // sigstore-go refuses a log key without a start ("validity period start time not set").
        let validity = validity(
            tlog.public_key.valid_for,
            &field("publicKey.validFor"),
            true,
        )?;
        let log_id = b64(&field("logId.keyId"), &tlog.log_id.key_id)?;
        if log_id.len() != 32 {
            return Err(format!(
                "{} is {} bytes; a log id is 32 (SHA-256 of the log key)",
                field("logId.keyId"),
                log_id.len()
            ));
        }
        let mut entry = TransparencyLogKey::new(key.spki_der().to_vec(), validity, tlog.base_url);
        // The file's id is the one entries name (sigstore-go keys its log map by it).
        entry.log_id = log_id;
        root.tlogs.push(entry);
    }
    for (i, ca) in parsed.certificate_authorities.into_iter().enumerate() {
        let field = |name: &str| format!("certificateAuthorities[{i}].{name}");
        if ca.cert_chain.certificates.is_empty() {
            return Err(format!("{} is empty", field("certChain.certificates")));
        }
        let mut chain_der = Vec::new();
        for (j, cert) in ca.cert_chain.certificates.into_iter().enumerate() {
            let name = field(&format!("certChain.certificates[{j}].rawBytes"));
            let der = b64(&name, &cert.raw_bytes)?;
            PublicKey::from_certificate_der(&der).map_err(|e| format!("{name}: {e}"))?;
            chain_der.push(der);
        }
        root.certificate_authorities.push(CertificateAuthority {
            chain_der,
            validity: validity(ca.valid_for, &field("validFor"), false)?,
            uri: ca.uri,
        });
    }
    Ok(root)
}

/// A `validFor` range; without a start (allowed only where `start_required` is false) it is
/// valid from the epoch.
fn validity(
    range: Option<TimeRangeJson>,
    field: &str,
    start_required: bool,
) -> Result<Validity, String> {
    let (start, end) = match range {
        Some(r) => (r.start, r.end),
        None => (None, None),
    };
    let start = match start {
        Some(text) => timestamp(&format!("{field}.start"), &text)?,
        None if start_required => return Err(format!("{field}.start is missing")),
        None => SystemTime::UNIX_EPOCH,
    };
    let end = end
        .map(|text| timestamp(&format!("{field}.end"), &text))
        .transpose()?;
    if end.is_some_and(|end| end < start) {
        return Err(format!("{field}.end is before {field}.start"));
    }
    Ok(Validity { start, end })
}

fn timestamp(field: &str, text: &str) -> Result<SystemTime, String> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map(SystemTime::from)
        .map_err(|e| format!("{field} {text:?} is not an RFC 3339 time: {e}"))
}

/// Decode std base64, naming the field on failure.
fn b64(field: &str, text: &str) -> Result<Vec<u8>, String> {
    STANDARD
        .decode(text)
        .map_err(|e| format!("{field} is not valid base64: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUBLIC_GOOD: &str =
        include_str!("../../tests/fixtures/tlog/trusted-root-public-good.json");

    fn read(text: &str) -> Result<TrustedRoot, String> {
        TrustedRoot::from_trusted_root_json(text.as_bytes())
    }

    #[test]
    fn the_public_good_root_is_read_with_its_log_and_authorities() {
        let root = read(PUBLIC_GOOD).unwrap();
        assert_eq!(root.tlogs.len(), 1);
        let log = &root.tlogs[0];
        assert_eq!(
            hex::encode(&log.log_id),
            "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d"
        );
        // For Rekor the id is the key's SHA-256.
        assert_eq!(
            log.log_id,
            TransparencyLogKey::new(log.spki_der.clone(), log.validity.clone(), String::new())
                .log_id
        );
        assert_eq!(log.base_url, "https://rekor.sigstore.dev");
        assert_eq!(log.validity.end, None);
        assert_eq!(root.certificate_authorities.len(), 2);
        let first = &root.certificate_authorities[0];
        assert_eq!(first.chain_der.len(), 1);
        assert!(first.validity.end.is_some());
        assert_eq!(root.certificate_authorities[1].chain_der.len(), 2);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                PUBLIC_GOOD.replace(
                    "trustedroot+json;version=0.1",
                    "trustedroot+json;version=0.2",
                ),
                "mediaType is",
            ),
            (
                PUBLIC_GOOD.replacen("wNI9atQGlz+VWfO6LRygH4QUfY/8W4RFwiT5i5WRgB0=", "wNI9", 1),
                "tlogs[0].logId.keyId is 3 bytes",
            ),
            (
                PUBLIC_GOOD.replacen(
                    "\"start\": \"2021-01-12T11:53:27.000Z\"",
                    "\"start\": \"yesterday\"",
                    1,
                ),
                "tlogs[0].publicKey.validFor.start \"yesterday\" is not an RFC 3339 time",
            ),
            (
                PUBLIC_GOOD.replacen("\"start\": \"2021-01-12T11:53:27.000Z\"", "\"x\": 1", 1),
                "tlogs[0].publicKey.validFor.start is missing",
            ),
            (
                PUBLIC_GOOD.replacen("\"rawBytes\": \"MFkw", "\"rawBytes\": \"!!", 1),
                "tlogs[0].publicKey.rawBytes is not valid base64",
            ),
            (
                PUBLIC_GOOD.replacen("\"rawBytes\": \"MIIB+DCC", "\"rawBytes\": \"AAAA", 1),
                "certificateAuthorities[0].certChain.certificates[0].rawBytes",
            ),
        ];
        for (text, expected) in cases {
            let err = read(&text).unwrap_err();
            assert!(err.contains(expected), "{expected:?} not in {err:?}");
        }
    }
}
