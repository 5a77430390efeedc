//! Echo over the in-process network: TCP (both ports, byte-exact, flow
//! control), UDP, more clients than sockets, and a lossy link.

use smoltalk::Config;
use smoltalk::net::HostMemory;
use smoltalk::sim::{Faults, SimError, World, pattern};
use smoltcp::time::Duration;

const SECS: fn(u64) -> Duration = Duration::from_secs;

#[test]
fn tcp_echo_is_byte_exact_on_both_ports() {
    let config = Config::HOST;
    let mut mem = HostMemory::new(&config);
    let mut w = World::new(&config, &mut mem, 1).unwrap();
    let c = w.add_client();
    for (i, port) in config.ports.tcp_echo.into_iter().enumerate() {
        let conn = w.connect(c, port).unwrap();
        let data = pattern(1 << 20, i as u32);
        let got = w.echo_exchange(conn, &data, SECS(60)).unwrap();
        assert_eq!(got.len(), data.len());
        assert!(got == data, "echo on port {port} differs");
        w.close(conn);
        w.wait_closed(conn, SECS(5)).unwrap();
    }
    w.run_for(SECS(1));
    assert_eq!(w.server().usage().tcp_sessions, 0, "slots are freed");
}

#[test]
fn tutorial_hello_gets_hello_back() {
    let config = Config::HOST;
    let mut mem = HostMemory::new(&config);
    let mut w = World::new(&config, &mut mem, 2).unwrap();
    let c = w.add_client();
    let conn = w.connect(c, 8898).unwrap();
    w.send(conn, b"hello!").unwrap();
    assert_eq!(
        w.recv_until(conn, SECS(5), |b| b.len() >= 6).unwrap(),
        b"hello!"
    );
}

#[test]
fn writer_that_does_not_read_is_slowed_not_dropped() {
    let mut config = Config::HOST;
    config.buffers.tcp_rx = 4096;
    config.buffers.tcp_tx = 4096;
    let mut mem = HostMemory::new(&config);
    let mut w = World::new(&config, &mut mem, 3).unwrap();
    let c = w.add_client();
    let conn = w.connect(c, 7).unwrap();
    let data = pattern(400_000, 9);
    // Write without reading: the writes stall on flow control well before
    // the end, once every buffer on the path is full...
    let mut sent = 0;
    for _ in 0..50 {
        sent += w.write_some(conn, &data[sent..]);
        w.run_for(Duration::from_millis(100));
    }
    assert!(sent < data.len(), "flow control stalled the writer");
    let stalled_at = sent;
    w.run_for(SECS(2));
    sent += w.write_some(conn, &data[sent..]);
    assert_eq!(
        sent, stalled_at,
        "still stalled: the echo waits for the reader"
    );
    // ...and reading drains everything, in order, with nothing dropped.
    let mut got = Vec::new();
    for _ in 0..100_000 {
        sent += w.write_some(conn, &data[sent..]);
        w.step();
        got.extend(w.read_available(conn));
        if got.len() >= data.len() {
            break;
        }
    }
    assert!(got == data);
}

#[test]
fn udp_echo_on_both_ports() {
    let config = Config::HOST;
    let mut mem = HostMemory::new(&config);
    let mut w = World::new(&config, &mut mem, 4).unwrap();
    let c = w.add_client();
    let u = w.udp_bind(c);
    for port in config.ports.udp_echo {
        for len in [0, 1, 5, 1472] {
            let data = pattern(len, len as u32);
            w.udp_send(u, port, &data).unwrap();
            assert_eq!(w.udp_recv(u, SECS(2)).unwrap(), data);
        }
    }
}

#[test]
fn client_past_the_pool_is_refused_and_others_continue() {
    let mut config = Config::HOST;
    config.pools.echo = [3, 3];
    let mut mem = HostMemory::new(&config);
    let mut w = World::new(&config, &mut mem, 5).unwrap();
    let c = w.add_client();
    let conns: Vec<_> = (0..3).map(|_| w.connect(c, 7).unwrap()).collect();
    assert_eq!(w.connect(c, 7), Err(SimError::Refused));
    for (i, &conn) in conns.iter().enumerate() {
        let data = pattern(10_000, i as u32);
        assert!(w.echo_exchange(conn, &data, SECS(10)).unwrap() == data);
    }
    // A freed socket listens again.
    w.close(conns[0]);
    w.wait_closed(conns[0], SECS(5)).unwrap();
    w.run_for(Duration::from_millis(10));
    let again = w.connect(c, 7).unwrap();
    assert!(w.echo_exchange(again, b"back", SECS(5)).unwrap() == b"back");
}

#[test]
fn each_echo_port_has_its_own_pool() {
    let mut config = Config::HOST;
    config.pools.echo = [3, 1];
    let [echo, hello] = config.ports.tcp_echo;
    let mut mem = HostMemory::new(&config);
    let mut w = World::new(&config, &mut mem, 8).unwrap();
    let c = w.add_client();
    let on_echo: Vec<_> = (0..3).map(|_| w.connect(c, echo).unwrap()).collect();
    let on_hello = w.connect(c, hello).unwrap();
    // Full on both ports: neither lends the other a socket.
    assert_eq!(w.connect(c, hello), Err(SimError::Refused));
    assert_eq!(w.connect(c, echo), Err(SimError::Refused));
    for (i, &conn) in on_echo.iter().chain([&on_hello]).enumerate() {
        let data = pattern(5_000, i as u32);
        assert!(w.echo_exchange(conn, &data, SECS(10)).unwrap() == data);
    }
}

#[test]
fn echo_survives_a_lossy_link() {
    let config = Config::HOST;
    let mut mem = HostMemory::new(&config);
    let mut w = World::new(&config, &mut mem, 6).unwrap();
    w.hub().set_faults(Faults {
        loss: 0.1,
        ..Faults::NONE
    });
    let c = w.add_client();
    let conn = w.connect(c, 7).unwrap();
    let data = pattern(100_000, 6);
    let got = w.echo_exchange(conn, &data, SECS(600)).unwrap();
    assert!(got == data);
    assert!(w.hub().stats().dropped > 0, "the link really lost frames");
}
