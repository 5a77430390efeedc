//! The switch: latency, faults per link, the tap.

use super::*;
use smoltcp::phy::{RxToken as _, TxToken as _};

/// Sends `payload` as an IPv4-typed frame from `port` to `dst`'s MAC.
fn send(port: &mut Port, dst: u8, src: u8, payload: u8) {
    let tx = port.transmit(Instant::ZERO).unwrap();
    tx.consume(64, |f| {
        f[..6].copy_from_slice(&[2, 0, 0, 0, 0, dst]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, src]);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[16..18].copy_from_slice(&50u16.to_be_bytes());
        f[63] = payload;
    });
}

fn recv_all(port: &mut Port) -> Vec<u8> {
    let mut got = Vec::new();
    while let Some((rx, _)) = port.receive(Instant::ZERO) {
        rx.consume(|f| got.push(f[63]));
    }
    got
}

/// Two ports that know each other's MAC.
fn pair(seed: u64) -> (Hub, Port, Port) {
    let hub = Hub::new(seed);
    let (mut a, mut b) = (hub.add_port(), hub.add_port());
    send(&mut a, 0xff, 1, 0);
    send(&mut b, 1, 2, 0);
    hub.set_now(Instant::from_secs(1));
    recv_all(&mut a);
    recv_all(&mut b);
    (hub, a, b)
}

#[test]
fn frames_arrive_after_the_latency_in_order() {
    let (hub, mut a, mut b) = pair(1);
    hub.set_latency(LATENCY);
    let t = Instant::from_secs(2);
    hub.set_now(t);
    for i in 0..10 {
        send(&mut a, 2, 1, i);
    }
    assert!(!b.has_frames(), "nothing arrives at once");
    assert_eq!(hub.next_delivery(), Some(t + LATENCY));
    hub.set_now(t + LATENCY);
    assert_eq!(recv_all(&mut b), (0..10).collect::<Vec<_>>());
    assert!(!hub.pending());
}

#[test]
fn delay_jitter_duplicates_and_reordering() {
    let (hub, mut a, mut b) = pair(2);
    let faults = Faults {
        duplicate: 0.2,
        reorder: 0.2,
        delay: Duration::from_millis(10),
        jitter: Duration::from_millis(1),
        ..Faults::NONE
    };
    hub.set_link_faults(b.id(), faults);
    let t = Instant::from_secs(2);
    hub.set_now(t);
    for i in 0..200 {
        send(&mut a, 2, 1, i);
    }
    let first = hub.next_delivery().unwrap();
    assert!(first >= t + Duration::from_millis(9), "delayed: {first}");
    hub.set_now(t + Duration::from_secs(1));
    let got = recv_all(&mut b);
    let s = hub.stats().faults;
    assert_eq!(got.len() as u64, 200 + s.duplicated);
    assert!(
        s.duplicated > 0 && s.reordered > 0 && s.delayed > 0,
        "{s:?}"
    );
    assert!(got.windows(2).any(|w| w[0] > w[1]), "some frames overtaken");
}

#[test]
fn loss_on_one_link_spares_the_others() {
    let hub = Hub::new(3);
    let (mut a, mut b, mut c) = (hub.add_port(), hub.add_port(), hub.add_port());
    hub.set_link_faults(c.id(), Faults::NONE);
    hub.set_link_faults(
        b.id(),
        Faults {
            loss: 1.0,
            ..Faults::NONE
        },
    );
    send(&mut a, 0xff, 1, 7); // broadcast: to b and c
    hub.set_now(Instant::from_secs(1));
    assert_eq!(recv_all(&mut b), Vec::<u8>::new());
    assert_eq!(recv_all(&mut c), vec![7]);
    assert_eq!(hub.stats().faults.lost, 1);
}

#[test]
fn tap_sees_sends_and_deliveries() {
    let (hub, mut a, mut b) = pair(4);
    let seen = Rc::new(RefCell::new(Vec::new()));
    let log = seen.clone();
    hub.set_tap(Box::new(move |_, s, f| log.borrow_mut().push((s, f[63]))));
    hub.set_link_faults(
        b.id(),
        Faults {
            corrupt: 1.0,
            ..Faults::NONE
        },
    );
    send(&mut a, 2, 1, 9);
    hub.set_now(Instant::from_secs(3));
    recv_all(&mut b);
    let seen = seen.borrow();
    assert_eq!(seen[0], (Seen::Sent { from: 0 }, 9));
    assert!(matches!(
        seen[1].0,
        Seen::Delivered {
            to: 1,
            corrupted: true
        }
    ));
}
