//! The whole smoltalk core behind the adapter and a fake embassy driver, as
//! on a board, with a smoltcp client at the other end of the "cable". This
//! is the boards' main loop on the host: the same `Node::poll(now, &mut
//! adapter)` call, and the same wake flag deciding whether to sleep.

mod common;

use common::{FakeDriver, Pipe};
use smoltalk::chat::AutoResponder;
use smoltalk::login::store::DEMO;
use smoltalk::net::HostMemory;
use smoltalk::{Config, NetConfig, Node};
use smoltcp::iface::{Config as IfaceConfig, Interface, SocketSet};
use smoltcp::socket::{tcp, udp};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    EthernetAddress, HardwareAddress, IpAddress, IpCidr, IpEndpoint, Ipv4Address, Ipv4Cidr,
};
use smoltcp_embassy_adapter::{Adapter, WakeFlag};

const BOARD_IP: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);
const CLIENT_IP: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);

/// The board (node + adapter + fake NIC) and a client, joined by moving
/// frames between the fake driver's queues and the client's pipe.
struct Bench<'a> {
    node: Node<'a>,
    board: Adapter<FakeDriver>,
    client: Interface,
    wire: Pipe,
    sockets: SocketSet<'static>,
    now: Instant,
}

impl<'a> Bench<'a> {
    fn new(mem: &'a mut HostMemory, config: &Config, waker: Option<&'static WakeFlag>) -> Self {
        let driver = FakeDriver::new();
        let mut board = match waker {
            Some(flag) => Adapter::with_waker(driver, flag.waker()).unwrap(),
            None => Adapter::new(driver).unwrap(),
        };
        let now = Instant::from_millis(1);
        let net = NetConfig {
            mac: board.ethernet_address().unwrap(),
            ip: Ipv4Cidr::new(BOARD_IP, 24),
            gateway: None,
            random_seed: 7,
        };
        let node = Node::new(
            config,
            &net,
            &mut board,
            mem.memory(),
            &DEMO,
            AutoResponder::new(),
            now,
        )
        .unwrap();

        let mut wire = Pipe::new();
        let mut cfg = IfaceConfig::new(HardwareAddress::Ethernet(EthernetAddress([
            0x02, 0, 0, 0, 0, 0x99,
        ])));
        cfg.random_seed = 9;
        let mut client = Interface::new(cfg, &mut wire, now);
        client.update_ip_addrs(|a| a.push(IpCidr::Ipv4(Ipv4Cidr::new(CLIENT_IP, 24))).unwrap());
        Bench {
            node,
            board,
            client,
            wire,
            sockets: SocketSet::new(vec![]),
            now,
        }
    }

    /// One millisecond of both sides running, frames crossing the wire.
    fn step(&mut self) {
        self.now += Duration::from_millis(1);
        self.client
            .poll(self.now, &mut self.wire, &mut self.sockets);
        for frame in self.wire.tx.drain(..) {
            self.board.driver_mut().arrive(frame);
        }
        self.node.poll(self.now, &mut self.board);
        self.wire.rx.extend(self.board.driver_mut().tx.drain(..));
    }

    fn run_until(&mut self, ms: u64, mut done: impl FnMut(&mut Self) -> bool) -> bool {
        for _ in 0..ms {
            self.step();
            if done(self) {
                return true;
            }
        }
        false
    }
}

fn tcp_socket() -> tcp::Socket<'static> {
    tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; 8192]),
        tcp::SocketBuffer::new(vec![0; 8192]),
    )
}

#[test]
fn tcp_echo_through_the_adapter_is_byte_exact() {
    let config = Config::SMALL;
    let mut mem = HostMemory::new(&config);
    let mut b = Bench::new(&mut mem, &config, None);
    let h = b.sockets.add(tcp_socket());
    b.sockets
        .get_mut::<tcp::Socket>(h)
        .connect(b.client.context(), (IpAddress::Ipv4(BOARD_IP), 8898), 49152)
        .unwrap();

    // 64 KiB through 1 KiB socket buffers: many windows, many frames.
    let data = smoltalk::sim::pattern(64 * 1024, 3);
    let (mut sent, mut got) = (0, Vec::new());
    let done = b.run_until(30_000, |b| {
        let s = b.sockets.get_mut::<tcp::Socket>(h);
        if s.can_send() && sent < data.len() {
            sent += s.send_slice(&data[sent..]).unwrap();
        }
        while s.can_recv() {
            s.recv(|buf| {
                got.extend_from_slice(buf);
                (buf.len(), ())
            })
            .unwrap();
        }
        got.len() == data.len()
    });
    assert!(done, "echoed {} of {} bytes", got.len(), data.len());
    assert!(got == data, "echo differs");
    let c = b.board.counters();
    assert!(c.rx_frames > 64 && c.tx_frames > 64, "{c:?}");
}

#[test]
fn udp_echo_through_the_adapter() {
    let config = Config::SMALL;
    let mut mem = HostMemory::new(&config);
    let mut b = Bench::new(&mut mem, &config, None);
    let mut udp = udp::Socket::new(
        udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 4], vec![0; 4096]),
        udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 4], vec![0; 4096]),
    );
    udp.bind(40000).unwrap();
    let h = b.sockets.add(udp);
    let to = IpEndpoint::new(IpAddress::Ipv4(BOARD_IP), 9000);
    b.sockets
        .get_mut::<udp::Socket>(h)
        .send_slice(b"hello", to)
        .unwrap();

    let mut reply = None;
    assert!(b.run_until(2_000, |b| {
        if let Ok((data, from)) = b.sockets.get_mut::<udp::Socket>(h).recv() {
            reply = Some((data.to_vec(), from.endpoint));
        }
        reply.is_some()
    }));
    assert_eq!(reply, Some((b"hello".to_vec(), to)));
}

#[test]
fn the_wake_flag_tells_the_loop_when_a_frame_came_during_its_poll() {
    static FLAG: WakeFlag = WakeFlag::new();
    let config = Config::SMALL;
    let mut mem = HostMemory::new(&config);
    let mut b = Bench::new(&mut mem, &config, Some(&FLAG));
    b.run_until(10, |_| false);

    // The board's loop: clear, poll (the driver runs dry and keeps the
    // waker), then sleep only if the flag is still clear.
    FLAG.clear();
    b.node.poll(b.now, &mut b.board);
    assert!(!FLAG.is_set(), "idle: the loop may sleep");

    // A client connects: its SYN "arrives" and the driver wakes.
    let h = b.sockets.add(tcp_socket());
    b.sockets
        .get_mut::<tcp::Socket>(h)
        .connect(b.client.context(), (IpAddress::Ipv4(BOARD_IP), 7), 49153)
        .unwrap();
    let connected = b.run_until(1_000, |b| {
        b.sockets.get_mut::<tcp::Socket>(h).may_send() && FLAG.is_set()
    });
    assert!(
        connected,
        "the SYN woke the loop and the handshake finished"
    );
    assert_eq!(b.node.usage().tcp_sessions, 1);
}
