//! The W5500 MACRAW driver against a simulated chip: the `w5500` crate's
//! real register traffic, answered by a model of the registers and 16 KiB
//! ring buffers that socket 0 uses in MACRAW mode.

mod common;

use std::cell::{RefCell, RefMut};
use std::collections::VecDeque;
use std::rc::Rc;
use std::task::Context;

use common::{arp_request, is_arp_reply};
use embassy_net_driver::{Driver, HardwareAddress as HwAddr, RxToken as _, TxToken as _};
use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::time::Instant;
use smoltcp::wire::{HardwareAddress, IpCidr, Ipv4Address};
use smoltcp_embassy_adapter::Adapter;
use smoltcp_embassy_adapter::w5500::{Error, MTU, W5500, link_up};
use w5500::bus::Bus;
use w5500::register::{self, common as creg, socketn};

const MAC: [u8; 6] = [0x02, 0x08, 0xdc, 0x00, 0x00, 0x01];
const RING: usize = 16 * 1024;

/// The registers and buffers of a W5500 that MACRAW mode touches.
struct Chip {
    common: [u8; 0x40],
    sock: [u8; 0x30],
    tx_buf: Vec<u8>,
    rx_buf: Vec<u8>,
    /// Where the chip writes the next received byte.
    rx_wr: u16,
    /// RX_RD as of the last RECV command: what the chip considers read.
    rx_committed: u16,
    /// Where the chip reads the next byte to send (TX_RD).
    tx_rd: u16,
    ir: u8,
    /// Frames the chip put on the wire.
    sent: Vec<Vec<u8>>,
    resets: usize,
    /// Fail the next read of this many RX-buffer transfers.
    fail_rx_reads: usize,
}

#[derive(Debug, PartialEq)]
struct SpiFault;

impl Chip {
    fn new(link: bool) -> Self {
        let mut common = [0; 0x40];
        common[creg::VERSION as usize] = 0x04;
        common[creg::PHY_CONFIG as usize] = 0b1011_1000 | link as u8;
        Chip {
            common,
            sock: [0; 0x30],
            tx_buf: vec![0; RING],
            rx_buf: vec![0; RING],
            rx_wr: 0,
            rx_committed: 0,
            tx_rd: 0,
            ir: 0,
            sent: Vec::new(),
            resets: 0,
            fail_rx_reads: 0,
        }
    }

    fn reg16(&self, at: u16) -> u16 {
        u16::from_be_bytes([self.sock[at as usize], self.sock[at as usize + 1]])
    }

    /// A frame arrives from the wire: the chip stores a 2-byte length
    /// (frame + 2) then the frame, and raises RECV.
    fn arrive(&mut self, frame: &[u8]) {
        let used = self.rx_wr.wrapping_sub(self.rx_committed) as usize;
        assert!(used + frame.len() + 2 <= RING, "test overflowed the chip");
        let len = (frame.len() as u16 + 2).to_be_bytes();
        for &b in len.iter().chain(frame) {
            self.rx_buf[self.rx_wr as usize % RING] = b;
            self.rx_wr = self.rx_wr.wrapping_add(1);
        }
        self.ir |= socketn::Interrupt::Receive as u8;
    }

    fn command(&mut self, cmd: u8) {
        if cmd == socketn::Command::Send as u8 {
            let wr = self.reg16(socketn::TX_DATA_WRITE_POINTER);
            let mut frame = Vec::new();
            while self.tx_rd != wr {
                frame.push(self.tx_buf[self.tx_rd as usize % RING]);
                self.tx_rd = self.tx_rd.wrapping_add(1);
            }
            self.sent.push(frame);
            self.ir |= socketn::Interrupt::SendOk as u8;
        } else if cmd == socketn::Command::Receive as u8 {
            self.rx_committed = self.reg16(socketn::RX_DATA_READ_POINTER);
        } else if cmd == socketn::Command::Open as u8 {
            self.sock[socketn::STATUS as usize] = 0x42; // SOCK_MACRAW
        }
    }
}

impl Bus for Chip {
    type Error = SpiFault;

    fn read_frame(&mut self, block: u8, address: u16, data: &mut [u8]) -> Result<(), SpiFault> {
        let a = address as usize;
        match block {
            register::COMMON => data.copy_from_slice(&self.common[a..a + data.len()]),
            register::SOCKET0 => {
                let free = (RING as u16).wrapping_sub(
                    self.reg16(socketn::TX_DATA_WRITE_POINTER)
                        .wrapping_sub(self.tx_rd),
                );
                let rsr = self.rx_wr.wrapping_sub(self.rx_committed);
                self.sock[0x20..0x22].copy_from_slice(&free.to_be_bytes());
                self.sock[0x22..0x24].copy_from_slice(&self.tx_rd.to_be_bytes());
                self.sock[0x26..0x28].copy_from_slice(&rsr.to_be_bytes());
                self.sock[socketn::INTERRUPT as usize] = self.ir;
                data.copy_from_slice(&self.sock[a..a + data.len()]);
            }
            register::SOCKET0_BUFFER_RX => {
                if self.fail_rx_reads > 0 {
                    self.fail_rx_reads -= 1;
                    return Err(SpiFault);
                }
                for (i, b) in data.iter_mut().enumerate() {
                    *b = self.rx_buf[(a + i) % RING];
                }
            }
            other => panic!("read of unexpected block {other:#x}"),
        }
        Ok(())
    }

    fn write_frame(&mut self, block: u8, address: u16, data: &[u8]) -> Result<(), SpiFault> {
        let a = address as usize;
        match block {
            register::COMMON if address == creg::MODE && data[0] & 0x80 != 0 => {
                self.resets += 1;
                self.sock = [0; 0x30];
                (self.rx_wr, self.rx_committed, self.tx_rd, self.ir) = (0, 0, 0, 0);
            }
            register::COMMON => self.common[a..a + data.len()].copy_from_slice(data),
            register::SOCKET0 if address == socketn::COMMAND => self.command(data[0]),
            register::SOCKET0 if address == socketn::INTERRUPT => self.ir &= !data[0],
            register::SOCKET0 => self.sock[a..a + data.len()].copy_from_slice(data),
            register::SOCKET0_BUFFER_TX => {
                for (i, &b) in data.iter().enumerate() {
                    self.tx_buf[(a + i) % RING] = b;
                }
            }
            // Sockets 1-7: MACRAW set-up gives their buffers 0 KiB.
            b if b & 0b11 == 0b01 && b > register::SOCKET0 => {
                assert!(
                    address == socketn::RXBUF_SIZE || address == socketn::TXBUF_SIZE,
                    "unexpected write to socket block {b:#x}"
                );
                assert_eq!(data, [0]);
            }
            other => panic!("write to unexpected block {other:#x}"),
        }
        Ok(())
    }
}

fn frame(tag: u8, len: usize) -> Vec<u8> {
    let mut f: Vec<u8> = (0..len).map(|i| tag ^ i as u8).collect();
    f[12] = 0x88;
    f[13] = 0xb5;
    f
}

fn noop() -> Context<'static> {
    Context::from_waker(std::task::Waker::noop())
}

/// The bus handed to the driver: the test keeps another handle on the
/// same chip, to make frames arrive and to look at what was sent.
#[derive(Clone)]
struct Shared(Rc<RefCell<Chip>>);

impl Bus for Shared {
    type Error = SpiFault;
    fn read_frame(&mut self, block: u8, address: u16, data: &mut [u8]) -> Result<(), SpiFault> {
        self.0.borrow_mut().read_frame(block, address, data)
    }
    fn write_frame(&mut self, block: u8, address: u16, data: &[u8]) -> Result<(), SpiFault> {
        self.0.borrow_mut().write_frame(block, address, data)
    }
}

struct Rig {
    dev: W5500<Shared>,
    chip: Shared,
}

impl Rig {
    fn new(link: bool) -> Self {
        let chip = Shared(Rc::new(RefCell::new(Chip::new(link))));
        let dev = W5500::new(chip.clone(), MAC).unwrap();
        Rig { dev, chip }
    }

    fn chip(&self) -> RefMut<'_, Chip> {
        self.chip.0.borrow_mut()
    }

    fn recv(&mut self) -> Option<Vec<u8>> {
        let (rx, _tx) = self.dev.receive(&mut noop())?;
        Some(rx.consume(|b| b.to_vec()))
    }

    fn send(&mut self, frame: &[u8]) {
        let tx = self
            .dev
            .transmit(&mut noop())
            .expect("a W5500 can always send");
        tx.consume(frame.len(), |b| b.copy_from_slice(frame));
    }
}

#[test]
fn setup_resets_the_chip_into_macraw_with_the_mac_and_16k_buffers() {
    let rig = Rig::new(true);
    let c = rig.chip();
    assert_eq!(c.resets, 1);
    assert_eq!(&c.common[creg::MAC as usize..][..6], &MAC);
    assert_eq!(
        c.sock[socketn::MODE as usize],
        0x80 | 0x04,
        "MACRAW, MAC filter"
    );
    assert_eq!(c.sock[socketn::RXBUF_SIZE as usize], 16);
    assert_eq!(c.sock[socketn::TXBUF_SIZE as usize], 16);
    assert_eq!(c.sock[socketn::STATUS as usize], 0x42, "socket 0 open");
    assert!(rig.dev.link_at_setup());
    assert_eq!(rig.dev.hardware_address(), HwAddr::Ethernet(MAC));
    assert!(!Rig::new(false).dev.link_at_setup());
}

#[test]
fn something_that_is_not_a_w5500_is_refused() {
    let mut chip = Chip::new(true);
    chip.common[creg::VERSION as usize] = 0xff; // MISO floating high
    assert_eq!(
        W5500::new(chip, MAC).err(),
        Some(Error::NotAW5500 { version: 0xff })
    );
}

#[test]
fn frames_in_and_out_are_byte_exact() {
    let mut rig = Rig::new(true);
    assert_eq!(rig.recv(), None);
    let sizes = [60, 61, 1514];
    for (i, len) in sizes.into_iter().enumerate() {
        rig.chip().arrive(&frame(i as u8, len));
    }
    for (i, len) in sizes.into_iter().enumerate() {
        assert_eq!(rig.recv(), Some(frame(i as u8, len)));
    }
    assert_eq!(rig.recv(), None);

    let sizes = [60, 999, MTU];
    for (i, len) in sizes.into_iter().enumerate() {
        rig.send(&frame(0x40 + i as u8, len));
    }
    let sent = rig.chip().sent.clone();
    assert_eq!(sent.len(), 3);
    for (i, len) in sizes.into_iter().enumerate() {
        assert_eq!(sent[i], frame(0x40 + i as u8, len));
    }
    let s = rig.dev.stats();
    assert_eq!((s.rx_frames, s.tx_frames, s.tx_failed), (3, 3, 0));
}

#[test]
fn frames_survive_the_ring_buffers_wrapping_around() {
    let mut rig = Rig::new(true);
    let size = |i: usize| 60 + (i * 37) % 1400;
    // 100 frames of varied sizes go round both 16 KiB rings several times,
    // read three at a time and sent back.
    let mut expected = VecDeque::new();
    for i in 0..100usize {
        let f = frame(i as u8, size(i));
        rig.chip().arrive(&f);
        expected.push_back(f);
        if i % 3 == 2 || i == 99 {
            while let Some(got) = rig.recv() {
                assert_eq!(Some(&got), expected.front());
                expected.pop_front();
                rig.send(&got);
            }
        }
    }
    assert!(expected.is_empty());
    let sent = rig.chip().sent.clone();
    assert_eq!(sent.len(), 100);
    for (i, f) in sent.iter().enumerate() {
        assert_eq!(f, &frame(i as u8, size(i)));
    }
}

#[test]
fn an_unconsumed_token_keeps_the_frame() {
    let mut rig = Rig::new(true);
    rig.chip().arrive(&frame(1, 100));
    rig.chip().arrive(&frame(2, 100));
    assert!(rig.dev.receive(&mut noop()).is_some()); // dropped unconsumed
    assert!(rig.dev.receive(&mut noop()).is_some()); // dropped unconsumed
    assert_eq!(rig.recv(), Some(frame(1, 100)));
    assert_eq!(rig.recv(), Some(frame(2, 100)));
    assert_eq!(rig.dev.stats().rx_frames, 2);
}

#[test]
fn an_spi_error_while_reading_loses_no_frame_and_is_counted() {
    let mut rig = Rig::new(true);
    rig.chip().arrive(&frame(5, 300));
    rig.chip().fail_rx_reads = 1;
    assert_eq!(rig.recv(), None);
    assert_eq!(rig.dev.stats().rx_spi_errors, 1);
    assert_eq!(rig.recv(), Some(frame(5, 300)));
}

#[test]
fn receive_interrupts_are_enabled_and_cleared_without_dropping_frames() {
    let mut rig = Rig::new(true);
    rig.dev.enable_receive_interrupt().unwrap();
    let recv_bit = socketn::Interrupt::Receive as u8;
    assert_eq!(rig.chip().sock[socketn::INTERRUPT_MASK as usize], recv_bit);
    assert_eq!(rig.chip().common[creg::SOCKET_INTERRUPT_MASK as usize], 1);
    rig.chip().arrive(&frame(1, 60));
    assert_ne!(rig.chip().ir & recv_bit, 0);
    rig.dev.clear_interrupts().unwrap();
    assert_eq!(rig.chip().ir, 0);
    assert_eq!(rig.recv(), Some(frame(1, 60)));
}

#[test]
fn capabilities_are_ethernet_1514_with_software_checksums() {
    let mut rig = Rig::new(true);
    let dev = Adapter::new(&mut rig.dev).unwrap();
    let caps = smoltcp::phy::Device::capabilities(&dev);
    assert_eq!(caps.max_transmission_unit, 1514);
    // The 16 KiB receive buffer holds 10 frames of 1514 + 2 bytes.
    assert_eq!(caps.max_burst_size, Some(10));
    assert!(matches!(caps.checksum.tcp, smoltcp::phy::Checksum::Both));
    assert!(matches!(caps.checksum.ipv4, smoltcp::phy::Checksum::Both));
}

#[test]
fn smoltcp_answers_arp_through_the_adapter_and_the_w5500() {
    let mut rig = Rig::new(true);
    let chip = rig.chip.clone();
    let mut dev = Adapter::new(&mut rig.dev).unwrap();
    let mac = dev.ethernet_address().unwrap();
    let t = Instant::from_millis(0);
    let mut iface = Interface::new(Config::new(HardwareAddress::Ethernet(mac)), &mut dev, t);
    iface.update_ip_addrs(|a| {
        a.push(IpCidr::new(Ipv4Address::new(10, 0, 0, 2).into(), 24))
            .unwrap()
    });
    let mut sockets = SocketSet::new(vec![]);
    chip.0.borrow_mut().arrive(&arp_request([10, 0, 0, 2]));
    iface.poll(t, &mut dev, &mut sockets);
    let sent = chip.0.borrow().sent.clone();
    assert_eq!(sent.len(), 1);
    assert!(is_arp_reply(&sent[0], MAC, [10, 0, 0, 2]));
}

#[test]
fn a_frame_too_long_for_ethernet_is_counted_and_the_next_one_still_arrives() {
    let mut rig = Rig::new(true);
    rig.chip().arrive(&frame(1, 1600));
    rig.chip().arrive(&frame(2, 64));
    assert_eq!(rig.recv(), None);
    assert_eq!(rig.dev.stats().rx_too_long, 1);
    assert_eq!(rig.recv(), Some(frame(2, 64)));
}

#[test]
fn the_link_bit_can_be_read_before_setup() {
    assert!(link_up(&mut Chip::new(true)).unwrap());
    assert!(!link_up(&mut Chip::new(false)).unwrap());
}
