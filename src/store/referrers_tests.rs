//! The referrers store against the in-memory registry: cosign 3's layout, the referrers API
//! and fallback paths, and the fallback index's lost-update repair.

use std::collections::BTreeMap;

use p256::pkcs8::EncodePublicKey as _;
use sigbridge_signer::PublicKey;

use super::*;
use crate::format::bundle::BUNDLE_MEDIA_TYPE;
use crate::format::{SignatureFormat, SigstoreBundle};
use crate::reference::ImageReference;
use crate::store::fake_registry::FakeRegistry;
use crate::store::{write_and_settle, SignatureStore};

const IMAGE_MANIFEST: &[u8] = b"the image manifest";

fn image() -> ResolvedImage {
    ResolvedImage {
        reference: ImageReference::parse("127.0.0.1:5000/app:v1").unwrap(),
        digest: Digest::of(IMAGE_MANIFEST),
        media_type: media_types::OCI_MANIFEST.into(),
        size: IMAGE_MANIFEST.len() as u64,
        from_tag: true,
    }
}

fn key() -> PublicKey {
    let sk = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let pem = sk
        .verifying_key()
        .to_public_key_pem(p256::pkcs8::LineEnding::LF)
        .unwrap();
    PublicKey::from_pem(&pem).unwrap()
}

/// A bundle envelope for the image with a made-up signature `n`.
fn envelope(n: u32) -> Envelope {
    let format = SigstoreBundle::new(&key(), BTreeMap::new());
    format.wrap(&format.payload(&image()), &n.to_be_bytes(), None)
}

fn no_duplicates() -> impl Fn(&Descriptor, &Envelope) -> bool + Send + Sync {
    |_: &Descriptor, _: &Envelope| false
}

fn store(fake: &FakeRegistry) -> ReferrersStore<'_> {
    ReferrersStore::new(fake, BUNDLE_MEDIA_TYPE)
}

/// The blobs (bundle layers) the store reads back.
async fn stored_blobs(fake: &FakeRegistry) -> Vec<Digest> {
    let mut out: Vec<Digest> = store(fake)
        .read(&image())
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.digest)
        .collect();
    out.sort_by_key(|d| d.to_string());
    out
}

fn blob_digests(envs: &[Envelope]) -> Vec<Digest> {
    let mut out: Vec<Digest> = envs.iter().map(|e| Digest::of(&e.blob)).collect();
    out.sort_by_key(|d| d.to_string());
    out
}

#[tokio::test]
async fn without_the_api_it_writes_cosigns_layout_and_reads_it_back() {
    let fake = FakeRegistry::default();
    let env = envelope(1);
    let outcomes = write_and_settle(
        &store(&fake),
        &image(),
        std::slice::from_ref(&env),
        &no_duplicates(),
    )
    .await
    .unwrap();
    assert_eq!(outcomes, [AttachOutcome::Attached]);

    let location = store(&fake).location(&image());
    assert_eq!(location.tag, format!("sha256-{}", image().digest.hex()));
    let entries = fake.index_entries(&location);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].media_type, media_types::OCI_MANIFEST);
    assert_eq!(entries[0].artifact_type.as_deref(), Some(EMPTY_MEDIA_TYPE));

    let body =
        fake.state().manifests[&format!("{}:{}", location.repository, entries[0].digest)].clone();
    let manifest: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        manifest["config"],
        serde_json::json!({"mediaType": EMPTY_MEDIA_TYPE, "size": 2,
            "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
            "artifactType": BUNDLE_MEDIA_TYPE})
    );
    assert_eq!(manifest["artifactType"], BUNDLE_MEDIA_TYPE);
    assert_eq!(
        manifest["subject"],
        serde_json::json!({"mediaType": media_types::OCI_MANIFEST,
            "size": IMAGE_MANIFEST.len(), "digest": image().digest.to_string()})
    );
    assert_eq!(
        manifest["annotations"]["dev.sigstore.bundle.content"],
        "dsse-envelope"
    );
    assert_eq!(manifest["layers"][0]["mediaType"], BUNDLE_MEDIA_TYPE);
    assert!(manifest["layers"][0].get("annotations").is_none());

    let read = store(&fake).read(&image()).await.unwrap();
    assert_eq!(read.len(), 1);
    let blob = store(&fake).fetch(&image(), &read[0]).await.unwrap();
    assert_eq!(blob, env.blob);
}

#[tokio::test]
async fn with_the_api_no_index_is_written_and_foreign_referrers_are_skipped() {
    let fake = FakeRegistry::default();
    fake.state().referrers_api = true;
    let env = envelope(1);
    let writer = store(&fake);
    let dup = no_duplicates();
    let mut pending = writer
        .write(&image(), std::slice::from_ref(&env), &dup)
        .await
        .unwrap();
    assert!(!pending.needs_confirmation());
    pending.confirm().await.unwrap();
    let location = store(&fake).location(&image());
    assert!(!fake.state().manifests.contains_key(&location.to_string()));

    // Another kind of artifact about the image, and a bundle about another image.
    let sbom = ReferrersStore::new(&fake, "application/spdx+json");
    write_and_settle(&sbom, &image(), &[envelope(2)], &no_duplicates())
        .await
        .unwrap();
    let mut other = image();
    other.digest = Digest::of(b"another image");
    write_and_settle(&store(&fake), &other, &[envelope(3)], &no_duplicates())
        .await
        .unwrap();

    assert_eq!(stored_blobs(&fake).await, blob_digests(&[env]));
}

#[tokio::test]
async fn sixteen_interleaved_writers_keep_all_sixteen() {
    let fake = FakeRegistry::default();
    let envelopes: Vec<Envelope> = (0..16).map(envelope).collect();
    let writers = envelopes.iter().map(|env| {
        let fake = fake.clone();
        async move {
            write_and_settle(
                &store(&fake),
                &image(),
                std::slice::from_ref(env),
                &no_duplicates(),
            )
            .await
        }
    });
    for outcome in futures::future::join_all(writers).await {
        assert_eq!(outcome.unwrap(), [AttachOutcome::Attached]);
    }
    let location = store(&fake).location(&image());
    let entries = fake.index_entries(&location);
    assert_eq!(entries.len(), 16);
    let digests: Vec<String> = entries.iter().map(|e| e.digest.to_string()).collect();
    let mut sorted = digests.clone();
    sorted.sort();
    assert_eq!(
        digests, sorted,
        "entries are sorted by digest, as ggcr writes them"
    );
    assert_eq!(stored_blobs(&fake).await, blob_digests(&envelopes));
    // The writers did clobber each other (so the repair, not luck, kept all sixteen).
    assert!(fake.state().layers_lost > 0);
}

#[tokio::test]
async fn a_dropped_index_write_is_repaired() {
    let fake = FakeRegistry::default();
    let earlier = envelope(7);
    write_and_settle(
        &store(&fake),
        &image(),
        std::slice::from_ref(&earlier),
        &no_duplicates(),
    )
    .await
    .unwrap();
    fake.state().drop_tag_puts = 1;
    let ours = envelope(8);
    write_and_settle(
        &store(&fake),
        &image(),
        std::slice::from_ref(&ours),
        &no_duplicates(),
    )
    .await
    .unwrap();
    assert_eq!(fake.state().drop_tag_puts, 0, "the index write was dropped");
    assert_eq!(stored_blobs(&fake).await, blob_digests(&[earlier, ours]));
}

#[tokio::test]
async fn a_racing_writers_lost_update_is_repaired() {
    let fake = FakeRegistry::default();
    let theirs = envelope(2);
    write_and_settle(
        &store(&fake),
        &image(),
        std::slice::from_ref(&theirs),
        &no_duplicates(),
    )
    .await
    .unwrap();
    let location = store(&fake).location(&image());
    let their_index = fake.state().manifests[&location.to_string()].clone();
    // Our manifest PUT lands, then (right after our index PUT) a writer that read the index
    // before us writes back the index without our entry.
    let key = location.to_string();
    let ours = envelope(1);
    let writer = store(&fake);
    let dup = no_duplicates();
    let mut pending = writer
        .write(&image(), std::slice::from_ref(&ours), &dup)
        .await
        .unwrap();
    fake.state().manifests.insert(key, their_index);
    crate::store::settle(pending.as_mut(), None).await.unwrap();
    assert_eq!(stored_blobs(&fake).await, blob_digests(&[theirs, ours]));
}

#[tokio::test]
async fn a_fallback_tag_that_is_not_an_index_is_refused() {
    let fake = FakeRegistry::default();
    let location = store(&fake).location(&image());
    fake.put_layers(&location, media_types::OCI_MANIFEST, vec![]);
    let err = store(&fake).read(&image()).await.unwrap_err().to_string();
    assert!(err.contains("not a referrers index"), "{err}");
    let err = write_and_settle(&store(&fake), &image(), &[envelope(1)], &no_duplicates())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("refusing to read or overwrite it"), "{err}");
}

/// A second image of the same registry (here: the same image signed twice) does not probe the
/// referrers API again: without the API it goes straight to the fallback index, with it it
/// does not list at all. Both signatures are stored either way.
#[tokio::test]
async fn the_referrers_api_is_probed_once_per_registry() {
    for api in [false, true] {
        let fake = FakeRegistry::default();
        fake.state().referrers_api = api;
        let store = store(&fake);
        for n in 0..3 {
            write_and_settle(&store, &image(), &[envelope(n)], &no_duplicates())
                .await
                .unwrap();
        }
        let lookups = fake.state().referrers_lookups;
        // Without the API the settle looks read the fallback tag, never the API.
        assert_eq!(
            lookups, 1,
            "api={api}: {lookups} referrers lookups for 3 writes"
        );
        assert_eq!(stored_blobs(&fake).await.len(), 3, "api={api}");
    }
}

/// Every artifact manifest shares the empty config: one store uploads it once per repository;
/// a registry that lost it meanwhile gets it again when the manifest PUT says "blob unknown".
#[tokio::test]
async fn the_empty_config_goes_up_once_per_repository_and_again_if_the_registry_lost_it() {
    let fake = FakeRegistry::default();
    let store = store(&fake);
    let config = Digest::of(EMPTY_CONFIG);
    let config_uploads = |fake: &FakeRegistry| {
        fake.state()
            .uploads
            .iter()
            .filter(|d| **d == config)
            .count()
    };
    for n in 0..3 {
        write_and_settle(&store, &image(), &[envelope(n)], &no_duplicates())
            .await
            .unwrap();
    }
    assert_eq!(config_uploads(&fake), 1);
    fake.state().blob_unknown_puts = 1;
    fake.state().blobs.remove(&config);
    write_and_settle(&store, &image(), &[envelope(9)], &no_duplicates())
        .await
        .unwrap();
    assert_eq!(config_uploads(&fake), 2, "re-uploaded after blob unknown");
    assert_eq!(stored_blobs(&fake).await.len(), 4);
}
