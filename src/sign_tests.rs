//! The signing pipeline's overlap and its stops, with a counting signer and a store whose
//! confirmation can wait for the signer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use p256::pkcs8::{EncodePrivateKey as _, LineEnding};
use sigbridge_local::{KeyFile, LocalSigner};
use tokio::sync::watch;

use super::*;
use crate::format::SimpleSigning;
use crate::reference::ImageReference;
use crate::store::{PendingWrite, SignatureLocation};

fn image(n: usize) -> ResolvedImage {
    ResolvedImage {
        reference: ImageReference::parse(&format!("127.0.0.1:5000/app:v{n}")).unwrap(),
        digest: Digest::of(format!("manifest {n}").as_bytes()),
        media_type: crate::registry::manifest::media_types::OCI_MANIFEST.into(),
        size: 10,
        from_tag: true,
    }
}

fn local_key() -> LocalSigner {
    let key = p256::SecretKey::random(&mut rand_core::OsRng);
    let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap();
    KeyFile::parse(pem.as_bytes(), "test key")
        .unwrap()
        .decrypt(None)
        .unwrap()
}

/// Signs in groups of two, counts its calls (published on `calls`), and refuses call number
/// `fail_on` if set.
struct GroupSigner {
    key: LocalSigner,
    calls: watch::Sender<usize>,
    fail_on: Option<usize>,
}

#[async_trait]
impl Signer for GroupSigner {
    fn describe(&self) -> String {
        "group signer".into()
    }
    async fn public_key(&self) -> std::result::Result<PublicKey, SignerError> {
        Ok(self.key.public_key().clone())
    }
    fn batch_size(&self) -> Option<usize> {
        Some(2)
    }
    async fn sign(
        &self,
        payloads: &[Vec<u8>],
        request: &SignRequest,
    ) -> std::result::Result<SignOutcome, SignerError> {
        let mut call = 0;
        self.calls.send_modify(|c| {
            *c += 1;
            call = *c;
        });
        if self.fail_on == Some(call) {
            return Err(SignerError::new(
                SignerErrorKind::Rejected,
                "the approver denied it",
            ));
        }
        self.key.sign(payloads, request).await
    }
}

/// Stores nothing; each write's confirmation waits until the signer has been called
/// `confirm_after_calls` times, and records the order of finished confirmations.
struct GatedStore {
    calls: watch::Receiver<usize>,
    confirm_after_calls: usize,
    writes: AtomicUsize,
}

struct GatedWrite {
    calls: watch::Receiver<usize>,
    confirm_after_calls: usize,
    at: Instant,
}

#[async_trait]
impl PendingWrite for GatedWrite {
    fn outcomes(&self) -> &[AttachOutcome] {
        &[AttachOutcome::Attached]
    }
    fn needs_confirmation(&self) -> bool {
        true
    }
    fn written_at(&self) -> Instant {
        self.at
    }
    async fn confirm(&mut self) -> Result<()> {
        let want = self.confirm_after_calls;
        self.calls.wait_for(|c| *c >= want).await.unwrap();
        Ok(())
    }
}

#[async_trait]
impl SignatureStore for GatedStore {
    fn location(&self, image: &ResolvedImage) -> SignatureLocation {
        SignatureLocation {
            repository: image.reference.repository().clone(),
            tag: "t".into(),
        }
    }
    async fn read(&self, _: &ResolvedImage) -> Result<Vec<crate::registry::manifest::Descriptor>> {
        Ok(Vec::new())
    }
    async fn fetch(
        &self,
        _: &ResolvedImage,
        _: &crate::registry::manifest::Descriptor,
    ) -> Result<bytes::Bytes> {
        Ok(bytes::Bytes::new())
    }
    async fn write<'s>(
        &'s self,
        _: &ResolvedImage,
        _: &[Envelope],
        _: &crate::store::DuplicateCheck<'_>,
    ) -> Result<Box<dyn PendingWrite + 's>> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new(GatedWrite {
            calls: self.calls.clone(),
            confirm_after_calls: self.confirm_after_calls,
            at: Instant::now(),
        }))
    }
}

type Reported = Vec<std::result::Result<String, String>>;

async fn run(
    images: usize,
    fail_on: Option<usize>,
    confirm_after_calls: usize,
) -> (BatchSummary, Reported, usize) {
    let (calls, calls_rx) = watch::channel(0);
    let signer = GroupSigner {
        key: local_key(),
        calls,
        fail_on,
    };
    let store = GatedStore {
        calls: calls_rx,
        confirm_after_calls,
        writes: AtomicUsize::new(0),
    };
    let format = SimpleSigning::default();
    let targets = [SignTarget {
        format: &format,
        store: &store,
        label: None,
    }];
    let opened = OpenedSigner::open(&signer).await.unwrap();
    let opts = SignOptions {
        jobs: 4,
        ..SignOptions::default()
    };
    let input = stream::iter((1..=images).map(|n| Ok(image(n))));
    let mut reported = Vec::new();
    // A deadlock guard only: a pipeline that waits for a group's confirmations before signing
    // the next group never finishes here.
    let summary = tokio::time::timeout(
        Duration::from_secs(60),
        sign_stream(&targets, &opened, input, &opts, false, |r| {
            reported.push(r.map(|s| s.image.clone()).map_err(|f| f.image.clone()))
        }),
    )
    .await
    .expect("the pipeline stalled: a group's confirmations waited for the next group");
    let writes = store.writes.load(Ordering::SeqCst);
    (summary, reported, writes)
}

#[tokio::test]
async fn the_next_group_is_signed_while_the_previous_one_waits_for_its_confirmations() {
    // Every confirmation waits for the signer's third call: only a pipeline that signs groups
    // two and three while group one is still being confirmed gets there.
    let (summary, reported, writes) = run(6, None, 3).await;
    assert_eq!(summary.attached, 6);
    assert_eq!(writes, 6);
    let expected: Reported = (1..=6).map(|n| Ok(image(n).pinned())).collect();
    assert_eq!(reported, expected, "reported in input order");
}

#[tokio::test]
async fn a_refused_group_stops_the_run_but_what_was_signed_before_is_stored_and_reported() {
    // The second group is refused while the first still waits for its confirmation.
    let (summary, reported, writes) = run(6, Some(2), 2).await;
    let failure = summary.run_failure.expect("a run failure");
    assert_eq!(failure.images, vec![image(3).pinned(), image(4).pinned()]);
    assert!(failure.rest_not_started, "images 5 and 6 were never signed");
    assert_eq!(summary.attached, 2);
    assert_eq!(
        writes, 2,
        "nothing of the refused group or after it was written"
    );
    assert_eq!(reported, vec![Ok(image(1).pinned()), Ok(image(2).pinned())]);
}
