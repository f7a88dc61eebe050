//! A self-made certificate authority standing in for Fulcio in tests: a root, an intermediate
//! and leaves carrying Fulcio's extensions, each with chosen dates, EKUs and identity. Shared by
//! the unit tests and `tests/suite/e2e_keyless.rs` (included there by path).

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType, SigningKey as _,
};

/// Fulcio's arc, for rcgen's custom extensions.
const FULCIO: [u64; 9] = [1, 3, 6, 1, 4, 1, 57264, 1, 0];

/// A root and an intermediate, both able to issue.
pub struct TestCa {
    pub root_der: Vec<u8>,
    pub intermediate_der: Vec<u8>,
    intermediate_params: CertificateParams,
    intermediate_key: KeyPair,
}

/// What a leaf says and when it is valid.
pub struct LeafSpec {
    pub san_uri: String,
    pub issuer: String,
    /// The issuer written in `.1.8` when it should differ from `.1.1` (a forged certificate).
    pub issuer_v2: Option<String>,
    pub workflow_trigger: Option<String>,
    pub workflow_repository: Option<String>,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    pub code_signing: bool,
}

impl LeafSpec {
    /// A GitHub Actions-like leaf valid ten minutes from `not_before`.
    pub fn github(not_before: i64) -> Self {
        Self {
            san_uri: "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"
                .into(),
            issuer: "https://token.actions.githubusercontent.com".into(),
            issuer_v2: None,
            workflow_trigger: Some("push".into()),
            workflow_repository: Some("acme/app".into()),
            not_before,
            not_after: not_before + 600,
            code_signing: true,
        }
    }
}

/// A leaf and its key (which signs payloads).
pub struct Leaf {
    pub pem: String,
    pub key: KeyPair,
}

impl Leaf {
    /// An ECDSA P-256 SHA-256 ASN.1 signature over `message` with the leaf's key.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.key.sign(message).expect("sign")
    }
}

fn at(secs: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(secs).expect("time")
}

fn fulcio(arc: u64) -> Vec<u64> {
    let mut oid = FULCIO.to_vec();
    *oid.last_mut().expect("arc") = arc;
    oid
}

/// DER UTF8String.
fn utf8(s: &str) -> Vec<u8> {
    let mut out = vec![0x0c];
    let len = s.len();
    if len < 128 {
        out.push(len as u8);
    } else {
        out.extend([0x81, len as u8]);
    }
    out.extend(s.as_bytes());
    out
}

impl TestCa {
    /// A root valid from `from` to `to` (Unix seconds) with an intermediate of the same span.
    pub fn new(name: &str, from: i64, to: i64) -> Self {
        Self::with_spans(name, (from, to), (from, to))
    }

    /// A root and an intermediate, each valid over its own `(from, to)` span.
    pub fn with_spans(name: &str, root_span: (i64, i64), intermediate_span: (i64, i64)) -> Self {
        let (from, to) = root_span;
        let root_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).expect("key");
        let mut root = CertificateParams::new(Vec::<String>::new()).expect("params");
        root.distinguished_name = DistinguishedName::new();
        root.distinguished_name
            .push(DnType::CommonName, format!("{name} root"));
        root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        root.not_before = at(from);
        root.not_after = at(to);
        let root_cert = root.self_signed(&root_key).expect("root");
        let root_issuer = rcgen::Issuer::new(root, root_key);

        let intermediate_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).expect("key");
        let mut inter = CertificateParams::new(Vec::<String>::new()).expect("params");
        inter.distinguished_name = DistinguishedName::new();
        inter
            .distinguished_name
            .push(DnType::CommonName, format!("{name} intermediate"));
        inter.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        inter.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        inter.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
        inter.not_before = at(intermediate_span.0);
        inter.not_after = at(intermediate_span.1);
        let inter_cert = inter
            .signed_by(&intermediate_key, &root_issuer)
            .expect("intermediate");
        Self {
            root_der: root_cert.der().to_vec(),
            intermediate_der: inter_cert.der().to_vec(),
            intermediate_params: inter,
            intermediate_key,
        }
    }

    /// The chain as a trusted root lists it: intermediate, then root.
    pub fn chain_der(&self) -> Vec<Vec<u8>> {
        vec![self.intermediate_der.clone(), self.root_der.clone()]
    }

    /// The chain as PEM (intermediate, then root), as cosign's chain annotation holds it.
    pub fn chain_pem(&self) -> String {
        [&self.intermediate_der, &self.root_der]
            .iter()
            .map(|d| pem_of(d))
            .collect()
    }

    /// Issue a leaf as Fulcio would: empty subject, critical SAN, the Fulcio extensions.
    pub fn issue(&self, spec: &LeafSpec) -> Leaf {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.distinguished_name = DistinguishedName::new();
        p.subject_alt_names = vec![SanType::URI(spec.san_uri.as_str().try_into().expect("ia5"))];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = if spec.code_signing {
            vec![ExtendedKeyUsagePurpose::CodeSigning]
        } else {
            vec![ExtendedKeyUsagePurpose::ServerAuth]
        };
        p.not_before = at(spec.not_before);
        p.not_after = at(spec.not_after);
        p.custom_extensions.push(CustomExtension::from_oid_content(
            &fulcio(1),
            spec.issuer.as_bytes().to_vec(),
        ));
        if let Some(t) = &spec.workflow_trigger {
            p.custom_extensions.push(CustomExtension::from_oid_content(
                &fulcio(2),
                t.as_bytes().to_vec(),
            ));
        }
        if let Some(r) = &spec.workflow_repository {
            p.custom_extensions.push(CustomExtension::from_oid_content(
                &fulcio(5),
                r.as_bytes().to_vec(),
            ));
        }
        p.custom_extensions.push(CustomExtension::from_oid_content(
            &fulcio(8),
            utf8(spec.issuer_v2.as_ref().unwrap_or(&spec.issuer)),
        ));
        let issuer = rcgen::Issuer::from_params(&self.intermediate_params, &self.intermediate_key);
        let cert = p.signed_by(&key, &issuer).expect("leaf");
        Leaf {
            pem: cert.pem(),
            key,
        }
    }
}

/// PEM CERTIFICATE of `der`.
pub fn pem_of(der: &[u8]) -> String {
    sigbridge_signer::pem::encode("CERTIFICATE", der)
}
