//! RFC 7512 `pkcs11:` URIs: parse, and print without secrets.
//!
//! Path attributes (`;`-separated): `token`, `slot-id`, `serial`, `manufacturer`, `model`,
//! `object`, `id` (percent-encoded bytes), `type`; `library-*` and `slot-*` attributes are
//! accepted and ignored, as cosign does. Query attributes (`&`-separated): `module-path`,
//! `module-name`, `pin-value`, `pin-source`, plus two of sigbridge's own with RFC 7512's `x-`
//! prefix: `x-cert-chain` (a PEM file with the certificate chain) and `x-ignore-certificate`.
//!
//! The URIs `cosign pkcs11-tool list-keys-uris` prints parse unchanged. One difference from
//! cosign: cosign decodes `+` as a space (it reuses Go's form decoder); RFC 7512 makes `+` a
//! literal character, and so does sigbridge. cosign itself prints spaces as `%20`.

use std::fmt;
use std::path::PathBuf;

use secrecy::SecretString;

/// Why a `pkcs11:` URI was refused. Never contains the value of `pin-value`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid pkcs11: URI: {0}")]
pub struct UriError(pub(crate) String);

/// What kind of object `type=` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectType {
    /// `type=private`.
    Private,
    /// `type=public`.
    Public,
    /// `type=cert`.
    Cert,
    /// `type=secret-key`.
    SecretKey,
    /// `type=data`.
    Data,
}

/// A parsed `pkcs11:` URI.
#[derive(Clone, Default)]
pub struct Pkcs11Uri {
    /// `token`: the token label.
    pub token: Option<String>,
    /// `slot-id`: the slot number (takes precedence over `token`, as in cosign).
    pub slot_id: Option<u64>,
    /// `serial`: the token serial number.
    pub serial: Option<String>,
    /// `manufacturer`: the token manufacturer.
    pub manufacturer: Option<String>,
    /// `model`: the token model.
    pub model: Option<String>,
    /// `object`: the key label.
    pub object: Option<String>,
    /// `id`: the key's CKA_ID bytes (takes precedence over `object`, as in cosign).
    pub id: Option<Vec<u8>>,
    /// `type`.
    pub object_type: Option<ObjectType>,
    /// `module-path`.
    pub module_path: Option<PathBuf>,
    /// `module-name`.
    pub module_name: Option<String>,
    /// `pin-value` (discouraged: it ends up in shell history and process listings).
    pub pin_value: Option<SecretString>,
    /// `pin-source`: a file holding the PIN, as a path or a `file:` URI.
    pub pin_source: Option<PathBuf>,
    /// `x-cert-chain`: a PEM file with the certificate chain to attach.
    pub cert_chain: Option<PathBuf>,
    /// `x-ignore-certificate`: do not attach the token's certificate.
    pub ignore_certificate: bool,
}

impl fmt::Debug for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Uri")
            .field("uri", &self.to_string())
            .field("pin_value", &self.pin_value.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Prints the URI without `pin-value` (and so never a PIN).
impl fmt::Display for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut path: Vec<String> = Vec::new();
        if let Some(token) = &self.token {
            path.push(format!("token={}", encode(token.as_bytes(), false)));
        }
        if let Some(manufacturer) = &self.manufacturer {
            path.push(format!(
                "manufacturer={}",
                encode(manufacturer.as_bytes(), false)
            ));
        }
        if let Some(model) = &self.model {
            path.push(format!("model={}", encode(model.as_bytes(), false)));
        }
        if let Some(serial) = &self.serial {
            path.push(format!("serial={}", encode(serial.as_bytes(), false)));
        }
        if let Some(slot) = self.slot_id {
            path.push(format!("slot-id={slot}"));
        }
        if let Some(id) = &self.id {
            path.push(format!("id={}", encode_all(id)));
        }
        if let Some(object) = &self.object {
            path.push(format!("object={}", encode(object.as_bytes(), false)));
        }
        if let Some(t) = self.object_type {
            path.push(format!("type={}", type_name(t)));
        }
        let mut query: Vec<String> = Vec::new();
        if let Some(p) = &self.module_path {
            query.push(format!(
                "module-path={}",
                encode(p.to_string_lossy().as_bytes(), true)
            ));
        }
        if let Some(n) = &self.module_name {
            query.push(format!("module-name={}", encode(n.as_bytes(), false)));
        }
        if let Some(p) = &self.pin_source {
            query.push(format!(
                "pin-source={}",
                encode(p.to_string_lossy().as_bytes(), true)
            ));
        }
        if let Some(p) = &self.cert_chain {
            query.push(format!(
                "x-cert-chain={}",
                encode(p.to_string_lossy().as_bytes(), true)
            ));
        }
        if self.ignore_certificate {
            query.push("x-ignore-certificate=true".into());
        }
        write!(f, "pkcs11:{}", path.join(";"))?;
        if !query.is_empty() {
            write!(f, "?{}", query.join("&"))?;
        }
        Ok(())
    }
}

fn type_name(t: ObjectType) -> &'static str {
    match t {
        ObjectType::Private => "private",
        ObjectType::Public => "public",
        ObjectType::Cert => "cert",
        ObjectType::SecretKey => "secret-key",
        ObjectType::Data => "data",
    }
}

impl Pkcs11Uri {
    /// Parse a `pkcs11:` URI.
    pub fn parse(text: &str) -> Result<Self, UriError> {
        let rest = text
            .strip_prefix("pkcs11:")
            .ok_or_else(|| UriError("it does not start with \"pkcs11:\"".into()))?;
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        let mut uri = Pkcs11Uri::default();
        let mut seen: Vec<String> = Vec::new();
        for part in path.split(';').filter(|p| !p.is_empty()) {
            let (name, value) = split_attribute(part)?;
            if seen.contains(&name) {
                return Err(UriError(format!("path attribute {name:?} appears twice")));
            }
            seen.push(name.clone());
            uri.set_path_attribute(&name, value)?;
        }
        if let Some(query) = query {
            let mut seen_query: Vec<String> = Vec::new();
            for part in query.split('&').filter(|p| !p.is_empty()) {
                let (name, value) = split_attribute(part)?;
                if seen_query.contains(&name) {
                    return Err(UriError(format!("query attribute {name:?} appears twice")));
                }
                seen_query.push(name.clone());
                uri.set_query_attribute(&name, value)?;
            }
        }
        Ok(uri)
    }

    fn set_path_attribute(&mut self, name: &str, value: &str) -> Result<(), UriError> {
        match name {
            "token" => self.token = Some(decode_text(name, value)?),
            "serial" => self.serial = Some(decode_text(name, value)?),
            "manufacturer" => self.manufacturer = Some(decode_text(name, value)?),
            "model" => self.model = Some(decode_text(name, value)?),
            "object" => self.object = Some(decode_text(name, value)?),
            "id" => self.id = Some(decode(name, value)?),
            "slot-id" => {
                let text = decode_text(name, value)?;
                let slot = text.parse::<u64>().map_err(|_| {
                    UriError(format!("slot-id must be a decimal number, not {text:?}"))
                })?;
                self.slot_id = Some(slot);
            }
            "type" => {
                let text = decode_text(name, value)?;
                self.object_type = Some(match text.as_str() {
                    "private" => ObjectType::Private,
                    "public" => ObjectType::Public,
                    "cert" => ObjectType::Cert,
                    "secret-key" => ObjectType::SecretKey,
                    "data" => ObjectType::Data,
                    other => {
                        return Err(UriError(format!(
                            "type must be one of private, public, cert, secret-key, data; not {other:?}"
                        )))
                    }
                });
            }
            // Accepted and ignored, as cosign does: library-manufacturer, library-description,
            // library-version, slot-description, slot-manufacturer, and vendor `x-` attributes.
            _ => {
                decode(name, value)?;
            }
        }
        Ok(())
    }

    fn set_query_attribute(&mut self, name: &str, value: &str) -> Result<(), UriError> {
        match name {
            "module-path" => self.module_path = Some(PathBuf::from(decode_text(name, value)?)),
            "module-name" => self.module_name = Some(decode_text(name, value)?),
            "pin-value" => {
                // Decoded into a secret at once; errors never quote the value.
                let bytes = decode(name, value)
                    .map_err(|_| UriError("pin-value is not validly percent-encoded".into()))?;
                let text = String::from_utf8(bytes)
                    .map_err(|_| UriError("pin-value is not UTF-8".into()))?;
                self.pin_value = Some(SecretString::from(text));
            }
            "pin-source" => {
                let text = decode_text(name, value)?;
                self.pin_source = Some(pin_source_path(&text)?);
            }
            "x-cert-chain" => self.cert_chain = Some(PathBuf::from(decode_text(name, value)?)),
            "x-ignore-certificate" => {
                self.ignore_certificate = match decode_text(name, value)?.as_str() {
                    "1" | "true" | "yes" => true,
                    "0" | "false" | "no" => false,
                    other => {
                        return Err(UriError(format!(
                            "x-ignore-certificate must be true or false, not {other:?}"
                        )))
                    }
                }
            }
            _ => {
                decode(name, value)?;
            }
        }
        Ok(())
    }

    /// The `pin-value`, if the URI carries one.
    pub fn pin_value(&self) -> Option<&SecretString> {
        self.pin_value.as_ref()
    }

    /// True when `pin-value` is present (callers warn: it is visible to other users).
    pub fn has_pin_value(&self) -> bool {
        self.pin_value.is_some()
    }
}

/// `pin-source` is a path or a `file:` URI (`file:/p`, `file:///p`, `file://localhost/p`).
fn pin_source_path(text: &str) -> Result<PathBuf, UriError> {
    if text.starts_with('|') {
        return Err(UriError(
            "pin-source commands (|command) are not supported: give a file".into(),
        ));
    }
    let Some(rest) = text.strip_prefix("file:") else {
        return Ok(PathBuf::from(text));
    };
    let path = if let Some(authority_and_path) = rest.strip_prefix("//") {
        match authority_and_path.find('/') {
            Some(0) => authority_and_path,
            Some(i) if &authority_and_path[..i] == "localhost" => &authority_and_path[i..],
            _ => {
                return Err(UriError(format!(
                    "pin-source {text:?} names a remote host; give a local file"
                )))
            }
        }
    } else {
        rest
    };
    if path.is_empty() {
        return Err(UriError("pin-source is an empty file name".into()));
    }
    Ok(PathBuf::from(path))
}

fn split_attribute(part: &str) -> Result<(String, &str), UriError> {
    let (name, value) = part.split_once('=').ok_or_else(|| {
        UriError(format!(
            "attribute {:?} has no '=' (attributes are name=value, separated by ';' before '?' and '&' after)",
            part.chars().take(40).collect::<String>()
        ))
    })?;
    if name.is_empty() {
        return Err(UriError("an attribute has an empty name".into()));
    }
    Ok((name.to_ascii_lowercase(), value))
}

fn decode_text(name: &str, value: &str) -> Result<String, UriError> {
    String::from_utf8(decode(name, value)?)
        .map_err(|_| UriError(format!("the value of {name} is not UTF-8")))
}

/// Percent-decoding (RFC 3986); `+` stays `+` (RFC 7512). `percent-encoding` passes a
/// malformed escape through literally, so every `%` is first checked to be followed by two hex
/// digits (`%+1`, `%G0` and a trailing `%` are refused, never half-decoded).
fn decode(name: &str, value: &str) -> Result<Vec<u8>, UriError> {
    let bytes = value.as_bytes();
    let malformed = bytes.iter().enumerate().any(|(i, &b)| {
        b == b'%'
            && !bytes
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    });
    if malformed {
        return Err(UriError(format!(
            "the value of {name} has a '%' not followed by two hex digits (write a literal '%' as %25)"
        )));
    }
    Ok(percent_encoding::percent_decode(bytes).collect())
}

/// Percent-encode everything but RFC 3986 unreserved characters (and `/` in paths).
fn encode(bytes: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    out
}

/// Every byte as `%xx`, as cosign prints `id`.
fn encode_all(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret as _;

    #[test]
    fn cosign_printed_form_parses_unchanged() {
        let text = "pkcs11:token=token%20label;slot-id=1;id=%6b%65%79%5f%69%64;object=key%20label?module-path=/path/to/some%20folder/libmodule.so&pin-value=1234";
        let uri = Pkcs11Uri::parse(text).unwrap();
        assert_eq!(uri.token.as_deref(), Some("token label"));
        assert_eq!(uri.slot_id, Some(1));
        assert_eq!(uri.id.as_deref(), Some(&b"key_id"[..]));
        assert_eq!(uri.object.as_deref(), Some("key label"));
        assert_eq!(
            uri.module_path.as_deref(),
            Some(std::path::Path::new("/path/to/some folder/libmodule.so"))
        );
        assert_eq!(uri.pin_value().unwrap().expose_secret(), "1234");
    }

    #[test]
    fn display_never_shows_the_pin() {
        let uri = Pkcs11Uri::parse("pkcs11:token=t;object=k?pin-value=s3cr3t-PIN").unwrap();
        assert!(!uri.to_string().contains("s3cr3t"));
        assert!(!format!("{uri:?}").contains("s3cr3t"));
        assert!(format!("{uri:?}").contains("redacted"));
    }

    #[test]
    fn errors_never_quote_the_pin() {
        let err = Pkcs11Uri::parse("pkcs11:token=t?pin-value=ab%zzSECRET").unwrap_err();
        assert!(!err.to_string().contains("SECRET"), "{err}");
    }

    #[test]
    fn rfc7512_examples() {
        // RFC 7512 section 3.3 examples.
        let uri = Pkcs11Uri::parse("pkcs11:").unwrap();
        assert!(uri.token.is_none() && uri.object.is_none());

        let uri = Pkcs11Uri::parse("pkcs11:object=my-pubkey;type=public").unwrap();
        assert_eq!(uri.object.as_deref(), Some("my-pubkey"));
        assert_eq!(uri.object_type, Some(ObjectType::Public));

        let uri = Pkcs11Uri::parse("pkcs11:object=my-key;type=private?pin-source=file:/etc/token")
            .unwrap();
        assert_eq!(uri.object_type, Some(ObjectType::Private));
        assert_eq!(
            uri.pin_source.as_deref(),
            Some(std::path::Path::new("/etc/token"))
        );

        let uri = Pkcs11Uri::parse(
            "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;model=1.0;object=my-certificate;type=cert;id=%69%95%3E%5C%F4%BD%EC%91;serial=?pin-source=file:/etc/token_pin",
        )
        .unwrap();
        assert_eq!(uri.token.as_deref(), Some("The Software PKCS#11 Softtoken"));
        assert_eq!(uri.manufacturer.as_deref(), Some("Snake Oil, Inc."));
        assert_eq!(uri.model.as_deref(), Some("1.0"));
        assert_eq!(
            uri.id.as_deref(),
            Some(&[0x69, 0x95, 0x3e, 0x5c, 0xf4, 0xbd, 0xec, 0x91][..])
        );
        assert_eq!(uri.serial.as_deref(), Some(""));
        assert_eq!(uri.object_type, Some(ObjectType::Cert));

        let uri = Pkcs11Uri::parse("pkcs11:object=my-sign-key;type=private?module-name=mypkcs11")
            .unwrap();
        assert_eq!(uri.module_name.as_deref(), Some("mypkcs11"));

        let uri = Pkcs11Uri::parse(
            "pkcs11:object=my-sign-key;type=private?module-path=/mnt/libmypkcs11.so.1",
        )
        .unwrap();
        assert_eq!(
            uri.module_path.as_deref(),
            Some(std::path::Path::new("/mnt/libmypkcs11.so.1"))
        );

        let uri = Pkcs11Uri::parse("pkcs11:token=Software%20PKCS%2311%20softtoken;manufacturer=Snake%20Oil,%20Inc.?pin-value=the-pin").unwrap();
        assert_eq!(uri.pin_value().unwrap().expose_secret(), "the-pin");

        let uri = Pkcs11Uri::parse("pkcs11:slot-description=Sun%20Metaslot").unwrap();
        assert!(uri.token.is_none());

        let uri = Pkcs11Uri::parse("pkcs11:library-manufacturer=Snake%20Oil,%20Inc.;library-description=Soft%20Token%20Library;library-version=1.23").unwrap();
        assert!(uri.token.is_none());

        let uri = Pkcs11Uri::parse(
            "pkcs11:token=A%20name%20with%20a%20substring%20%25%3B;object=my-certificate;type=cert",
        )
        .unwrap();
        assert_eq!(uri.token.as_deref(), Some("A name with a substring %;"));

        let uri = Pkcs11Uri::parse("pkcs11:token=Name%20with%20a%20small%20A%20with%20acute:%20%C3%A1;object=my-certificate;type=cert").unwrap();
        assert_eq!(
            uri.token.as_deref(),
            Some("Name with a small A with acute: \u{e1}")
        );

        let uri = Pkcs11Uri::parse("pkcs11:token=my-token;object=my-certificate;type=cert;vendor-aaa=value-a?pin-source=file:/etc/token_pin&vendor-bbb=value-b").unwrap();
        assert_eq!(uri.token.as_deref(), Some("my-token"));
    }

    #[test]
    fn plus_is_literal_and_semicolon_separates() {
        let uri = Pkcs11Uri::parse("pkcs11:object=a+b;token=x").unwrap();
        assert_eq!(uri.object.as_deref(), Some("a+b"));
        assert_eq!(uri.token.as_deref(), Some("x"));
    }

    #[test]
    fn pin_source_forms() {
        for (text, path) in [
            ("pin-source=/run/pin", "/run/pin"),
            ("pin-source=file:/run/pin", "/run/pin"),
            ("pin-source=file:///run/pin", "/run/pin"),
            ("pin-source=file://localhost/run/pin", "/run/pin"),
            ("pin-source=relative/pin", "relative/pin"),
        ] {
            let uri = Pkcs11Uri::parse(&format!("pkcs11:token=t?{text}")).unwrap();
            assert_eq!(
                uri.pin_source.as_deref(),
                Some(std::path::Path::new(path)),
                "{text}"
            );
        }
        assert!(Pkcs11Uri::parse("pkcs11:token=t?pin-source=file://other/run/pin").is_err());
        assert!(Pkcs11Uri::parse("pkcs11:token=t?pin-source=|/bin/getpin").is_err());
    }

    #[test]
    fn malformed_uris_are_refused() {
        assert!(Pkcs11Uri::parse("pkcs12:token=t").is_err());
        assert!(Pkcs11Uri::parse("pkcs11:token").is_err());
        assert!(Pkcs11Uri::parse("pkcs11:slot-id=abc").is_err());
        assert!(Pkcs11Uri::parse("pkcs11:id=%4").is_err());
        assert!(Pkcs11Uri::parse("pkcs11:token=a;token=b").is_err());
        assert!(Pkcs11Uri::parse("pkcs11:type=bogus").is_err());
        assert!(Pkcs11Uri::parse("pkcs11:token=t?x-ignore-certificate=maybe").is_err());
    }

    #[test]
    fn malformed_percent_escapes_are_refused() {
        for bad in ["%+1", "%-1", "%G0", "%0G", "%", "a%", "a%4", "%%41"] {
            let err = Pkcs11Uri::parse(&format!("pkcs11:token={bad};object=k"))
                .expect_err(&format!("token={bad} must be refused"));
            assert!(err.to_string().contains("two hex digits"), "{bad}: {err}");
            assert!(
                Pkcs11Uri::parse(&format!("pkcs11:token=t;object=k?x-vendor={bad}")).is_err(),
                "query {bad}"
            );
        }
        let err = Pkcs11Uri::parse("pkcs11:token=t;object=k?pin-value=%+1").unwrap_err();
        assert!(err.to_string().contains("pin-value"), "{err}");
        let uri = Pkcs11Uri::parse("pkcs11:token=a%25b%2fc%2Fd;object=%41+%7e").unwrap();
        assert_eq!(uri.token.as_deref(), Some("a%b/c/d"));
        assert_eq!(uri.object.as_deref(), Some("A+~"));
    }

    #[test]
    fn round_trip_through_display() {
        let text = "pkcs11:token=token%20label;slot-id=1;id=%6b%65%79%5f%69%64;object=key%20label?module-path=/path/to/some%20folder/libmodule.so";
        let uri = Pkcs11Uri::parse(text).unwrap();
        assert_eq!(uri.to_string(), text);
        let again = Pkcs11Uri::parse(&uri.to_string()).unwrap();
        assert_eq!(again.id, uri.id);
        assert_eq!(again.module_path, uri.module_path);
    }

    #[test]
    fn sigbridge_extensions() {
        let uri = Pkcs11Uri::parse(
            "pkcs11:token=t;object=k?x-cert-chain=/etc/chain.pem&x-ignore-certificate=1",
        )
        .unwrap();
        assert_eq!(
            uri.cert_chain.as_deref(),
            Some(std::path::Path::new("/etc/chain.pem"))
        );
        assert!(uri.ignore_certificate);
    }
}
