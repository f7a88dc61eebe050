//! Deferred signing through the Signer contract, against the SignPath-compatible server: a
//! sign that does not wait answers a ticket, collecting it before approval stays pending, and
//! after approval gives signatures that verify; tickets of other providers are refused.

use std::sync::Arc;

use secrecy::SecretString;
use sigbridge_signer::{
    normalise_signature, LogFormat, OpenContext, PasswordSource, Provider as _, SignOutcome,
    SignRequest, SignerError, SignerErrorKind, Ticket, Wait,
};
use sigbridge_signpath::{open_signpath, SignPathProvider, PROVIDER_NAME};
use signpath_compatible_server::{Approval, ServerConfig, SignPathServer};

const ORG: &str = "c2099ac1-b2d4-4a41-9d2b-3ae8b4a2e3b1";
const TOKEN: &str = "test-api-token-0123456789abcdef";

struct NoPasswords;

impl PasswordSource for NoPasswords {
    fn password_for(&self, _: &std::path::Path) -> Result<Option<SecretString>, SignerError> {
        Ok(None)
    }
}

fn env(name: &str) -> Option<String> {
    match name {
        "SIGNPATH_API_TOKEN" => Some(TOKEN.into()),
        "SIGBRIDGE_SIGNPATH_POLL_INTERVAL_MS" => Some("20".into()),
        _ => None,
    }
}

fn context(resuming: Option<Ticket>) -> OpenContext<'static> {
    OpenContext {
        env: &env,
        passwords: &NoPasswords,
        prompt: None,
        log_format: LogFormat::Text,
        signer_arg: Some("SIGNER".into()),
        resuming,
    }
}

fn server() -> SignPathServer {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("service.pem");
    std::fs::write(
        &key,
        include_str!("../../local/tests/fixtures/p256-pkcs8.pem"),
    )
    .unwrap();
    let signer = sigbridge_local::KeyFile::read(&key)
        .unwrap()
        .decrypt(None)
        .unwrap();
    SignPathServer::start(ServerConfig {
        signer: Arc::new(signer),
        token: SecretString::from(TOKEN),
        organization_id: Some(ORG.into()),
        approval: Approval::Manual,
        faults: Default::default(),
        behaviour: Default::default(),
    })
    .unwrap()
}

fn uri(server: &SignPathServer) -> String {
    format!(
        "{}?artifact-configuration=cosign-raw",
        server.signer_uri(ORG, "my-images", "release-signing")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_wait_answers_a_ticket_that_is_collected_after_approval() {
    let server = server();
    let uri = uri(&server);
    let provider = SignPathProvider;
    assert!(provider.can_defer());
    assert!(provider.schemes().iter().any(|s| uri.starts_with(s)));
    let payloads = vec![b"{\"one\":1}".to_vec(), b"{\"two\":2}".to_vec()];

    let signer = provider.open(&uri, &context(None)).unwrap();
    assert!(signer.capabilities().deferred);
    let ticket = match signer
        .sign(&payloads, &SignRequest { wait: Wait::No })
        .await
        .unwrap()
    {
        SignOutcome::Pending(ticket) => ticket,
        SignOutcome::Signed(_) => panic!("signed without an approval"),
    };
    assert_eq!(ticket.provider(), PROVIDER_NAME);
    assert_eq!(server.requests()[0].id, ticket.to_string());

    // Collected before anyone approved, without waiting: still pending, nothing resubmitted.
    let resumed = provider.open(&uri, &context(Some(ticket.clone()))).unwrap();
    let again = resumed.collect(&ticket, &payloads, Wait::No).await.unwrap();
    assert_eq!(again, SignOutcome::Pending(ticket.clone()));

    server.approve(ticket.id()).unwrap();
    let signatures = resumed
        .collect(&ticket, &payloads, Wait::SignerDefault)
        .await
        .unwrap()
        .into_signed()
        .unwrap();
    let key = resumed.public_key().await.unwrap();
    assert_eq!(signatures.len(), payloads.len());
    for (payload, raw) in payloads.iter().zip(&signatures) {
        key.verify(payload, &normalise_signature(&key, raw).unwrap())
            .unwrap();
    }
    assert_eq!(server.submits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tickets_of_other_providers_and_malformed_ids_are_refused() {
    let server = server();
    let uri = uri(&server);
    let signer = open_signpath(&uri, &context(None)).unwrap();
    let e = sigbridge_signer::Signer::collect(
        &signer,
        &Ticket::new("pkcs11", "5f0c"),
        &[b"p".to_vec()],
        Wait::No,
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), SignerErrorKind::Unsupported);
    // A malformed --resume id is a malformed SIGNER setting, found when opening.
    assert!(open_signpath(
        &uri,
        &context(Some(Ticket::new(PROVIDER_NAME, "not a uuid")))
    )
    .is_err());
    assert_eq!(server.submits(), 0);
}

#[test]
fn an_unusable_ca_file_fails_open_as_a_key_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("not-a-ca.pem");
    std::fs::write(&bad, "hello\n").unwrap();
    let uri = format!(
        "signpath+https://127.0.0.1:1/{ORG}/my-images/release-signing?ca-file={}",
        bad.display()
    );
    match open_signpath(&uri, &context(None)) {
        Err(sigbridge_signer::OpenError::Signer { source, .. }) => {
            assert_eq!(source.kind(), SignerErrorKind::InvalidKey);
            let chain = format!("{source} {:?}", std::error::Error::source(&source));
            assert!(chain.contains("not-a-ca.pem"), "{chain}");
        }
        Err(other) => panic!("wrong error: {other}"),
        Ok(_) => panic!("opened with an unusable ca-file"),
    }
}
