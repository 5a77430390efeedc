//! The deterministic network simulation (`smoltalk::sim::scenario`): seeds
//! at mixed fault rates, each fault kind on its own, replay, and the
//! regressions the simulator found, each pinned down by a hand-made test.
//!
//! Any number of seeds, in release, in parallel, with replay commands for
//! the failures: `cargo run --release -p host-sim -- simulate --seeds 10000`.

#[path = "simulation/raw.rs"]
mod raw;

use smoltalk::Config;
use smoltalk::net::HostMemory;
use smoltalk::sim::scenario::{self, ClientPlan, Scenario};
use smoltalk::sim::{FaultCounts, Faults, Flap, World};
use smoltcp::time::Duration;
use smoltcp::wire::TcpControl;

/// Seeds of the mixed scenario per `cargo test`: a debug build runs about
/// ten a second, a release build a few hundred. (CI runs more through
/// `host-sim simulate` in release.)
const SEEDS: u64 = if cfg!(debug_assertions) { 48 } else { 400 };

/// Runs scenarios, and fails with every failing seed and its replay line.
fn all_pass(scenarios: impl Iterator<Item = Scenario>) -> FaultCounts {
    let mut faults = FaultCounts::default();
    let mut failed = Vec::new();
    for s in scenarios {
        let r = s.run();
        faults.add(&r.outcome.faults);
        if let Some(why) = r.outcome.failure {
            failed.push(format!(
                "seed {}: {why}\n  replay: cargo run --release -p host-sim -- simulate --seeds 1 --from {}",
                r.seed, r.seed
            ));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    faults
}

#[test]
fn mixed_faults_every_seed_passes() {
    let faults = all_pass((0..SEEDS).map(Scenario::from_seed));
    // The mix really is mixed.
    assert!(faults.lost > 0 && faults.duplicated > 0 && faults.reordered > 0);
    assert!(faults.delayed > 0 && faults.corrupted > 0 && faults.flaps > 0);
}

/// Four seeds with only `faults` on every client's cable.
fn only(faults: Faults) -> FaultCounts {
    all_pass(only_scenarios(faults))
}

fn only_scenarios(faults: Faults) -> impl Iterator<Item = Scenario> {
    (1000..1004).map(move |seed| Scenario::from_seed(seed).with_link_faults(faults))
}

#[test]
fn loss_alone() {
    assert!(
        only(Faults {
            loss: 0.05,
            ..Faults::NONE
        })
        .lost
            > 0
    );
}

#[test]
fn duplication_alone() {
    assert!(
        only(Faults {
            duplicate: 0.1,
            ..Faults::NONE
        })
        .duplicated
            > 0
    );
}

#[test]
fn reordering_alone() {
    assert!(
        only(Faults {
            reorder: 0.1,
            ..Faults::NONE
        })
        .reordered
            > 0
    );
}

#[test]
fn delay_and_jitter_alone() {
    let ms = Duration::from_millis;
    let f = only(Faults {
        delay: ms(20),
        jitter: ms(15),
        ..Faults::NONE
    });
    assert!(f.delayed > 0);
}

#[test]
fn corruption_alone_is_caught_by_checksums() {
    // Every corrupted frame must be dropped by a checksum: one that got
    // through would break an echo or a verdict, or be answered (the UDP
    // ledger counts only intact arrivals).
    assert!(
        only(Faults {
            corrupt: 0.05,
            ..Faults::NONE
        })
        .corrupted
            > 0
    );
}

#[test]
fn the_devices_checksum_offload_drops_corrupted_frames() {
    // The device's checksums are done by `net::ChecksumOffload`, not by
    // smoltcp: the corrupted frames that reached it were caught there.
    let corrupt = Faults {
        corrupt: 0.05,
        ..Faults::NONE
    };
    let dropped: u64 = only_scenarios(corrupt)
        .map(|s| s.run())
        .inspect(|r| assert!(r.passed(), "seed {}: {:?}", r.seed, r.outcome.failure))
        .map(|r| r.outcome.bad_checksums)
        .sum();
    assert!(dropped > 0);
    // And on a clean network, none.
    let clean = only_scenarios(Faults::NONE).map(|s| s.run().outcome.bad_checksums);
    assert_eq!(clean.sum::<u64>(), 0);
}

#[test]
fn link_flaps_alone() {
    let flap = Flap {
        up: Duration::from_secs(1),
        down: Duration::from_millis(200),
    };
    let f = only(Faults {
        flap: Some(flap),
        ..Faults::NONE
    });
    assert!(f.flaps > 0 && f.flap_drops > 0, "{f:?}");
}

#[test]
fn clean_network_injects_nothing() {
    let f = only(Faults::NONE);
    assert_eq!(f, FaultCounts::default());
}

#[test]
fn a_seed_replays_exactly() {
    // Seeds whose links lose frames, so that replay covers the dice.
    let faulty = (0..).filter(|&seed| scenario::run(seed).outcome.faults.lost > 0);
    for seed in faulty.take(3) {
        let (a, b) = (scenario::run(seed), scenario::run(seed));
        assert_eq!(a.outcome, b.outcome, "seed {seed}");
        assert_eq!(Scenario::from_seed(seed), Scenario::from_seed(seed));
    }
    assert_ne!(scenario::run(3).outcome, scenario::run(4).outcome);
}

#[test]
fn a_panic_is_a_failing_seed_not_a_crash() {
    let mut s = Scenario::from_seed(5);
    // The simulated /24 holds 150 clients; the 151st panics.
    let one = s.clients[0].clone();
    s.clients = vec![
        ClientPlan {
            jobs: vec![],
            ..one
        };
        151
    ];
    let r = s.run();
    let why = r.outcome.failure.unwrap_or_default();
    assert!(why.starts_with("panicked: the simulated /24"), "{why}");
}

/// Regression (found by the simulator, seed 0): failed logins were never
/// forgotten — `Lockout::expire` existed but nothing called it — so the
/// table only shrank on a successful login, and `usage()` never came back
/// to zero after a failure.
#[test]
fn failed_logins_are_forgotten_after_the_window() {
    let config = Config::HOST;
    let mut mem = HostMemory::new(&config);
    let mut w = World::new(&config, &mut mem, 44).unwrap();
    let c = w.add_client();
    let conn = w.connect(c, 8083).unwrap();
    w.send(conn, "LOGIN 张三 wrong\n".as_bytes()).unwrap();
    assert_eq!(
        w.recv_line(conn).unwrap(),
        "ERR invalid user name or password\n"
    );
    w.send(conn, b"QUIT\n").unwrap();
    w.wait_closed(conn, Duration::from_secs(5)).unwrap();
    assert_eq!(w.server().usage().lockout_entries, 1);
    w.run_for(config.limits.login_window + Duration::from_secs(1));
    assert_eq!(w.server().usage().lockout_entries, 0);
}

/// Regression (found by the simulator, seed 28): a client's SYN, duplicated
/// by the network, reaches the device twice; between the two copies a
/// *lower* socket of the pool went back to listening and took the second
/// copy. The device kept that duplicate and dropped the original, whose
/// SYN-ACK the client had already answered: the connection was reset.
#[test]
fn duplicate_syn_in_a_lower_socket_keeps_the_original_handshake() {
    let config = Config::HOST;
    let mut mem = HostMemory::new(&config);
    let mut w = World::new(&config, &mut mem, 40).unwrap();
    let ms = Duration::from_millis;
    // A client holds the first echo socket of the pool.
    let c = w.add_client();
    let first = w.connect(c, 7).unwrap();
    let mut raw = raw::Raw::new(w.hub().add_port());
    raw.arp();
    w.run_for(ms(1));
    // Our SYN: the first socket is busy, so the second one takes it.
    raw.tcp(40000, 7, TcpControl::Syn, 1000, None, b"");
    w.run_for(ms(1));
    let syn_ack = raw
        .segments()
        .into_iter()
        .find(|s| s.control == TcpControl::Syn);
    let isn = syn_ack.expect("a SYN-ACK").seq;
    // The first socket's connection ends: it listens again.
    w.close(first);
    w.wait_closed(first, Duration::from_secs(5)).unwrap();
    w.run_for(ms(10));
    // The network delivers our SYN a second time; the first socket takes it.
    raw.tcp(40000, 7, TcpControl::Syn, 1000, None, b"");
    w.run_for(ms(1));
    // We answer the SYN-ACK we got, with data: the echo must come back.
    raw.tcp(
        40000,
        7,
        TcpControl::Psh,
        1001,
        Some((isn + 1).0 as u32),
        b"hi",
    );
    w.run_for(ms(10));
    assert_original_connection_echoed(&mut raw, isn);
}

/// Regression (found by the simulator, seed 47784): the same race as above,
/// with the client's ACK for the original SYN-ACK arriving right behind the
/// duplicate SYN, in the same poll. The duplicate's socket, first in the
/// pool, took that ACK too, found it wrong for its own handshake, and
/// answered with a reset before the duplicate was dropped. Duplicates are
/// now dropped after each received frame, not after each batch.
#[test]
fn duplicate_syn_and_the_ack_behind_it_in_one_poll() {
    let config = Config::HOST;
    let mut mem = HostMemory::new(&config);
    let mut w = World::new(&config, &mut mem, 45).unwrap();
    let ms = Duration::from_millis;
    let c = w.add_client();
    let first = w.connect(c, 7).unwrap();
    let mut raw = raw::Raw::new(w.hub().add_port());
    raw.arp();
    w.run_for(ms(1));
    raw.tcp(40000, 7, TcpControl::Syn, 1000, None, b"");
    w.run_for(ms(1));
    let syn_ack = raw
        .segments()
        .into_iter()
        .find(|s| s.control == TcpControl::Syn);
    let isn = syn_ack.expect("a SYN-ACK").seq;
    w.close(first);
    w.wait_closed(first, Duration::from_secs(5)).unwrap();
    w.run_for(ms(10));
    // The late copy of our SYN, and our answer to the SYN-ACK, together.
    raw.tcp(40000, 7, TcpControl::Syn, 1000, None, b"");
    raw.tcp(
        40000,
        7,
        TcpControl::Psh,
        1001,
        Some((isn + 1).0 as u32),
        b"hi",
    );
    w.run_for(ms(10));
    assert_original_connection_echoed(&mut raw, isn);
}

/// Regression (found by the simulator, seeds 6 and 129; a smoltcp 0.14
/// bug, worked around in the device): the device's FIN is dropped by the
/// client (it arrived out of order) and the client's duplicate ACKs for
/// the data arm a fast retransmit. With only the FIN outstanding, smoltcp
/// sends nothing, clears its retransmission timer, and never sends the FIN
/// again: the client waited for the close until the peer timeout reset
/// the connection. The device now keeps a keep-alive timer while it
/// closes, which makes smoltcp send the FIN again.
#[test]
fn a_fin_lost_behind_duplicate_acks_is_sent_again() {
    let config = Config::HOST;
    let mut mem = HostMemory::new(&config);
    let mut w = World::new(&config, &mut mem, 41).unwrap();
    let ms = Duration::from_millis;
    let mut raw = raw::Raw::new(w.hub().add_port());
    raw.arp();
    w.run_for(ms(1));
    raw.tcp(40001, 8083, TcpControl::Syn, 5000, None, b"");
    w.run_for(ms(1));
    let isn = raw
        .segments()
        .into_iter()
        .find(|s| s.control == TcpControl::Syn);
    let isn = isn.expect("a SYN-ACK").seq + 1;
    let request = "{'张三': '123'}".as_bytes();
    let ack = |n: usize| Some((isn + n).0 as u32);
    raw.tcp(40001, 8083, TcpControl::Psh, 5001, ack(0), request);
    w.run_for(ms(100));
    let verdict = "登录成功!".len();
    let sent = raw.segments();
    assert!(
        sent.iter()
            .any(|s| s.control == TcpControl::Fin && s.payload.len() == verdict),
        "the verdict and the FIN: {sent:?}"
    );
    // The FIN "arrived out of order": we acknowledge the verdict only, four
    // times (one new ACK, three duplicates).
    let next = 5001 + request.len() as u32;
    for _ in 0..4 {
        raw.tcp(40001, 8083, TcpControl::None, next, ack(verdict), b"");
    }
    w.run_for(Duration::from_secs(5));
    let again = raw.segments();
    assert!(
        again.iter().any(|s| s.control == TcpControl::Fin),
        "the FIN was sent again within 5 s (the peer timeout is {}): {again:?}",
        config.limits.peer_timeout
    );
    assert!(
        !again.iter().any(|s| s.control == TcpControl::Rst),
        "{again:?}"
    );
}

/// Regression: a hotline caller vanishes, or forges its address. The
/// device's reply can never leave, as nobody answers the ARP request for
/// that address, and smoltcp holds it at the head of the socket's send
/// queue forever: every reply to every other caller waited behind it, and
/// the hotline (and UDP echo, the same way) never answered again. The
/// device now drops a queue that has not moved for 3 s.
#[test]
fn an_unreachable_caller_does_not_silence_the_hotline() {
    let config = Config::HOST;
    let mut mem = HostMemory::new(&config);
    let mut w = World::new(&config, &mut mem, 42).unwrap();
    let mut raw = raw::Raw::new(w.hub().add_port());
    let gone = smoltcp::wire::Ipv4Address::new(192, 168, 69, 250);
    raw.udp(gone, 8086, b"hello from nowhere");
    w.run_for(Duration::from_millis(10));
    // An honest caller asks once a second, as a UDP client must.
    let c = w.add_client();
    let u = w.udp_bind(c);
    let started = w.now();
    let reply = (0..10).find_map(|_| {
        w.udp_send(u, 8086, b"hours").unwrap();
        w.udp_recv(u, Duration::from_secs(1)).ok()
    });
    assert!(
        reply.is_some_and(|r| r.starts_with(b"We are open")),
        "answered again after the stuck reply was dropped"
    );
    assert!(w.now() - started < Duration::from_secs(5), "{}", w.now());
}

/// Regression (found by the simulator, seed 844): with more clients than
/// smoltcp's default ARP cache held (8), a client's entry was evicted, and
/// the device had to ask for its address again — while another client,
/// unplugged with data outstanding, had the device asking for *its*
/// address every second. smoltcp rate-limits ARP requests for all
/// addresses at once (smoltcp#1209), so the healthy client was never asked
/// for, and its connection stalled until the device's peer timeout reset
/// it. The cache now holds 32 addresses: clients that talk are never
/// evicted, and the device never has to ask for them.
#[test]
fn a_vanished_client_does_not_stall_the_others() {
    let config = Config::HOST;
    let mut mem = HostMemory::new(&config);
    let mut w = World::new(&config, &mut mem, 43).unwrap();
    let secs = Duration::from_secs;
    let clients: Vec<_> = (0..12).map(|_| w.add_client()).collect();
    // The first socket of the pool: a client that will vanish mid-echo.
    let gone = w.connect(clients[1], 7).unwrap();
    // The second: a healthy client, which then goes quiet for a while.
    let healthy = w.connect(clients[0], 7).unwrap();
    assert_eq!(
        w.echo_exchange(healthy, b"before", secs(5)).unwrap(),
        b"before"
    );
    // Ten more clients talk to the device.
    for &c in &clients[2..] {
        let conn = w.connect(c, 8898).unwrap();
        assert_eq!(w.echo_exchange(conn, b"hi", secs(5)).unwrap(), b"hi");
        w.close(conn);
        w.wait_closed(conn, secs(5)).unwrap();
    }
    // The vanishing client sends, and is gone before the echo comes back.
    w.write_some(gone, &[7; 3000]);
    w.run_for(Duration::from_micros(60));
    w.unplug(clients[1]);
    w.run_for(secs(2));
    // The healthy client is served at once, not after the peer timeout.
    assert_eq!(
        w.echo_exchange(healthy, b"after", secs(5)).unwrap(),
        b"after"
    );
}

/// The duplicate-SYN regressions end the same way: the original connection
/// was not reset, and the echo of its `hi` came back on it.
fn assert_original_connection_echoed(raw: &mut raw::Raw, isn: smoltcp::wire::TcpSeqNumber) {
    let segments = raw.segments();
    assert!(
        !segments.iter().any(|s| s.control == TcpControl::Rst),
        "the original connection was reset: {segments:?}"
    );
    assert!(
        segments
            .iter()
            .any(|s| s.payload == b"hi" && s.seq == isn + 1),
        "the echo of the original connection: {segments:?}"
    );
}
