//! Test certificates made in-process with `rcgen` (no openssl subprocesses): the registry's TLS
//! CA and server certificate, the token server's signing certificate, self-signed certificates
//! for existing keys, and CA-issued certificates for keys that live elsewhere (an HSM).

use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType,
    SignatureAlgorithm, PKCS_ECDSA_P256_SHA256,
};

/// A certificate and its (PKCS#8, PEM) private key.
pub struct CertAndKey {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A CA certificate and a server certificate for IP 127.0.0.1 and `localhost` that it issued.
pub struct TlsChain {
    pub ca: CertAndKey,
    pub server: CertAndKey,
}

/// A P-256 CA plus a server certificate it signed (serverAuth, SAN IP:127.0.0.1 and localhost).
pub fn tls_chain(ca_name: &str) -> TlsChain {
    let ca_key = new_p256_key();
    let ca_params = ca_params(ca_name);
    let ca_cert = ca_params.self_signed(&ca_key).expect("self-sign test CA");
    let issuer = Issuer::new(ca_params, &ca_key);

    let server_key = new_p256_key();
    let mut params = base_params("127.0.0.1");
    params.subject_alt_names = vec![
        SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()),
        SanType::DnsName("localhost".try_into().expect("valid DNS name")),
    ];
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server = params
        .signed_by(&server_key, &issuer)
        .expect("sign test server certificate");
    TlsChain {
        ca: CertAndKey {
            cert_pem: ca_cert.pem(),
            key_pem: ca_key.serialize_pem(),
        },
        server: CertAndKey {
            cert_pem: server.pem(),
            key_pem: server_key.serialize_pem(),
        },
    }
}

/// A fresh P-256 key and a self-signed certificate for it, shaped like `openssl req -x509`'s
/// default (a CA certificate).
pub fn self_signed_p256(common_name: &str) -> CertAndKey {
    let key = new_p256_key();
    let cert = ca_params(common_name)
        .self_signed(&key)
        .expect("self-sign certificate");
    CertAndKey {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// A self-signed certificate (PEM) for an existing P-256 PKCS#8 private key (PEM), shaped like
/// `openssl req -x509 -key KEY`'s default.
pub fn self_signed_for_key(private_key_pem: &str, common_name: &str) -> String {
    let key = KeyPair::from_pem(private_key_pem).expect("a PKCS#8 P-256 private key");
    ca_params(common_name)
        .self_signed(&key)
        .expect("self-sign certificate")
        .pem()
}

/// A code-signing certificate for the P-256 public key `point` (65-byte uncompressed SEC1),
/// issued by a fresh CA: the key's owner (an HSM) need not take part. Returns `(ca, leaf)`.
pub fn code_signing_for_point(
    point: &[u8],
    ca_name: &str,
    leaf_name: &str,
) -> (String, rcgen::Certificate) {
    assert_eq!(point.len(), 65, "not an uncompressed P-256 point");
    let ca_key = new_p256_key();
    let ca_params = ca_params(ca_name);
    let ca_cert = ca_params.self_signed(&ca_key).expect("self-sign test CA");
    let issuer = Issuer::new(ca_params, &ca_key);

    let mut params = base_params(leaf_name);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
    let leaf = params
        .signed_by(&P256Point(point), &issuer)
        .expect("issue code-signing certificate");
    (ca_cert.pem(), leaf)
}

/// A public key known only by its point; enough for a CA to certify it.
struct P256Point<'a>(&'a [u8]);

impl PublicKeyData for P256Point<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.0
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &PKCS_ECDSA_P256_SHA256
    }
}

fn new_p256_key() -> KeyPair {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("generate P-256 key")
}

fn ca_params(common_name: &str) -> CertificateParams {
    let mut params = base_params(common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// Subject CN only, valid from 2020 to 2100 (tests never depend on expiry), random serial.
fn base_params(common_name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(2100, 1, 1);
    let mut serial = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut serial);
    serial[0] &= 0x7f; // positive
    params.serial_number = Some(serial.to_vec().into());
    params
}
