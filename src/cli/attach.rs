//! `sigbridge attach --payload P --signature S IMAGE`: the manual flow (generate, sign
//! elsewhere, attach), checked before anything is written. `--format bundle` takes the DSSE PAE
//! from `generate --format bundle` and stores a Sigstore bundle as an OCI referrer instead.

use std::path::PathBuf;

use base64::Engine as _;
use sigbridge::attach::attach_signature;
use sigbridge::format::bundle::{self, BUNDLE_MEDIA_TYPE};
use sigbridge::format::{Payload, SigstoreBundle, SimpleSigning};
use sigbridge::payload::{parse_annotations, ParsedPayload};
use sigbridge::store::{ReferrersStore, SigTagStore, SignatureStore};
use sigbridge::{Error, ExitCode};
use sigbridge_signer::{normalise_signature, CertificateMaterial, PublicKey};

use super::common::{read_small_file, resolve, signature_repository_override, RegistryArgs, Verb};
use super::formats::OneFormat;
use super::verify::load_public_key;
use super::OutputFormat;

/// Payloads are small JSON documents; anything bigger is not one.
const MAX_PAYLOAD_FILE: u64 = 1024 * 1024;
const MAX_SIGNATURE_FILE: u64 = 64 * 1024;
const MAX_CERT_FILE: u64 = 1024 * 1024;
/// A raw P-256 `r||s` signature (and an Ed25519 one) is this long.
const RAW_P256_SIGNATURE_LEN: usize = 64;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The payload file that was signed (e.g. from `sigbridge generate`), attached verbatim.
    #[arg(long, value_name = "FILE")]
    pub payload: PathBuf,

    /// The signature file: base64 (as cosign writes it) or raw binary (DER, or r||s with --key).
    /// `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    pub signature: String,

    /// PEM certificate of the signing key, attached as dev.sigstore.cosign/certificate; the
    /// signature must verify with its key.
    #[arg(long, value_name = "FILE")]
    pub certificate: Option<PathBuf>,

    /// PEM chain (intermediates to root), attached as dev.sigstore.cosign/chain.
    #[arg(long, value_name = "FILE", requires = "certificate")]
    pub certificate_chain: Option<PathBuf>,

    /// Public key to check the signature with before attaching (PEM file or env://VAR).
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,

    /// legacy: a simple-signing payload stored at the `.sig` tag; bundle: the DSSE PAE from
    /// `generate --format bundle`, stored as a Sigstore bundle referrer (needs --key or
    /// --certificate).
    #[arg(long, value_enum, default_value_t = OneFormat::Legacy)]
    pub format: OneFormat,

    /// With --format bundle: the `-a` annotations given to `generate` (the PAE must be exactly
    /// the one built with them).
    #[arg(short = 'a', long = "annotations", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,

    /// The image the payload is for.
    #[arg(value_name = "IMAGE")]
    pub first: String,

    /// cosign's `attach signature … IMAGE` spelling: then `first` is the word `signature`.
    #[arg(hide = true, value_name = "IMAGE")]
    pub second: Option<String>,

    /// Output on stdout.
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

impl Args {
    /// The image, accepting cosign's `attach signature [flags] IMAGE` as well as
    /// `attach [flags] IMAGE`; any other second positional is a usage error (exit 2).
    fn image(&self) -> &str {
        match &self.second {
            None => &self.first,
            Some(image) if self.first == "signature" => image,
            Some(image) => clap::Error::raw(
                clap::error::ErrorKind::UnknownArgument,
                format!(
                    "unexpected argument {image:?} after image {:?}: attach takes one IMAGE (cosign's form `attach signature --payload P --signature S IMAGE` works too)\n",
                    self.first
                ),
            )
            .exit(),
        }
    }
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let image_arg = args.image().to_string();
    let payload = read_small_file(&args.payload, MAX_PAYLOAD_FILE)?;
    let parsed = match args.format {
        OneFormat::Legacy => {
            if !args.annotations.is_empty() {
                anyhow::bail!(Error::InvalidInput(
                    "-a applies to --format bundle only: a legacy payload is attached verbatim, with the annotations it holds".into()
                ));
            }
            ParsedPayload::parse(&payload).map_err(|e| {
                Error::InvalidInput(format!(
                    "{}: not a cosign payload: {e}",
                    args.payload.display()
                ))
            })?
        }
        OneFormat::Bundle => {
            if args.key.is_none() && args.certificate.is_none() {
                anyhow::bail!(Error::InvalidInput(
                    "--format bundle needs --key PUB or --certificate: the bundle names the signer's key, and the signature is checked with it before anything is written".into()
                ));
            }
            if args.certificate_chain.is_some() {
                anyhow::bail!(Error::InvalidInput(
                    "--certificate-chain cannot go into a Sigstore bundle v0.3 (it holds the leaf certificate only); drop it or use --format legacy".into()
                ));
            }
            bundle::read_signed_bytes(&payload).map_err(|e| {
                Error::InvalidInput(format!(
                    "{}: not the bytes `sigbridge generate --format bundle` prints: {e}",
                    args.payload.display()
                ))
            })?
        }
    };
    let annotations = parse_annotations(&args.annotations)?;
    let raw_signature = if args.signature == "-" {
        use std::io::Read;
        let mut buf = Vec::new();
        std::io::stdin()
            .take(MAX_SIGNATURE_FILE + 1)
            .read_to_end(&mut buf)?;
        if buf.len() as u64 > MAX_SIGNATURE_FILE {
            anyhow::bail!(Error::InvalidInput(
                "the signature on standard input is larger than 64 KiB".into()
            ));
        }
        buf
    } else {
        read_small_file(std::path::Path::new(&args.signature), MAX_SIGNATURE_FILE)?
    };
    let signature = decode_signature_input(&raw_signature)?;

    let certificate = match &args.certificate {
        Some(p) => Some(pem_text(p, MAX_CERT_FILE)?),
        None => None,
    };
    let chain = match &args.certificate_chain {
        Some(p) => Some(pem_text(p, MAX_CERT_FILE)?),
        None => None,
    };
    let cert_key = match &certificate {
        Some(pem) => Some(
            PublicKey::from_pem(pem).map_err(|source| Error::InvalidKey {
                context: format!(
                    "certificate {}",
                    args.certificate
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                ),
                source,
            })?,
        ),
        None => None,
    };
    let key = match &args.key {
        Some(spec) => Some(load_public_key(spec).await?),
        None => None,
    };

    // Every key we were given must accept the signature; normalise with the first one.
    let checkers: Vec<(String, &PublicKey)> = key
        .iter()
        .map(|k| ("--key".to_string(), k))
        .chain(cert_key.iter().map(|k| ("--certificate".to_string(), k)))
        .collect();
    let signature = match checkers.first() {
        Some((what, k)) => {
            // A signature that cannot even be decoded for this key is malformed input (3);
            // one that decodes but does not verify is a mismatch (5, below).
            normalise_signature(k, &signature).map_err(|e| {
                Error::InvalidInput(format!("the signature is not usable with {what}: {e}"))
            })?
        }
        None => {
            // Nothing to verify with, but garbage is still refused: the bytes must at least
            // have the shape of a signature cosign could check.
            sigbridge_signer::classify_unkeyed_signature(&signature).map_err(|e| {
                Error::InvalidInput(format!(
                    "the signature is {e}; pass --key to check (and convert) it"
                ))
            })?;
            // 64 bytes is raw ECDSA r||s (or Ed25519): stored as is, cosign could never verify
            // an ECDSA one, and only the key tells which it is.
            if signature.len() == RAW_P256_SIGNATURE_LEN {
                anyhow::bail!(Error::InvalidInput(
                    "the signature is 64 raw bytes (ECDSA r||s, or Ed25519), which cannot be attached unchecked: cosign verifies ECDSA only in ASN.1 DER. Pass --key PUB (or --certificate) so it is checked and converted, or give a DER signature".into()
                ));
            }
            tracing::warn!(
                "no --key or --certificate given: the signature is attached without being checked"
            );
            signature
        }
    };
    for (what, k) in &checkers {
        k.verify(&payload, &signature)
            .map_err(|source| Error::Signature {
                context: format!(
                    "signature over {} checked with {what}",
                    args.payload.display()
                ),
                source,
            })?;
    }

    let client = args.registry.client()?;
    let image = resolve(&client, &image_arg, Verb::Sign).await?;
    if parsed.manifest_digest != image.digest.to_string() {
        anyhow::bail!(Error::PayloadDigestMismatch {
            claimed: parsed.manifest_digest,
            image: image.reference.to_string(),
            actual: image.digest.to_string(),
        });
    }
    let certificate = certificate.map(|certificate_pem| CertificateMaterial {
        certificate_pem,
        chain_pem: chain,
    });
    let (location, outcome) = match args.format {
        OneFormat::Legacy => {
            let store = SigTagStore::new(&client, signature_repository_override()?);
            let payload = Payload {
                bytes: payload,
                identity: parsed.docker_reference,
            };
            let outcome = attach_signature(
                &SimpleSigning::default(),
                &store,
                &image,
                &payload,
                &signature,
                certificate.as_ref(),
            )
            .await?;
            (store.location(&image), outcome)
        }
        OneFormat::Bundle => {
            // Only the exact PAE sigbridge builds is wrapped: the bundle's statement is then
            // the one `verify` and cosign 3 expect, and nothing else rides along.
            let expected = bundle::signed_bytes(&image.digest, &annotations);
            if payload != expected {
                anyhow::bail!(Error::InvalidInput(format!(
                    "{}: the PAE names {} but is not the one sigbridge builds for it with the given -a annotations; run `sigbridge generate --format bundle` with the same -a and sign its output",
                    args.payload.display(),
                    image.digest
                )));
            }
            // Checked above: bundle needs --key or --certificate, so there is a key.
            let Some((_, signer_key)) = checkers.first() else {
                anyhow::bail!(Error::InvalidInput(
                    "--format bundle needs --key PUB or --certificate".into()
                ));
            };
            let format = SigstoreBundle::new(signer_key, annotations);
            let store = ReferrersStore::new(&client, BUNDLE_MEDIA_TYPE)
                .with_repository_override(signature_repository_override()?);
            // The PAE itself: the format's wrap takes the statement out of it.
            let payload = Payload {
                bytes: expected,
                identity: image.repository().name(),
            };
            let outcome = attach_signature(
                &format,
                &store,
                &image,
                &payload,
                &signature,
                certificate.as_ref(),
            )
            .await?;
            (store.location(&image), outcome)
        }
    };
    match args.output {
        OutputFormat::Text => println!("{}", image.pinned()),
        OutputFormat::Json => println!(
            "{}",
            serde_json::json!({
                "image": image.pinned(),
                "digest": image.digest,
                "signatureRepository": location.repository.to_string(),
                "signatureTag": location.tag,
                "outcome": outcome,
            })
        ),
    }
    Ok(ExitCode::Success)
}

/// A signature file is base64 text (cosign's form, surrounding whitespace ignored) or raw
/// binary. DER starts with 0x30 followed by a length byte that is never printable base64, so
/// the two cannot be confused for ECDSA; RSA signatures of full modulus length are not valid
/// base64 text either except by negligible chance.
fn decode_signature_input(raw: &[u8]) -> anyhow::Result<Vec<u8>> {
    if raw.is_empty() {
        anyhow::bail!(Error::InvalidInput("the signature is empty".into()));
    }
    // Printable text is never a binary signature (DER starts 0x30 and a non-printable length
    // byte; raw r||s and RSA signatures are all-printable with negligible probability), so
    // text must be base64 and is refused if it is not.
    let text_like = raw
        .iter()
        .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace());
    if text_like {
        let cleaned: Vec<u8> = raw
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        return base64::engine::general_purpose::STANDARD
            .decode(&cleaned)
            .map_err(|e| {
                anyhow::Error::from(Error::InvalidInput(format!(
                    "the signature looks like base64 text but does not decode: {e}"
                )))
            });
    }
    Ok(raw.to_vec())
}

fn pem_text(path: &std::path::Path, limit: u64) -> anyhow::Result<String> {
    let bytes = read_small_file(path, limit)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| Error::InvalidInput(format!("{} is not PEM text", path.display())))?;
    if !text.contains("-----BEGIN CERTIFICATE-----") {
        anyhow::bail!(Error::InvalidInput(format!(
            "{} holds no PEM CERTIFICATE block",
            path.display()
        )));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_input_forms() {
        assert_eq!(decode_signature_input(b"aGVsbG8=\n").unwrap(), b"hello");
        assert_eq!(
            decode_signature_input(&[0x30, 0x45, 0x02]).unwrap(),
            vec![0x30, 0x45, 0x02]
        );
        assert!(decode_signature_input(b"").is_err());
        assert!(decode_signature_input(b"abc").is_err());
    }
}
