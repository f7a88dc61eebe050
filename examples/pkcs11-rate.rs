//! PKCS#11 signing rate: signatures per second through sigbridge's PKCS#11 provider, next to
//! the raw C_Sign rate of the same SoftHSM token, for P-256, P-384 and RSA-2048.
//!
//! Usage: `cargo run --release --example pkcs11-rate -- [COUNT]` (default 2000 signatures per
//! row). Needs SoftHSM (`apt-get install -y softhsm2`); the token store is a private temp dir.
//!
//! Rows:
//! - raw C_Sign: cryptoki straight, one session, the digest computed once (the token's ceiling);
//! - provider: `Signer::sign` on a batch of COUNT distinct payloads (host SHA-256, the
//!   blocking-thread hop, one session and one login for the batch);
//! - provider + check: the same, then what `sigbridge sign` does before attaching: DER
//!   normalisation and verification of every signature against the token's public key.

use std::time::{Duration, Instant};

use sigbridge_pkcs11::{Pkcs11Options, Pkcs11Signer};
use sigbridge_signer::{normalise_signature, SignRequest, Signer};
use sigbridge_testkit::{HsmKey, HsmKeyType, SoftHsm, SOFTHSM_USER_PIN};

fn rate(count: usize, took: Duration) -> f64 {
    count as f64 / took.as_secs_f64()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let count: usize = std::env::args()
        .nth(1)
        .map(|c| c.parse())
        .transpose()?
        .unwrap_or(2000);
    let token = SoftHsm::shared().init_token("bench");
    let keys: [(HsmKeyType, HsmKey, &str); 3] = [
        (
            HsmKeyType::P256,
            token.generate(HsmKeyType::P256, "p256", &[1]),
            "ECDSA P-256",
        ),
        (
            HsmKeyType::P384,
            token.generate(HsmKeyType::P384, "p384", &[2]),
            "ECDSA P-384",
        ),
        (
            HsmKeyType::Rsa(2048),
            token.generate(HsmKeyType::Rsa(2048), "rsa2048", &[3]),
            "RSA-2048",
        ),
    ];
    // Payload-sized messages (a cosign simple-signing payload is about 250 bytes).
    let payloads: Vec<Vec<u8>> = (0..count)
        .map(|i| format!("{{\"critical\":{{\"n\":{i:>220}}}}}").into_bytes())
        .collect();

    println!("SoftHSM 2 token, {count} signatures per row, one session, one login");
    println!(
        "{:<12} {:>16} {:>16} {:>22}",
        "key", "raw C_Sign /s", "provider /s", "provider + check /s"
    );
    for (kind, key, name) in &keys {
        let raw = token.raw_sign_loop(key, *kind, &payloads[0], count);

        let uri = format!("{}&pin-value={SOFTHSM_USER_PIN}", token.uri(key));
        // The benchmark's throwaway token PIN; pin-value must be opted into.
        let options = Pkcs11Options {
            allow_pin_value: true,
            ..Pkcs11Options::default()
        };
        let signer = Pkcs11Signer::from_uri(&uri, options)?;
        // Open, log in and find the key outside the timing.
        let public = signer.public_key().await?;
        let start = Instant::now();
        let signatures = signer
            .sign(&payloads, &SignRequest::default())
            .await?
            .into_signed()?;
        let provider = start.elapsed();

        let start = Instant::now();
        let signatures2 = signer
            .sign(&payloads, &SignRequest::default())
            .await?
            .into_signed()?;
        for (payload, raw_sig) in payloads.iter().zip(&signatures2) {
            let der = normalise_signature(&public, raw_sig)?;
            public.verify(payload, &der)?;
        }
        let checked = start.elapsed();
        assert_eq!(signatures.len(), count);

        println!(
            "{:<12} {:>16.0} {:>16.0} {:>22.0}",
            name,
            rate(count, raw),
            rate(count, provider),
            rate(count, checked)
        );
    }
    println!(
        "C_Login calls by the provider in this process: {}",
        sigbridge_pkcs11::login_count()
    );
    Ok(())
}
