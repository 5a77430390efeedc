//! Both chats over the in-process network: the turn-taking TCP chat with
//! line clients and tutorial-style clients, and the UDP hotline with many
//! callers at once.

use smoltalk::Config;
use smoltalk::config::HOTLINE_SESSIONS;
use smoltalk::net::HostMemory;
use smoltalk::sim::World;
use smoltcp::time::Duration;

const CHAT: u16 = 8081;
const HOTLINE: u16 = 8086;
const SEC: Duration = Duration::from_secs(1);

#[test]
fn line_client_chats_and_byebye_closes() {
    let config = Config::HOST;
    let mut mem = HostMemory::new(&config);
    let mut w = World::new(&config, &mut mem, 20).unwrap();
    let c = w.add_client();
    let conn = w.connect(c, CHAT).unwrap();
    assert!(
        w.recv_line(conn).unwrap().starts_with("Welcome"),
        "the server speaks first"
    );
    w.send(conn, b"what are your hours?\n").unwrap();
    assert_eq!(
        w.recv_line(conn).unwrap(),
        "We are open 24/7, holidays included.\n"
    );
    w.send(conn, b"byebye\r\n").unwrap();
    assert_eq!(w.wait_closed(conn, SEC * 5).unwrap(), b"byebye\r\n");
}

#[test]
fn tutorial_client_without_newlines_gets_exact_replies() {
    let config = Config::HOST;
    let mut mem = HostMemory::new(&config);
    let mut w = World::new(&config, &mut mem, 21).unwrap();
    let c = w.add_client();
    let conn = w.connect(c, CHAT).unwrap();
    // The tutorial client: recv(1024), print, input(), send() without newline.
    let greeting = w.recv_line(conn).unwrap();
    assert!(greeting.contains("byebye"));
    w.send(conn, "你好".as_bytes()).unwrap();
    let reply = w.recv_for(conn, Duration::from_millis(200));
    assert_eq!(
        String::from_utf8(reply).unwrap(),
        "你好! How can I help? (type help for topics)"
    );
    w.send(conn, b"byebye").unwrap();
    // It compares the reply with 'byebye' exactly.
    assert_eq!(w.wait_closed(conn, SEC * 5).unwrap(), b"byebye");
}

#[test]
fn every_chat_client_is_served_at_once() {
    let config = Config::HOST;
    let mut mem = HostMemory::new(&config);
    let mut w = World::new(&config, &mut mem, 22).unwrap();
    let c = w.add_client();
    let conns: Vec<_> = (0..config.pools.chat)
        .map(|_| w.connect(c, CHAT).unwrap())
        .collect();
    for &conn in &conns {
        w.recv_line(conn).unwrap();
        w.send(conn, b"help\n").unwrap();
    }
    for &conn in &conns {
        assert!(w.recv_line(conn).unwrap().starts_with("Topics:"));
    }
    assert_eq!(
        w.connect(c, CHAT),
        Err(smoltalk::sim::SimError::Refused),
        "pool full"
    );
}

#[test]
fn hotline_serves_several_callers_and_masks_keywords() {
    let config = Config::HOST;
    let mut mem = HostMemory::new(&config);
    let mut w = World::new(&config, &mut mem, 23).unwrap();
    let callers: Vec<_> = (0..3)
        .map(|_| {
            let c = w.add_client();
            w.udp_bind(c)
        })
        .collect();
    w.udp_send(callers[0], HOTLINE, b"hello").unwrap();
    w.udp_send(callers[1], HOTLINE, b"you sb").unwrap();
    w.udp_send(callers[2], HOTLINE, b"price?").unwrap();
    assert!(w.udp_recv(callers[0], SEC).unwrap().starts_with(b"Hello!"));
    let masked = String::from_utf8(w.udp_recv(callers[1], SEC).unwrap()).unwrap();
    assert!(
        masked.ends_with("You said: you **") && !masked.contains("sb"),
        "{masked}"
    );
    assert_eq!(
        w.udp_recv(callers[2], SEC).unwrap(),
        b"Calls to this hotline are free."
    );
    assert_eq!(w.server().usage().hotline_sessions, 3);
    w.udp_send(callers[1], HOTLINE, b"byebye").unwrap();
    assert_eq!(w.udp_recv(callers[1], SEC).unwrap(), b"byebye");
    assert_eq!(w.server().usage().hotline_sessions, 2);
    // Silent callers are forgotten after the idle limit.
    w.run_for(config.limits.hotline_idle + SEC);
    assert_eq!(w.server().usage().hotline_sessions, 0);
}

#[test]
fn full_hotline_says_busy_and_keeps_its_callers() {
    let config = Config::HOST;
    let mut mem = HostMemory::new(&config);
    let mut w = World::new(&config, &mut mem, 24).unwrap();
    let c = w.add_client();
    let lines: Vec<_> = (0..=HOTLINE_SESSIONS).map(|_| w.udp_bind(c)).collect();
    for &u in &lines[..HOTLINE_SESSIONS] {
        w.udp_send(u, HOTLINE, b"hi").unwrap();
        w.udp_recv(u, SEC).unwrap();
    }
    let last = lines[HOTLINE_SESSIONS];
    w.udp_send(last, HOTLINE, b"hi").unwrap();
    assert!(w.udp_recv(last, SEC).unwrap().starts_with(b"busy:"));
    w.udp_send(lines[0], HOTLINE, b"hours").unwrap();
    assert!(
        w.udp_recv(lines[0], SEC)
            .unwrap()
            .starts_with(b"We are open")
    );
}

#[test]
fn operator_answers_a_waiting_tcp_and_udp_session() {
    use smoltalk::chat::{Answer, Responder, responder::Reply};
    use smoltalk::session::SessionId;

    /// Remembers who waits, as `serve --operator` does.
    #[derive(Default)]
    struct Operator(Vec<SessionId>);
    impl Responder for Operator {
        fn greeting(&mut self, _: SessionId, out: &mut Reply) {
            let _ = out.push_str("operator here");
        }
        fn answer(&mut self, id: SessionId, _: &str, _: Option<&str>, _: &mut Reply) -> Answer {
            self.0.push(id);
            Answer::Later
        }
    }

    let config = Config::HOST;
    let mut mem = HostMemory::new(&config);
    let store = smoltalk::login::store::DEMO;
    let mut w = World::with(&config, &mut mem, &store, Operator::default(), 25).unwrap();
    let c = w.add_client();
    let conn = w.connect(c, CHAT).unwrap();
    assert_eq!(w.recv_line(conn).unwrap(), "operator here\n");
    w.send(conn, b"anyone?\n").unwrap();
    w.run_for(SEC);
    let id = w.server().responder_mut().0.pop().unwrap();
    w.server().operator_reply(id, "yes").unwrap();
    assert_eq!(w.recv_line(conn).unwrap(), "yes\n");
    assert!(
        w.server().operator_reply(id, "again").is_err(),
        "the client's turn"
    );

    let u = w.udp_bind(c);
    w.udp_send(u, HOTLINE, b"help").unwrap();
    w.run_for(SEC);
    let id = w.server().responder_mut().0.pop().unwrap();
    w.server().operator_reply(id, "how can I help?").unwrap();
    assert_eq!(w.udp_recv(u, SEC).unwrap(), b"how can I help?");
}
