//! Object identifiers of the key algorithms and curves sigbridge supports, and names for the
//! common ones it does not, shared by every provider that parses keys.

use spki::ObjectIdentifier;

// Literal OIDs (X.660 facts); `new_unwrap` runs at compile time, so a typo fails the build
// rather than panicking at run time.
pub const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
pub const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
pub const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
pub const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
pub const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// A human name for a key algorithm or curve OID that sigbridge does not support.
pub fn unsupported_oid_name(oid: ObjectIdentifier) -> String {
    let name = match oid.to_string().as_str() {
        "1.3.132.0.35" => "ECDSA P-521",
        "1.3.132.0.10" => "ECDSA secp256k1",
        "1.3.36.3.3.2.8.1.1.7" => "ECDSA brainpoolP256r1",
        "1.2.840.113549.1.1.10" => "RSA-PSS",
        "1.3.101.110" => "X25519",
        "1.3.101.111" => "X448",
        "1.3.101.113" => "Ed448",
        "1.2.840.10040.4.1" => "DSA",
        other => return format!("algorithm or curve OID {other}"),
    };
    name.to_string()
}
