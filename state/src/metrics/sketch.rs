//! A mergeable, bounded sketch of a set of values for percentiles: values are counted in
//! buckets whose bounds grow geometrically (`GAMMA` apart), so that any value read back is
//! within `RELATIVE_ACCURACY` (1%) of a value the bucket holds (the DDSketch idea). Positive
//! and negative values have a store each, and zero its own count. A store holds at most
//! `MAX_BUCKETS` buckets: past that, its lowest buckets (the values nearest zero) are
//! collapsed into one, so a sketch stays small whatever it is fed, and only the quantiles
//! among those collapsed values lose accuracy.
//!
//! Counts are `f64`, since CloudWatch's `Counts` and statistic sets carry fractional
//! counts.

use std::collections::BTreeMap;

/// The relative error of a value read back from a bucket.
pub const RELATIVE_ACCURACY: f64 = 0.01;
/// The most buckets one store (positive or negative values) keeps.
pub const MAX_BUCKETS: usize = 1024;
/// The ratio between a bucket's upper and lower bounds: `(1 + a) / (1 - a)`.
const GAMMA: f64 = (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY);
/// Values below this magnitude count as zero (CloudWatch truncates values below
/// 8.5e-109 to zero as well).
const MIN_MAGNITUDE: f64 = 1e-300;
/// The format version written first.
const FORMAT: u8 = 1;

/// Why stored bytes are not a sketch.
#[derive(Debug, thiserror::Error)]
pub enum SketchError {
    /// The bytes end early, have another version, or hold counts that are not counts.
    #[error("the stored sketch is malformed ({0})")]
    Malformed(&'static str),
}

/// One sign's buckets: index to count.
#[derive(Debug, Clone, Default, PartialEq)]
struct Store {
    buckets: BTreeMap<i32, f64>,
}

impl Store {
    fn add(&mut self, index: i32, count: f64) {
        *self.buckets.entry(index).or_insert(0.0) += count;
        self.bound();
    }

    fn merge(&mut self, other: &Store) {
        for (&i, &c) in &other.buckets {
            *self.buckets.entry(i).or_insert(0.0) += c;
        }
        self.bound();
    }

    /// Collapses the lowest buckets into the lowest one kept, past `MAX_BUCKETS`.
    fn bound(&mut self) {
        while self.buckets.len() > MAX_BUCKETS {
            let Some((_, low)) = self.buckets.pop_first() else {
                return;
            };
            if let Some(mut next) = self.buckets.first_entry() {
                *next.get_mut() += low;
            }
        }
    }

    fn total(&self) -> f64 {
        self.buckets.values().sum()
    }
}

/// A sketch of values; see the module's documentation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sketch {
    positive: Store,
    negative: Store,
    zero: f64,
}

/// The bucket index of a magnitude `m` (at least `MIN_MAGNITUDE`).
fn index_of(m: f64) -> i32 {
    // ln(1e-300) / ln(GAMMA) is about -34,500, and ln(f64::MAX) / ln(GAMMA) about 35,500:
    // within i32 whatever the value.
    (m.ln() / GAMMA.ln()).ceil() as i32
}

/// The value a bucket stands for: within `RELATIVE_ACCURACY` of both its bounds.
fn value_of(index: i32) -> f64 {
    2.0 * GAMMA.powi(index) / (GAMMA + 1.0)
}

impl Sketch {
    /// An empty sketch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts `value` `count` times. A value that is not finite or a count that is not
    /// positive and finite is ignored (the control plane refuses them before).
    pub fn add(&mut self, value: f64, count: f64) {
        if !value.is_finite() || !count.is_finite() || count <= 0.0 {
            return;
        }
        let m = value.abs();
        if m < MIN_MAGNITUDE {
            self.zero += count;
        } else if value > 0.0 {
            self.positive.add(index_of(m), count);
        } else {
            self.negative.add(index_of(m), count);
        }
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Sketch) {
        self.positive.merge(&other.positive);
        self.negative.merge(&other.negative);
        self.zero += other.zero;
    }

    /// How many values it holds.
    pub fn count(&self) -> f64 {
        self.zero + self.positive.total() + self.negative.total()
    }

    /// Whether it holds no value.
    pub fn is_empty(&self) -> bool {
        self.count() <= 0.0
    }

    /// The value at quantile `q` (0 to 1): the value of rank `q * (count - 1)` in ascending
    /// order, within 1% of it; `None` when empty or `q` is out of range.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if !(0.0..=1.0).contains(&q) || total <= 0.0 {
            return None;
        }
        let rank = q * (total - 1.0).max(0.0);
        let mut seen = 0.0;
        // Most negative first: the negative store's highest indices.
        for (&i, &c) in self.negative.buckets.iter().rev() {
            seen += c;
            if seen > rank {
                return Some(-value_of(i));
            }
        }
        seen += self.zero;
        if seen > rank {
            return Some(0.0);
        }
        for (&i, &c) in &self.positive.buckets {
            seen += c;
            if seen > rank {
                return Some(value_of(i));
            }
        }
        // Rounding in the sums: the highest value.
        self.positive
            .buckets
            .last_key_value()
            .map(|(&i, _)| value_of(i))
            .or_else(|| (self.zero > 0.0).then_some(0.0))
            .or_else(|| {
                self.negative
                    .buckets
                    .first_key_value()
                    .map(|(&i, _)| -value_of(i))
            })
    }

    /// The sketch as bytes: a version, the zero count, then each store's buckets (index
    /// and count, little-endian).
    pub fn to_bytes(&self) -> Vec<u8> {
        let len = 1 + 8 + 2 * 4 + 12 * (self.positive.buckets.len() + self.negative.buckets.len());
        let mut out = Vec::with_capacity(len);
        out.push(FORMAT);
        out.extend_from_slice(&self.zero.to_le_bytes());
        for store in [&self.positive, &self.negative] {
            out.extend_from_slice(&(store.buckets.len() as u32).to_le_bytes());
            for (&i, &c) in &store.buckets {
                out.extend_from_slice(&i.to_le_bytes());
                out.extend_from_slice(&c.to_le_bytes());
            }
        }
        out
    }

    /// Reads what [`Sketch::to_bytes`] wrote.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SketchError> {
        let mut r = Reader(bytes);
        if r.take::<1>()? != [FORMAT] {
            return Err(SketchError::Malformed("unknown version"));
        }
        let zero = r.count()?;
        let mut stores = [Store::default(), Store::default()];
        for store in &mut stores {
            let n = u32::from_le_bytes(r.take::<4>()?) as usize;
            if n > MAX_BUCKETS {
                return Err(SketchError::Malformed("too many buckets"));
            }
            for _ in 0..n {
                let i = i32::from_le_bytes(r.take::<4>()?);
                let c = r.count()?;
                store.buckets.insert(i, c);
            }
        }
        if !r.0.is_empty() {
            return Err(SketchError::Malformed("trailing bytes"));
        }
        let [positive, negative] = stores;
        Ok(Self {
            positive,
            negative,
            zero,
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], SketchError> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(SketchError::Malformed("truncated"))?;
        self.0 = rest;
        Ok(*head)
    }

    fn count(&mut self) -> Result<f64, SketchError> {
        let c = f64::from_le_bytes(self.take::<8>()?);
        if c.is_finite() && c >= 0.0 {
            Ok(c)
        } else {
            Err(SketchError::Malformed("a count that is not a count"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exact value of rank `q * (n - 1)` of sorted `values`.
    fn exact(sorted: &[f64], q: f64) -> f64 {
        sorted[(q * (sorted.len() - 1) as f64).floor() as usize]
    }

    fn within(got: f64, want: f64, tolerance: f64) -> bool {
        (got - want).abs() <= tolerance * want.abs().max(1e-12)
    }

    fn check(mut values: Vec<f64>, tolerance: f64) {
        let mut s = Sketch::new();
        for &v in &values {
            s.add(v, 1.0);
        }
        values.sort_by(f64::total_cmp);
        for q in [0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0] {
            let (got, want) = (s.quantile(q).unwrap(), exact(&values, q));
            assert!(within(got, want, tolerance), "q {q}: {got} vs {want}");
        }
    }

    #[test]
    fn quantiles_of_a_uniform_spread_are_within_one_percent() {
        check((1..=10_000).map(f64::from).collect(), 0.0101);
    }

    #[test]
    fn quantiles_of_an_exponential_and_a_lognormal_spread_are_within_one_percent() {
        // Inverse-CDF samples at evenly spaced probabilities: deterministic, no RNG.
        let n = 20_000;
        let exponential = (1..n).map(|k| -(1.0 - k as f64 / n as f64).ln() * 250.0);
        check(exponential.collect(), 0.0101);
        let lognormal = (1..n).map(|k| {
            // A crude normal quantile (logit scaled), enough to spread values over decades.
            let p = k as f64 / n as f64;
            (1.7 * (p / (1.0 - p)).ln() / 1.6).exp() * 3.0
        });
        check(lognormal.collect(), 0.0101);
    }

    #[test]
    fn negative_values_zero_and_positive_values_are_ordered() {
        let values: Vec<f64> = (-500..=500).map(|v| f64::from(v) / 10.0).collect();
        let mut s = Sketch::new();
        for &v in &values {
            s.add(v, 1.0);
        }
        assert_eq!(s.quantile(0.5), Some(0.0));
        let p0 = s.quantile(0.0).unwrap();
        assert!(within(p0, -50.0, 0.0101), "{p0}");
        let p90 = s.quantile(0.9).unwrap();
        assert!(within(p90, 40.0, 0.0101), "{p90}");
    }

    #[test]
    fn weighted_counts_act_as_repeated_values() {
        let mut weighted = Sketch::new();
        weighted.add(10.0, 9.0);
        weighted.add(1000.0, 1.0);
        let mut repeated = Sketch::new();
        for _ in 0..9 {
            repeated.add(10.0, 1.0);
        }
        repeated.add(1000.0, 1.0);
        assert_eq!(weighted, repeated);
        assert!(within(weighted.quantile(0.5).unwrap(), 10.0, 0.0101));
        assert!(within(weighted.quantile(1.0).unwrap(), 1000.0, 0.0101));
    }

    #[test]
    fn merged_sketches_answer_as_one_fed_everything() {
        let (mut a, mut b, mut all) = (Sketch::new(), Sketch::new(), Sketch::new());
        for v in 1..=1000 {
            let v = f64::from(v);
            if v as i64 % 3 == 0 { &mut a } else { &mut b }.add(v, 1.0);
            all.add(v, 1.0);
        }
        a.merge(&b);
        assert_eq!(a, all);
    }

    #[test]
    fn its_size_is_bounded_and_high_quantiles_keep_their_accuracy() {
        let mut s = Sketch::new();
        // 1e-200 to 1e200: about 46,000 buckets' worth of spread.
        let values: Vec<f64> = (-2000..=2000)
            .map(|e| 10f64.powf(e as f64 / 10.0))
            .collect();
        for &v in &values {
            s.add(v, 1.0);
        }
        assert!(s.positive.buckets.len() <= MAX_BUCKETS);
        assert!(s.to_bytes().len() <= 1 + 8 + 8 + 12 * MAX_BUCKETS);
        assert_eq!(s.count(), values.len() as f64);
        let p99 = s.quantile(0.99).unwrap();
        assert!(within(p99, exact(&values, 0.99), 0.0101), "{p99}");
    }

    #[test]
    fn bytes_read_back_and_garbage_is_refused() {
        let mut s = Sketch::new();
        for v in [-3.5, 0.0, 1.0, 2.0, 1e9] {
            s.add(v, 2.5);
        }
        let bytes = s.to_bytes();
        assert_eq!(Sketch::from_bytes(&bytes).unwrap(), s);
        assert!(Sketch::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        assert!(Sketch::from_bytes(&[]).is_err());
        assert!(Sketch::from_bytes(&[9]).is_err());
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(Sketch::from_bytes(&extra).is_err());
    }

    #[test]
    fn values_that_are_not_numbers_and_empty_counts_are_ignored() {
        let mut s = Sketch::new();
        s.add(f64::NAN, 1.0);
        s.add(f64::INFINITY, 1.0);
        s.add(1.0, 0.0);
        s.add(1.0, -1.0);
        assert!(s.is_empty());
        assert_eq!(s.quantile(0.5), None);
    }
}
