//! What a simulated cable can do to a frame: lose it, duplicate it, hold it
//! back behind later frames, delay it with jitter, flip its bits, or go down
//! for a while.
//!
//! A frame from one node to another crosses three `Link`s: the sender's
//! cable, the switch, and the receiver's cable. Each has its own [`Faults`]
//! and its own up/down cycle, so a test can make one client's cable bad and
//! leave everyone else's clean. Every decision comes from the hub's seeded
//! generator, so a seed replays the same faults on the same frames.

use smoltcp::time::{Duration, Instant};

use crate::sim::rng::Rng;

/// How long a reordered frame is held back at most, beyond its normal
/// delivery time: long enough for the frames sent after it in a TCP burst
/// to overtake it, short enough not to look like a loss to TCP.
pub const REORDER_HOLD: Duration = Duration::from_millis(5);

/// Faults of one link. [`Faults::NONE`] is a perfect cable; set only the
/// fields you want: `Faults { loss: 0.1, ..Faults::NONE }`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Faults {
    /// Probability (0.0 to 1.0) that a frame is lost.
    pub loss: f64,
    /// Probability that a frame arrives twice.
    pub duplicate: f64,
    /// Probability that a frame is held back (up to [`REORDER_HOLD`]), so
    /// frames sent after it arrive first.
    pub reorder: f64,
    /// Probability that 1 to 3 bits of an IPv4 frame are flipped. Only bits
    /// the IPv4, TCP and UDP checksums cover are flipped, at positions that
    /// those checksums always detect: this network has no Ethernet FCS, so
    /// the receiver's checksums are what must catch it.
    pub corrupt: f64,
    /// Extra one-way delay of every frame.
    pub delay: Duration,
    /// Each frame's delay varies by up to this much either way (never below
    /// zero). Frames from one node to another still arrive in the order
    /// they were sent, as through any queue: reordering is [`Faults::reorder`].
    pub jitter: Duration,
    /// The link goes down now and then; while down, every frame is lost.
    pub flap: Option<Flap>,
}

/// A link that goes down and comes back. Each up and down period lasts
/// between half and one and a half times its mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flap {
    /// Mean time the link stays up between two outages.
    pub up: Duration,
    /// Mean length of an outage.
    pub down: Duration,
}

impl Faults {
    /// A perfect link.
    pub const NONE: Faults = Faults {
        loss: 0.0,
        duplicate: 0.0,
        reorder: 0.0,
        corrupt: 0.0,
        delay: Duration::ZERO,
        jitter: Duration::ZERO,
        flap: None,
    };

    /// Whether this link does nothing to frames.
    pub fn is_none(&self) -> bool {
        *self == Faults::NONE
    }
}

impl Default for Faults {
    fn default() -> Self {
        Faults::NONE
    }
}

/// How many faults were injected, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultCounts {
    /// Frames lost to [`Faults::loss`].
    pub lost: u64,
    /// Extra copies delivered by [`Faults::duplicate`].
    pub duplicated: u64,
    /// Frames held back by [`Faults::reorder`].
    pub reordered: u64,
    /// Frames given extra delay ([`Faults::delay`], [`Faults::jitter`]).
    pub delayed: u64,
    /// Frames whose bits were flipped by [`Faults::corrupt`].
    pub corrupted: u64,
    /// Times a link went down ([`Faults::flap`]).
    pub flaps: u64,
    /// Frames lost because a link was down.
    pub flap_drops: u64,
    /// Frames dropped because the receiving port's queue was full.
    pub overflow: u64,
}

impl FaultCounts {
    /// Adds another run's counts to these.
    pub fn add(&mut self, o: &FaultCounts) {
        self.lost += o.lost;
        self.duplicated += o.duplicated;
        self.reordered += o.reordered;
        self.delayed += o.delayed;
        self.corrupted += o.corrupted;
        self.flaps += o.flaps;
        self.flap_drops += o.flap_drops;
        self.overflow += o.overflow;
    }
}

impl core::fmt::Display for FaultCounts {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "lost {}, duplicated {}, reordered {}, delayed {}, corrupted {}, \
             flaps {} ({} frames lost while down), queue overflow {}",
            self.lost,
            self.duplicated,
            self.reordered,
            self.delayed,
            self.corrupted,
            self.flaps,
            self.flap_drops,
            self.overflow
        )
    }
}

/// One cable: its faults and where it is in its up/down cycle.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    faults: Faults,
    down: bool,
    /// When the link next goes down or comes back, if it flaps.
    next_change: Instant,
}

/// What happens to one delivery, gathered over the links it crosses.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Fate {
    /// Delay on top of the base latency ([`Faults::delay`], jitter).
    pub extra: Duration,
    /// Held back on top of that, so that later frames overtake it.
    pub hold: Duration,
    /// Deliver a second copy, this much after the first.
    pub duplicate: Option<Duration>,
    /// Flip bits before delivering.
    pub corrupt: bool,
}

impl Link {
    pub(crate) const PERFECT: Link = Link {
        faults: Faults::NONE,
        down: false,
        next_change: Instant::ZERO,
    };

    /// Changes the faults; a flapping link starts up, with a fresh cycle.
    pub(crate) fn set(&mut self, faults: Faults, now: Instant, rng: &mut Rng) {
        self.faults = faults;
        self.down = false;
        if let Some(flap) = faults.flap {
            self.next_change = now + period(flap.up, rng);
        }
    }

    pub(crate) fn is_perfect(&self) -> bool {
        self.faults.is_none()
    }

    /// Rolls this link's dice for one frame at `now`. Returns `false` if
    /// the frame is lost here.
    pub(crate) fn roll(
        &mut self,
        now: Instant,
        rng: &mut Rng,
        fate: &mut Fate,
        counts: &mut FaultCounts,
    ) -> bool {
        if self.is_perfect() {
            return true;
        }
        if self.is_down(now, rng, counts) {
            counts.flap_drops += 1;
            return false;
        }
        let f = self.faults;
        if rng.chance(f.loss) {
            counts.lost += 1;
            return false;
        }
        if f.delay > Duration::ZERO || f.jitter > Duration::ZERO {
            let j = f.jitter.total_micros();
            let micros = (f.delay.total_micros() + rng.range(0, 2 * j)).saturating_sub(j);
            if micros > 0 {
                fate.extra += Duration::from_micros(micros);
                counts.delayed += 1;
            }
        }
        if rng.chance(f.reorder) {
            fate.hold += rng.duration(Duration::from_micros(100), REORDER_HOLD);
            counts.reordered += 1;
        }
        if fate.duplicate.is_none() && rng.chance(f.duplicate) {
            fate.duplicate = Some(rng.duration(Duration::ZERO, REORDER_HOLD));
            counts.duplicated += 1;
        }
        if rng.chance(f.corrupt) {
            fate.corrupt = true;
        }
        true
    }

    /// Advances the up/down cycle to `now`.
    fn is_down(&mut self, now: Instant, rng: &mut Rng, counts: &mut FaultCounts) -> bool {
        let Some(flap) = self.faults.flap else {
            return false;
        };
        while now >= self.next_change {
            self.down = !self.down;
            let mean = if self.down {
                counts.flaps += 1;
                flap.down
            } else {
                flap.up
            };
            self.next_change += period(mean, rng);
        }
        self.down
    }
}

/// A period of mean `mean`: uniform in `[mean / 2, 3 * mean / 2]`, and at
/// least a millisecond so that a cycle always moves forward.
fn period(mean: Duration, rng: &mut Rng) -> Duration {
    let m = mean.total_micros().max(1000);
    Duration::from_micros(rng.range(m / 2, m + m / 2))
}

/// Flips 1 to 3 bits of the IPv4 packet in an Ethernet `frame`. Returns
/// whether it did (only IPv4 frames are corrupted: ARP has no checksum, and
/// without an FCS nothing could catch it).
///
/// The Internet checksum is a ones' complement sum of 16-bit words, so a set
/// of flips is always detected when no two of them sit at the same bit of a
/// word: their changes are distinct powers of two, which can neither cancel
/// nor add up to 0xffff. Words start at the IPv4 header (frame offset 14),
/// and the TCP/UDP header starts a multiple of 4 bytes later, so one bit
/// position serves both checksums.
pub(crate) fn corrupt(frame: &mut [u8], rng: &mut Rng) -> bool {
    const IP: usize = 14;
    if frame.len() < IP + 20 || frame[12..14] != [0x08, 0x00] {
        return false;
    }
    let total = usize::from(u16::from_be_bytes([frame[IP + 2], frame[IP + 3]]));
    let len = total.min(frame.len() - IP);
    if len < 20 {
        return false;
    }
    let flips = rng.range(1, 3);
    let mut used = 0u16;
    let mut done = 0;
    while done < flips {
        let offset = rng.below(len as u64) as usize;
        let bit = rng.below(8) as u32;
        let word_bit = (offset % 2) as u32 * 8 + bit;
        if used & (1 << word_bit) != 0 {
            continue;
        }
        used |= 1 << word_bit;
        frame[IP + offset] ^= 1 << bit;
        done += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_link_touches_nothing() {
        let mut link = Link::PERFECT;
        let (mut rng, mut fate, mut counts) =
            (Rng::new(1), Fate::default(), FaultCounts::default());
        for _ in 0..100 {
            assert!(link.roll(Instant::ZERO, &mut rng, &mut fate, &mut counts));
        }
        assert_eq!(counts, FaultCounts::default());
        assert_eq!(fate.extra, Duration::ZERO);
    }

    #[test]
    fn flapping_link_goes_down_and_comes_back() {
        let mut rng = Rng::new(2);
        let mut link = Link::PERFECT;
        let flap = Flap {
            up: Duration::from_secs(1),
            down: Duration::from_millis(500),
        };
        link.set(
            Faults {
                flap: Some(flap),
                ..Faults::NONE
            },
            Instant::ZERO,
            &mut rng,
        );
        let mut counts = FaultCounts::default();
        let (mut up, mut down) = (0, 0);
        for ms in 0..20_000 {
            let mut fate = Fate::default();
            if link.roll(Instant::from_millis(ms), &mut rng, &mut fate, &mut counts) {
                up += 1;
            } else {
                down += 1;
            }
        }
        assert!(counts.flaps > 5, "{counts:?}");
        assert!(up > down && down > 3000, "up {up} down {down}");
        assert_eq!(counts.flap_drops, down);
    }

    #[test]
    fn corruption_stays_inside_the_ip_packet_and_is_detectable() {
        let mut rng = Rng::new(3);
        for _ in 0..1000 {
            let mut frame = vec![0u8; 100];
            frame[12..14].copy_from_slice(&[0x08, 0x00]);
            frame[14 + 2..14 + 4].copy_from_slice(&80u16.to_be_bytes());
            let before = frame.clone();
            assert!(corrupt(&mut frame, &mut rng));
            assert_eq!(frame[..14], before[..14], "Ethernet header untouched");
            assert_eq!(frame[94..], before[94..], "nothing past the IP length");
            // No two flips at the same bit of a 16-bit word.
            let mut seen = 0u16;
            for (i, (a, b)) in frame.iter().zip(&before).enumerate().skip(14) {
                for bit in 0..8 {
                    if (a ^ b) & (1 << bit) != 0 {
                        let k = ((i - 14) % 2) * 8 + bit;
                        assert_eq!(seen & (1 << k), 0);
                        seen |= 1 << k;
                    }
                }
            }
            assert!((1..=3).contains(&seen.count_ones()));
        }
        let mut arp = vec![0u8; 60];
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert!(!corrupt(&mut arp, &mut rng), "ARP is never corrupted");
    }
}
