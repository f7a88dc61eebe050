//! Signature encodings: the one place where what a signer returned becomes what cosign expects.
//!
//! cosign stores ECDSA signatures as ASN.1 DER `SEQUENCE { r INTEGER, s INTEGER }`; HSMs and
//! some KMSs return raw IEEE P1363 `r||s`. Converting between the two is where cosign#3709
//! came from (an integer with its high bit set needs a leading zero byte in DER, an integer
//! with leading zero bytes must lose them), so the conversion is done here once, strictly, and
//! tested against the `ecdsa` crate's own encoder.

use crate::pem::PemError;
use crate::{KeyKind, PublicKey};

/// Why a signature or key was refused. Messages say what was wrong and never carry secrets.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The PEM text could not be read.
    #[error("cannot read the key: {0}")]
    Pem(#[from] PemError),
    /// The PEM block is not a public key or certificate.
    #[error("PEM block \"{label}\" is not a public key: expected PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE{hint}")]
    UnexpectedPemLabel {
        /// The label found.
        label: String,
        /// Extra advice for a likely mistake (may be empty).
        hint: &'static str,
    },
    /// The key bytes are not a valid key.
    #[error("malformed public key: {reason}")]
    MalformedKey {
        /// What is wrong.
        reason: String,
    },
    /// The certificate could not be parsed far enough to find its key.
    #[error("malformed certificate: {reason}")]
    MalformedCertificate {
        /// What is wrong.
        reason: String,
    },
    /// A well-formed key of a type cosign-compatible signing does not use.
    #[error("unsupported key type: {what} (sigbridge supports ECDSA P-256 and P-384, RSA of 2048 bits or more, and Ed25519)")]
    UnsupportedKey {
        /// The algorithm or curve found.
        what: String,
    },
    /// An RSA key below 2048 bits.
    #[error(
        "RSA key of {bits} bits is too small: at least 2048 bits are required; use a larger key"
    )]
    RsaKeyTooSmall {
        /// The modulus size found.
        bits: usize,
    },
    /// The signature bytes are not in an encoding this key type can have.
    #[error("malformed {kind} signature: {reason}")]
    MalformedSignature {
        /// The key type the signature was read for.
        kind: KeyKind,
        /// What is wrong with the encoding.
        reason: String,
    },
    /// The signature is well formed but does not match the message and key.
    #[error("signature does not verify against the {kind} public key: the payload was changed, or it was signed with a different key")]
    VerificationFailed {
        /// The key type.
        kind: KeyKind,
    },
}

/// Convert what a signer returned into cosign's encoding for `key`.
///
/// - ECDSA: strict ASN.1 DER (re-encoded canonically), or raw `r||s` of exactly twice the
///   coordinate length; the result is always minimal DER with `r` and `s` in `[1, n-1]`.
/// - RSA: exactly the modulus length; a shorter value is left-padded with zeros (some signers
///   drop leading zero bytes, PKCS#1 v1.5 verifiers require the full length).
/// - Ed25519: exactly 64 bytes, unchanged.
///
/// This checks encoding only; call [`PublicKey::verify`] to check the signature itself.
pub fn normalise_signature(key: &PublicKey, raw: &[u8]) -> Result<Vec<u8>, SignatureError> {
    let kind = key.kind();
    match kind {
        KeyKind::EcdsaP256 => {
            let fixed = ecdsa_fixed(kind, raw)?;
            p256::ecdsa::Signature::from_slice(&fixed).map_err(|_| scalar_out_of_range(kind))?;
            Ok(fixed_to_der(&fixed))
        }
        KeyKind::EcdsaP384 => {
            let fixed = ecdsa_fixed(kind, raw)?;
            p384::ecdsa::Signature::from_slice(&fixed).map_err(|_| scalar_out_of_range(kind))?;
            Ok(fixed_to_der(&fixed))
        }
        KeyKind::Rsa { bits } => {
            let len = bits.div_ceil(8);
            if raw.is_empty() || raw.len() > len {
                return Err(SignatureError::MalformedSignature {
                    kind,
                    reason: format!(
                        "an RSA signature is as long as the modulus ({len} bytes), this one is {} bytes",
                        raw.len()
                    ),
                });
            }
            let mut out = vec![0u8; len - raw.len()];
            out.extend_from_slice(raw);
            Ok(out)
        }
        KeyKind::Ed25519 => {
            if raw.len() != 64 {
                return Err(SignatureError::MalformedSignature {
                    kind,
                    reason: format!(
                        "an Ed25519 signature is 64 bytes, this one is {} bytes",
                        raw.len()
                    ),
                });
            }
            Ok(raw.to_vec())
        }
    }
}

pub(crate) fn scalar_out_of_range(kind: KeyKind) -> SignatureError {
    SignatureError::MalformedSignature {
        kind,
        reason: "r and s must be between 1 and the curve order minus 1".to_string(),
    }
}

/// Read an ECDSA signature in DER or raw form into fixed-width `r||s` (range not yet checked).
///
/// DER is tried first, as sigstore's verifier does; a raw value is accepted only at exactly
/// twice the coordinate length, so there is no guessing about where `r` ends.
pub(crate) fn ecdsa_fixed(kind: KeyKind, raw: &[u8]) -> Result<Vec<u8>, SignatureError> {
    let Some(width) = kind.ecdsa_coordinate_len() else {
        return Err(SignatureError::MalformedSignature {
            kind,
            reason: "not an ECDSA key".to_string(),
        });
    };
    match der_to_fixed(raw, width) {
        Ok(fixed) => Ok(fixed),
        Err(_) if raw.len() == 2 * width => Ok(raw.to_vec()),
        Err(reason) if raw.first() == Some(&0x30) => Err(SignatureError::MalformedSignature {
            kind,
            reason: format!("invalid ASN.1 DER: {reason}"),
        }),
        Err(_) => Err(SignatureError::MalformedSignature {
            kind,
            reason: format!(
                "expected ASN.1 DER or {} bytes of raw r||s, got {} bytes that are neither",
                2 * width,
                raw.len()
            ),
        }),
    }
}

/// Without a key to check against: what kind of signature `raw` plausibly is, or why it is none.
/// Accepts a strict DER ECDSA signature sized for P-256 or P-384, 64 bytes (Ed25519), or an RSA
/// modulus length (2048, 3072 or 4096 bits). Raw ECDSA `r||s` cannot be told from Ed25519
/// without the key, so it needs one to be converted.
pub fn classify_unkeyed_signature(raw: &[u8]) -> Result<&'static str, String> {
    if raw.first() == Some(&0x30) {
        return match der_to_fixed(raw, 32).or_else(|_| der_to_fixed(raw, 48)) {
            Ok(_) => Ok("ASN.1 DER ECDSA"),
            Err(e) => Err(format!("not a valid ASN.1 DER ECDSA signature ({e})")),
        };
    }
    match raw.len() {
        64 => Ok("64-byte (Ed25519, or raw ECDSA r||s that needs --key to convert)"),
        256 | 384 | 512 => Ok("RSA-sized"),
        n => Err(format!(
            "{n} bytes that are neither ASN.1 DER ECDSA nor the size of an Ed25519 or RSA signature"
        )),
    }
}

/// Parse strict DER `SEQUENCE { INTEGER r, INTEGER s }` into `r||s`, each left-padded to `width`.
fn der_to_fixed(der: &[u8], width: usize) -> Result<Vec<u8>, String> {
    let (&tag, rest) = der.split_first().ok_or("empty signature")?;
    if tag != 0x30 {
        return Err("does not start with a SEQUENCE".to_string());
    }
    let (len, rest) = read_length(rest)?;
    if rest.len() < len {
        return Err("truncated".to_string());
    }
    if rest.len() > len {
        return Err(format!(
            "{} trailing bytes after the SEQUENCE",
            rest.len() - len
        ));
    }
    let mut fixed = Vec::with_capacity(2 * width);
    let rest = read_integer(rest, width, "r", &mut fixed)?;
    let rest = read_integer(rest, width, "s", &mut fixed)?;
    if !rest.is_empty() {
        return Err("extra data after r and s inside the SEQUENCE".to_string());
    }
    Ok(fixed)
}

/// DER length: short form, or long form only where the short form cannot express it.
fn read_length(bytes: &[u8]) -> Result<(usize, &[u8]), String> {
    let (&first, rest) = bytes.split_first().ok_or("truncated length")?;
    match first {
        0..=0x7f => Ok((usize::from(first), rest)),
        0x81 => {
            let (&len, rest) = rest.split_first().ok_or("truncated length")?;
            if len < 0x80 {
                return Err("non-minimal length encoding".to_string());
            }
            Ok((usize::from(len), rest))
        }
        0x80 => Err("indefinite length is not allowed in DER".to_string()),
        // Longer than 255 bytes: no ECDSA signature over a supported curve is that large.
        _ => Err("length too large for an ECDSA signature".to_string()),
    }
}

fn read_integer<'a>(
    bytes: &'a [u8],
    width: usize,
    name: &str,
    out: &mut Vec<u8>,
) -> Result<&'a [u8], String> {
    let (&tag, rest) = bytes
        .split_first()
        .ok_or(format!("missing INTEGER {name}"))?;
    if tag != 0x02 {
        return Err(format!("{name} is not an INTEGER"));
    }
    let (len, rest) = read_length(rest)?;
    if rest.len() < len {
        return Err(format!("INTEGER {name} is truncated"));
    }
    let (value, rest) = rest.split_at(len);
    let magnitude = match value {
        [] => return Err(format!("INTEGER {name} is empty")),
        [first, ..] if first & 0x80 != 0 => return Err(format!("{name} is negative")),
        [0, second, ..] if second & 0x80 == 0 => {
            return Err(format!(
                "INTEGER {name} is not minimally encoded (extra leading zero byte)"
            ))
        }
        [0, tail @ ..] if !tail.is_empty() => tail,
        _ => value,
    };
    if magnitude.len() > width {
        return Err(format!(
            "{name} is {} bytes long, more than the curve's {width}",
            magnitude.len()
        ));
    }
    out.resize(out.len() + width - magnitude.len(), 0);
    out.extend_from_slice(magnitude);
    Ok(rest)
}

/// Encode fixed-width `r||s` as minimal DER.
fn fixed_to_der(fixed: &[u8]) -> Vec<u8> {
    let (r, s) = fixed.split_at(fixed.len() / 2);
    let mut body = Vec::with_capacity(fixed.len() + 6);
    write_integer(&mut body, r);
    write_integer(&mut body, s);
    let mut out = Vec::with_capacity(body.len() + 3);
    out.push(0x30);
    write_length(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

fn write_integer(out: &mut Vec<u8>, big_endian: &[u8]) {
    // Drop leading zero bytes but keep one byte for the value zero.
    let start = big_endian
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(big_endian.len().saturating_sub(1));
    let magnitude = &big_endian[start..];
    // A set high bit would read as negative: DER needs a 0x00 in front.
    let pad = magnitude.first().is_some_and(|b| b & 0x80 != 0);
    out.push(0x02);
    write_length(out, magnitude.len() + usize::from(pad));
    if pad {
        out.push(0);
    }
    out.extend_from_slice(magnitude);
}

fn write_length(out: &mut Vec<u8>, len: usize) {
    // Supported curves keep every length below 128 (P-384: at most 104 bytes in all); the
    // long forms are here only so that the encoder is correct for any input.
    match u8::try_from(len) {
        Ok(short) if short < 0x80 => out.push(short),
        Ok(byte) => out.extend_from_slice(&[0x81, byte]),
        Err(_) => {
            let bytes = len.to_be_bytes();
            let start = bytes
                .iter()
                .position(|&b| b != 0)
                .unwrap_or(bytes.len() - 1);
            out.push(0x80 | (bytes.len() - start) as u8);
            out.extend_from_slice(&bytes[start..]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_integer_edge_cases() {
        let mut fixed = vec![0u8; 64];
        // r = 0x80 00..00 (high bit set: needs padding), s = 1 (many leading zeros)
        fixed[0] = 0x80;
        fixed[63] = 1;
        let der = fixed_to_der(&fixed);
        let mut expected = vec![0x30, 2 + 33 + 3, 0x02, 33, 0x00, 0x80];
        expected.extend_from_slice(&[0u8; 31]);
        expected.extend_from_slice(&[0x02, 0x01, 0x01]);
        assert_eq!(der, expected);
        assert_eq!(der_to_fixed(&der, 32).unwrap(), fixed);
    }

    #[test]
    fn der_rejects_non_strict() {
        let ok = [0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01];
        assert_eq!(der_to_fixed(&ok, 32).unwrap().len(), 64);
        // trailing byte
        assert!(der_to_fixed(&[&ok[..], &[0]].concat(), 32)
            .unwrap_err()
            .contains("trailing"));
        // negative r
        let neg = [0x30, 0x06, 0x02, 0x01, 0x81, 0x02, 0x01, 0x01];
        assert!(der_to_fixed(&neg, 32).unwrap_err().contains("negative"));
        // non-minimal r (00 01)
        let nonmin = [0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01];
        assert!(der_to_fixed(&nonmin, 32).unwrap_err().contains("minimally"));
        // long-form length that fits in short form
        let long = [0x30, 0x81, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01];
        assert!(der_to_fixed(&long, 32).unwrap_err().contains("non-minimal"));
        // r too long
        let mut big = vec![0x30, 2 + 33 + 3, 0x02, 33];
        big.extend_from_slice(&[0x01; 33]);
        big.extend_from_slice(&[0x02, 0x01, 0x01]);
        assert!(der_to_fixed(&big, 32).unwrap_err().contains("more than"));
        // empty integer, missing s, extra element
        assert!(der_to_fixed(&[0x30, 0x04, 0x02, 0x00, 0x02, 0x00], 32).is_err());
        assert!(der_to_fixed(&[0x30, 0x03, 0x02, 0x01, 0x01], 32).is_err());
        assert!(der_to_fixed(
            &[0x30, 0x09, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01],
            32
        )
        .unwrap_err()
        .contains("extra data"));
        // indefinite length, wrong outer tag, truncation
        assert!(der_to_fixed(&[0x30, 0x80, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0, 0], 32).is_err());
        assert!(der_to_fixed(&[0x31, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01], 32).is_err());
        assert!(der_to_fixed(&ok[..7], 32).is_err());
        assert!(der_to_fixed(&[], 32).is_err());
    }

    #[test]
    fn length_forms() {
        for (len, expected) in [
            (0x7f, vec![0x7f]),
            (0x80, vec![0x81, 0x80]),
            (300, vec![0x82, 0x01, 0x2c]),
        ] {
            let mut out = Vec::new();
            write_length(&mut out, len);
            assert_eq!(out, expected, "{len}");
        }
        assert_eq!(read_length(&[0x81, 0x80, 9]).unwrap(), (0x80, &[9u8][..]));
    }

    #[test]
    fn zero_value_integer_encodes_as_single_zero_byte() {
        let mut out = Vec::new();
        write_integer(&mut out, &[0, 0, 0]);
        assert_eq!(out, [0x02, 0x01, 0x00]);
    }
}
