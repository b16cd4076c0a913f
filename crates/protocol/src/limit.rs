//! Token buckets: how much a peer, client or key may ask for, at once and over time.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Instant;

/// Token buckets by key: `burst` at once, refilled at `per_sec`.
#[derive(Debug)]
pub struct RateLimiter<K> {
    burst: f64,
    per_sec: f64,
    buckets: Mutex<HashMap<K, (f64, Instant)>>,
}

/// Most keys a limiter tracks before it forgets the full buckets.
const MAX_BUCKETS: usize = 100_000;

impl<K: Eq + Hash + Clone> RateLimiter<K> {
    pub fn new(burst: u32, per_sec: f64) -> Self {
        Self {
            burst: f64::from(burst),
            per_sec,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`, or says how many seconds until one is back.
    pub fn check(&self, key: &K) -> Result<(), u64> {
        self.check_at(key, Instant::now())
    }

    /// [`Self::check`] at the instant `now`.
    pub fn check_at(&self, key: &K, now: Instant) -> Result<(), u64> {
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_BUCKETS {
            let (burst, rate) = (self.burst, self.per_sec);
            map.retain(|_, (t, at)| *t + now.duration_since(*at).as_secs_f64() * rate < burst);
        }
        let (tokens, at) = map.entry(key.clone()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.per_sec).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.per_sec).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn buckets_refill_and_bound() {
        let l = RateLimiter::new(3, 1.0);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.check_at(&1u8, t0).is_ok());
        }
        assert_eq!(l.check_at(&1u8, t0), Err(1));
        // Another key has its own bucket.
        assert!(l.check_at(&2u8, t0).is_ok());
        // One second brings one token back, never more than the burst.
        assert!(l.check_at(&1u8, t0 + Duration::from_secs(1)).is_ok());
        assert!(l.check_at(&1u8, t0 + Duration::from_secs(1)).is_err());
        let later = t0 + Duration::from_secs(100);
        for _ in 0..3 {
            assert!(l.check_at(&1u8, later).is_ok());
        }
        assert!(l.check_at(&1u8, later).is_err());
    }
}
