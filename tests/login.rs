//! The login service over the in-process network: every request form
//! (challenge-response, `LOGIN`, the tutorial's dict), the same reply for an
//! unknown user and a wrong password, replays, lockout per address, and many
//! clients at once.

mod login_support;

use login_support::{LOGIN, challenge, line, scram_login};
use smoltalk::Config;
use smoltalk::net::HostMemory;
use smoltalk::sim::{SimError, World};
use smoltcp::time::Duration;

const WAIT: Duration = Duration::from_secs(30);
const FAILED: &str = "ERR invalid user name or password\n";

#[test]
fn line_form_good_and_bad_passwords() {
    let config = Config::HOST;
    let mut mem = HostMemory::new(&config);
    let mut w = World::new(&config, &mut mem, 10).unwrap();
    let c = w.add_client();
    let conn = w.connect(c, LOGIN).unwrap();
    assert_eq!(
        line(&mut w, conn, "LOGIN 张三 124\n"),
        "ERR invalid user name or password\n"
    );
    assert_eq!(
        line(&mut w, conn, "LOGIN nobody 123\r\n"),
        "ERR invalid user name or password\n"
    );
    assert_eq!(line(&mut w, conn, "LOGIN 张三 123\n"), "OK 张三\n");
    assert_eq!(line(&mut w, conn, "WHOAMI\n"), "OK 张三\n");
    assert_eq!(line(&mut w, conn, "QUIT\n"), "OK bye\n");
    w.wait_closed(conn, WAIT).unwrap();
}

#[test]
fn tutorial_dict_form_gets_exactly_one_verdict_then_close() {
    let config = Config::HOST;
    let mut mem = HostMemory::new(&config);
    let mut w = World::new(&config, &mut mem, 11).unwrap();
    let c = w.add_client();
    for (request, verdict) in [
        ("{'张三': '123'}", "登录成功!"),
        ("{\"赵四\": \"345\"}", "登录成功!"),
        ("{'王八': '000'}", "用户名或密码错误!"),
        ("{'nobody': '123'}", "用户名或密码错误!"),
    ] {
        let conn = w.connect(c, LOGIN).unwrap();
        w.send(conn, request.as_bytes()).unwrap();
        let got = w.wait_closed(conn, WAIT).unwrap();
        assert_eq!(String::from_utf8(got).unwrap(), verdict, "for {request}");
    }
}

#[test]
fn code_in_the_dict_form_is_rejected_never_run() {
    let config = Config::HOST;
    let mut mem = HostMemory::new(&config);
    let mut w = World::new(&config, &mut mem, 12).unwrap();
    let c = w.add_client();
    let conn = w.connect(c, LOGIN).unwrap();
    w.send(conn, "{'a': __import__('os').system('reboot')}".as_bytes())
        .unwrap();
    let got = w.wait_closed(conn, WAIT).unwrap();
    assert_eq!(String::from_utf8(got).unwrap(), "请求格式错误!");
}

#[test]
fn five_failures_lock_the_address_out() {
    let config = Config::HOST;
    let mut mem = HostMemory::new(&config);
    let mut w = World::new(&config, &mut mem, 13).unwrap();
    let attacker = w.add_client();
    let honest = w.add_client();
    let conn = w.connect(attacker, LOGIN).unwrap();
    for _ in 0..5 {
        assert_eq!(
            line(&mut w, conn, "LOGIN 张三 wrong\n"),
            "ERR invalid user name or password\n"
        );
    }
    let locked = line(&mut w, conn, "LOGIN 张三 123\n");
    assert!(locked.starts_with("ERR locked out"), "{locked}");
    // Another address is unaffected.
    let other = w.connect(honest, LOGIN).unwrap();
    assert_eq!(line(&mut w, other, "LOGIN 张三 123\n"), "OK 张三\n");
    // The lock lifts after a minute.
    w.run_for(Duration::from_secs(61));
    let conn = w.connect(attacker, LOGIN).unwrap();
    assert_eq!(line(&mut w, conn, "LOGIN 张三 123\n"), "OK 张三\n");
}

#[test]
fn concurrent_logins_all_get_their_verdict() {
    let config = Config::HOST;
    let mut mem = HostMemory::new(&config);
    let mut w = World::new(&config, &mut mem, 14).unwrap();
    let clients: Vec<_> = (0..4).map(|_| w.add_client()).collect();
    let conns: Vec<_> = clients
        .iter()
        .map(|&c| w.connect(c, LOGIN).unwrap())
        .collect();
    for (i, &conn) in conns.iter().enumerate() {
        let pw = if i % 2 == 0 { "345" } else { "nope" };
        w.send(conn, format!("LOGIN 赵四 {pw}\n").as_bytes())
            .unwrap();
    }
    for (i, &conn) in conns.iter().enumerate() {
        let want = if i % 2 == 0 {
            "OK 赵四\n"
        } else {
            "ERR invalid user name or password\n"
        };
        assert_eq!(w.recv_line(conn).unwrap(), want);
    }
}

#[test]
fn over_long_request_gets_an_error_and_the_session_resyncs() {
    let config = Config::HOST;
    let mut mem = HostMemory::new(&config);
    let mut w = World::new(&config, &mut mem, 15).unwrap();
    let c = w.add_client();
    let conn = w.connect(c, LOGIN).unwrap();
    let long = format!("LOGIN {} x\n", "a".repeat(400));
    assert_eq!(
        line(&mut w, conn, &long),
        "ERR message too long (max 256 bytes)\n"
    );
    assert_eq!(line(&mut w, conn, "LOGIN 王八 567\n"), "OK 王八\n");
    w.send(conn, b"\xff\xfe\n").unwrap();
    assert_eq!(w.recv_line(conn).unwrap(), "ERR invalid UTF-8\n");
    match w.recv_until(conn, Duration::from_millis(200), |b| !b.is_empty()) {
        Err(SimError::Timeout(_)) => {}
        other => panic!("exactly one reply per request, got {other:?}"),
    }
}

#[test]
fn pipelined_requests_are_answered_without_waiting_for_more_input() {
    let config = Config::HOST;
    let mut mem = HostMemory::new(&config);
    let mut w = World::new(&config, &mut mem, 16).unwrap();
    let c = w.add_client();
    let conn = w.connect(c, LOGIN).unwrap();
    w.send(conn, "LOGIN 张三 123\nWHOAMI\nQUIT\n".as_bytes())
        .unwrap();
    // The device must not sit on a finished verdict until the client sends
    // again: all three replies come while the client stays silent. (The
    // hash takes a few ms of polls; 60 ms is far below the 100 ms the
    // simulator jumps when the device reports nothing due.)
    let got = w
        .recv_until(conn, Duration::from_millis(60), |b| {
            b.ends_with(b"OK bye\n")
        })
        .unwrap();
    assert_eq!(
        String::from_utf8(got).unwrap(),
        "OK 张三\nOK 张三\nOK bye\n"
    );
}

#[test]
fn scram_good_login_then_whoami() {
    let config = Config::HOST;
    let mut mem = HostMemory::new(&config);
    let mut w = World::new(&config, &mut mem, 20).unwrap();
    let c = w.add_client();
    let conn = w.connect(c, LOGIN).unwrap();
    let (verdict, ex) = scram_login(&mut w, conn, "赵四", "nonce-abcdefgh", "345");
    assert_eq!(verdict, ex.expected_ok, "OK with the server's signature");
    assert_eq!(line(&mut w, conn, "WHOAMI\n"), "OK 赵四\n");
    assert_eq!(line(&mut w, conn, "QUIT\n"), "OK bye\n");
    w.wait_closed(conn, WAIT).unwrap();
}

#[test]
fn scram_password_never_crosses_the_wire() {
    let password = "s3cret-pencil-789";
    let salt = [9u8; 16];
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.as_bytes(), &salt, 64, &mut salted);
    let records = [smoltalk::login::Record::from_salted_password(
        "alice", 64, salt, &salted,
    )];
    let store = smoltalk::login::Store::new(&records);
    let config = Config::HOST;
    let mut mem = HostMemory::new(&config);
    let responder = smoltalk::chat::AutoResponder::new();
    let mut w = World::with(&config, &mut mem, &store, responder, 21).unwrap();
    let dir = std::env::temp_dir().join(format!("smoltalk-login-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("scram.pcap");
    w.hub().capture(&pcap).unwrap();
    let c = w.add_client();
    let conn = w.connect(c, LOGIN).unwrap();
    let (verdict, ex) = scram_login(&mut w, conn, "alice", "nonce-abcdefgh", password);
    assert_eq!(verdict, ex.expected_ok);
    // The plaintext form, by contrast, is in the capture: what the README
    // warns about `--pcap`.
    assert_eq!(line(&mut w, conn, "LOGIN alice wrong-on-purpose\n"), FAILED);
    w.hub().flush_capture().unwrap();
    let captured = std::fs::read(&pcap).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let has = |needle: &[u8]| captured.windows(needle.len()).any(|win| win == needle);
    assert!(
        has(b"AUTH alice nonce-abcdefgh"),
        "the capture holds the exchange"
    );
    assert!(has(ex.proof_hex.as_bytes()));
    assert!(
        !has(password.as_bytes()),
        "the password is not in the capture"
    );
    assert!(has(b"LOGIN alice wrong-on-purpose"));
}

#[test]
fn scram_unknown_user_is_indistinguishable_from_a_wrong_password() {
    let config = Config::HOST;
    let mut mem = HostMemory::new(&config);
    let mut w = World::new(&config, &mut mem, 22).unwrap();
    let c = w.add_client();
    let conn = w.connect(c, LOGIN).unwrap();
    let known = challenge(&mut w, conn, "张三", "nonce-abcdefgh", "wrong");
    assert_eq!(line(&mut w, conn, &known.proof_line), FAILED);
    let unknown = challenge(&mut w, conn, "李四", "nonce-abcdefgh", "wrong");
    assert_eq!(line(&mut w, conn, &unknown.proof_line), FAILED);
    // The same shape: iteration count, salt and nonce lengths.
    assert_eq!(known.iterations, unknown.iterations);
    assert_eq!(known.salt_hex.len(), unknown.salt_hex.len());
    assert_eq!(known.nonce.len(), unknown.nonce.len());
    // And the same salt every time, also after the device reboots.
    let again = challenge(&mut w, conn, "李四", "nonce-abcdefgh", "wrong");
    assert_eq!(again.salt_hex, unknown.salt_hex);
    assert_ne!(again.nonce, unknown.nonce);
    let mut mem2 = HostMemory::new(&config);
    w.restart_server(&mut mem2, smoltalk::chat::AutoResponder::new())
        .unwrap();
    let conn = w.connect(c, LOGIN).unwrap();
    let rebooted = challenge(&mut w, conn, "李四", "nonce-abcdefgh", "wrong");
    assert_eq!(rebooted.salt_hex, unknown.salt_hex);
}

#[test]
fn scram_replayed_proof_is_rejected() {
    let config = Config::HOST;
    let mut mem = HostMemory::new(&config);
    let mut w = World::new(&config, &mut mem, 23).unwrap();
    let victim = w.add_client();
    let eve = w.add_client();
    let conn = w.connect(victim, LOGIN).unwrap();
    let (verdict, recorded) = scram_login(&mut w, conn, "王八", "victim-nonce-1", "567");
    assert_eq!(verdict, recorded.expected_ok);
    // Eve replays the recorded lines, byte for byte, on her own connection.
    let conn = w.connect(eve, LOGIN).unwrap();
    let reply = line(&mut w, conn, &format!("{}\n", recorded.first));
    assert!(reply.starts_with("CHALLENGE "), "{reply}");
    assert_ne!(reply.trim_end(), recorded.challenge, "a fresh server nonce");
    assert_eq!(line(&mut w, conn, &recorded.proof_line), FAILED);
    assert_eq!(line(&mut w, conn, "WHOAMI\n"), "ERR not logged in\n");
}

#[test]
fn scram_malformed_lines_get_clear_errors() {
    let config = Config::HOST;
    let mut mem = HostMemory::new(&config);
    let mut w = World::new(&config, &mut mem, 24).unwrap();
    let c = w.add_client();
    let conn = w.connect(c, LOGIN).unwrap();
    for (request, reply) in [
        ("AUTH 张三\n", "ERR usage: AUTH <user> <client-nonce>\n"),
        (
            "AUTH 张三 tiny\n",
            "ERR client nonce must be 8 to 64 printable ASCII characters\n",
        ),
        ("PROOF xyz\n", "ERR usage: PROOF <client-proof-hex>\n"),
        (
            &format!("PROOF {}\n", "ab".repeat(32)),
            "ERR no challenge: send AUTH first\n",
        ),
        (
            &format!("AUTH {} nonce-abcdefgh\n", "长".repeat(11)),
            "ERR user name too long (max 32 bytes)\n",
        ),
        (
            &format!("AUTH u {}\n", "n".repeat(300)),
            "ERR message too long (max 256 bytes)\n",
        ),
    ] {
        assert_eq!(line(&mut w, conn, request), reply, "{request:?}");
    }
    // The session is still good.
    let (verdict, ex) = scram_login(&mut w, conn, "张三", "nonce-abcdefgh", "123");
    assert_eq!(verdict, ex.expected_ok);
}

#[test]
fn scram_failures_lock_the_address_out() {
    let config = Config::HOST;
    let mut mem = HostMemory::new(&config);
    let mut w = World::new(&config, &mut mem, 25).unwrap();
    let attacker = w.add_client();
    let honest = w.add_client();
    let conn = w.connect(attacker, LOGIN).unwrap();
    for i in 0..5 {
        let (verdict, _) =
            scram_login(&mut w, conn, "张三", "nonce-abcdefgh", &format!("guess{i}"));
        assert_eq!(verdict, FAILED);
    }
    let locked = line(&mut w, conn, "AUTH 张三 nonce-abcdefgh\n");
    assert!(locked.starts_with("ERR locked out"), "{locked}");
    let locked = line(&mut w, conn, "LOGIN 张三 123\n");
    assert!(locked.starts_with("ERR locked out"), "{locked}");
    let other = w.connect(honest, LOGIN).unwrap();
    let (verdict, ex) = scram_login(&mut w, other, "张三", "nonce-abcdefgh", "123");
    assert_eq!(verdict, ex.expected_ok);
    w.run_for(Duration::from_secs(61));
    let conn = w.connect(attacker, LOGIN).unwrap();
    let (verdict, ex) = scram_login(&mut w, conn, "张三", "nonce-abcdefgh", "123");
    assert_eq!(verdict, ex.expected_ok);
}

#[test]
fn busy_low_slots_do_not_starve_a_login_in_a_high_slot() {
    // Three clients log in back to back without pause on the lowest slots of
    // the pool while a fourth, on a higher slot, asks once. The per-poll
    // hash budget must go round: the fourth gets its verdict in about the
    // time of four logins, not after the others stop.
    let config = Config::HOST;
    let mut mem = HostMemory::new(&config);
    let mut w = World::new(&config, &mut mem, 17).unwrap();
    let c = w.add_client();
    // The time of one login on its own.
    let alone = w.connect(c, LOGIN).unwrap();
    let t0 = w.now();
    line(&mut w, alone, "LOGIN 张三 123\n");
    let one = w.now() - t0;
    w.close(alone);
    w.run_for(Duration::from_secs(1));

    let hammers: Vec<_> = (0..3).map(|_| w.connect(c, LOGIN).unwrap()).collect();
    let victim = w.connect(c, LOGIN).unwrap();
    for &h in &hammers {
        w.write_some(h, "LOGIN 张三 wrong1\n".as_bytes());
    }
    // Keep the hammers busy: a new request as soon as each verdict lands.
    // (Wrong passwords from the same address would lock it out, so they use
    // the right one.)
    let start = w.now();
    w.write_some(victim, "LOGIN 王八 567\n".as_bytes());
    let mut got = Vec::new();
    let deadline = start + one * 20;
    while w.now() < deadline && !got.ends_with(b"\n") {
        w.step();
        for &h in &hammers {
            let mut done = false;
            w.drain(h, |b| done |= b.ends_with(b"\n"));
            if done {
                w.write_some(h, "LOGIN 张三 123\n".as_bytes());
            }
        }
        w.drain(victim, |b| got.extend_from_slice(b));
    }
    assert_eq!(String::from_utf8_lossy(&got), "OK 王八\n");
    let waited = w.now() - start;
    // Fair share is 4x (four sessions hashing); without the rotation the
    // verdict does not come within 20x at all.
    assert!(
        waited <= one * 10,
        "waited {waited} for a login that takes {one} alone"
    );
}
