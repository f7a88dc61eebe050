//! A private SoftHSM 2 token store that tests initialise themselves (no softhsm2-util step),
//! in the manner of rust-cryptoki's test fixtures: C_InitToken, SO login, C_InitPIN, then key
//! pairs generated on the token.
//!
//! SoftHSM reads `SOFTHSM2_CONF` once, at C_Initialize, and a process can initialise a module
//! only once; so there is one store per test process ([`SoftHsm::shared`]), and each test makes
//! its own token(s) in it under a unique label. Pass [`SoftHsm::env`] to every process that
//! should see the store (sigbridge, pkcs11-tool).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, CertificateType, ObjectClass};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use tempfile::TempDir;

use crate::certs;

/// Where Debian's softhsm2 package puts the module.
pub const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// The user PIN of every test token.
pub const SOFTHSM_USER_PIN: &str = "fedcba123456";
/// The security officer PIN of every test token.
pub const SOFTHSM_SO_PIN: &str = "abcdef654321";

/// DER of the named-curve OIDs, as CKA_EC_PARAMS holds them.
const P256_PARAMS: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const P384_PARAMS: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
const SECP256K1_PARAMS: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a];
/// SubjectPublicKeyInfo header for a P-256 key, followed by the 65-byte uncompressed point.
const P256_SPKI_HEADER: &[u8] = &[
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// The process-wide private SoftHSM store.
pub struct SoftHsm {
    dir: TempDir,
    conf: PathBuf,
    ctx: Pkcs11,
    // SoftHSM adds a fresh empty slot after each C_InitToken; one initialiser at a time.
    init_lock: Mutex<()>,
}

/// Which key to make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HsmKeyType {
    /// ECDSA on NIST P-256.
    P256,
    /// ECDSA on NIST P-384.
    P384,
    /// ECDSA on secp256k1 (a curve sigbridge does not sign with).
    Secp256k1,
    /// RSA with this many bits.
    Rsa(u64),
}

impl SoftHsm {
    /// The store of this process, created (in a temp dir, with its own SOFTHSM2_CONF) on first
    /// use. Panics with the install command if SoftHSM is missing.
    pub fn shared() -> &'static SoftHsm {
        static SHARED: OnceLock<SoftHsm> = OnceLock::new();
        SHARED.get_or_init(|| {
            assert!(
                Path::new(SOFTHSM_MODULE).is_file(),
                "{SOFTHSM_MODULE} is missing: run `apt-get install -y softhsm2 opensc` (or scripts/install-test-deps.sh)"
            );
            let dir = tempfile::Builder::new()
                .prefix("softhsm-")
                .tempdir()
                .expect("create SoftHSM dir");
            let tokens = dir.path().join("tokens");
            std::fs::create_dir(&tokens).expect("create token dir");
            let conf = dir.path().join("softhsm2.conf");
            std::fs::write(
                &conf,
                format!(
                    "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                    tokens.display()
                ),
            )
            .expect("write softhsm2.conf");
            // SoftHSM reads SOFTHSM2_CONF in C_Initialize, right below, and never again.
            std::env::set_var("SOFTHSM2_CONF", &conf);
            let ctx = Pkcs11::new(SOFTHSM_MODULE).expect("load SoftHSM");
            match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
                Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
                Err(e) => panic!("C_Initialize of SoftHSM failed: {e}"),
            }
            SoftHsm {
                dir,
                conf,
                ctx,
                init_lock: Mutex::new(()),
            }
        })
    }

    /// The SOFTHSM2_CONF file of the store.
    pub fn conf(&self) -> &Path {
        &self.conf
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `("SOFTHSM2_CONF", conf)`, for `std::process::Command::env`.
    pub fn env(&self) -> (&'static str, PathBuf) {
        ("SOFTHSM2_CONF", self.conf.clone())
    }

    /// The cryptoki context of this process.
    pub fn context(&self) -> &Pkcs11 {
        &self.ctx
    }

    /// Initialise a fresh token labelled `label` (C_InitToken, SO login, C_InitPIN with
    /// [`SOFTHSM_USER_PIN`]).
    pub fn init_token(&'static self, label: &str) -> HsmToken {
        let _guard = self.init_lock.lock().unwrap_or_else(|p| p.into_inner());
        let slots = self.ctx.get_all_slots().expect("C_GetSlotList");
        let slot = slots
            .into_iter()
            .find(|s| {
                self.ctx
                    .get_token_info(*s)
                    .map(|t| !t.token_initialized())
                    .unwrap_or(false)
            })
            .expect("SoftHSM offers no free slot");
        let so_pin = AuthPin::from(SOFTHSM_SO_PIN.to_string());
        self.ctx
            .init_token(slot, &so_pin, label)
            .expect("C_InitToken");
        // The token now lives in another slot number: find it by label.
        let slot = self
            .ctx
            .get_slots_with_initialized_token()
            .expect("C_GetSlotList")
            .into_iter()
            .find(|s| {
                self.ctx
                    .get_token_info(*s)
                    .map(|t| t.label().trim_end() == label)
                    .unwrap_or(false)
            })
            .expect("the new token is listed");
        let session = self.ctx.open_rw_session(slot).expect("C_OpenSession");
        session
            .login(UserType::So, Some(&so_pin))
            .expect("SO login");
        session
            .init_pin(&AuthPin::from(SOFTHSM_USER_PIN.to_string()))
            .expect("C_InitPIN");
        session.logout().expect("C_Logout");
        HsmToken {
            hsm: self,
            slot,
            label: label.to_string(),
        }
    }
}

/// A token in the shared store.
pub struct HsmToken {
    hsm: &'static SoftHsm,
    slot: Slot,
    label: String,
}

/// A key pair made on a token.
#[derive(Clone, Debug)]
pub struct HsmKey {
    /// CKA_LABEL.
    pub label: String,
    /// CKA_ID.
    pub id: Vec<u8>,
}

impl HsmKey {
    /// The id percent-encoded as in a pkcs11: URI.
    pub fn uri_id(&self) -> String {
        self.id.iter().map(|b| format!("%{b:02x}")).collect()
    }
}

impl HsmToken {
    /// The token label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The slot number in this process. Other processes see another one: SoftHSM numbers a
    /// token it loads from disk after its serial number, but keeps a token initialised in
    /// this process in the slot it was made in. Ask `sigbridge pkcs11 tokens` for theirs.
    pub fn local_slot_id(&self) -> u64 {
        self.slot.id()
    }

    /// A `pkcs11:` URI for `key` on this token (no PIN, module path included).
    pub fn uri(&self, key: &HsmKey) -> String {
        format!(
            "pkcs11:token={};id={};object={}?module-path={SOFTHSM_MODULE}",
            encode(&self.label),
            key.uri_id(),
            encode(&key.label)
        )
    }

    fn user_session(&self) -> Session {
        let session = self
            .hsm
            .ctx
            .open_rw_session(self.slot)
            .expect("C_OpenSession");
        match session.login(
            UserType::User,
            Some(&AuthPin::from(SOFTHSM_USER_PIN.to_string())),
        ) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => panic!("user login to {}: {e}", self.label),
        }
        session
    }

    /// Generate a key pair on the token (private key sensitive and not extractable).
    pub fn generate(&self, kind: HsmKeyType, label: &str, id: &[u8]) -> HsmKey {
        let session = self.user_session();
        let common = |private: bool| {
            vec![
                Attribute::Token(true),
                Attribute::Private(private),
                Attribute::Label(label.as_bytes().to_vec()),
                Attribute::Id(id.to_vec()),
            ]
        };
        let mut public = common(false);
        public.push(Attribute::Verify(true));
        let mut private = common(true);
        private.extend([
            Attribute::Sign(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
        ]);
        let mechanism = match kind {
            HsmKeyType::P256 | HsmKeyType::P384 | HsmKeyType::Secp256k1 => {
                let params = match kind {
                    HsmKeyType::P256 => P256_PARAMS,
                    HsmKeyType::P384 => P384_PARAMS,
                    _ => SECP256K1_PARAMS,
                };
                public.push(Attribute::EcParams(params.to_vec()));
                Mechanism::EccKeyPairGen
            }
            HsmKeyType::Rsa(bits) => {
                public.push(Attribute::ModulusBits(bits.into()));
                public.push(Attribute::PublicExponent(vec![1, 0, 1]));
                Mechanism::RsaPkcsKeyPairGen
            }
        };
        session
            .generate_key_pair(&mechanism, &public, &private)
            .unwrap_or_else(|e| panic!("generating {kind:?} key {label} on {}: {e}", self.label));
        HsmKey {
            label: label.to_string(),
            id: id.to_vec(),
        }
    }

    /// Sign `message` `count` times straight through cryptoki on one logged-in session, the
    /// way the token is fastest (EC: `CKM_ECDSA` over a precomputed SHA-256; RSA:
    /// `CKM_SHA256_RSA_PKCS`); returns the time the C_Sign calls took. The raw rate a
    /// benchmark compares sigbridge's provider against.
    pub fn raw_sign_loop(
        &self,
        key: &HsmKey,
        kind: HsmKeyType,
        message: &[u8],
        count: usize,
    ) -> std::time::Duration {
        use sha2::Digest as _;
        let session = self.user_session();
        let handle = *session
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Id(key.id.clone()),
            ])
            .expect("find private key")
            .first()
            .expect("private key");
        let digest = sha2::Sha256::digest(message);
        let (mechanism, input): (Mechanism, &[u8]) = match kind {
            HsmKeyType::Rsa(_) => (Mechanism::Sha256RsaPkcs, message),
            _ => (Mechanism::Ecdsa, &digest[..]),
        };
        let start = std::time::Instant::now();
        for _ in 0..count {
            session.sign(&mechanism, handle, input).expect("C_Sign");
        }
        start.elapsed()
    }

    /// PEM SubjectPublicKeyInfo of a P-256 key on this token (from its public-key object).
    pub fn p256_public_pem(&self, key: &HsmKey) -> String {
        let mut der = P256_SPKI_HEADER.to_vec();
        der.extend_from_slice(&self.p256_point(key));
        pem("PUBLIC KEY", &der)
    }

    /// The P-256 public key of `key` as a 65-byte uncompressed SEC1 point.
    pub fn p256_point(&self, key: &HsmKey) -> Vec<u8> {
        let session = self.user_session();
        let handles = session
            .find_objects(&[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::Id(key.id.clone()),
            ])
            .expect("find public key");
        let handle = *handles.first().expect("public key object");
        let attrs = session
            .get_attributes(handle, &[AttributeType::EcPoint])
            .expect("read CKA_EC_POINT");
        let point = attrs
            .into_iter()
            .find_map(|a| match a {
                Attribute::EcPoint(p) => Some(p),
                _ => None,
            })
            .expect("CKA_EC_POINT");
        // DER OCTET STRING (04 41 04 ...) around the 65-byte uncompressed point.
        let point = if point.len() == 67 {
            &point[2..]
        } else {
            &point[..]
        };
        assert_eq!(point.len(), 65, "not an uncompressed P-256 point");
        point.to_vec()
    }

    /// Store a DER X.509 certificate on the token under `key`'s id and label.
    pub fn import_certificate(&self, key: &HsmKey, der: &[u8]) {
        let session = self.user_session();
        session
            .create_object(&[
                Attribute::Class(ObjectClass::CERTIFICATE),
                Attribute::CertificateType(CertificateType::X_509),
                Attribute::Token(true),
                Attribute::Private(false),
                Attribute::Label(key.label.as_bytes().to_vec()),
                Attribute::Id(key.id.clone()),
                Attribute::Subject(certificate_subject(der)),
                Attribute::Value(der.to_vec()),
            ])
            .expect("C_CreateObject (certificate)");
    }

    /// Issue a certificate for the P-256 `key` from a fresh test CA (the token's key cannot
    /// sign it outside the HSM, so the CA certifies the HSM's public key), store it on the
    /// token, and return the files.
    pub fn issue_certificate(&self, key: &HsmKey, dir: &Path) -> IssuedCertificate {
        let (ca_pem, leaf) = certs::code_signing_for_point(
            &self.p256_point(key),
            "sigbridge test CA",
            "sigbridge pkcs11 test signer",
        );
        let ca_cert = dir.join("ca.pem");
        std::fs::write(&ca_cert, ca_pem).expect("write CA certificate");
        let cert_pem = dir.join(format!("{}-cert.pem", key.label));
        std::fs::write(&cert_pem, leaf.pem()).expect("write certificate");
        let der = leaf.der().to_vec();
        self.import_certificate(key, &der);
        IssuedCertificate {
            certificate_pem: cert_pem,
            ca_pem: ca_cert,
            der,
        }
    }
}

/// Files of a certificate issued by [`HsmToken::issue_certificate`].
#[derive(Clone, Debug)]
pub struct IssuedCertificate {
    /// The leaf certificate (PEM), also stored on the token.
    pub certificate_pem: PathBuf,
    /// The test CA's certificate (PEM): the chain.
    pub ca_pem: PathBuf,
    /// The leaf in DER.
    pub der: Vec<u8>,
}

/// The standard fixture: a fresh token with P-256 (`id 01`, with a certificate), P-384
/// (`id 02`) and RSA-2048 (`id 03`) keys.
pub struct StandardToken {
    /// The token.
    pub token: HsmToken,
    /// ECDSA P-256, with a certificate on the token.
    pub p256: HsmKey,
    /// ECDSA P-384.
    pub p384: HsmKey,
    /// RSA-2048.
    pub rsa: HsmKey,
    /// The P-256 key's certificate and its CA.
    pub certificate: IssuedCertificate,
}

impl StandardToken {
    /// Make one in the shared store; `dir` receives the certificate files.
    pub fn create(label: &str, dir: &Path) -> StandardToken {
        let token = SoftHsm::shared().init_token(label);
        let p256 = token.generate(HsmKeyType::P256, "p256", &[0x01]);
        let p384 = token.generate(HsmKeyType::P384, "p384", &[0x02]);
        let rsa = token.generate(HsmKeyType::Rsa(2048), "rsa2048", &[0x03]);
        let certificate = token.issue_certificate(&p256, dir);
        StandardToken {
            token,
            p256,
            p384,
            rsa,
            certificate,
        }
    }
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02x}")
            }
        })
        .collect()
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// One DER element: (tag, header length, content length).
fn der_header(der: &[u8]) -> (u8, usize, usize) {
    let tag = der[0];
    let first = der[1];
    if first < 0x80 {
        return (tag, 2, usize::from(first));
    }
    let n = usize::from(first & 0x7f);
    let len = der[2..2 + n]
        .iter()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    (tag, 2 + n, len)
}

/// The DER subject Name of a certificate (CKA_SUBJECT is required when storing one).
fn certificate_subject(cert: &[u8]) -> Vec<u8> {
    let (_, h, _) = der_header(cert); // Certificate SEQUENCE
    let tbs = &cert[h..];
    let (_, h, _) = der_header(tbs); // TBSCertificate SEQUENCE
    let mut rest = &tbs[h..];
    let skip = |rest: &mut &[u8]| -> Vec<u8> {
        let (_, h, l) = der_header(rest);
        let element = rest[..h + l].to_vec();
        *rest = &rest[h + l..];
        element
    };
    if rest[0] == 0xa0 {
        skip(&mut rest); // [0] version
    }
    skip(&mut rest); // serialNumber
    skip(&mut rest); // signature AlgorithmIdentifier
    skip(&mut rest); // issuer
    skip(&mut rest); // validity
    skip(&mut rest) // subject
}
