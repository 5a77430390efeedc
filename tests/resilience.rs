//! Resets, restarts, idle clients and vanished peers: each frees what it
//! held, is logged, and leaves every other client alone.

use smoltalk::Config;
use smoltalk::net::HostMemory;
use smoltalk::sim::{SimError, World};
use smoltcp::socket::tcp::State;
use smoltcp::time::Duration;

const SEC: Duration = Duration::from_secs(1);

#[test]
fn reset_mid_session_frees_the_slot_and_others_carry_on() {
    let mut config = Config::HOST;
    config.pools.chat = 2;
    let mut mem = HostMemory::new(&config);
    let mut w = World::new(&config, &mut mem, 30).unwrap();
    let c = w.add_client();
    let a = w.connect(c, 8081).unwrap();
    let b = w.connect(c, 8081).unwrap();
    w.recv_line(a).unwrap();
    w.recv_line(b).unwrap();
    w.send(a, b"half a messa").unwrap();
    w.abort(a);
    w.run_for(SEC);
    assert_eq!(
        w.server().usage().tcp_sessions,
        1,
        "the reset freed its slot"
    );
    w.send(b, b"hi\n").unwrap();
    assert!(w.recv_line(b).unwrap().starts_with("Hello!"));
    let again = w.connect(c, 8081).unwrap();
    assert!(w.recv_line(again).unwrap().starts_with("Welcome"));
}

#[test]
fn restarted_device_serves_the_same_ports_at_once() {
    let config = Config::HOST;
    let (mut first, mut second) = (HostMemory::new(&config), HostMemory::new(&config));
    let mut w = World::new(&config, &mut first, 31).unwrap();
    let c = w.add_client();
    let old = w.connect(c, 7).unwrap();
    assert_eq!(w.echo_exchange(old, b"before", SEC).unwrap(), b"before");
    w.restart_server(&mut second, smoltalk::chat::AutoResponder::new())
        .unwrap();
    // The old connection is gone: its next segment is answered with a RST.
    let _ = w.write_some(old, b"lost?");
    w.run_until(SEC * 10, "the reset", |w| w.state(old) == State::Closed)
        .unwrap();
    // A new one is served immediately.
    let new = w.connect(c, 7).unwrap();
    assert_eq!(w.echo_exchange(new, b"after", SEC).unwrap(), b"after");
}

#[test]
fn idle_sessions_are_told_and_closed() {
    let mut config = Config::HOST;
    config.limits.idle_timeout = Duration::from_secs(10);
    let mut mem = HostMemory::new(&config);
    let mut w = World::new(&config, &mut mem, 32).unwrap();
    let c = w.add_client();
    let chat = w.connect(c, 8081).unwrap();
    w.recv_line(chat).unwrap();
    let login = w.connect(c, 8083).unwrap();
    let echo = w.connect(c, 7).unwrap();
    let got = w.wait_closed(chat, Duration::from_secs(15)).unwrap();
    assert_eq!(got, b"error: idle timeout, closing\n");
    assert_eq!(w.wait_closed(login, SEC).unwrap(), b"ERR idle timeout\n");
    assert_eq!(w.wait_closed(echo, SEC).unwrap(), b"");
    // The clients never close their side: the device gives up waiting for
    // their FIN after the peer timeout, so the slots come back anyway.
    w.run_for(config.limits.peer_timeout + SEC);
    assert_eq!(w.server().usage().tcp_sessions, 0);
}

#[test]
fn vanished_peer_is_dropped_after_the_peer_timeout() {
    let mut config = Config::HOST;
    config.limits.idle_timeout = Duration::from_secs(5);
    let mut mem = HostMemory::new(&config);
    let mut w = World::new(&config, &mut mem, 33).unwrap();
    let c = w.add_client();
    let chat = w.connect(c, 8081).unwrap();
    w.recv_line(chat).unwrap();
    // The client's link dies: every frame is lost from now on.
    w.hub().set_faults(smoltalk::sim::Faults {
        loss: 1.0,
        ..smoltalk::sim::Faults::NONE
    });
    w.run_for(config.limits.idle_timeout + config.limits.peer_timeout + SEC * 5);
    assert_eq!(w.server().usage().tcp_sessions, 0, "the slot is free again");
}

#[test]
fn chat_error_replies_keep_the_session() {
    let config = Config::HOST;
    let mut mem = HostMemory::new(&config);
    let mut w = World::new(&config, &mut mem, 34).unwrap();
    let c = w.add_client();
    let conn = w.connect(c, 8081).unwrap();
    w.recv_line(conn).unwrap();
    w.send(conn, &[b'x'; 300]).unwrap();
    w.send(conn, b"\n").unwrap();
    assert_eq!(
        w.recv_line(conn).unwrap(),
        "error: message too long (max 256 bytes)\n"
    );
    w.send(conn, b"\xc3\x28\n").unwrap();
    assert_eq!(w.recv_line(conn).unwrap(), "error: invalid UTF-8\n");
    w.send(conn, b"hi\n").unwrap();
    assert!(w.recv_line(conn).unwrap().starts_with("Hello!"));
    match w.recv_until(conn, Duration::from_millis(300), |b| !b.is_empty()) {
        Err(SimError::Timeout(_)) => {}
        other => panic!("one reply per message, got {other:?}"),
    }
}
