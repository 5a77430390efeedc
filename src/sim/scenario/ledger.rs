//! Counts UDP datagrams at the device's port: the evidence for "every
//! datagram that reaches the device gets exactly one reply".
//!
//! A client cannot check that by itself: its datagram, or the reply, may be
//! lost on a faulty link. The switch can: it sees every datagram it puts,
//! intact, into the device's receive queue, and every reply the device
//! sends, before any fault. Per caller (address, port) and service, the two
//! counts must end equal. A duplicated datagram arrives twice and must be
//! answered twice; a corrupted one is not counted as arriving, because the
//! device's checksums must drop it — if it answered one anyway, the replies
//! would outnumber the arrivals and the check fails.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use crate::sim::hub::{Seen, Tap};

/// The switch port the device is plugged into.
const DEVICE: usize = 0;

/// Who: the client's IPv4 address and UDP port, and the service port.
pub(crate) type Caller = ([u8; 4], u16, u16);

/// Datagrams in, replies out, per caller.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    /// Intact datagrams delivered to the device, and replies it sent.
    pub(crate) calls: BTreeMap<Caller, (u64, u64)>,
}

impl Ledger {
    /// A tap that fills `ledger` for the UDP `services` ports.
    pub(crate) fn tap(ledger: Rc<RefCell<Ledger>>, services: [u16; 3]) -> Tap {
        Box::new(move |_, seen, frame| {
            let Some((src, sport, dst, dport)) = udp_of(frame) else {
                return;
            };
            let mut l = ledger.borrow_mut();
            match seen {
                Seen::Delivered {
                    to: DEVICE,
                    corrupted: false,
                } if services.contains(&dport) => {
                    l.calls.entry((src, sport, dport)).or_default().0 += 1;
                }
                Seen::Sent { from: DEVICE } if services.contains(&sport) => {
                    l.calls.entry((dst, dport, sport)).or_default().1 += 1;
                }
                _ => {}
            }
        })
    }

    /// Every caller whose replies differ from its arrivals.
    pub(crate) fn mismatches(&self) -> Vec<String> {
        self.calls
            .iter()
            .filter(|(_, (arrived, replied))| arrived != replied)
            .map(|((ip, port, service), (arrived, replied))| {
                let [a, b, c, d] = ip;
                format!(
                    "{a}.{b}.{c}.{d}:{port} → udp {service}: {arrived} datagrams reached \
                     the device, it sent {replied} replies"
                )
            })
            .collect()
    }
}

/// Source address and port, destination address and port of an IPv4/UDP
/// frame; `None` for anything else or anything too short to be one.
fn udp_of(frame: &[u8]) -> Option<([u8; 4], u16, [u8; 4], u16)> {
    let ip = frame.get(14..)?;
    if frame.get(12..14)? != [0x08, 0x00] || ip.len() < 20 || ip[9] != 17 {
        return None;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let udp = ip.get(ihl..ihl + 8)?;
    let addr = |at: usize| -> Option<[u8; 4]> { ip.get(at..at + 4)?.try_into().ok() };
    let port = |at: usize| u16::from_be_bytes([udp[at], udp[at + 1]]);
    Some((addr(12)?, port(0), addr(16)?, port(2)))
}
