//! Per-address login lockout: too many failed logins from one IP address in a
//! short time and that address is refused for a while.
//!
//! PBKDF2 makes each guess slow; the lockout bounds how many guesses one
//! address gets per minute. The table is a fixed array of
//! [`LOCKOUT_ENTRIES`] addresses shared by all login sessions of a node: it
//! never allocates and never panics. When it is full, a new address evicts
//! the least recently active address that is not locked, or, if every
//! address is locked, the one whose lock ends first. An attacker with more
//! addresses than the table holds can therefore push entries out; the table
//! bounds memory, it does not pretend to be a firewall.
//!
//! Failures are counted in a fixed window that opens at the first failure:
//! `login_max_failures` failures before `login_window` has passed since the
//! first one lock the address for `login_lockout`. A successful login
//! forgets the address. Refused attempts during a lock do not extend it.

use smoltcp::time::{Duration, Instant};
use smoltcp::wire::IpAddress;

use crate::config::{LOCKOUT_ENTRIES, Limits};

/// What the table remembers about one address.
#[derive(Debug, Clone, Copy)]
struct Entry {
    addr: IpAddress,
    /// Failures counted in the current window.
    failures: u8,
    /// When the current window opened (the first failure in it).
    window_start: Instant,
    /// The last failure; orders eviction.
    last_active: Instant,
    /// Refused until then, if locked.
    locked_until: Option<Instant>,
}

impl Entry {
    fn is_locked(&self, now: Instant) -> bool {
        matches!(self.locked_until, Some(t) if now < t)
    }

    /// Whether the entry no longer says anything: not locked and its window
    /// is over, so forgetting it changes no decision.
    fn is_stale(&self, now: Instant, limits: &Limits) -> bool {
        !self.is_locked(now) && (self.locked_until.is_some() || window_over(self, now, limits))
    }
}

fn window_over(e: &Entry, now: Instant, limits: &Limits) -> bool {
    now >= e.window_start + limits.login_window
}

/// Failed-login counts per client address, bounded to [`LOCKOUT_ENTRIES`].
#[derive(Debug, Clone)]
pub struct Lockout {
    entries: heapless::Vec<Entry, LOCKOUT_ENTRIES>,
}

impl Default for Lockout {
    fn default() -> Self {
        Lockout::new()
    }
}

impl Lockout {
    /// An empty table.
    pub const fn new() -> Self {
        Lockout {
            entries: heapless::Vec::new(),
        }
    }

    /// How much longer `addr` is refused, or `None` if it may try now.
    pub fn locked_for(&self, addr: IpAddress, now: Instant) -> Option<Duration> {
        let e = self.entries.iter().find(|e| e.addr == addr)?;
        match e.locked_until {
            Some(until) if now < until => Some(until - now),
            _ => None,
        }
    }

    /// Counts a failed login from `addr`. Returns `true` if this failure
    /// locked the address.
    pub fn record_failure(&mut self, addr: IpAddress, now: Instant, limits: &Limits) -> bool {
        let i = match self.entries.iter().position(|e| e.addr == addr) {
            Some(i) => i,
            None => {
                let fresh = Entry {
                    addr,
                    failures: 0,
                    window_start: now,
                    last_active: now,
                    locked_until: None,
                };
                if self.entries.is_full() {
                    let victim = self.victim(now, limits);
                    self.entries[victim] = fresh;
                    victim
                } else {
                    // Cannot fail: not full.
                    let _ = self.entries.push(fresh);
                    self.entries.len() - 1
                }
            }
        };
        let e = &mut self.entries[i];
        e.last_active = now;
        if e.is_locked(now) {
            return false;
        }
        if e.locked_until.is_some() || window_over(e, now, limits) {
            // The lock or the window is over: start counting afresh.
            e.locked_until = None;
            e.failures = 0;
            e.window_start = now;
        }
        e.failures = e.failures.saturating_add(1);
        if e.failures >= limits.login_max_failures.max(1) {
            e.failures = 0;
            e.locked_until = Some(now + limits.login_lockout);
            return true;
        }
        false
    }

    /// Forgets addresses whose lock and window are over.
    pub fn expire(&mut self, now: Instant, limits: &Limits) {
        self.entries.retain(|e| !e.is_stale(now, limits));
    }

    /// When [`Lockout::expire`] next has something to forget: the end of
    /// the earliest lock or failure window.
    pub fn poll_at(&self, limits: &Limits) -> Option<Instant> {
        self.entries
            .iter()
            .map(|e| {
                e.locked_until
                    .unwrap_or(e.window_start + limits.login_window)
            })
            .min()
    }

    /// How many addresses the table tracks.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table tracks no address.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry a new address replaces in a full table: a stale one if any,
    /// else the least recently active unlocked one, else the locked one whose
    /// lock ends first. The table is full, so there is always a candidate.
    fn victim(&self, now: Instant, limits: &Limits) -> usize {
        let mut best: Option<(usize, (u8, Instant))> = None;
        for (i, e) in self.entries.iter().enumerate() {
            let key = if e.is_stale(now, limits) {
                (0, e.last_active)
            } else if let (true, Some(until)) = (e.is_locked(now), e.locked_until) {
                (2, until)
            } else {
                (1, e.last_active)
            };
            if best.is_none_or(|(_, k)| key < k) {
                best = Some((i, key));
            }
        }
        best.map_or(0, |(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::wire::Ipv4Address;

    const L: Limits = Limits::DEFAULT;

    fn ip(n: u8) -> IpAddress {
        IpAddress::Ipv4(Ipv4Address::new(10, 0, 0, n))
    }

    fn t(secs: i64) -> Instant {
        Instant::from_secs(secs)
    }

    #[test]
    fn five_failures_lock_then_the_lock_expires() {
        let mut l = Lockout::new();
        for i in 0..4 {
            assert!(!l.record_failure(ip(1), t(i), &L));
            assert_eq!(l.locked_for(ip(1), t(i)), None);
        }
        assert!(l.record_failure(ip(1), t(4), &L));
        assert_eq!(l.locked_for(ip(1), t(4)), Some(Duration::from_secs(60)));
        assert_eq!(l.locked_for(ip(1), t(30)), Some(Duration::from_secs(34)));
        // Failing while locked neither counts nor extends the lock.
        assert!(!l.record_failure(ip(1), t(30), &L));
        assert_eq!(l.locked_for(ip(1), t(63)), Some(Duration::from_secs(1)));
        assert_eq!(l.locked_for(ip(1), t(64)), None);
        // After the lock, counting starts afresh.
        for i in 0..4 {
            assert!(!l.record_failure(ip(1), t(65 + i), &L));
        }
        assert!(l.record_failure(ip(1), t(70), &L));
    }

    #[test]
    fn other_addresses_are_unaffected() {
        let mut l = Lockout::new();
        for i in 0..5 {
            l.record_failure(ip(1), t(i), &L);
        }
        assert!(l.locked_for(ip(1), t(5)).is_some());
        assert_eq!(l.locked_for(ip(2), t(5)), None);
        assert!(!l.record_failure(ip(2), t(5), &L));
    }

    #[test]
    fn failures_outside_the_window_do_not_add_up() {
        let mut l = Lockout::new();
        for i in 0..4 {
            l.record_failure(ip(1), t(i), &L);
        }
        // The window opened at t=0 and is over at t=60.
        assert!(!l.record_failure(ip(1), t(60), &L));
        for i in 61..64 {
            assert!(!l.record_failure(ip(1), t(i), &L));
        }
        assert!(l.record_failure(ip(1), t(64), &L));
    }

    #[test]
    fn only_time_forgets_failures() {
        // There is no "success" reset on purpose: with one valid account an
        // attacker could otherwise guess 4 times, log in, and guess again.
        let mut l = Lockout::new();
        for i in 0..4 {
            l.record_failure(ip(1), t(i), &L);
        }
        assert!(
            l.record_failure(ip(1), t(5), &L),
            "the fifth failure in the window locks"
        );
    }

    #[test]
    fn table_is_bounded_and_evicts_unlocked_first() {
        let mut l = Lockout::new();
        // Lock address 0.
        for i in 0..5 {
            l.record_failure(ip(0), t(i), &L);
        }
        // Fill the table, then go on with many more addresses.
        for n in 1..=200u8 {
            l.record_failure(ip(n), t(10) + Duration::from_millis(n as u64), &L);
            assert!(l.len() <= LOCKOUT_ENTRIES);
        }
        assert_eq!(l.len(), LOCKOUT_ENTRIES);
        // The locked address survived the flood; the most recent are there.
        assert!(l.locked_for(ip(0), t(11)).is_some());
        assert!(l.entries.iter().any(|e| e.addr == ip(200)));
        assert!(!l.entries.iter().any(|e| e.addr == ip(1)));
    }

    #[test]
    fn all_locked_evicts_the_lock_that_ends_first() {
        let mut l = Lockout::new();
        for n in 0..LOCKOUT_ENTRIES as u8 {
            for _ in 0..5 {
                l.record_failure(ip(n), t(n as i64), &L);
            }
        }
        assert!((0..LOCKOUT_ENTRIES as u8).all(|n| l.locked_for(ip(n), t(20)).is_some()));
        l.record_failure(ip(99), t(20), &L);
        assert_eq!(l.len(), LOCKOUT_ENTRIES);
        assert_eq!(l.locked_for(ip(0), t(20)), None);
        assert!(l.locked_for(ip(1), t(20)).is_some());
    }

    #[test]
    fn expire_forgets_stale_entries() {
        let mut l = Lockout::new();
        l.record_failure(ip(1), t(0), &L);
        for i in 0..5 {
            l.record_failure(ip(2), t(i), &L);
        }
        l.expire(t(30), &L);
        assert_eq!(l.len(), 2);
        l.expire(t(61), &L);
        assert_eq!(l.len(), 1); // ip(2) is still locked until t=64
        l.expire(t(64), &L);
        assert!(l.is_empty());
    }

    #[test]
    fn poll_at_is_when_the_next_entry_goes_stale() {
        let mut l = Lockout::new();
        assert_eq!(l.poll_at(&L), None);
        l.record_failure(ip(1), t(10), &L);
        assert_eq!(l.poll_at(&L), Some(t(70)), "the end of its window");
        for i in 0..5 {
            l.record_failure(ip(2), t(i), &L);
        }
        assert_eq!(l.poll_at(&L), Some(t(64)), "the end of the lock");
        l.expire(t(64), &L);
        assert_eq!(l.poll_at(&L), Some(t(70)));
        l.expire(t(70), &L);
        assert_eq!(l.poll_at(&L), None);
    }
}
