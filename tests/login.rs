//! The login service over the in-process network: both request forms, the
//! same reply for an unknown user and a wrong password, lockout per address,
//! and many clients at once.

use smoltalk::Config;
use smoltalk::net::HostMemory;
use smoltalk::sim::{SimError, World};
use smoltcp::time::Duration;

const LOGIN: u16 = 8083;
const WAIT: Duration = Duration::from_secs(30);

fn line(w: &mut World, conn: smoltalk::sim::Conn, request: &str) -> String {
    w.send(conn, request.as_bytes()).unwrap();
    w.recv_line(conn).unwrap()
}

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
