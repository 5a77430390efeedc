//! Test doubles shared by the adapter's tests: a fake embassy driver, and a
//! plain smoltcp device for the peer at the other end of the "cable".
#![allow(dead_code)]

use std::collections::VecDeque;
use std::task::{Context, Waker};

use embassy_net_driver::{Capabilities, Driver, HardwareAddress, LinkState, RxToken, TxToken};
use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

pub const MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];

/// An embassy driver whose "hardware" is two queues, following the
/// `Driver` contract the way embassy-stm32 does: `receive` hands out a pair
/// only when a frame is waiting *and* a transmit slot is free; a frame
/// leaves `rx` only when its token is consumed.
pub struct FakeDriver {
    /// Frames "on the wire" for the stack, oldest first.
    pub rx: VecDeque<Vec<u8>>,
    /// Frames the stack sent, oldest first.
    pub tx: Vec<Vec<u8>>,
    /// Free transmit slots; each sent frame takes one. `usize::MAX` for
    /// "always room".
    pub tx_free: usize,
    pub caps: Capabilities,
    pub address: HardwareAddress,
    pub link: LinkState,
    /// The waker of the last call that found nothing to do, as a real
    /// driver keeps it for its interrupt handler.
    pub waker: Option<Waker>,
    /// How often `receive` was asked.
    pub receive_calls: usize,
}

impl FakeDriver {
    pub fn new() -> Self {
        let mut caps = Capabilities::default();
        caps.max_transmission_unit = 1514;
        caps.max_burst_size = Some(4);
        FakeDriver {
            rx: VecDeque::new(),
            tx: Vec::new(),
            tx_free: usize::MAX,
            caps,
            address: HardwareAddress::Ethernet(MAC),
            link: LinkState::Up,
            waker: None,
            receive_calls: 0,
        }
    }

    /// A frame arrives: queue it and wake whoever waits, as an RX
    /// interrupt handler would.
    pub fn arrive(&mut self, frame: Vec<u8>) {
        self.rx.push_back(frame);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

pub struct FakeRx<'a> {
    rx: &'a mut VecDeque<Vec<u8>>,
}

pub struct FakeTx<'a> {
    tx: &'a mut Vec<Vec<u8>>,
    free: &'a mut usize,
}

impl RxToken for FakeRx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, f: F) -> R {
        let mut frame = self.rx.pop_front().expect("token only for a waiting frame");
        f(&mut frame)
    }
}

impl TxToken for FakeTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0xAA; len];
        let r = f(&mut frame);
        self.tx.push(frame);
        if *self.free != usize::MAX {
            *self.free -= 1;
        }
        r
    }
}

impl Driver for FakeDriver {
    type RxToken<'a> = FakeRx<'a>;
    type TxToken<'a> = FakeTx<'a>;

    fn receive(&mut self, cx: &mut Context) -> Option<(FakeRx<'_>, FakeTx<'_>)> {
        self.receive_calls += 1;
        if self.rx.is_empty() || self.tx_free == 0 {
            self.waker = Some(cx.waker().clone());
            return None;
        }
        Some((
            FakeRx { rx: &mut self.rx },
            FakeTx {
                tx: &mut self.tx,
                free: &mut self.tx_free,
            },
        ))
    }

    fn transmit(&mut self, cx: &mut Context) -> Option<FakeTx<'_>> {
        if self.tx_free == 0 {
            self.waker = Some(cx.waker().clone());
            return None;
        }
        Some(FakeTx {
            tx: &mut self.tx,
            free: &mut self.tx_free,
        })
    }

    fn link_state(&mut self, cx: &mut Context) -> LinkState {
        self.waker = Some(cx.waker().clone());
        self.link
    }

    fn capabilities(&self) -> Capabilities {
        self.caps.clone()
    }

    fn hardware_address(&self) -> HardwareAddress {
        self.address
    }
}

/// A plain smoltcp device for the peer: frames in `rx` are received, sent
/// frames land in `tx`.
pub struct Pipe {
    pub rx: VecDeque<Vec<u8>>,
    pub tx: Vec<Vec<u8>>,
}

impl Pipe {
    pub fn new() -> Self {
        Pipe {
            rx: VecDeque::new(),
            tx: Vec::new(),
        }
    }
}

pub struct PipeRx(Vec<u8>);
pub struct PipeTx<'a>(&'a mut Vec<Vec<u8>>);

impl phy::RxToken for PipeRx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for PipeTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0; len];
        let r = f(&mut frame);
        self.0.push(frame);
        r
    }
}

impl phy::Device for Pipe {
    type RxToken<'a> = PipeRx;
    type TxToken<'a> = PipeTx<'a>;

    fn receive(&mut self, _: Instant) -> Option<(PipeRx, PipeTx<'_>)> {
        let frame = self.rx.pop_front()?;
        Some((PipeRx(frame), PipeTx(&mut self.tx)))
    }

    fn transmit(&mut self, _: Instant) -> Option<PipeTx<'_>> {
        Some(PipeTx(&mut self.tx))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = 1514;
        caps
    }
}

/// An ARP request "who has `target`? tell 10.0.0.1 (02:00:00:00:00:99)".
pub fn arp_request(target: [u8; 4]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&[0xff; 6]); // broadcast
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x99]);
    f.extend_from_slice(&[0x08, 0x06]); // ARP
    f.extend_from_slice(&[0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01]); // Ethernet/IPv4, request
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x99]);
    f.extend_from_slice(&[10, 0, 0, 1]);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target);
    f
}

/// Whether `frame` is an ARP reply from `mac` saying it has `ip`.
pub fn is_arp_reply(frame: &[u8], mac: [u8; 6], ip: [u8; 4]) -> bool {
    frame.len() >= 42
        && frame[12..14] == [0x08, 0x06]
        && frame[20..22] == [0x00, 0x02]
        && frame[22..28] == mac
        && frame[28..32] == ip
}
