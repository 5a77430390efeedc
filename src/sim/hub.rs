//! The virtual switch that connects simulated nodes.
//!
//! Each [`Port`] is a smoltcp `phy::Device`. A frame sent on one port is
//! delivered to the port that owns its destination MAC address (learnt from
//! the source addresses it has seen), or to every other port when that is
//! not known yet or the frame is broadcast. On the way, [`Faults`] may drop
//! it, and a capture may record it.
//!
//! Single-threaded on purpose (`Rc<RefCell<…>>`): the simulator polls nodes
//! one after another, so with the same seed every run is the same.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufWriter};
use std::path::Path;
use std::rc::Rc;

use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use crate::sim::pcap::PcapFile;

/// Frames a port may queue before the switch drops more, like a NIC whose
/// receive ring is full. Keeps a stalled node from growing memory.
pub const PORT_QUEUE: usize = 1024;

/// Largest frame the ports carry (Ethernet, no FCS).
pub const MTU: usize = 1514;

/// Link faults.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Faults {
    /// Probability (0.0 to 1.0) that a frame is lost on its way to a port.
    pub loss: f64,
}

/// What crossed the switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HubStats {
    /// Frames sent by any port.
    pub frames: u64,
    /// Deliveries dropped by [`Faults`] or full queues.
    pub dropped: u64,
}

struct Inner {
    queues: Vec<VecDeque<Vec<u8>>>,
    /// Learnt MAC address → port.
    macs: Vec<([u8; 6], usize)>,
    faults: Faults,
    rng: u64,
    now: Instant,
    pcap: Option<PcapFile<BufWriter<File>>>,
    stats: HubStats,
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
                macs: Vec::new(),
                faults: Faults::default(),
                rng: seed ^ 0x9e37_79b9_7f4a_7c15,
                now: Instant::ZERO,
                pcap: None,
                stats: HubStats::default(),
            })),
        }
    }

    /// Adds a port.
    pub fn add_port(&self) -> Port {
        let mut inner = self.inner.borrow_mut();
        inner.queues.push(VecDeque::new());
        Port {
            inner: self.inner.clone(),
            id: inner.queues.len() - 1,
        }
    }

    /// Changes the link faults from now on.
    pub fn set_faults(&self, faults: Faults) {
        self.inner.borrow_mut().faults = faults;
    }

    /// Records every frame sent from now on to a pcap file at `path`.
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

    /// Sets the time stamped on captured frames.
    pub fn set_now(&self, now: Instant) {
        self.inner.borrow_mut().now = now;
    }

    /// Whether any frame waits to be received.
    pub fn pending(&self) -> bool {
        self.inner.borrow().queues.iter().any(|q| !q.is_empty())
    }

    /// Counters.
    pub fn stats(&self) -> HubStats {
        self.inner.borrow().stats
    }
}

impl Inner {
    /// xorshift64*: small, fast, and the same on every machine.
    fn roll(&mut self) -> f64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn deliver(&mut self, from: usize, frame: Vec<u8>) {
        self.stats.frames += 1;
        let now = self.now;
        if let Some(p) = self.pcap.as_mut() {
            // A capture that cannot be written must not break the network.
            let _ = p.frame(now, &frame);
        }
        if frame.len() < 14 {
            self.stats.dropped += 1;
            return;
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
        let targets: Vec<usize> = match known {
            Some(p) => vec![p],
            None => (0..self.queues.len()).filter(|&p| p != from).collect(),
        };
        for to in targets {
            if self.faults.loss > 0.0 && self.roll() < self.faults.loss {
                self.stats.dropped += 1;
                continue;
            }
            if self.queues[to].len() >= PORT_QUEUE {
                self.stats.dropped += 1;
                continue;
            }
            self.queues[to].push_back(frame.clone());
        }
    }
}

/// A received frame.
pub struct RxToken {
    frame: Vec<u8>,
}

/// Permission to send one frame.
pub struct TxToken<'a> {
    port: &'a Port,
}

impl phy::RxToken for RxToken {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.frame)
    }
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0; len];
        let result = f(&mut frame);
        self.port.inner.borrow_mut().deliver(self.port.id, frame);
        result
    }
}

impl Device for Port {
    type RxToken<'a> = RxToken;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _: Instant) -> Option<(RxToken, TxToken<'_>)> {
        let frame = self.inner.borrow_mut().queues[self.id].pop_front()?;
        Some((RxToken { frame }, TxToken { port: self }))
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
