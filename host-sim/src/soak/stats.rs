//! What the churn counts: every exchange's latency, by service and by time
//! bucket, and every session's outcome.
//!
//! Latencies go into log-linear histograms (64 steps per power of two, so a
//! percentile is off by at most 1/128 of its value, and exact below 128 µs),
//! not into a list: memory stays bounded however long the soak runs.

use std::collections::BTreeMap;
use std::time::Duration;

/// The services as the churn exercises them. The login's three forms are
/// apart because their costs differ by orders of magnitude: the plaintext
/// forms make the device run PBKDF2, challenge-response leaves that to the
/// client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Service {
    TcpEcho,
    UdpEcho,
    LoginScram,
    LoginLine,
    LoginDict,
    Chat,
    Hotline,
}

impl Service {
    /// Every service, in report order.
    pub const ALL: [Service; 7] = [
        Service::TcpEcho,
        Service::UdpEcho,
        Service::LoginScram,
        Service::LoginLine,
        Service::LoginDict,
        Service::Chat,
        Service::Hotline,
    ];

    /// Its name in tables and plots.
    pub fn name(self) -> &'static str {
        match self {
            Service::TcpEcho => "tcp echo",
            Service::UdpEcho => "udp echo",
            Service::LoginScram => "login scram",
            Service::LoginLine => "login line",
            Service::LoginDict => "login dict",
            Service::Chat => "chat",
            Service::Hotline => "hotline",
        }
    }

    /// What one of its exchanges is, for the report's legend.
    pub fn exchange(self) -> &'static str {
        match self {
            Service::TcpEcho => "1 KiB written, 1 KiB echoed back",
            Service::UdpEcho => "one datagram (16 B to 1 KiB) and its echo",
            Service::LoginScram => "AUTH → CHALLENGE, and PROOF → OK",
            Service::LoginLine => "LOGIN → OK/ERR",
            Service::LoginDict => "the dict → the verdict and the close",
            Service::Chat => "connect → greeting, and each message → its reply",
            Service::Hotline => "each datagram → its reply",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Steps per power of two: 2^6.
const SUB_BITS: u32 = 6;
/// Values below this are their own step.
const EXACT: u64 = 2 << SUB_BITS;
/// Latencies are capped here (about 12 days, in µs): no step past it.
const CAP: u64 = 1 << 40;

/// A log-linear histogram of latencies in microseconds.
#[derive(Debug, Clone, Default)]
pub struct Histogram {
    /// Count per step; only steps that occurred.
    counts: BTreeMap<u16, u64>,
    /// Samples recorded.
    n: u64,
    /// The largest sample, exactly.
    max: u64,
}

impl Histogram {
    /// The step of `us`.
    fn step(us: u64) -> u16 {
        let v = us.min(CAP);
        if v < EXACT {
            return v as u16;
        }
        let e = 63 - v.leading_zeros(); // > SUB_BITS
        let mantissa = v >> (e - SUB_BITS); // in [2^SUB_BITS, 2^(SUB_BITS+1))
        (EXACT + u64::from(e - SUB_BITS - 1) * (1 << SUB_BITS) + mantissa - (1 << SUB_BITS)) as u16
    }

    /// The middle of a step's range of values.
    fn middle(step: u16) -> u64 {
        let s = u64::from(step);
        if s < EXACT {
            return s;
        }
        let k = s - EXACT;
        let shift = (k >> SUB_BITS) + 1;
        let mantissa = (1 << SUB_BITS) + (k & ((1 << SUB_BITS) - 1));
        (mantissa << shift) + (1 << shift) / 2
    }

    pub fn record(&mut self, us: u64) {
        *self.counts.entry(Self::step(us)).or_default() += 1;
        self.n += 1;
        self.max = self.max.max(us);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (&step, &count) in &other.counts {
            *self.counts.entry(step).or_default() += count;
        }
        self.n += other.n;
        self.max = self.max.max(other.max);
    }

    /// Samples recorded.
    pub fn len(&self) -> u64 {
        self.n
    }

    /// The `q` quantile (0 < q ≤ 1) in µs; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.n == 0 {
            return None;
        }
        let rank = ((q * self.n as f64).ceil() as u64).clamp(1, self.n);
        let mut seen = 0;
        for (&step, &count) in &self.counts {
            seen += count;
            if seen >= rank {
                return Some(Self::middle(step).min(self.max));
            }
        }
        Some(self.max)
    }

    /// The largest sample in µs; `None` when empty.
    pub fn max(&self) -> Option<u64> {
        (self.n > 0).then_some(self.max)
    }
}

/// The percentiles the report shows.
#[derive(Debug, Clone, Copy)]
pub struct Percentiles {
    pub n: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
}

impl Histogram {
    pub fn percentiles(&self) -> Option<Percentiles> {
        Some(Percentiles {
            n: self.n,
            p50: self.quantile(0.50)?,
            p90: self.quantile(0.90)?,
            p99: self.quantile(0.99)?,
            max: self.max()?,
        })
    }
}

/// Latencies by service and time bucket.
#[derive(Debug, Clone)]
pub struct Latencies {
    /// The run is cut into this many buckets of equal length.
    buckets: usize,
    /// The length of the run the buckets cover.
    span: Duration,
    /// `Service::ALL.len() × buckets`, service-major.
    hists: Vec<Histogram>,
}

impl Latencies {
    pub fn new(span: Duration, buckets: usize) -> Latencies {
        let buckets = buckets.max(1);
        Latencies {
            buckets,
            span,
            hists: vec![Histogram::default(); Service::ALL.len() * buckets],
        }
    }

    pub fn buckets(&self) -> usize {
        self.buckets
    }

    pub fn span(&self) -> Duration {
        self.span
    }

    /// The time range of bucket `b`, in seconds from the start.
    pub fn bucket_range(&self, b: usize) -> (f64, f64) {
        let len = self.span.as_secs_f64() / self.buckets as f64;
        (b as f64 * len, (b + 1) as f64 * len)
    }

    /// Records an exchange that started `at` into the run and took `took`.
    /// One that started after the end (a session that ran over) counts in
    /// the last bucket.
    pub fn record(&mut self, service: Service, at: Duration, took: Duration) {
        let b = if self.span.is_zero() {
            0
        } else {
            ((at.as_secs_f64() / self.span.as_secs_f64() * self.buckets as f64) as usize)
                .min(self.buckets - 1)
        };
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.hists[service.index() * self.buckets + b].record(us);
    }

    pub fn merge(&mut self, other: &Latencies) {
        for (a, b) in self.hists.iter_mut().zip(&other.hists) {
            a.merge(b);
        }
    }

    /// One service in one bucket.
    pub fn get(&self, service: Service, bucket: usize) -> &Histogram {
        &self.hists[service.index() * self.buckets + bucket]
    }

    /// One service over the whole run.
    pub fn whole(&self, service: Service) -> Histogram {
        let mut all = Histogram::default();
        for b in 0..self.buckets {
            all.merge(self.get(service, b));
        }
        all
    }
}

/// Everything the churn counted.
#[derive(Debug, Clone)]
pub struct Tally {
    pub latency: Latencies,
    /// Sessions completed and checked, by service (a TCP connection, or a
    /// UDP conversation).
    pub served: [u64; Service::ALL.len()],
    /// Exchanges timed.
    pub exchanges: u64,
    /// Failed sessions, by kind of failure.
    pub errors: BTreeMap<&'static str, u64>,
    /// The first few failures, in words.
    pub examples: Vec<String>,
    /// Connections refused (every socket of the port busy) and tried again.
    pub refusals_retried: u64,
    /// UDP datagrams sent again after no reply came in time.
    pub udp_resends: u64,
    /// Logins made with a wrong password on purpose.
    pub bad_logins: u64,
}

/// Failures described in words, at most.
const EXAMPLES: usize = 8;

impl Tally {
    pub fn new(span: Duration, buckets: usize) -> Tally {
        Tally {
            latency: Latencies::new(span, buckets),
            served: [0; Service::ALL.len()],
            exchanges: 0,
            errors: BTreeMap::new(),
            examples: Vec::new(),
            refusals_retried: 0,
            udp_resends: 0,
            bad_logins: 0,
        }
    }

    pub fn served(&mut self, service: Service) {
        self.served[service.index()] += 1;
    }

    pub fn exchange(&mut self, service: Service, at: Duration, took: Duration) {
        self.exchanges += 1;
        self.latency.record(service, at, took);
    }

    pub fn error(&mut self, kind: &'static str, what: String) {
        *self.errors.entry(kind).or_default() += 1;
        if self.examples.len() < EXAMPLES {
            self.examples.push(what);
        }
    }

    pub fn merge(&mut self, other: &Tally) {
        self.latency.merge(&other.latency);
        for (a, b) in self.served.iter_mut().zip(other.served) {
            *a += b;
        }
        self.exchanges += other.exchanges;
        for (&kind, &n) in &other.errors {
            *self.errors.entry(kind).or_default() += n;
        }
        for e in &other.examples {
            if self.examples.len() < EXAMPLES {
                self.examples.push(e.clone());
            }
        }
        self.refusals_retried += other.refusals_retried;
        self.udp_resends += other.udp_resends;
        self.bad_logins += other.bad_logins;
    }

    pub fn total_served(&self) -> u64 {
        self.served.iter().sum()
    }

    pub fn total_errors(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// A latency in µs for a table: three significant digits, in the unit
/// that fits.
pub fn fmt_us(us: u64) -> String {
    match us {
        0..1_000 => format!("{us} µs"),
        1_000..1_000_000 => {
            let ms = us as f64 / 1e3;
            format!("{:.*} ms", decimals(ms), ms)
        }
        _ => {
            let s = us as f64 / 1e6;
            format!("{:.*} s", decimals(s), s)
        }
    }
}

fn decimals(x: f64) -> usize {
    if x < 10.0 {
        2
    } else if x < 100.0 {
        1
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_exact_below_128_and_within_a_percent_above() {
        for us in 0..128 {
            assert_eq!(Histogram::middle(Histogram::step(us)), us);
        }
        let mut last = 0;
        for us in (128..10_000_000).step_by(997) {
            let step = Histogram::step(us);
            assert!(step >= last, "steps are monotonic");
            last = step;
            let mid = Histogram::middle(step) as f64;
            assert!(
                (mid - us as f64).abs() / us as f64 <= 1.0 / 128.0 + 1e-9,
                "{us} → {mid}"
            );
        }
    }

    #[test]
    fn quantiles_of_a_known_distribution() {
        let mut h = Histogram::default();
        for us in 1..=100 {
            h.record(us);
        }
        assert_eq!(h.quantile(0.5), Some(50));
        assert_eq!(h.quantile(0.9), Some(90));
        assert_eq!(h.quantile(0.99), Some(99));
        assert_eq!(h.max(), Some(100));
        let mut big = Histogram::default();
        big.record(1_000_000);
        h.merge(&big);
        assert_eq!(h.max(), Some(1_000_000));
        assert_eq!(h.quantile(1.0), Some(1_000_000));
        assert_eq!(Histogram::default().quantile(0.5), None);
    }

    #[test]
    fn late_exchanges_count_in_the_last_bucket() {
        let mut l = Latencies::new(Duration::from_secs(10), 10);
        l.record(
            Service::Chat,
            Duration::from_millis(500),
            Duration::from_micros(7),
        );
        l.record(
            Service::Chat,
            Duration::from_secs(12),
            Duration::from_micros(9),
        );
        assert_eq!(l.get(Service::Chat, 0).len(), 1);
        assert_eq!(l.get(Service::Chat, 9).len(), 1);
        assert_eq!(l.whole(Service::Chat).len(), 2);
        assert_eq!(l.whole(Service::Hotline).len(), 0);
    }

    #[test]
    fn latencies_print_in_the_unit_that_fits() {
        assert_eq!(fmt_us(87), "87 µs");
        assert_eq!(fmt_us(1_250), "1.25 ms");
        assert_eq!(fmt_us(45_600), "45.6 ms");
        assert_eq!(fmt_us(2_100_000), "2.10 s");
    }
}
