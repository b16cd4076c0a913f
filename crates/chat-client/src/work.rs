//! Proof of work for offering commits, remembered: a commit offered again (a settle retry,
//! an answer lost) reuses the work found for its relay and epoch, and a member starts at
//! what a relay asked last instead of being refused once at the floor.

use starling_protocol::chat::{MAX_ORDER_WORK_BITS, ORDER_WORK_BITS};
use starling_types::{Hash, PublicKey};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Work remembered (for this many relay and epoch pairs), and relays' last asks.
const KEPT: usize = 64;

/// How long a relay's ask is remembered: an order that drained asks less again.
const ASK_KEPT_FOR: Duration = Duration::from_secs(600);

#[derive(Debug, Default)]
pub(crate) struct WorkMemo {
    /// (relay, epoch) → (bits the nonce reaches, nonce), newest last.
    found: VecDeque<((PublicKey, Hash), (u8, u64))>,
    /// Relay → (bits it asked, when), newest last.
    asked: VecDeque<(PublicKey, u8, Instant)>,
}

impl WorkMemo {
    /// The bits to start an offer to `relay` with.
    pub(crate) fn start_bits(&self, relay: &PublicKey) -> u8 {
        self.asked
            .iter()
            .rev()
            .find(|(r, _, at)| r == relay && at.elapsed() < ASK_KEPT_FOR)
            .map_or(ORDER_WORK_BITS, |(_, b, _)| *b)
            .clamp(ORDER_WORK_BITS, MAX_ORDER_WORK_BITS)
    }

    /// Notes that `relay` asked `bits` for a new epoch.
    pub(crate) fn asked(&mut self, relay: PublicKey, bits: u8) {
        self.asked.retain(|(r, _, _)| *r != relay);
        self.asked.push_back((relay, bits, Instant::now()));
        while self.asked.len() > KEPT {
            self.asked.pop_front();
        }
    }

    /// A nonce found before for `relay` and `epoch` that reaches at least `bits`.
    pub(crate) fn found(&self, relay: &PublicKey, epoch: &Hash, bits: u8) -> Option<u64> {
        self.found
            .iter()
            .find(|((r, e), (b, _))| r == relay && e == epoch && *b >= bits)
            .map(|(_, (_, nonce))| *nonce)
    }

    /// Remembers `nonce`, which reaches `bits` for `relay` and `epoch`.
    pub(crate) fn keep(&mut self, relay: PublicKey, epoch: Hash, bits: u8, nonce: u64) {
        if self.found(&relay, &epoch, bits).is_some() {
            // As much work or more is kept already (another account's offer, say).
            return;
        }
        self.found
            .retain(|((r, e), _)| !(*r == relay && *e == epoch));
        self.found.push_back(((relay, epoch), (bits, nonce)));
        while self.found.len() > KEPT {
            self.found.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use starling_protocol::chat::{find_order_work, order_work_bits};

    fn relay(n: u8) -> PublicKey {
        starling_crypto::SecretKey::from_seed(starling_types::KeyType::Ed25519, &[n; 32])
            .map(|k| k.public_key())
            .unwrap_or_else(|_| unreachable!())
    }

    #[test]
    fn work_is_found_once_per_relay_and_epoch_and_the_memo_stays_bounded() {
        let mut m = WorkMemo::default();
        let (r, epoch) = (relay(1), Hash([7; 32]));
        assert_eq!(m.found(&r, &epoch, 16), None);
        let nonce = find_order_work(&r, &epoch, 16, 0);
        assert!(order_work_bits(&r, &epoch, nonce) >= 16);
        m.keep(r, epoch, 16, nonce);
        assert_eq!(m.found(&r, &epoch, 16), Some(nonce));
        assert_eq!(
            m.found(&r, &epoch, 12),
            Some(nonce),
            "more work than asked serves"
        );
        assert_eq!(
            m.found(&r, &epoch, 18),
            None,
            "less work than asked does not"
        );
        assert_eq!(
            m.found(&relay(2), &epoch, 16),
            None,
            "work is bound to its relay"
        );
        // Less work found later does not replace more.
        m.keep(r, epoch, 12, 1);
        assert_eq!(m.found(&r, &epoch, 16), Some(nonce));
        for i in 0..200u8 {
            m.keep(relay(3), Hash([i; 32]), 16, u64::from(i));
        }
        assert_eq!(m.found.len(), KEPT);
        assert_eq!(m.found(&r, &epoch, 16), None, "the oldest went first");
    }

    #[test]
    fn a_member_starts_at_what_the_relay_asked_last_within_bounds() {
        let mut m = WorkMemo::default();
        let r = relay(1);
        assert_eq!(m.start_bits(&r), ORDER_WORK_BITS);
        m.asked(r, 22);
        assert_eq!(m.start_bits(&r), 22);
        assert_eq!(m.start_bits(&relay(2)), ORDER_WORK_BITS);
        m.asked(r, 200);
        assert_eq!(m.start_bits(&r), MAX_ORDER_WORK_BITS);
        for i in 0..200u8 {
            m.asked(relay(i.wrapping_add(10)), 20);
        }
        assert_eq!(m.asked.len(), KEPT);
    }
}
