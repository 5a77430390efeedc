//! The adapter against a fake embassy driver: frames in and out,
//! capabilities, waking, and that no frame is lost or duplicated.

mod common;

use common::{FakeDriver, MAC, arp_request, is_arp_reply};
use embassy_net_driver::{Checksum as EChecksum, HardwareAddress, LinkState};
use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::phy::{Checksum, Device, Medium, RxToken, TxToken};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress as Hw, IpCidr, Ipv4Address};
use smoltcp_embassy_adapter::{Adapter, Unsupported, WakeFlag};

fn t0() -> Instant {
    Instant::from_millis(0)
}

fn frame(tag: u8) -> Vec<u8> {
    let mut f = vec![tag; 60];
    f[12] = 0x88; // an EtherType nobody handles
    f[13] = 0xb5;
    f
}

/// The raw bytes of the next frame smoltcp would see, consuming it.
fn take_frame(dev: &mut Adapter<FakeDriver>) -> Option<Vec<u8>> {
    let (rx, _tx) = dev.receive(t0())?;
    Some(rx.consume(|bytes| bytes.to_vec()))
}

#[test]
fn received_frames_reach_smoltcp_in_order_and_byte_exact() {
    let mut fake = FakeDriver::new();
    fake.rx.extend([frame(1), frame(2), frame(3)]);
    let mut dev = Adapter::new(fake).unwrap();

    assert_eq!(take_frame(&mut dev), Some(frame(1)));
    assert_eq!(take_frame(&mut dev), Some(frame(2)));
    assert_eq!(take_frame(&mut dev), Some(frame(3)));
    assert_eq!(take_frame(&mut dev), None);
    assert_eq!(dev.counters().rx_frames, 3);
}

#[test]
fn sent_frames_reach_the_driver_with_the_length_smoltcp_asked_for() {
    let mut dev = Adapter::new(FakeDriver::new()).unwrap();
    for len in [60, 1000, 1514] {
        let tx = dev.transmit(t0()).expect("room to send");
        tx.consume(len, |buf| {
            assert_eq!(buf.len(), len);
            buf.fill(len as u8);
        });
    }
    let sent = &dev.driver().tx;
    assert_eq!(sent.len(), 3);
    for (frame, len) in sent.iter().zip([60, 1000, 1514]) {
        assert_eq!(frame, &vec![len as u8; len]);
    }
    assert_eq!(dev.counters().tx_frames, 3);
}

#[test]
fn no_frame_is_lost_while_transmit_is_full() {
    let mut fake = FakeDriver::new();
    fake.rx.extend([frame(1), frame(2)]);
    fake.tx_free = 0;
    let mut dev = Adapter::new(fake).unwrap();

    // smoltcp may need to answer a frame, so without a transmit slot the
    // driver offers none; the frames must wait, not vanish.
    assert!(dev.receive(t0()).is_none());
    assert!(dev.transmit(t0()).is_none());
    assert_eq!(dev.driver().rx.len(), 2);

    dev.driver_mut().tx_free = 1;
    assert_eq!(take_frame(&mut dev), Some(frame(1)));
    // The reply slot was not used: it is still free.
    assert_eq!(take_frame(&mut dev), Some(frame(2)));
    assert_eq!(take_frame(&mut dev), None);
}

#[test]
fn a_reply_through_the_pair_uses_the_transmit_slot() {
    let mut fake = FakeDriver::new();
    fake.rx.extend([frame(1), frame(2)]);
    fake.tx_free = 1;
    let mut dev = Adapter::new(fake).unwrap();

    let (rx, tx) = dev.receive(t0()).unwrap();
    let got = rx.consume(|b| b.to_vec());
    tx.consume(got.len(), |b| b.copy_from_slice(&got));
    // The only slot is taken: the second frame waits for the next one.
    assert!(dev.receive(t0()).is_none());
    assert_eq!(dev.driver().rx.len(), 1);
    assert_eq!(dev.driver().tx, vec![frame(1)]);
}

#[test]
fn an_unconsumed_receive_token_leaves_the_frame_in_the_driver() {
    let mut fake = FakeDriver::new();
    fake.rx.push_back(frame(7));
    let mut dev = Adapter::new(fake).unwrap();

    let tokens = dev.receive(t0());
    assert!(tokens.is_some());
    let _ = tokens; // dropped unconsumed
    assert_eq!(dev.driver().rx.len(), 1);
    assert_eq!(take_frame(&mut dev), Some(frame(7)));
    assert_eq!(dev.counters().rx_frames, 1);
}

#[test]
fn capabilities_map_mtu_burst_and_every_checksum() {
    let mut fake = FakeDriver::new();
    fake.caps.max_transmission_unit = 1514;
    fake.caps.max_burst_size = Some(3);
    fake.caps.checksum.ipv4 = EChecksum::None;
    fake.caps.checksum.udp = EChecksum::Rx;
    fake.caps.checksum.tcp = EChecksum::Tx;
    fake.caps.checksum.icmpv4 = EChecksum::Both;
    let dev = Adapter::new(fake).unwrap();

    let caps = dev.capabilities();
    assert_eq!(caps.medium, Medium::Ethernet);
    assert_eq!(caps.max_transmission_unit, 1514);
    assert_eq!(caps.ip_mtu(), 1500);
    assert_eq!(caps.max_burst_size, Some(3));
    assert!(matches!(caps.checksum.ipv4, Checksum::None));
    assert!(matches!(caps.checksum.udp, Checksum::Rx));
    assert!(matches!(caps.checksum.tcp, Checksum::Tx));
    assert!(matches!(caps.checksum.icmpv4, Checksum::Both));
}

#[test]
fn default_checksums_stay_in_software() {
    let dev = Adapter::new(FakeDriver::new()).unwrap();
    let c = dev.capabilities().checksum;
    for each in [c.ipv4, c.udp, c.tcp, c.icmpv4] {
        assert!(matches!(each, Checksum::Both));
    }
}

#[test]
fn a_driver_that_forgot_its_mtu_is_refused() {
    let mut fake = FakeDriver::new();
    fake.caps.max_transmission_unit = 0;
    assert_eq!(
        Adapter::new(fake).err(),
        Some(Unsupported::MtuTooSmall { mtu: 0, min: 590 })
    );
    let mut fake = FakeDriver::new();
    fake.caps.max_transmission_unit = 590;
    assert!(Adapter::new(fake).is_ok());
}

#[test]
fn media_this_build_cannot_speak_are_refused() {
    let mut fake = FakeDriver::new();
    fake.address = HardwareAddress::Ieee802154([1; 8]);
    assert_eq!(Adapter::new(fake).err(), Some(Unsupported::Medium));
    #[cfg(not(feature = "medium-ip"))]
    {
        let mut fake = FakeDriver::new();
        fake.address = HardwareAddress::Ip;
        assert_eq!(Adapter::new(fake).err(), Some(Unsupported::Medium));
    }
}

#[cfg(feature = "medium-ip")]
#[test]
fn ip_native_drivers_map_to_the_ip_medium_with_feature_medium_ip() {
    let mut fake = FakeDriver::new();
    fake.address = HardwareAddress::Ip;
    fake.caps.max_transmission_unit = 1500;
    let dev = Adapter::new(fake).unwrap();
    assert_eq!(dev.capabilities().medium, Medium::Ip);
    assert_eq!(dev.capabilities().ip_mtu(), 1500);
    assert_eq!(dev.ethernet_address(), None);

    let mut fake = FakeDriver::new();
    fake.address = HardwareAddress::Ip;
    fake.caps.max_transmission_unit = 575;
    assert_eq!(
        Adapter::new(fake).err(),
        Some(Unsupported::MtuTooSmall { mtu: 575, min: 576 })
    );
}

#[test]
fn ethernet_address_and_link_state_come_from_the_driver() {
    let mut dev = Adapter::new(FakeDriver::new()).unwrap();
    assert_eq!(dev.ethernet_address(), Some(EthernetAddress(MAC)));
    assert!(dev.link_up());
    dev.driver_mut().link = LinkState::Down;
    assert!(dev.link_state() == LinkState::Down);
    assert!(!dev.link_up());
}

#[test]
fn the_wake_flag_is_set_when_a_frame_arrives_after_a_dry_poll() {
    static FLAG: WakeFlag = WakeFlag::new();
    let mut dev = Adapter::with_waker(FakeDriver::new(), FLAG.waker()).unwrap();

    FLAG.clear();
    assert!(dev.receive(t0()).is_none()); // the driver keeps the waker
    assert!(!FLAG.is_set(), "nothing arrived yet: the loop may sleep");
    dev.driver_mut().arrive(frame(1)); // the "interrupt"
    assert!(FLAG.is_set(), "the loop must not sleep now");
    FLAG.clear();
    assert!(!FLAG.is_set());
    assert_eq!(take_frame(&mut dev), Some(frame(1)));
}

#[test]
fn wake_flag_wakers_are_one_waker_to_a_timer_queue() {
    static FLAG: WakeFlag = WakeFlag::new();
    let (a, b) = (FLAG.waker(), FLAG.waker());
    assert!(a.will_wake(&b));
    let c = a.clone();
    drop(a);
    c.wake_by_ref();
    assert!(FLAG.is_set());
    FLAG.clear();
    c.wake();
    assert!(FLAG.is_set());
}

#[test]
fn the_default_waker_is_a_no_op() {
    let mut dev = Adapter::new(FakeDriver::new()).unwrap();
    assert!(dev.receive(t0()).is_none());
    // Waking the kept no-op waker does nothing, and does not panic.
    dev.driver_mut().arrive(frame(1));
    assert_eq!(take_frame(&mut dev), Some(frame(1)));
}

#[test]
fn a_smoltcp_interface_answers_arp_through_the_adapter() {
    let mut dev = Adapter::new(FakeDriver::new()).unwrap();
    let mac = dev.ethernet_address().unwrap();
    let mut iface = Interface::new(Config::new(Hw::Ethernet(mac)), &mut dev, t0());
    iface.update_ip_addrs(|a| {
        a.push(IpCidr::new(Ipv4Address::new(10, 0, 0, 2).into(), 24))
            .unwrap()
    });
    let mut sockets = SocketSet::new(vec![]);

    dev.driver_mut().rx.push_back(arp_request([10, 0, 0, 2]));
    iface.poll(t0(), &mut dev, &mut sockets);

    assert!(dev.driver().rx.is_empty(), "the request was consumed");
    let sent = &dev.driver().tx;
    assert_eq!(sent.len(), 1, "exactly one reply");
    assert!(is_arp_reply(&sent[0], MAC, [10, 0, 0, 2]));
}

#[test]
fn smoltcp_drains_every_waiting_frame_in_one_poll() {
    let mut dev = Adapter::new(FakeDriver::new()).unwrap();
    let mac = dev.ethernet_address().unwrap();
    let mut iface = Interface::new(Config::new(Hw::Ethernet(mac)), &mut dev, t0());
    iface.update_ip_addrs(|a| {
        a.push(IpCidr::new(Ipv4Address::new(10, 0, 0, 2).into(), 24))
            .unwrap()
    });
    let mut sockets = SocketSet::new(vec![]);

    for _ in 0..10 {
        dev.driver_mut().rx.push_back(arp_request([10, 0, 0, 2]));
    }
    iface.poll(t0(), &mut dev, &mut sockets);
    assert!(dev.driver().rx.is_empty());
    assert_eq!(dev.driver().tx.len(), 10);
    assert_eq!(dev.counters().rx_frames, 10);
    assert_eq!(dev.counters().tx_frames, 10);
}
