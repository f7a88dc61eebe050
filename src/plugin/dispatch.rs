//! The v1 methods: parse cosign's call, open the signer the key reference names, answer.
//!
//! The plugin is not a remote caller: cosign runs it locally, as the same user, with that
//! user's keys and environment, so it does not refuse signers that are unsafe for remote
//! callers (a local RSA key), exactly as `sigbridge sign` does not.
//!
//! `publicKey` never submits anything (cosign calls it several times per signature, each call
//! a new process); only `signMessage` signs, once, waiting for an approval up to cosign's
//! deadline.

use std::io::Write as _;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use sigbridge_signer::{
    error_chain, normalise_signature, OpenContext, PasswordSource, SignOutcome, SignRequest,
    Signer, SignerError, SignerErrorKind, Wait,
};

use super::wire::{
    DefaultAlgorithmResp, Method, PluginArgs, PluginResp, PublicKeyResp, SignMessageResp,
    SupportedAlgorithmsResp, VerifySignatureResp,
};
use super::{deadline, key_ref, message, PROTOCOL_VERSION};
use crate::error::{Error, Result};
use crate::providers::SignerSpec;

/// Environment variable naming a file to which each call appends its method name (debugging,
/// and counting calls per `cosign sign`).
pub const TRACE_ENV: &str = "SIGBRIDGE_PLUGIN_TRACE";

/// The algorithm cosign's `generate-key-pair --kms` would ask for.
pub const DEFAULT_ALGORITHM: &str = "ecdsa-sha2-256-nistp256";

/// What the signers produce: ECDSA P-256 and RSA PKCS#1 v1.5, both over SHA-256.
pub const SUPPORTED_ALGORITHMS: &[&str] = &[
    "ecdsa-sha2-256-nistp256",
    "rsa-sign-pkcs1-2048-sha256",
    "rsa-sign-pkcs1-3072-sha256",
    "rsa-sign-pkcs1-4096-sha256",
];

/// The JSON answer for one plugin run: `argv` without the program name (`v1 <json>`), `stdin`
/// the message. Never fails: a failure is an answer with `errorMessage`.
pub async fn answer(argv: &[String], stdin: &[u8]) -> String {
    let (method, result) = match parse(argv) {
        Ok(args) => {
            trace(&args.method_name);
            let method = Method::parse(&args.method_name);
            (method, handle(method, &args, stdin).await)
        }
        Err(e) => (None, Err(e)),
    };
    match result {
        Ok(resp) => resp,
        Err(e) => PluginResp::error(method, error_chain(&e)),
    }
    .to_json()
}

fn parse(argv: &[String]) -> Result<PluginArgs> {
    let (version, json) = match argv {
        [version, json] => (version, json),
        _ => {
            return Err(Error::InvalidInput(format!(
                "sigstore-kms-sigbridge is run by cosign as `sigstore-kms-sigbridge {PROTOCOL_VERSION} <json>` for `--key sigbridge://...`; it got {} arguments",
                argv.len()
            )))
        }
    };
    if version != PROTOCOL_VERSION {
        return Err(Error::InvalidInput(format!(
            "cosign speaks plugin protocol {version:?}; this sigstore-kms-sigbridge speaks {PROTOCOL_VERSION}: use a cosign between 2.4.3 and 3.x, or update sigbridge"
        )));
    }
    let args: PluginArgs = serde_json::from_str(json).map_err(|e| {
        Error::InvalidInput(format!("cosign's plugin request is not valid JSON: {e}"))
    })?;
    let declared = &args.init_options.protocol_version;
    if !declared.is_empty() && declared != PROTOCOL_VERSION {
        return Err(Error::InvalidInput(format!(
            "cosign declared protocolVersion {declared:?}; this plugin speaks {PROTOCOL_VERSION}"
        )));
    }
    Ok(args)
}

async fn handle(method: Option<Method>, args: &PluginArgs, stdin: &[u8]) -> Result<PluginResp> {
    let Some(method) = method else {
        return Err(Error::InvalidInput(format!(
            "unknown plugin method {:?}: sigstore-kms-sigbridge answers defaultAlgorithm, supportedAlgorithms, createKey, publicKey, signMessage and verifySignature",
            args.method_name
        )));
    };
    let mut resp = PluginResp::default();
    match method {
        Method::DefaultAlgorithm => {
            resp.default_algorithm = Some(DefaultAlgorithmResp {
                default_algorithm: DEFAULT_ALGORITHM.to_string(),
            })
        }
        Method::SupportedAlgorithms => {
            resp.supported_algorithms = Some(SupportedAlgorithmsResp {
                supported_algorithms: SUPPORTED_ALGORITHMS.iter().map(|a| a.to_string()).collect(),
            })
        }
        Method::CreateKey => {
            return Err(Error::InvalidInput(
                "creating keys through cosign is unsupported by sigstore-kms-sigbridge: create the key where it lives (pkcs11-tool or softhsm2-util for a token, the signing service for signpath://, `sigbridge generate-key-pair` for a key file), then use --key sigbridge://SIGNER".to_string(),
            ))
        }
        Method::PublicKey => {
            let signer = open(&args.init_options.key_resource_id)?;
            let key = signer.public_key().await.map_err(|e| signer_err(&*signer, e))?;
            resp.public_key = Some(PublicKeyResp {
                public_key_pem: key.to_pem().into_bytes(),
            })
        }
        Method::SignMessage => {
            resp.sign_message = Some(SignMessageResp {
                signature: sign_message(args, stdin).await?,
            })
        }
        Method::VerifySignature => {
            verify_signature(args, stdin).await?;
            resp.verify_signature = Some(VerifySignatureResp {});
        }
    }
    Ok(resp)
}

async fn sign_message(args: &PluginArgs, stdin: &[u8]) -> Result<Vec<u8>> {
    let opts = args
        .sign_message
        .as_ref()
        .map(|s| &s.sign_options)
        .ok_or_else(|| missing("signMessage"))?;
    message::check(
        stdin,
        opts.message_options.digest.as_deref(),
        opts.message_options
            .hash_func
            .or(Some(args.init_options.hash_func)),
    )
    .map_err(|e| Error::InvalidInput(e.to_string()))?;
    let deadline = opts
        .rpc_options
        .as_ref()
        .and_then(|r| r.ctx_deadline.as_deref())
        .or(args.init_options.ctx_deadline.as_deref());
    let budget = deadline::budget(deadline, time::OffsetDateTime::now_utc())?;

    let signer = open(&args.init_options.key_resource_id)?;
    // The key first: a wrong PIN or an unreadable certificate fails before anything is submitted.
    let key = signer
        .public_key()
        .await
        .map_err(|e| signer_err(&*signer, e))?;
    let deferred = signer.capabilities().deferred;
    if budget == Some(Duration::ZERO) {
        return Err(Error::InvalidInput(format!(
            "cosign's deadline leaves no time to sign; {}",
            deadline::raise_hint(Duration::ZERO)
        )));
    }
    if deferred {
        let limit = budget
            .map(|b| format!("up to {}s", b.as_secs()))
            .unwrap_or_else(|| "as long as the signer allows".to_string());
        eprintln!(
            "sigstore-kms-sigbridge: one signing request to {}; waiting {limit} for its approval",
            signer.describe()
        );
    }
    let wait = budget.map(Wait::UpTo).unwrap_or_default();
    let started = Instant::now();
    let outcome = signer.sign(&[stdin.to_vec()], &SignRequest { wait }).await;
    let ran_out = |b: Option<Duration>| b.is_some_and(|b| started.elapsed() >= b);
    let raw = match outcome {
        Ok(SignOutcome::Signed(mut signatures)) if signatures.len() == 1 => signatures.remove(0),
        Ok(SignOutcome::Signed(signatures)) => {
            return Err(signer_err(
                &*signer,
                SignerError::new(
                    SignerErrorKind::BadSignature,
                    format!("asked for one signature, got {}", signatures.len()),
                ),
            ))
        }
        Ok(SignOutcome::Pending(ticket)) => {
            return Err(signer_err(
                &*signer,
                SignerError::new(
                    SignerErrorKind::Canceled,
                    format!(
                        "signing request {ticket} is still waiting for approval; {}",
                        deadline::raise_hint(budget.unwrap_or_default())
                    ),
                ),
            ))
        }
        Err(e) if deferred && ran_out(budget) => {
            let hint = deadline::raise_hint(budget.unwrap_or_default());
            return Err(Error::Signer {
                signer: format!("{}: {}", signer.describe(), error_chain(&e)),
                source: SignerError::new(e.kind(), hint),
            });
        }
        Err(e) => return Err(signer_err(&*signer, e)),
    };
    let signature = normalise_signature(&key, &raw).map_err(|e| {
        signer_err(
            &*signer,
            SignerError::wrap(SignerErrorKind::BadSignature, e),
        )
    })?;
    // As `sigbridge sign` does: nothing leaves unless it verifies against the signer's key.
    key.verify(stdin, &signature).map_err(|e| {
        signer_err(
            &*signer,
            SignerError::wrap(SignerErrorKind::BadSignature, e),
        )
    })?;
    Ok(signature)
}

async fn verify_signature(args: &PluginArgs, stdin: &[u8]) -> Result<()> {
    let call = args
        .verify_signature
        .as_ref()
        .ok_or_else(|| missing("verifySignature"))?;
    let opts = &call.verify_options.message_options;
    message::check(
        stdin,
        opts.digest.as_deref(),
        opts.hash_func.or(Some(args.init_options.hash_func)),
    )
    .map_err(|e| Error::InvalidInput(e.to_string()))?;
    let signer = open(&args.init_options.key_resource_id)?;
    let key = signer
        .public_key()
        .await
        .map_err(|e| signer_err(&*signer, e))?;
    key.verify(stdin, &call.signature).map_err(|e| {
        signer_err(
            &*signer,
            SignerError::wrap(SignerErrorKind::BadSignature, e),
        )
    })
}

fn missing(method: &str) -> Error {
    Error::InvalidInput(format!(
        "cosign's {method} request has no {method:?} object"
    ))
}

fn signer_err(signer: &dyn Signer, source: SignerError) -> Error {
    Error::Signer {
        signer: signer.describe(),
        source,
    }
}

/// Open the signer `key_resource_id` names, with secrets from the environment only (cosign's
/// stdin is the message and there is no terminal to prompt on).
fn open(key_resource_id: &str) -> Result<Box<dyn Signer>> {
    let uri = key_ref::signer_uri(key_resource_id)?;
    let spec = SignerSpec::parse(&uri)?;
    spec.open(&OpenContext {
        env: &process_env,
        passwords: &EnvPasswords,
        prompt: None,
        log_format: Default::default(),
        signer_arg: Some(format!("{}{key_resource_id}", key_ref::SCHEME)),
        resuming: None,
    })
}

fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// `COSIGN_PASSWORD` for encrypted key files, as cosign reads it; never a prompt.
struct EnvPasswords;

impl PasswordSource for EnvPasswords {
    fn password_for(
        &self,
        _key: &std::path::Path,
    ) -> std::result::Result<Option<SecretString>, SignerError> {
        match std::env::var_os("COSIGN_PASSWORD") {
            None => Ok(None),
            Some(p) => p
                .into_string()
                .map(|p| Some(SecretString::from(p)))
                .map_err(|_| {
                    SignerError::new(
                        SignerErrorKind::Credentials,
                        "COSIGN_PASSWORD is not valid UTF-8",
                    )
                }),
        }
    }
}

fn trace(method: &str) {
    let Some(path) = std::env::var_os(TRACE_ENV) else {
        return;
    };
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| writeln!(f, "{method}"));
    if let Err(e) = written {
        eprintln!(
            "sigstore-kms-sigbridge: cannot append to {TRACE_ENV} file {}: {e}",
            std::path::Path::new(&path).display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(json: &str) -> serde_json::Value {
        let argv = vec!["v1".to_string(), json.to_string()];
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        serde_json::from_str(&rt.block_on(answer(&argv, b""))).unwrap()
    }

    #[test]
    fn algorithms_are_answered_in_their_objects() {
        let j = call(
            r#"{"initOptions":{"protocolVersion":"v1","keyResourceID":"x","hashFunc":5},"methodName":"defaultAlgorithm","defaultAlgorithm":{}}"#,
        );
        assert_eq!(j["defaultAlgorithm"]["defaultAlgorithm"], DEFAULT_ALGORITHM);
        let j = call(
            r#"{"initOptions":{"protocolVersion":"v1","keyResourceID":"x","hashFunc":5},"methodName":"supportedAlgorithms","supportedAlgorithms":{}}"#,
        );
        assert_eq!(
            j["supportedAlgorithms"]["supportedAlgorithms"][0],
            DEFAULT_ALGORITHM
        );
    }

    #[test]
    fn create_key_is_unsupported_with_the_object_present() {
        let j = call(
            r#"{"initOptions":{"protocolVersion":"v1","keyResourceID":"x","hashFunc":5},"methodName":"createKey","createKey":{"algorithm":"ecdsa-sha2-256-nistp256"}}"#,
        );
        assert!(j["createKey"].is_object(), "{j}");
        let msg = j["errorMessage"].as_str().unwrap();
        assert!(msg.contains("unsupported"), "{msg}");
    }

    #[test]
    fn unknown_methods_and_versions_are_errors() {
        let j = call(
            r#"{"initOptions":{"protocolVersion":"v1","keyResourceID":"x"},"methodName":"frobnicate"}"#,
        );
        assert!(
            j["errorMessage"]
                .as_str()
                .unwrap()
                .contains("unknown plugin method"),
            "{j}"
        );
        let j = call(
            r#"{"initOptions":{"protocolVersion":"v2","keyResourceID":"x"},"methodName":"publicKey"}"#,
        );
        assert!(j["errorMessage"].as_str().unwrap().contains("v2"), "{j}");
        let j = call("not json");
        assert!(
            j["errorMessage"]
                .as_str()
                .unwrap()
                .contains("not valid JSON"),
            "{j}"
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let out = rt.block_on(answer(&["v9".to_string(), "{}".to_string()], b""));
        assert!(out.contains("protocol \\\"v9\\\""), "{out}");
        let out = rt.block_on(answer(&[], b""));
        assert!(out.contains("got 0 arguments"), "{out}");
    }

    #[test]
    fn a_missing_key_file_is_an_error_message_in_the_public_key_object() {
        let j = call(
            r#"{"initOptions":{"protocolVersion":"v1","keyResourceID":"/nonexistent/dir/cosign.key","hashFunc":5},"methodName":"publicKey","publicKey":{"publicKeyOptions":{}}}"#,
        );
        assert!(j["publicKey"].is_object(), "{j}");
        let msg = j["errorMessage"].as_str().unwrap();
        assert!(msg.contains("/nonexistent/dir/cosign.key"), "{msg}");
    }

    #[test]
    fn sign_message_refuses_a_digest_that_disagrees_with_stdin() {
        let digest = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            sha2::Sha256::digest(b"something else"),
        );
        let json = format!(
            r#"{{"initOptions":{{"protocolVersion":"v1","keyResourceID":"/nonexistent/k","hashFunc":5}},"methodName":"signMessage","signMessage":{{"signOptions":{{"messageOptions":{{"digest":"{digest}"}}}}}}}}"#
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let out: serde_json::Value =
            serde_json::from_str(&rt.block_on(answer(&["v1".to_string(), json], b"payload")))
                .unwrap();
        assert!(out["signMessage"].is_object(), "{out}");
        let msg = out["errorMessage"].as_str().unwrap();
        assert!(msg.contains("not the SHA-256 of the message"), "{msg}");
    }

    use sha2::Digest as _;

    fn run(json: String, stdin: &[u8]) -> serde_json::Value {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        serde_json::from_str(&rt.block_on(answer(&["v1".to_string(), json], stdin))).unwrap()
    }

    #[test]
    fn sign_message_then_verify_signature_round_trips_with_a_key_file() {
        use p256::pkcs8::{EncodePrivateKey as _, LineEnding};
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k;1?.pem");
        let secret = p256::SecretKey::random(&mut rand_core::OsRng);
        std::fs::write(
            &key,
            secret.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes(),
        )
        .unwrap();
        let id = key.display().to_string();
        let b64 = |b: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b);
        let message = b"DSSEv1 28 application/vnd.in-toto+json 2 {}";
        let digest = b64(&sha2::Sha256::digest(message));
        let signed = run(
            format!(
                r#"{{"initOptions":{{"protocolVersion":"v1","keyResourceID":{id:?},"hashFunc":5}},"methodName":"signMessage","signMessage":{{"signOptions":{{"messageOptions":{{"digest":"{digest}"}}}}}}}}"#
            ),
            message,
        );
        assert!(signed.get("errorMessage").is_none(), "{signed}");
        let signature = signed["signMessage"]["signature"]
            .as_str()
            .unwrap()
            .to_string();
        let verify = |stdin: &[u8]| {
            run(
                format!(
                    r#"{{"initOptions":{{"protocolVersion":"v1","keyResourceID":{id:?},"hashFunc":5}},"methodName":"verifySignature","verifySignature":{{"signature":"{signature}","verifyOptions":{{"messageOptions":{{"digest":null}}}}}}}}"#
                ),
                stdin,
            )
        };
        let ok = verify(message);
        assert!(ok.get("errorMessage").is_none(), "{ok}");
        assert!(ok["verifySignature"].is_object(), "{ok}");
        let bad = verify(b"another message");
        assert!(bad["verifySignature"].is_object(), "{bad}");
        assert!(bad["errorMessage"].is_string(), "{bad}");
    }
}
