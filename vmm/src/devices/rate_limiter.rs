//! Token-bucket rate limiting for disks and network cards: one bucket for operations per
//! second, one for bytes per second, each with a burst. The same model EBS volume types use.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// One bucket's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketConfig {
    /// Tokens added per second.
    pub rate: u64,
    /// Most tokens the bucket holds (it starts full).
    pub burst: u64,
}

impl BucketConfig {
    /// `rate` per second with the default burst: a tenth of a second's worth (at least one).
    pub fn with_rate(rate: u64) -> Self {
        BucketConfig {
            rate,
            burst: (rate / 10).max(1),
        }
    }
}

/// A token bucket.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    config: BucketConfig,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(config: BucketConfig, now: Instant) -> Self {
        TokenBucket {
            config,
            tokens: config.burst as f64,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens =
            (self.tokens + elapsed * self.config.rate as f64).min(self.config.burst as f64);
    }

    /// How long until `n` tokens are there (zero if they are now). A request larger than the
    /// burst needs a full bucket and then runs the bucket into debt.
    pub fn wait_for(&mut self, n: u64, now: Instant) -> Duration {
        self.refill(now);
        let need = (n as f64).min(self.config.burst as f64);
        if self.tokens >= need || self.config.rate == 0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64((need - self.tokens) / self.config.rate as f64)
    }

    /// Takes `n` tokens (the bucket may go negative for requests above the burst).
    pub fn consume(&mut self, n: u64) {
        self.tokens -= n as f64;
    }
}

/// The two buckets of one device (either may be absent).
#[derive(Debug, Clone, Default)]
pub struct RateLimiter {
    ops: Option<TokenBucket>,
    bytes: Option<TokenBucket>,
}

impl RateLimiter {
    /// A limiter with the given buckets.
    pub fn new(ops: Option<BucketConfig>, bytes: Option<BucketConfig>) -> Self {
        let now = Instant::now();
        RateLimiter {
            ops: ops.map(|c| TokenBucket::new(c, now)),
            bytes: bytes.map(|c| TokenBucket::new(c, now)),
        }
    }

    /// Whether the limiter limits anything.
    pub fn is_active(&self) -> bool {
        self.ops.is_some() || self.bytes.is_some()
    }

    /// Admits one operation of `bytes` bytes now, or says how long to wait first.
    pub fn admit(&mut self, bytes: u64, now: Instant) -> Result<(), Duration> {
        let wait_ops = self
            .ops
            .as_mut()
            .map_or(Duration::ZERO, |b| b.wait_for(1, now));
        let wait_bytes = self
            .bytes
            .as_mut()
            .map_or(Duration::ZERO, |b| b.wait_for(bytes, now));
        let wait = wait_ops.max(wait_bytes);
        if !wait.is_zero() {
            return Err(wait.max(Duration::from_micros(100)));
        }
        if let Some(b) = &mut self.ops {
            b.consume(1);
        }
        if let Some(b) = &mut self.bytes {
            b.consume(bytes);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_the_burst_then_paces_at_the_rate() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(
            Some(BucketConfig {
                rate: 1000,
                burst: 10,
            }),
            None,
        );
        for _ in 0..10 {
            limiter.admit(4096, t0).unwrap();
        }
        let wait = limiter.admit(4096, t0).unwrap_err();
        assert!(
            wait >= Duration::from_micros(900) && wait <= Duration::from_micros(1100),
            "{wait:?}"
        );
        assert!(limiter.admit(4096, t0 + Duration::from_millis(1)).is_ok());
    }

    #[test]
    fn simulated_second_admits_rate_plus_burst() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(Some(BucketConfig::with_rate(1000)), None);
        let mut now = t0;
        let mut admitted = 0;
        while now < t0 + Duration::from_secs(1) {
            match limiter.admit(512, now) {
                Ok(()) => admitted += 1,
                Err(wait) => now += wait,
            }
        }
        assert!((1000..=1101).contains(&admitted), "{admitted}");
    }

    #[test]
    fn bytes_bucket_limits_large_requests() {
        let t0 = Instant::now();
        let cfg = BucketConfig {
            rate: 1 << 20,
            burst: 1 << 20,
        };
        let mut limiter = RateLimiter::new(None, Some(cfg));
        limiter.admit(1 << 20, t0).unwrap();
        let wait = limiter.admit(1 << 19, t0).unwrap_err();
        assert!(wait >= Duration::from_millis(490), "{wait:?}");
        assert!(!RateLimiter::default().is_active());
        assert!(RateLimiter::default().admit(u64::MAX, t0).is_ok());
    }
}
