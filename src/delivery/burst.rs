//! Whether a region's queue is a burst, and which posts its next digest lists.
//!
//! A region is in a burst when more new-notification posts are due than it can send one by
//! one within `digest_after` at its `rate` ([`DigestRule::threshold`]). From then on each
//! message it sends lists up to `digest_max` of the waiting posts, oldest first, until a pick
//! finds only one: the burst is over and posts go one by one again. So a burst drains in
//! digests, not just its first part, and a channel that keeps up never sees one.

use crate::config::{DigestRule, Rate};
use crate::store::{Store, StoreError};

use super::digest::digestable;

/// How often a region not in a burst may be checked for one: the check reads up to
/// `threshold` records, and a queue of follow-ups (which never join a digest) would otherwise
/// be read again at every send.
const CHECK_EVERY_MS: u64 = 1000;

/// Most queue entries one pick or check reads: a queue full of follow-ups (which never join a
/// digest) must not be read to its end at every send.
const SCAN_MAX: usize = 500;

/// A digest the scheduler hands out: the posts listed after the head, and how many wait.
#[derive(Debug, Clone, PartialEq)]
pub struct Pick {
    /// Delivery ids listed after the head, oldest first.
    pub members: Vec<u64>,
    /// Deliveries still waiting behind the digest when it was picked.
    pub more: u32,
}

/// A region's burst state, kept by the scheduler.
#[derive(Debug, Default)]
pub struct Burst {
    /// More due posts than this are a burst; `None`: digests are off.
    threshold: Option<u64>,
    /// Posts one digest lists.
    max: u32,
    /// Sending digests until a pick finds only one post.
    on: bool,
    /// When the queue was last checked for a burst (ms), while not in one.
    checked_ms: u64,
}

impl Burst {
    /// A region with `rule` at `rate`, not in a burst.
    pub fn new(rule: &DigestRule, rate: Rate) -> Burst {
        Burst {
            threshold: rule.threshold(rate),
            max: rule.max,
            on: false,
            checked_ms: 0,
        }
    }

    /// What to send for `head`, the due head of `region`'s queue: `None` to post it alone.
    /// `pending` is the region's queue length from the journal's counters.
    pub fn pick(
        &mut self,
        store: &Store,
        region: &str,
        head: u64,
        pending: u64,
        now: u64,
    ) -> Result<Option<Pick>, StoreError> {
        let Some(threshold) = self.threshold else {
            return Ok(None);
        };
        // A follow-up or an action at the head goes alone, and the burst goes on behind it.
        if !store
            .delivery_as_applied(head)?
            .as_ref()
            .is_some_and(digestable)
        {
            return Ok(None);
        }
        if !self.on {
            if pending <= threshold || now < self.checked_ms + CHECK_EVERY_MS {
                return Ok(None);
            }
            self.checked_ms = now;
            if count_due(store, region, now, threshold + 1)? <= threshold {
                return Ok(None);
            }
            self.on = true;
        }
        let mut members = Vec::new();
        let wanted = self.max.saturating_sub(1) as usize;
        let mut head_seen = false;
        for entry in store.due_entries(region).take(SCAN_MAX) {
            let (due, id) = entry?;
            if due > now || members.len() == wanted {
                break;
            }
            if id == head {
                head_seen = true;
                continue;
            }
            if store
                .delivery_as_applied(id)?
                .as_ref()
                .is_some_and(digestable)
            {
                members.push(id);
            }
        }
        if !head_seen || members.is_empty() {
            self.on = false;
            return Ok(None);
        }
        let listed = members.len() as u64 + 1;
        Ok(Some(Pick {
            more: u32::try_from(pending.saturating_sub(listed)).unwrap_or(u32::MAX),
            members,
        }))
    }
}

/// The due posts of `region` that may join a digest, counted up to `enough`.
fn count_due(store: &Store, region: &str, now: u64, enough: u64) -> Result<u64, StoreError> {
    let mut n = 0;
    let most = usize::try_from(enough)
        .unwrap_or(usize::MAX)
        .saturating_add(SCAN_MAX);
    for entry in store.due_entries(region).take(most) {
        let (due, id) = entry?;
        if due > now {
            break;
        }
        if store
            .delivery_as_applied(id)?
            .as_ref()
            .is_some_and(digestable)
        {
            n += 1;
            if n >= enough {
                break;
            }
        }
    }
    Ok(n)
}
