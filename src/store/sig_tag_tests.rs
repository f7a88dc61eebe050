//! The `.sig` store's lost-update repair against an in-memory registry that can play a racing
//! writer, drop writes and briefly not see blobs.

use std::collections::BTreeMap;

use bytes::Bytes;
use p256::ecdsa::signature::RandomizedSigner as _;
use p256::pkcs8::EncodePublicKey as _;
use sigbridge_signer::PublicKey;

use super::*;
use crate::format::{Dedupe, Payload, SignatureFormat, SimpleSigning};
use crate::reference::ImageReference;
use crate::store::fake_registry::FakeRegistry;
use crate::store::write_and_settle;

fn image() -> ResolvedImage {
    ResolvedImage {
        reference: ImageReference::parse("127.0.0.1:5000/app:v1").unwrap(),
        digest: Digest::of(b"the image manifest"),
        media_type: media_types::OCI_MANIFEST.into(),
        size: 18,
        from_tag: true,
    }
}

/// A simple-signing envelope over this image's payload with a made-up signature `n`.
fn envelope(n: u32) -> Envelope {
    let format = SimpleSigning::default();
    let payload = format.payload(&image());
    format.wrap(&payload, &n.to_be_bytes(), None)
}

fn exact_only() -> impl Fn(&Descriptor, &Envelope) -> bool + Send + Sync {
    |stored: &Descriptor, new: &Envelope| {
        SimpleSigning::default().is_duplicate(stored, new, &Dedupe::ExactOnly)
    }
}

fn holds(layers: &[Descriptor], env: &Envelope) -> bool {
    layers.iter().any(|l| same_layer(l, &env.descriptor()))
}

/// Upload a blob the way another writer would have before naming it in a manifest.
fn upload(fake: &FakeRegistry, env: &Envelope) {
    fake.state()
        .blobs
        .insert(Digest::of(&env.blob), Bytes::from(env.blob.clone()));
    fake.state()
        .blobs
        .insert(Digest::of(b"{}"), Bytes::from_static(b"{}"));
}

#[tokio::test]
async fn a_racing_writers_lost_update_is_repaired() {
    let fake = FakeRegistry::default();
    let store = SigTagStore::new(&fake, None);
    let location = store.location(&image());
    let theirs = envelope(2);
    upload(&fake, &theirs);
    // Another writer read the (empty) tag before our write and lands its own write right
    // after ours: a plain read-append-write would have lost our signature now.
    let key = location.to_string();
    let racer = theirs.clone();
    fake.state().after_next_put = Some(Box::new(move |manifests| {
        let config = Descriptor::new(media_types::OCI_CONFIG, Digest::of(b"{}"), 2);
        let m = ImageManifest::new(media_types::OCI_MANIFEST, config, vec![racer.descriptor()]);
        manifests.insert(key, Bytes::from(m.to_vec()));
    }));
    let ours = envelope(1);
    let outcomes = write_and_settle(&store, &image(), std::slice::from_ref(&ours), &exact_only())
        .await
        .unwrap();
    assert_eq!(outcomes, [AttachOutcome::Attached]);
    let layers = fake.layers(&location);
    assert!(holds(&layers, &ours), "our signature was lost");
    assert!(
        holds(&layers, &theirs),
        "the racing writer's signature was dropped"
    );
    assert_eq!(layers.len(), 2);
}

#[tokio::test]
async fn sixteen_interleaved_writers_keep_all_sixteen() {
    let fake = FakeRegistry::default();
    let envelopes: Vec<Envelope> = (0..16).map(envelope).collect();
    let writers = envelopes.iter().map(|env| {
        let fake = fake.clone();
        async move {
            let store = SigTagStore::new(&fake, None);
            write_and_settle(&store, &image(), std::slice::from_ref(env), &exact_only()).await
        }
    });
    for outcome in futures::future::join_all(writers).await {
        assert_eq!(outcome.unwrap(), [AttachOutcome::Attached]);
    }
    let location = SigTagStore::new(&fake, None).location(&image());
    let layers = fake.layers(&location);
    assert_eq!(layers.len(), 16);
    for env in &envelopes {
        assert!(holds(&layers, env));
    }
    // The writers did clobber each other (so the repair, not luck, kept all sixteen).
    assert!(fake.state().layers_lost > 0);
}

#[tokio::test]
async fn existing_layers_and_manifest_type_are_kept_through_a_dropped_write() {
    let fake = FakeRegistry::default();
    let store = SigTagStore::new(&fake, None);
    let location = store.location(&image());
    let foreign = Envelope {
        media_type: "application/vnd.example.other".into(),
        blob: b"someone else's".to_vec(),
        annotations: BTreeMap::from([("x".to_string(), "y".to_string())]),
    };
    let earlier = envelope(7);
    for e in [&foreign, &earlier] {
        upload(&fake, e);
    }
    fake.put_layers(
        &location,
        media_types::DOCKER_MANIFEST,
        vec![foreign.descriptor(), earlier.descriptor()],
    );
    // The registry acknowledges our first write but does not keep it.
    fake.state().drop_puts = 1;
    let ours = envelope(1);
    let outcomes = write_and_settle(&store, &image(), std::slice::from_ref(&ours), &exact_only())
        .await
        .unwrap();
    assert_eq!(outcomes, [AttachOutcome::Attached]);
    let layers = fake.layers(&location);
    assert_eq!(
        layers,
        vec![
            foreign.descriptor(),
            earlier.descriptor(),
            ours.descriptor()
        ]
    );
    let stored = fake.state().manifests[&location.to_string()].clone();
    let manifest = ImageManifest::from_slice(&stored).unwrap();
    assert_eq!(
        manifest.media_type.as_deref(),
        Some(media_types::DOCKER_MANIFEST)
    );
    assert!(
        fake.state().puts >= 2,
        "the dropped write was not rewritten"
    );
}

#[tokio::test]
async fn a_manifest_blob_unknown_race_is_retried() {
    let fake = FakeRegistry::default();
    let store = SigTagStore::new(&fake, None);
    fake.state().blob_unknown_puts = 2;
    let ours = envelope(1);
    let outcomes = write_and_settle(&store, &image(), std::slice::from_ref(&ours), &exact_only())
        .await
        .unwrap();
    assert_eq!(outcomes, [AttachOutcome::Attached]);
    assert!(holds(&fake.layers(&store.location(&image())), &ours));
    assert_eq!(fake.state().puts, 3);
}

#[tokio::test]
async fn a_lasting_blob_unknown_fails_without_writing() {
    let fake = FakeRegistry::default();
    let store = SigTagStore::new(&fake, None);
    fake.state().blob_unknown_puts = u32::MAX;
    let err = write_and_settle(&store, &image(), &[envelope(1)], &exact_only())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("MANIFEST_BLOB_UNKNOWN"), "{err}");
    assert!(fake.layers(&store.location(&image())).is_empty());
}

/// A P-256 key pair: the signing half and the public key sigbridge checks with.
fn key_pair() -> (p256::ecdsa::SigningKey, PublicKey) {
    let sk = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let pem = sk
        .verifying_key()
        .to_public_key_pem(p256::pkcs8::LineEnding::LF)
        .unwrap();
    (sk, PublicKey::from_pem(&pem).unwrap())
}

fn signed(format: &SimpleSigning, payload: &Payload, sk: &p256::ecdsa::SigningKey) -> Envelope {
    // Randomised (hedged) nonces, as HSMs sign: two signings differ in bytes.
    let sig: p256::ecdsa::DerSignature = sk.sign_with_rng(&mut rand_core::OsRng, &payload.bytes);
    format.wrap(payload, sig.as_bytes(), None)
}

#[tokio::test]
async fn a_signature_by_the_same_key_is_already_present_but_not_another_keys() {
    let format = SimpleSigning::default();
    let payload = format.payload(&image());
    let (sk, key) = key_pair();
    let (other_sk, _) = key_pair();
    let fake = FakeRegistry::default();
    let store = SigTagStore::new(&fake, None);
    let location = store.location(&image());
    // Someone else's key signed the same payload first.
    let theirs = signed(&format, &payload, &other_sk);
    upload(&fake, &theirs);
    fake.put_layers(
        &location,
        media_types::OCI_MANIFEST,
        vec![theirs.descriptor()],
    );

    let verified = Dedupe::VerifiedWith(Box::new(key));
    let by_key = |s: &Descriptor, n: &Envelope| format.is_duplicate(s, n, &verified);
    let ours = signed(&format, &payload, &sk);
    let outcomes = write_and_settle(&store, &image(), std::slice::from_ref(&ours), &by_key)
        .await
        .unwrap();
    assert_eq!(
        outcomes,
        [AttachOutcome::Attached],
        "another key's signature is not ours"
    );
    let puts = fake.state().puts;

    // ECDSA is randomised: a second signing by our key has other bytes, the same meaning.
    let again = signed(&format, &payload, &sk);
    assert_ne!(again, ours);
    let outcomes = write_and_settle(&store, &image(), std::slice::from_ref(&again), &by_key)
        .await
        .unwrap();
    assert_eq!(outcomes, [AttachOutcome::AlreadyPresent]);
    assert_eq!(fake.state().puts, puts, "a duplicate must not write");

    // Without the key only byte identity counts.
    let outcomes = write_and_settle(
        &store,
        &image(),
        std::slice::from_ref(&again),
        &exact_only(),
    )
    .await
    .unwrap();
    assert_eq!(outcomes, [AttachOutcome::Attached]);
    let layers = fake.layers(&location);
    assert_eq!(layers.len(), 3);
    assert!(holds(&layers, &theirs) && holds(&layers, &ours) && holds(&layers, &again));
}

#[test]
fn config_matches_ggcr_for_one_layer() {
    let payload = b"x";
    let layer = Descriptor::new(media_types::COSIGN_SIMPLE_SIGNING, Digest::of(payload), 1);
    let cfg = String::from_utf8(config_blob(&[layer])).unwrap();
    assert_eq!(
        cfg,
        format!(
            r#"{{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{{"created":"0001-01-01T00:00:00Z"}}],"os":"","rootfs":{{"type":"layers","diff_ids":["{}"]}},"config":{{}}}}"#,
            Digest::of(payload)
        )
    );
    serde_json::from_str::<serde_json::Value>(&cfg).unwrap();
}
