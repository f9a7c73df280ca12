//! Per-MAC token buckets, so one client (a stuck phone, a flooding tool) cannot take the
//! server's time from the others.

use std::collections::HashMap;

use mac::Mac;

use crate::config::RateLimitConfig;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last_ms: u64,
}

/// Token buckets keyed by MAC, bounded in memory: idle buckets are pruned.
#[derive(Debug)]
pub struct RateLimiter {
    cfg: RateLimitConfig,
    buckets: HashMap<Mac, Bucket>,
    prune_at: usize,
}

/// Buckets kept before the first prune.
const PRUNE_FLOOR: usize = 65_536;

impl RateLimiter {
    pub fn new(cfg: RateLimitConfig) -> Self {
        RateLimiter {
            cfg,
            buckets: HashMap::new(),
            prune_at: PRUNE_FLOOR,
        }
    }

    /// Takes one token for `mac` at `now_ms`; false if the MAC is over its rate.
    pub fn allow(&mut self, mac: Mac, now_ms: u64) -> bool {
        let burst = f64::from(self.cfg.burst);
        let per_ms = self.cfg.per_sec.max(0.0) / 1000.0;
        if self.buckets.len() >= self.prune_at {
            self.prune(now_ms);
        }
        let b = self.buckets.entry(mac).or_insert(Bucket {
            tokens: burst,
            last_ms: now_ms,
        });
        let elapsed = now_ms.saturating_sub(b.last_ms) as f64;
        b.tokens = (b.tokens + elapsed * per_ms).min(burst);
        b.last_ms = now_ms.max(b.last_ms);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Drops buckets that would be full again by now (they hold no information).
    fn prune(&mut self, now_ms: u64) {
        let burst = f64::from(self.cfg.burst);
        let per_ms = self.cfg.per_sec.max(0.0) / 1000.0;
        self.buckets.retain(|_, b| {
            let elapsed = now_ms.saturating_sub(b.last_ms) as f64;
            b.tokens + elapsed * per_ms < burst
        });
        self.prune_at = (self.buckets.len() * 2).max(PRUNE_FLOOR);
    }

    /// Buckets currently held.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate() {
        let mut rl = RateLimiter::new(RateLimitConfig {
            burst: 3,
            per_sec: 1.0,
        });
        let m = Mac([2, 0, 0, 0, 0, 1]);
        let other = Mac([2, 0, 0, 0, 0, 2]);
        assert!((0..3).all(|_| rl.allow(m, 1000)));
        assert!(!rl.allow(m, 1000));
        assert!(rl.allow(other, 1000), "another MAC is not affected");
        assert!(!rl.allow(m, 1500));
        assert!(rl.allow(m, 2001));
        assert!(!rl.allow(m, 2002));
    }
}
