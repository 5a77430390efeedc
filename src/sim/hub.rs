//! The virtual switch that connects simulated nodes.
//!
//! Each [`Port`] is a smoltcp `phy::Device`. A frame sent on one port is
//! delivered to the port that owns its destination MAC address (learnt from
//! the source addresses it has seen), or to every other port when that is
//! not known yet or the frame is broadcast. On the way it crosses three
//! links — the sender's cable, the switch, the receiver's cable — each with
//! its own [`Faults`], and a capture may record it.
//!
//! A frame is *in flight* until the hub's latency ([`Hub::set_latency`];
//! none by default) plus whatever delay the faults add has passed. A frame
//! due at once goes straight into its port's receive queue, as on a bare
//! hub driven by hand; later ones wait in one queue ordered by delivery
//! time, [`Hub::set_now`] moves the ones that are due, and
//! [`Hub::next_delivery`] tells the world how far it may jump the clock.
//!
//! Single-threaded on purpose (`Rc<RefCell<…>>`): the simulator polls nodes
//! one after another, so with the same seed every run is the same. Frame
//! buffers are recycled, so a long run does not allocate per frame.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fs::File;
use std::io::{self, BufWriter};
use std::path::Path;
use std::rc::Rc;

use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::{Duration, Instant};

use crate::sim::faults::{Fate, Link, corrupt};
pub use crate::sim::faults::{FaultCounts, Faults, Flap, REORDER_HOLD};
use crate::sim::pcap::PcapFile;
use crate::sim::rng::Rng;

/// Frames a port may queue before the switch drops more, like a NIC whose
/// receive ring is full. Keeps a stalled node from growing memory.
pub const PORT_QUEUE: usize = 1024;

/// Largest frame the ports carry (Ethernet, no FCS).
pub const MTU: usize = 1514;

/// The one-way time of a delivery on a perfect link (wire and switch) that
/// a [`crate::sim::World`] sets.
pub const LATENCY: Duration = Duration::from_micros(50);

/// Spare frame buffers kept for reuse; more are freed.
const SPARE_BUFFERS: usize = 4096;

/// What crossed the switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HubStats {
    /// Frames sent by any port.
    pub frames: u64,
    /// Frames put into a port's receive queue (a flooded frame counts once
    /// per port, a duplicated one twice).
    pub delivered: u64,
    /// Deliveries lost to faults (loss, a down link), full queues, or an
    /// unplugged port.
    pub dropped: u64,
    /// Faults injected, by kind.
    pub faults: FaultCounts,
}

/// What a [`Tap`] is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// A port sent this frame (before any fault).
    Sent {
        /// The sending port.
        from: usize,
    },
    /// This frame was put into a port's receive queue.
    Delivered {
        /// The receiving port.
        to: usize,
        /// Whether its bits were flipped on the way.
        corrupted: bool,
    },
}

/// Sees every frame sent and delivered, with the time, for accounting and
/// tracing in tests and the simulator. It runs inside the switch, so it
/// must not use the [`Hub`].
pub type Tap = Box<dyn FnMut(Instant, Seen, &[u8])>;

/// A frame on its way to a port.
struct Flight {
    at: Instant,
    /// Tie-break for equal times: first sent, first delivered.
    seq: u64,
    to: usize,
    corrupted: bool,
    frame: Vec<u8>,
}

impl PartialEq for Flight {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Flight {}
impl PartialOrd for Flight {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Flight {
    /// Reversed, so that the max-heap pops the earliest delivery.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

struct Inner {
    queues: Vec<VecDeque<Vec<u8>>>,
    /// Each port's cable.
    links: Vec<Link>,
    /// Ports whose cable was pulled ([`Hub::unplug`]).
    unplugged: Vec<bool>,
    /// The switch itself: [`Hub::set_faults`].
    switch: Link,
    flights: BinaryHeap<Flight>,
    seq: u64,
    /// The latest delivery time so far from one port to another: jitter
    /// varies the delay, but a path delivers in order.
    fifo: HashMap<(usize, usize), Instant>,
    /// Learnt MAC address → port.
    macs: Vec<([u8; 6], usize)>,
    rng: Rng,
    now: Instant,
    /// Time of every delivery before faults.
    latency: Duration,
    pcap: Option<PcapFile<BufWriter<File>>>,
    tap: Option<Tap>,
    stats: HubStats,
    spare: Vec<Vec<u8>>,
}

/// The switch. Cloning gives another handle to the same switch.
#[derive(Clone)]
pub struct Hub {
    inner: Rc<RefCell<Inner>>,
}

/// One port of the switch: the device a node's interface runs on.
pub struct Port {
    inner: Rc<RefCell<Inner>>,
    id: usize,
}

impl Hub {
    /// A switch with no ports; `seed` drives the fault dice.
    pub fn new(seed: u64) -> Self {
        Hub {
            inner: Rc::new(RefCell::new(Inner {
                queues: Vec::new(),
                links: Vec::new(),
                unplugged: Vec::new(),
                switch: Link::PERFECT,
                flights: BinaryHeap::new(),
                seq: 0,
                fifo: HashMap::new(),
                macs: Vec::new(),
                // Not the plan's sequence: the same seed drives both.
                rng: Rng::new(seed ^ 0x5eed_f00d_cafe_d00d),
                now: Instant::ZERO,
                latency: Duration::ZERO,
                pcap: None,
                tap: None,
                stats: HubStats::default(),
                spare: Vec::new(),
            })),
        }
    }

    /// Adds a port.
    pub fn add_port(&self) -> Port {
        let mut inner = self.inner.borrow_mut();
        inner.queues.push(VecDeque::new());
        inner.links.push(Link::PERFECT);
        inner.unplugged.push(false);
        Port {
            inner: self.inner.clone(),
            id: inner.queues.len() - 1,
        }
    }

    /// Sets the one-way time of every delivery, before faults.
    pub fn set_latency(&self, latency: Duration) {
        self.inner.borrow_mut().latency = latency;
    }

    /// Changes the faults of the switch, which every frame crosses.
    pub fn set_faults(&self, faults: Faults) {
        let inner = &mut *self.inner.borrow_mut();
        inner.switch.set(faults, inner.now, &mut inner.rng);
    }

    /// Changes the faults of one port's cable, which the frames that port
    /// sends and receives cross.
    ///
    /// # Panics
    /// If there is no such port (test scaffolding, never network input).
    pub fn set_link_faults(&self, port: usize, faults: Faults) {
        let inner = &mut *self.inner.borrow_mut();
        inner.links[port].set(faults, inner.now, &mut inner.rng);
    }

    /// Pulls a port's cable for good: nothing it sends arrives, nothing
    /// reaches it. Not a fault (nothing is counted in [`HubStats::faults`]):
    /// the host is gone.
    ///
    /// # Panics
    /// If there is no such port (test scaffolding, never network input).
    pub fn unplug(&self, port: usize) {
        self.inner.borrow_mut().unplugged[port] = true;
    }

    /// Shows every frame to `tap` from now on.
    pub fn set_tap(&self, tap: Tap) {
        self.inner.borrow_mut().tap = Some(tap);
    }

    /// Records every frame sent from now on to a pcap file at `path`, as
    /// sent (before any fault).
    pub fn capture(&self, path: &Path) -> io::Result<()> {
        let file = PcapFile::new(BufWriter::new(File::create(path)?))?;
        self.inner.borrow_mut().pcap = Some(file);
        Ok(())
    }

    /// Flushes the capture, if any.
    pub fn flush_capture(&self) -> io::Result<()> {
        match self.inner.borrow_mut().pcap.as_mut() {
            Some(p) => p.flush(),
            None => Ok(()),
        }
    }

    /// Sets the time, and delivers every in-flight frame that is due by
    /// then into its port's queue.
    pub fn set_now(&self, now: Instant) {
        let mut inner = self.inner.borrow_mut();
        inner.now = now;
        inner.release();
    }

    /// When the next in-flight frame is due, if any is in flight.
    pub fn next_delivery(&self) -> Option<Instant> {
        self.inner.borrow().flights.peek().map(|f| f.at)
    }

    /// Whether any frame is in flight or waits to be received.
    pub fn pending(&self) -> bool {
        let inner = self.inner.borrow();
        !inner.flights.is_empty() || inner.queues.iter().any(|q| !q.is_empty())
    }

    /// Counters.
    pub fn stats(&self) -> HubStats {
        self.inner.borrow().stats
    }
}

impl Port {
    /// This port's number: the order in which it was added, from 0.
    pub fn id(&self) -> usize {
        self.id
    }

    /// Whether a frame waits in this port's receive queue.
    pub fn has_frames(&self) -> bool {
        !self.inner.borrow().queues[self.id].is_empty()
    }
}

impl Inner {
    fn buffer(&mut self, len: usize) -> Vec<u8> {
        let mut b = self.spare.pop().unwrap_or_default();
        b.clear();
        b.resize(len, 0);
        b
    }

    fn recycle(&mut self, b: Vec<u8>) {
        if self.spare.len() < SPARE_BUFFERS {
            self.spare.push(b);
        }
    }

    fn deliver(&mut self, from: usize, frame: Vec<u8>) {
        self.stats.frames += 1;
        let now = self.now;
        if let Some(p) = self.pcap.as_mut() {
            // A capture that cannot be written must not break the network.
            let _ = p.frame(now, &frame);
        }
        if let Some(tap) = self.tap.as_mut() {
            tap(now, Seen::Sent { from }, &frame);
        }
        if frame.len() < 14 {
            self.stats.dropped += 1;
            return self.recycle(frame);
        }
        let mut src = [0u8; 6];
        src.copy_from_slice(&frame[6..12]);
        if !self.macs.iter().any(|(m, _)| *m == src) {
            self.macs.push((src, from));
        }
        let dst = &frame[0..6];
        let known = (dst[0] & 1 == 0)
            .then(|| self.macs.iter().find(|(m, _)| m == dst).map(|&(_, p)| p))
            .flatten();
        match known {
            Some(to) => self.send(from, to, frame),
            None => {
                for to in (0..self.queues.len()).filter(|&p| p != from) {
                    let mut copy = self.buffer(frame.len());
                    copy.copy_from_slice(&frame);
                    self.send(from, to, copy);
                }
                self.recycle(frame);
            }
        }
    }

    /// Puts one delivery in flight, through the faults of the links it
    /// crosses.
    fn send(&mut self, from: usize, to: usize, mut frame: Vec<u8>) {
        if self.unplugged[from] || self.unplugged[to] {
            self.stats.dropped += 1;
            return self.recycle(frame);
        }
        let mut fate = Fate::default();
        let Inner {
            links,
            switch,
            rng,
            stats,
            now,
            ..
        } = self;
        if !(links[from].is_perfect() && switch.is_perfect() && links[to].is_perfect()) {
            for stage in 0..3 {
                let link = match stage {
                    0 => &mut links[from],
                    1 => &mut *switch,
                    _ => &mut links[to],
                };
                if !link.roll(*now, rng, &mut fate, &mut stats.faults) {
                    stats.dropped += 1;
                    return self.recycle(frame);
                }
            }
        }
        let corrupted = fate.corrupt && corrupt(&mut frame, rng);
        stats.faults.corrupted += u64::from(corrupted);
        let mut at = *now + self.latency + fate.extra;
        if fate.hold > Duration::ZERO {
            // Held back: the frames sent after it may overtake it.
            at += fate.hold;
        } else {
            let last = self.fifo.entry((from, to)).or_insert(at);
            at = at.max(*last);
            *last = at;
        }
        if let Some(after) = fate.duplicate {
            let mut copy = self.buffer(frame.len());
            copy.copy_from_slice(&frame);
            self.fly(at + after, to, corrupted, copy);
        }
        self.fly(at, to, corrupted, frame);
        if at <= self.now {
            self.release();
        }
    }

    fn fly(&mut self, at: Instant, to: usize, corrupted: bool, frame: Vec<u8>) {
        self.seq += 1;
        self.flights.push(Flight {
            at,
            seq: self.seq,
            to,
            corrupted,
            frame,
        });
    }

    /// Moves every due in-flight frame into its port's queue.
    fn release(&mut self) {
        while self.flights.peek().is_some_and(|f| f.at <= self.now) {
            let Some(f) = self.flights.pop() else { break };
            if self.queues[f.to].len() >= PORT_QUEUE {
                self.stats.dropped += 1;
                self.stats.faults.overflow += 1;
                self.recycle(f.frame);
                continue;
            }
            if let Some(tap) = self.tap.as_mut() {
                let seen = Seen::Delivered {
                    to: f.to,
                    corrupted: f.corrupted,
                };
                tap(self.now, seen, &f.frame);
            }
            self.stats.delivered += 1;
            self.queues[f.to].push_back(f.frame);
        }
    }
}

/// A received frame; its buffer goes back to the switch once read.
pub struct RxToken<'a> {
    frame: Vec<u8>,
    port: &'a Port,
}

/// Permission to send one frame.
pub struct TxToken<'a> {
    port: &'a Port,
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let result = f(&self.frame);
        self.port.inner.borrow_mut().recycle(self.frame);
        result
    }
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = self.port.inner.borrow_mut().buffer(len);
        let result = f(&mut frame);
        self.port.inner.borrow_mut().deliver(self.port.id, frame);
        result
    }
}

impl Device for Port {
    type RxToken<'a> = RxToken<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _: Instant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        let frame = self.inner.borrow_mut().queues[self.id].pop_front()?;
        Some((RxToken { frame, port: self }, TxToken { port: self }))
    }

    fn transmit(&mut self, _: Instant) -> Option<TxToken<'_>> {
        Some(TxToken { port: self })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MTU;
        caps
    }
}

#[cfg(test)]
mod tests;
