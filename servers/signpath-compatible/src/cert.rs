//! A self-signed X.509 certificate for the server's key, made at startup and signed with the
//! key itself (what `…/X509Certificate` returns, DER).

use std::str::FromStr as _;
use std::time::Duration;

use der::asn1::BitString;
use der::{Decode as _, Encode as _};
use sigbridge_local::LocalSigner;
use sigbridge_signer::KeyKind;
use spki::{AlgorithmIdentifierOwned, ObjectIdentifier, SubjectPublicKeyInfoOwned};
use x509_cert::certificate::{Certificate, TbsCertificate, Version};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Validity;

/// Why the certificate could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot make the server certificate: {0}")]
pub struct CertError(String);

fn fail(e: impl std::fmt::Display) -> CertError {
    CertError(e.to_string())
}

/// A DER certificate with subject and issuer `CN=<common_name>` for `signer`'s key.
pub fn self_signed(signer: &LocalSigner, common_name: &str) -> Result<Vec<u8>, CertError> {
    // The signature algorithm matches how LocalSigner signs: SHA-256 throughout.
    let (oid, null_params) = match signer.kind() {
        KeyKind::EcdsaP256 | KeyKind::EcdsaP384 => ("1.2.840.10045.4.3.2", false),
        KeyKind::Rsa { .. } => ("1.2.840.113549.1.1.11", true),
        KeyKind::Ed25519 => ("1.3.101.112", false),
        other => {
            return Err(CertError(format!(
                "no certificate algorithm for {other} keys"
            )))
        }
    };
    let algorithm = AlgorithmIdentifierOwned {
        oid: ObjectIdentifier::new(oid).map_err(fail)?,
        parameters: if null_params {
            Some(der::Any::from(der::asn1::Null))
        } else {
            None
        },
    };
    let name = Name::from_str(&format!("CN={common_name}")).map_err(fail)?;
    let spki = SubjectPublicKeyInfoOwned::from_der(signer.public_key().spki_der()).map_err(fail)?;
    let mut serial = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut serial);
    serial[0] &= 0x7f;
    serial[0] |= 0x01;
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::new(&serial).map_err(fail)?,
        signature: algorithm.clone(),
        issuer: name.clone(),
        validity: Validity::from_now(Duration::from_secs(365 * 24 * 3600)).map_err(fail)?,
        subject: name,
        subject_public_key_info: spki,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: None,
    };
    let tbs_der = tbs.to_der().map_err(fail)?;
    let signature = signer.sign_one(&tbs_der).map_err(fail)?;
    let cert = Certificate {
        tbs_certificate: tbs,
        signature_algorithm: algorithm,
        signature: BitString::from_bytes(&signature).map_err(fail)?,
    };
    cert.to_der().map_err(fail)
}
