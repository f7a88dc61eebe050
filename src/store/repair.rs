//! The lost-update repair shared by the stores whose signatures live in one object that every
//! writer reads, appends to and rewrites: the `.sig` tag and the referrers fallback index.
//!
//! Registries offer no conditional writes, so a writer cannot prevent a concurrent
//! read-append-write from dropping its entry; it can notice and put it back. After a write, the
//! object is re-read; anything this writer ever saw there or added that is now missing is merged
//! back and the object rewritten, until it holds all of it.

use std::time::Duration;

use async_trait::async_trait;

use super::SignatureLocation;
use crate::error::{Error, Result};
use crate::registry::manifest::Descriptor;

/// How many times a lost update is repaired before giving up.
pub(super) const MAX_WRITE_ROUNDS: u32 = 16;

/// One pending write to a shared object: what must stay in it, how to look at it, how to
/// rewrite it.
#[async_trait]
pub(super) trait SharedObjectWrite: Send {
    /// Whether two entries are the same signature.
    fn same(a: &Descriptor, b: &Descriptor) -> bool;
    /// The entries the object holds now.
    async fn look(&self) -> Result<Vec<Descriptor>>;
    /// Entries that were there or appeared since (never to be dropped), and this write's own.
    fn kept(&mut self) -> (&mut Vec<Descriptor>, &[Descriptor]);
    /// Rounds written so far.
    fn round(&self) -> u32;
    /// Write everything kept back to the object (one more round).
    async fn rewrite(&mut self) -> Result<()>;
    /// The error when writers kept clobbering each other for [`MAX_WRITE_ROUNDS`] rounds.
    fn gave_up(&self) -> Error;
    /// Where the object is (for logs).
    fn location(&self) -> &SignatureLocation;
}

/// Look until the object holds every kept entry, rewriting when a loss persists.
pub(super) async fn repair<W: SharedObjectWrite + ?Sized>(w: &mut W) -> Result<()> {
    // Alternate between looking and writing: after a loss, first wait a random, growing while
    // and look again, because another writer may be about to write a union that already holds
    // our entries; write ourselves only if the loss is still there. Writers that all rewrote at
    // once would keep clobbering each other (a livelock seen with 16 concurrent signers).
    let mut looks = 0u32;
    loop {
        let now = w.look().await?;
        let (seen, ours) = w.kept();
        // Keep everything observed, so an entry another writer added is never dropped by us.
        for e in &now {
            if !seen.iter().chain(ours).any(|s| W::same(s, e)) {
                seen.push(e.clone());
            }
        }
        let missing = seen
            .iter()
            .chain(ours)
            .any(|e| !now.iter().any(|n| W::same(n, e)));
        if !missing {
            return Ok(());
        }
        if w.round() >= MAX_WRITE_ROUNDS {
            return Err(w.gave_up());
        }
        looks += 1;
        if looks % 2 == 1 {
            tokio::time::sleep(backoff(looks)).await;
            continue;
        }
        tracing::info!(location = %w.location(), round = w.round(), "a concurrent writer replaced the shared signature object; merging and rewriting");
        w.rewrite().await?;
        tokio::time::sleep(confirm_delay(w.round())).await;
    }
}

/// Randomised exponential backoff ("full jitter") between looks after a lost update, so
/// colliding writers spread out instead of retrying in step.
fn backoff(attempt: u32) -> Duration {
    use rand::Rng;
    let cap = 25u64.saturating_mul(1 << attempt.min(6)).min(1600);
    Duration::from_millis(rand::thread_rng().gen_range(10..=cap.max(10)))
}

/// How long after a write its confirmation re-read should come.
pub(super) fn confirm_delay(round: u32) -> Duration {
    use rand::Rng;
    // Long enough for a writer that read the manifest just before our write to land its own
    // write (its read-to-write window is one config upload and one PUT), short enough not to
    // dominate a signature's latency; it grows when writers keep colliding.
    let base = 25u64 * u64::from(round.min(8));
    Duration::from_millis(base + rand::thread_rng().gen_range(0..=50))
        .mul_f64(crate::test_knobs::settle_scale())
}
