//! cosign's encrypted private key envelope (go-securesystemslib `encrypted` package format):
//! the PEM body is Go-marshalled JSON
//! `{"kdf":{"name":"scrypt","params":{"N":..,"r":8,"p":1},"salt":".."},"cipher":{"name":"nacl/secretbox","nonce":".."},"ciphertext":".."}`
//! where the byte fields are padded standard base64, the key is scrypt(password, salt, N, r, p,
//! 32) and the ciphertext is NaCl secretbox (XSalsa20-Poly1305, tag first) over PKCS#8 DER.

use crypto_secretbox::aead::{Aead as _, KeyInit as _};
use crypto_secretbox::XSalsa20Poly1305;
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::LocalKeyError;

const KDF_NAME: &str = "scrypt";
const CIPHER_NAME: &str = "nacl/secretbox";
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const KEY_LEN: usize = 32;
pub(crate) const SALT_LEN: usize = 32;

/// scrypt N values (as log2) that cosign accepts: go-securesystemslib reads exactly these with
/// r=8, p=1. 2^15 is what go-tuf era cosign wrote (and only accepted), 2^16 what cosign 2.2+
/// and skopeo write, 2^17 the remaining accepted value.
const ACCEPTED_LOG_N: [u8; 3] = [15, 16, 17];
const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 1;

/// log2(N) written by [`encrypt`]: N=32768 is the only value every cosign release (1.x, 2.0,
/// 2.1 accept only it) and containers/image can read.
pub(crate) const WRITE_LOG_N: u8 = 15;

// Field order and names are Go's: struct field order of securesystemslib's `data` type.
#[derive(Serialize, Deserialize)]
struct EnvelopeJson {
    kdf: KdfJson,
    cipher: CipherJson,
    #[serde(with = "b64")]
    ciphertext: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct KdfJson {
    name: String,
    params: ScryptParamsJson,
    #[serde(with = "b64")]
    salt: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct ScryptParamsJson {
    #[serde(rename = "N")]
    n: u64,
    r: u64,
    p: u64,
}

#[derive(Serialize, Deserialize)]
struct CipherJson {
    name: String,
    #[serde(with = "b64")]
    nonce: Vec<u8>,
}

/// Go marshals `[]byte` as padded standard base64.
mod b64 {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD
            .decode(text.as_bytes())
            .map_err(|e| serde::de::Error::custom(format!("bad base64: {e}")))
    }
}

/// A parsed, checked envelope; nothing in it is secret.
pub(crate) struct Envelope {
    log_n: u8,
    salt: Vec<u8>,
    nonce: [u8; NONCE_LEN],
    ciphertext: Vec<u8>,
}

impl std::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Envelope")
            .field("scrypt_n", &(1u64 << self.log_n))
            .finish_non_exhaustive()
    }
}

impl Envelope {
    /// Parse and check the JSON, before any password is asked for.
    pub(crate) fn parse(json: &[u8], origin: &str) -> Result<Self, LocalKeyError> {
        let malformed = |reason: String| LocalKeyError::MalformedEnvelope {
            origin: origin.to_string(),
            reason,
        };
        let unsupported = |reason: String| LocalKeyError::UnsupportedEncryption {
            origin: origin.to_string(),
            reason,
        };
        let data: EnvelopeJson = serde_json::from_slice(json)
            .map_err(|e| malformed(format!("the encrypted key's JSON is invalid ({e})")))?;
        if data.kdf.name != KDF_NAME {
            return Err(unsupported(format!(
                "key derivation \"{}\" (cosign keys use scrypt)",
                data.kdf.name
            )));
        }
        let ScryptParamsJson { n, r, p } = data.kdf.params;
        let log_n = ACCEPTED_LOG_N
            .into_iter()
            .find(|&log_n| n == 1u64 << log_n)
            .filter(|_| r == u64::from(SCRYPT_R) && p == u64::from(SCRYPT_P))
            .ok_or_else(|| {
                unsupported(format!(
                    "scrypt parameters N={n}, r={r}, p={p}; cosign accepts only N=32768, 65536 or 131072 with r=8, p=1"
                ))
            })?;
        if data.cipher.name != CIPHER_NAME {
            return Err(unsupported(format!(
                "cipher \"{}\" (cosign keys use nacl/secretbox)",
                data.cipher.name
            )));
        }
        let nonce: [u8; NONCE_LEN] = data.cipher.nonce.as_slice().try_into().map_err(|_| {
            malformed(format!(
                "the nonce is {} bytes, secretbox needs {NONCE_LEN}",
                data.cipher.nonce.len()
            ))
        })?;
        if data.ciphertext.len() <= TAG_LEN {
            return Err(malformed(format!(
                "the ciphertext is {} bytes, too short to hold a key",
                data.ciphertext.len()
            )));
        }
        Ok(Self {
            log_n,
            salt: data.kdf.salt,
            nonce,
            ciphertext: data.ciphertext,
        })
    }

    /// scrypt N.
    pub(crate) fn scrypt_n(&self) -> u64 {
        1u64 << self.log_n
    }

    /// Decrypt to the plaintext (PKCS#8 DER for cosign keys).
    pub(crate) fn decrypt(
        &self,
        password: &SecretString,
        origin: &str,
    ) -> Result<Zeroizing<Vec<u8>>, LocalKeyError> {
        let key = derive_key(password, &self.salt, self.log_n, origin)?;
        let cipher = XSalsa20Poly1305::new(key.as_ref().into());
        let plaintext = cipher
            .decrypt((&self.nonce).into(), self.ciphertext.as_slice())
            .map_err(|_| LocalKeyError::WrongPassword {
                origin: origin.to_string(),
            })?;
        Ok(Zeroizing::new(plaintext))
    }
}

fn derive_key(
    password: &SecretString,
    salt: &[u8],
    log_n: u8,
    origin: &str,
) -> Result<Zeroizing<[u8; KEY_LEN]>, LocalKeyError> {
    let params = scrypt::Params::new(log_n, SCRYPT_R, SCRYPT_P, KEY_LEN).map_err(|e| {
        LocalKeyError::UnsupportedEncryption {
            origin: origin.to_string(),
            reason: format!("scrypt parameters refused ({e})"),
        }
    })?;
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    scrypt::scrypt(
        password.expose_secret().as_bytes(),
        salt,
        &params,
        key.as_mut(),
    )
    .map_err(|e| LocalKeyError::UnsupportedEncryption {
        origin: origin.to_string(),
        reason: format!("scrypt failed ({e})"),
    })?;
    Ok(key)
}

/// Encrypt `plaintext` (PKCS#8 DER) into the envelope's JSON with scrypt N=2^`log_n`.
pub(crate) fn encrypt(
    plaintext: &[u8],
    password: &SecretString,
    log_n: u8,
) -> Result<Vec<u8>, LocalKeyError> {
    let origin = "the new key";
    let mut salt = vec![0u8; SALT_LEN];
    let mut nonce = [0u8; NONCE_LEN];
    crate::random_bytes(&mut salt)?;
    crate::random_bytes(&mut nonce)?;
    let key = derive_key(password, &salt, log_n, origin)?;
    let cipher = XSalsa20Poly1305::new(key.as_ref().into());
    let ciphertext =
        cipher
            .encrypt((&nonce).into(), plaintext)
            .map_err(|_| LocalKeyError::Encryption {
                reason: "secretbox refused the plaintext".to_string(),
            })?;
    let data = EnvelopeJson {
        kdf: KdfJson {
            name: KDF_NAME.to_string(),
            params: ScryptParamsJson {
                n: 1u64 << log_n,
                r: u64::from(SCRYPT_R),
                p: u64::from(SCRYPT_P),
            },
            salt,
        },
        cipher: CipherJson {
            name: CIPHER_NAME.to_string(),
            nonce: nonce.to_vec(),
        },
        ciphertext,
    };
    serde_json::to_vec(&data).map_err(|e| LocalKeyError::Encryption {
        reason: format!("cannot encode the key envelope ({e})"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(s: &str) -> SecretString {
        SecretString::from(s.to_string())
    }

    #[test]
    fn json_has_go_field_order() {
        let json = encrypt(b"plaintext bytes", &pw("x"), WRITE_LOG_N).unwrap();
        let text = String::from_utf8(json).unwrap();
        let prefix = r#"{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":""#;
        assert!(text.starts_with(prefix), "{text}");
        let cipher_at = text
            .find(r#"},"cipher":{"name":"nacl/secretbox","nonce":""#)
            .unwrap();
        let ct_at = text.find(r#""},"ciphertext":""#).unwrap();
        assert!(cipher_at < ct_at);
        assert!(text.ends_with("\"}"));
    }

    // Other N values are covered by cosign's N=65536 fixtures and the N=131072 test in lib.rs;
    // scrypt is slow in unoptimised test builds, so each N is derived as few times as possible.
    #[test]
    fn roundtrip_and_wrong_password() {
        let json = encrypt(b"secret pkcs8", &pw("pw"), WRITE_LOG_N).unwrap();
        let env = Envelope::parse(&json, "t").unwrap();
        assert_eq!(env.scrypt_n(), 32768);
        assert_eq!(&env.decrypt(&pw("pw"), "t").unwrap()[..], b"secret pkcs8");
        assert!(matches!(
            env.decrypt(&pw("wrong"), "t").unwrap_err(),
            LocalKeyError::WrongPassword { .. }
        ));
    }

    #[test]
    fn unsupported_parameters_are_refused_before_decryption() {
        let json = String::from_utf8(encrypt(b"k", &pw(""), 15).unwrap()).unwrap();
        for (from, to) in [
            (r#""N":32768"#, r#""N":16384"#),
            (r#""N":32768"#, r#""N":262144"#),
            (r#""r":8"#, r#""r":16"#),
            (r#""p":1"#, r#""p":2"#),
            (r#""name":"scrypt""#, r#""name":"pbkdf2""#),
            (r#""name":"nacl/secretbox""#, r#""name":"aes-gcm""#),
        ] {
            let changed = json.replace(from, to);
            let err = Envelope::parse(changed.as_bytes(), "k.key").unwrap_err();
            assert!(
                matches!(err, LocalKeyError::UnsupportedEncryption { .. }),
                "{to}: {err}"
            );
        }
    }

    #[test]
    fn malformed_envelopes() {
        for json in [
            "",
            "{}",
            "not json",
            r#"{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":"!!"},"cipher":{"name":"nacl/secretbox","nonce":"AAAA"},"ciphertext":"AAAA"}"#,
            r#"{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":"AAAA"},"cipher":{"name":"nacl/secretbox","nonce":"AAAA"},"ciphertext":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#,
            r#"{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":"AAAA"},"cipher":{"name":"nacl/secretbox","nonce":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},"ciphertext":"AAAA"}"#,
        ] {
            let err = Envelope::parse(json.as_bytes(), "k.key").unwrap_err();
            assert!(
                matches!(err, LocalKeyError::MalformedEnvelope { .. }),
                "{json}: {err}"
            );
        }
    }
}
