//! Submissions whose payloads verifiers could read as naming different images (or that are no
//! image signature payload at all) are refused over real HTTP with 400 naming the file and the
//! problem, and nothing is stored; the refusal is in the audit log. A well-formed submission of
//! both kinds still goes through.

use std::path::PathBuf;
use std::sync::Arc;

use reqwest::StatusCode;
use sigbridge_serve::{policy_key, ServeConfig, Signers, Store};
use sigbridge_signer::Signer;

const ORG: &str = "org";
const IN_TOTO: &str = "application/vnd.in-toto+json";

fn good() -> String {
    format!("sha256:{}", "a".repeat(64))
}

fn evil() -> String {
    format!("sha256:{}", "e".repeat(64))
}

fn critical(reference: &str, digest: &str) -> String {
    format!(
        r#"{{"identity":{{"docker-reference":"{reference}"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}}"#
    )
}

fn statement(subjects: &str, extra: &str) -> Vec<u8> {
    let body = format!(
        r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[{subjects}]{extra},"predicateType":"https://sigstore.dev/cosign/sign/v1","predicate":{{}}}}"#
    );
    sigbridge_payload::pae::encode(IN_TOTO, body.as_bytes())
}

fn subject(digest: &str) -> String {
    format!(r#"{{"digest":{{"sha256":"{digest}"}}}}"#)
}

struct Service {
    dir: tempfile::TempDir,
    token: String,
    approver_token: String,
    base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), sigbridge_serve::ServeError>>,
}

impl Service {
    async fn start() -> Self {
        use p256::pkcs8::{EncodePrivateKey as _, LineEnding};
        let secret = p256::SecretKey::random(&mut rand_core::OsRng);
        let pem = secret.to_pkcs8_pem(LineEnding::LF).unwrap();
        let signer: Arc<dyn Signer> = Arc::new(
            sigbridge_local::KeyFile::parse(pem.as_bytes(), "test key")
                .unwrap()
                .decrypt(None)
                .unwrap(),
        );
        let dir = tempfile::tempdir().unwrap();
        let (token, hash) = sigbridge_serve::token::new_token();
        let (approver_token, hash2) = sigbridge_serve::token::new_token();
        let config: PathBuf = dir.path().join("serve.toml");
        std::fs::write(
            &config,
            format!(
                r#"listen = "127.0.0.1:0"
database = "state.db"
organization_id = "{ORG}"
[[identities]]
name = "ci"
token_sha256 = "{hash}"
[[identities]]
name = "alice"
token_sha256 = "{hash2}"
[[policies]]
project = "p"
slug = "s"
signer = "unused: the test hands the signer over"
approvals_required = 1
submitters = ["ci"]
approvers = ["alice"]
"#
            ),
        )
        .unwrap();
        let config = ServeConfig::load(&config).unwrap();
        let signers: Signers = [(policy_key("p", "s"), signer)].into_iter().collect();
        let bound = sigbridge_serve::bind(&config).await.unwrap();
        let base = format!("http://{}", bound.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(sigbridge_serve::serve(bound, config, signers, async move {
            let _ = stopped.await;
        }));
        Self {
            dir,
            token,
            approver_token,
            base,
            stop,
            task,
        }
    }

    /// Submit a zip of `files`; the status and the body.
    async fn submit(&self, files: &[(&str, Vec<u8>)]) -> (StatusCode, serde_json::Value) {
        let files: Vec<(String, Vec<u8>)> = files
            .iter()
            .map(|(n, b)| (n.to_string(), b.clone()))
            .collect();
        let zip = sigbridge_serve::artifact::signed_zip(&files, &[]).unwrap();
        let form = reqwest::multipart::Form::new()
            .text("projectSlug", "p")
            .text("signingPolicySlug", "s")
            .part(
                "artifact",
                reqwest::multipart::Part::bytes(zip).file_name("payloads.zip"),
            );
        let r = reqwest::Client::new()
            .post(format!(
                "{}/API/v1/{ORG}/SigningRequests/SubmitWithArtifact",
                self.base
            ))
            .bearer_auth(&self.token)
            .multipart(form)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap())
    }

    fn store(&self) -> Store {
        Store::open(&self.dir.path().join("state.db")).unwrap()
    }

    async fn stop(self) -> Store {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
        Store::open(&self.dir.path().join("state.db")).unwrap()
    }
}

#[tokio::test]
async fn ambiguous_or_foreign_payloads_are_refused_and_nothing_is_stored() {
    let service = Service::start().await;
    let good_critical = critical("registry.test/app", &good());
    let refused: Vec<(&str, &str, Vec<u8>, Vec<&str>)> = vec![
        (
            "duplicate critical, case-folded (cosign reads the last, serde_json the first)",
            "payload.json",
            format!(
                r#"{{"critical":{good_critical},"Critical":{},"optional":null}}"#,
                critical("registry.test/evil", &evil())
            )
            .into_bytes(),
            vec!["\"critical\"", "\"Critical\"", "same field"],
        ),
        (
            "digest key repeated in another case inside critical.image",
            "payloads/001.json",
            format!(
                r#"{{"critical":{{"identity":{{"docker-reference":"registry.test/app"}},"image":{{"docker-manifest-digest":"{}","DOCKER-MANIFEST-DIGEST":"{}"}},"type":"cosign container image signature"}},"optional":null}}"#,
                good(),
                evil()
            )
            .into_bytes(),
            vec!["\"docker-manifest-digest\"", "\"DOCKER-MANIFEST-DIGEST\""],
        ),
        (
            "Kelvin sign: a key that names the digest only through Unicode folding",
            "payload.json",
            format!(
                "{{\"critical\":{{\"identity\":{{\"docker-reference\":\"registry.test/app\"}},\"image\":{{\"doc\u{212a}er-manifest-digest\":\"{}\"}},\"type\":\"cosign container image signature\"}},\"optional\":null}}",
                evil()
            )
            .into_bytes(),
            vec!["Unicode case folding"],
        ),
        (
            "statement with two subject keys",
            "payload.pae",
            statement(
                &subject(&"a".repeat(64)),
                &format!(r#","subject":[{}]"#, subject(&"e".repeat(64))),
            ),
            vec!["\"subject\"", "same field"],
        ),
        (
            "statement whose subject repeats digest",
            "payloads/002.pae",
            statement(
                &format!(
                    r#"{{"digest":{{"sha256":"{}"}},"digest":{{"sha256":"{}"}}}}"#,
                    "a".repeat(64),
                    "e".repeat(64)
                ),
                "",
            ),
            vec!["\"digest\"", "same field"],
        ),
        (
            "arbitrary bytes as a simple-signing payload",
            "payload.json",
            b"\x7fELF arbitrary bytes, a blob signature cosign verify-blob would accept".to_vec(),
            vec!["not a cosign simple-signing payload"],
        ),
        (
            "arbitrary bytes as a PAE",
            "payload.pae",
            b"just some bytes".to_vec(),
            vec!["not the DSSE pre-authentication encoding"],
        ),
        (
            "a PAE of something that is not an in-toto statement",
            "payload.pae",
            sigbridge_payload::pae::encode("text/plain", b"hello"),
            vec!["\"text/plain\""],
        ),
    ];
    for (what, name, bytes, must_say) in &refused {
        // A good payload beside the bad one does not make the upload acceptable.
        let good_payload = format!(r#"{{"critical":{good_critical},"optional":null}}"#);
        let files = [
            ("payloads/000.json", good_payload.into_bytes()),
            (*name, bytes.clone()),
        ];
        let (status, body) = service.submit(&files).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {body}");
        let message = body["error"].as_str().unwrap();
        assert!(message.contains(&format!("{name:?}")), "{what}: {message}");
        for word in must_say {
            assert!(message.contains(word), "{what}: {message} lacks {word}");
        }
    }

    // A well-formed submission of both kinds goes through.
    let ok = [
        (
            "payloads/001.json",
            format!(r#"{{"critical":{good_critical},"optional":{{"build":"7"}}}}"#).into_bytes(),
        ),
        ("payloads/002.pae", statement(&subject(&"a".repeat(64)), "")),
    ];
    let (status, body) = service.submit(&ok).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["signingRequestId"].as_str().unwrap().to_string();

    let store = service.stop().await;
    let waiting = store.waiting().unwrap();
    assert_eq!(
        waiting.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        vec![id.as_str()],
        "only the well-formed submission is stored"
    );
    assert!(store.recent_final(100).unwrap().is_empty());
    let entries = store.audit_entries().unwrap();
    sigbridge_serve::audit::verify_entries(&entries).unwrap();
    let refusals: Vec<_> = entries
        .iter()
        .filter(|e| e.action == "submit-refused")
        .collect();
    assert_eq!(refusals.len(), refused.len(), "{entries:?}");
    for (entry, (_, name, _, _)) in refusals.iter().zip(&refused) {
        assert_eq!(entry.actor, "ci");
        assert_eq!(entry.request_id, "");
        let detail: serde_json::Value = serde_json::from_str(&entry.detail).unwrap();
        assert_eq!(detail["file"], *name, "{detail}");
    }
    assert_eq!(entries.iter().filter(|e| e.action == "submit").count(), 1);
}

/// An upload stored before submissions were checked (written straight into the database here)
/// cannot be approved: the API answers 409 naming the file, and the request keeps waiting.
#[tokio::test]
async fn a_stored_upload_the_readers_refuse_cannot_be_approved() {
    let service = Service::start().await;
    let evil = format!(
        r#"{{"critical":{},"Critical":{},"optional":null}}"#,
        critical("registry.test/app", &good()),
        critical("registry.test/evil", &evil())
    );
    let zip = sigbridge_serve::artifact::signed_zip(
        &[("payload.json".to_string(), evil.into_bytes())],
        &[],
    )
    .unwrap();
    let id = "0b7c1f9e-2f4a-4c8e-9d3b-6a5e4f3c2b1a";
    service
        .store()
        .insert(&sigbridge_serve::store::NewRequest {
            id,
            project: "p",
            policy: "s",
            submitter: "ci",
            submitted_from: "127.0.0.1:1",
            description: None,
            parameters: "{}",
            artifact_name: "payload.json.zip",
            unsigned: &zip,
            status: sigbridge_serve::store::status::WAITING,
            now: 1,
            expires_at: i64::MAX,
            audit_detail: serde_json::json!({}),
        })
        .unwrap();
    let r = reqwest::Client::new()
        .post(format!(
            "{}/API/v1/{ORG}/SigningRequests/{id}/Approve",
            service.base
        ))
        .bearer_auth(&service.approver_token)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let message = body["error"].as_str().unwrap();
    assert!(
        message.contains("\"payload.json\"") && message.contains("\"Critical\""),
        "{message}"
    );
    let store = service.stop().await;
    let row = store.get(id).unwrap();
    assert_eq!(row.status, sigbridge_serve::store::status::WAITING);
    assert!(row.approvers.is_empty(), "{:?}", row.approvers);
}
