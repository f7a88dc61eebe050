//! Finding the key a URI names, its public key and its certificate.
//!
//! The private key is found by `id` (or, without one, by label). Its public key comes from,
//! in order: a public-key object with the same id (or label), a certificate with the same id
//! (or label), or the public values some tokens keep on the private object (`CKA_EC_POINT`,
//! `CKA_MODULUS` + `CKA_PUBLIC_EXPONENT`).

use cryptoki::object::{
    Attribute, AttributeType, CertificateType, KeyType, ObjectClass, ObjectHandle,
};
use cryptoki::session::Session;
use sigbridge_signer::{KeyKind, PublicKey, SignatureError};

use crate::error::Pkcs11Error;

/// A private key object on the token.
#[derive(Clone, Debug)]
pub struct KeyObject {
    /// Its handle in the current session.
    pub handle: ObjectHandle,
    /// CKA_LABEL.
    pub label: String,
    /// CKA_ID.
    pub id: Vec<u8>,
    /// CKA_KEY_TYPE.
    pub key_type: Option<KeyType>,
    /// CKA_SIGN.
    pub can_sign: bool,
}

impl KeyObject {
    /// `label "x", id 01ab, EC` for messages.
    pub fn summary(&self) -> String {
        format!(
            "label {:?}, id {}, {}",
            self.label,
            if self.id.is_empty() {
                "(none)".to_string()
            } else {
                hex::encode(&self.id)
            },
            key_type_name(self.key_type)
        )
    }
}

fn key_type_name(t: Option<KeyType>) -> String {
    match t {
        Some(KeyType::EC) => "EC".into(),
        Some(KeyType::RSA) => "RSA".into(),
        Some(other) => format!("{other}"),
        None => "unknown type".into(),
    }
}

/// What names the key: `id` wins over the label, as in cosign.
#[derive(Clone, Debug)]
pub enum KeyName {
    /// CKA_ID.
    Id(Vec<u8>),
    /// CKA_LABEL.
    Label(String),
}

impl KeyName {
    fn attribute(&self) -> Attribute {
        match self {
            KeyName::Id(id) => Attribute::Id(id.clone()),
            KeyName::Label(l) => Attribute::Label(l.as_bytes().to_vec()),
        }
    }

    /// `id 01ab` or `label "x"`.
    pub fn describe(&self) -> String {
        match self {
            KeyName::Id(id) => format!("id {}", hex::encode(id)),
            KeyName::Label(l) => format!("label {l:?}"),
        }
    }
}

fn find(
    session: &Session,
    template: &[Attribute],
    what: &str,
) -> Result<Vec<ObjectHandle>, Pkcs11Error> {
    session
        .find_objects(template)
        .map_err(|e| Pkcs11Error::call(format!("searching for {what} (C_FindObjects)"), e))
}

fn read_key_object(session: &Session, handle: ObjectHandle) -> Result<KeyObject, Pkcs11Error> {
    let attrs = session
        .get_attributes(
            handle,
            &[
                AttributeType::Label,
                AttributeType::Id,
                AttributeType::KeyType,
                AttributeType::Sign,
            ],
        )
        .map_err(|e| Pkcs11Error::call("reading key attributes", e))?;
    let mut key = KeyObject {
        handle,
        label: String::new(),
        id: Vec::new(),
        key_type: None,
        can_sign: true,
    };
    for attr in attrs {
        match attr {
            Attribute::Label(l) => key.label = String::from_utf8_lossy(&l).into_owned(),
            Attribute::Id(id) => key.id = id,
            Attribute::KeyType(t) => key.key_type = Some(t),
            Attribute::Sign(s) => key.can_sign = s,
            _ => {}
        }
    }
    Ok(key)
}

/// Every private key the session can see (all of them once logged in).
pub fn private_keys(session: &Session) -> Result<Vec<KeyObject>, Pkcs11Error> {
    find(
        session,
        &[Attribute::Class(ObjectClass::PRIVATE_KEY)],
        "private keys",
    )?
    .into_iter()
    .map(|h| read_key_object(session, h))
    .collect()
}

/// The one private key `name` names on `token`.
pub fn find_private_key(
    session: &Session,
    name: &KeyName,
    token: &str,
) -> Result<KeyObject, Pkcs11Error> {
    let handles = find(
        session,
        &[Attribute::Class(ObjectClass::PRIVATE_KEY), name.attribute()],
        "the private key",
    )?;
    let mut keys = handles
        .into_iter()
        .map(|h| read_key_object(session, h))
        .collect::<Result<Vec<_>, _>>()?;
    match keys.len() {
        1 => Ok(keys.remove(0)),
        0 => {
            let present = private_keys(session)?
                .iter()
                .filter(|k| k.can_sign)
                .map(KeyObject::summary)
                .collect();
            Err(Pkcs11Error::KeyNotFound {
                wanted: name.describe(),
                token: token.to_string(),
                present,
            })
        }
        _ => Err(Pkcs11Error::AmbiguousKey {
            wanted: name.describe(),
            token: token.to_string(),
            candidates: keys.iter().map(KeyObject::summary).collect(),
        }),
    }
}

/// How objects belonging to `key` are matched: by its id if it has one, else by its label.
fn companion_template(key: &KeyObject, class: ObjectClass) -> Vec<Attribute> {
    let mut template = vec![Attribute::Class(class)];
    if key.id.is_empty() {
        template.push(Attribute::Label(key.label.as_bytes().to_vec()));
    } else {
        template.push(Attribute::Id(key.id.clone()));
    }
    template
}

/// The public key of `key`, from the token, checked to be a kind sigbridge signs with.
pub fn public_key(session: &Session, key: &KeyObject) -> Result<PublicKey, Pkcs11Error> {
    let key_type = key.key_type.ok_or_else(|| {
        Pkcs11Error::PublicKey(format!(
            "key {}: the token does not say its type",
            key.summary()
        ))
    })?;
    if key_type != KeyType::EC && key_type != KeyType::RSA {
        return Err(Pkcs11Error::UnsupportedKey(format!(
            "key {} is of type {}; sigbridge signs with ECDSA P-256/P-384 and RSA (2048 bits or more) keys",
            key.summary(),
            key_type_name(Some(key_type))
        )));
    }
    // 1. A public-key object.
    let publics = find(
        session,
        &companion_template(key, ObjectClass::PUBLIC_KEY),
        "the public key",
    )?;
    for handle in publics {
        if let Some(spki) = spki_from_object(session, handle, key_type)? {
            tracing::debug!(key = %key.summary(), "pkcs11: public key from the public-key object");
            return checked(key, PublicKey::from_spki_der(&spki));
        }
    }
    // 2. A certificate.
    if let Some(der) = certificate_der(session, key)? {
        tracing::debug!(key = %key.summary(), "pkcs11: public key from the certificate");
        return checked(key, PublicKey::from_certificate_der(&der));
    }
    // 3. Public values on the private object.
    if let Some(spki) = spki_from_object(session, key.handle, key_type)? {
        tracing::debug!(key = %key.summary(), "pkcs11: public key from the private-key object");
        return checked(key, PublicKey::from_spki_der(&spki));
    }
    Err(Pkcs11Error::PublicKey(format!(
        "key {}: the token has no public-key object or certificate with the same id or label, and the private object does not show its public values; import the public key or certificate under the same CKA_ID",
        key.summary()
    )))
}

fn checked(
    key: &KeyObject,
    parsed: Result<PublicKey, SignatureError>,
) -> Result<PublicKey, Pkcs11Error> {
    let public = parsed.map_err(|e| match e {
        SignatureError::UnsupportedKey { .. } | SignatureError::RsaKeyTooSmall { .. } => {
            Pkcs11Error::UnsupportedKey(format!("key {}: {e}", key.summary()))
        }
        other => Pkcs11Error::PublicKey(format!("key {}: {other}", key.summary())),
    })?;
    match public.kind() {
        KeyKind::EcdsaP256 | KeyKind::EcdsaP384 | KeyKind::Rsa { .. } => Ok(public),
        other => Err(Pkcs11Error::UnsupportedKey(format!(
            "key {} is {other}; through PKCS#11 sigbridge signs with ECDSA P-256/P-384 and RSA keys",
            key.summary()
        ))),
    }
}

/// SubjectPublicKeyInfo DER from an object's EC or RSA public attributes, if it has them.
fn spki_from_object(
    session: &Session,
    handle: ObjectHandle,
    key_type: KeyType,
) -> Result<Option<Vec<u8>>, Pkcs11Error> {
    let wanted: &[AttributeType] = if key_type == KeyType::EC {
        &[AttributeType::EcParams, AttributeType::EcPoint]
    } else {
        &[AttributeType::Modulus, AttributeType::PublicExponent]
    };
    let attrs = match session.get_attributes(handle, wanted) {
        Ok(a) => a,
        // Some tokens refuse the whole call when one attribute is invalid for the object.
        Err(cryptoki::error::Error::Pkcs11(
            cryptoki::error::RvError::AttributeTypeInvalid
            | cryptoki::error::RvError::AttributeSensitive,
            _,
        )) => return Ok(None),
        Err(e) => return Err(Pkcs11Error::call("reading public key attributes", e)),
    };
    let (mut a, mut b) = (None, None);
    for attr in attrs {
        match attr {
            Attribute::EcParams(v) | Attribute::Modulus(v) => a = Some(v),
            Attribute::EcPoint(v) | Attribute::PublicExponent(v) => b = Some(v),
            _ => {}
        }
    }
    let (Some(a), Some(b)) = (a, b) else {
        return Ok(None);
    };
    if a.is_empty() || b.is_empty() {
        return Ok(None);
    }
    Ok(Some(if key_type == KeyType::EC {
        der::ec_spki(&a, &b)
    } else {
        der::rsa_spki(&a, &b)
    }))
}

/// The DER X.509 certificate stored with `key` (same id, or same label without an id).
pub fn certificate_der(session: &Session, key: &KeyObject) -> Result<Option<Vec<u8>>, Pkcs11Error> {
    let mut template = companion_template(key, ObjectClass::CERTIFICATE);
    template.push(Attribute::CertificateType(CertificateType::X_509));
    let handles = find(session, &template, "the certificate")?;
    let Some(handle) = handles.first() else {
        return Ok(None);
    };
    if handles.len() > 1 {
        tracing::warn!(key = %key.summary(), count = handles.len(), "several certificates match the key; using the first");
    }
    let attrs = session
        .get_attributes(*handle, &[AttributeType::Value])
        .map_err(|e| Pkcs11Error::call("reading the certificate", e))?;
    Ok(attrs.into_iter().find_map(|a| match a {
        Attribute::Value(v) if !v.is_empty() => Some(v),
        _ => None,
    }))
}

/// Minimal DER building for SubjectPublicKeyInfo.
mod der {
    const EC_PUBLIC_KEY_OID: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    const RSA_ENCRYPTION_OID: &[u8] = &[
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
    ];

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes: Vec<u8> = len
                .to_be_bytes()
                .iter()
                .copied()
                .skip_while(|&b| b == 0)
                .collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend_from_slice(&bytes);
        }
        out.extend_from_slice(content);
        out
    }

    fn unsigned_integer(bytes: &[u8]) -> Vec<u8> {
        let trimmed: Vec<u8> = bytes.iter().copied().skip_while(|&b| b == 0).collect();
        let mut content = Vec::with_capacity(trimmed.len() + 1);
        if trimmed.first().is_none_or(|&b| b & 0x80 != 0) {
            content.push(0);
        }
        content.extend_from_slice(&trimmed);
        tlv(0x02, &content)
    }

    /// CKA_EC_POINT is a DER OCTET STRING holding the point (PKCS#11 2.40); some tokens give
    /// the bare point. The bare point of a curve has an odd length and starts with 02/03/04.
    pub(super) fn unwrap_ec_point(value: &[u8]) -> &[u8] {
        if value.len() >= 2 && value[0] == 0x04 {
            let (len, header) = match value[1] {
                n if n < 0x80 => (usize::from(n), 2),
                0x81 if value.len() >= 3 => (usize::from(value[2]), 3),
                _ => return value,
            };
            if header + len == value.len() && len > 0 && matches!(value[header], 0x02..=0x04) {
                return &value[header..];
            }
        }
        value
    }

    /// SPKI for an EC key: CKA_EC_PARAMS is already the DER of the curve's parameters.
    pub(super) fn ec_spki(params: &[u8], point: &[u8]) -> Vec<u8> {
        let point = unwrap_ec_point(point);
        let mut algorithm = EC_PUBLIC_KEY_OID.to_vec();
        algorithm.extend_from_slice(params);
        let mut bits = vec![0u8];
        bits.extend_from_slice(point);
        let mut body = tlv(0x30, &algorithm);
        body.extend(tlv(0x03, &bits));
        tlv(0x30, &body)
    }

    /// SPKI for an RSA key from its modulus and public exponent.
    pub(super) fn rsa_spki(modulus: &[u8], exponent: &[u8]) -> Vec<u8> {
        let mut rsa_key = unsigned_integer(modulus);
        rsa_key.extend(unsigned_integer(exponent));
        let rsa_key = tlv(0x30, &rsa_key);
        let mut algorithm = RSA_ENCRYPTION_OID.to_vec();
        algorithm.extend_from_slice(&[0x05, 0x00]);
        let mut bits = vec![0u8];
        bits.extend_from_slice(&rsa_key);
        let mut body = tlv(0x30, &algorithm);
        body.extend(tlv(0x03, &bits));
        tlv(0x30, &body)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn ec_point_forms() {
            let mut bare = vec![0x04];
            bare.extend([0x11; 64]);
            assert_eq!(unwrap_ec_point(&bare), &bare[..]);
            let mut wrapped = vec![0x04, 65];
            wrapped.extend_from_slice(&bare);
            assert_eq!(unwrap_ec_point(&wrapped), &bare[..]);
            let mut p384 = vec![0x04];
            p384.extend([0x22; 96]);
            let mut wrapped = vec![0x04, 0x81, 97];
            wrapped.extend_from_slice(&p384);
            assert_eq!(unwrap_ec_point(&wrapped), &p384[..]);
        }

        #[test]
        fn integers_are_minimal_and_positive() {
            assert_eq!(unsigned_integer(&[0, 0, 1]), vec![2, 1, 1]);
            assert_eq!(unsigned_integer(&[0x80]), vec![2, 2, 0, 0x80]);
            assert_eq!(unsigned_integer(&[1, 0, 1]), vec![2, 3, 1, 0, 1]);
        }
    }
}
