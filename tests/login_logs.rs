//! No user name, password, salt, nonce, proof or signature ever reaches a
//! log record: every login form (challenge-response, `LOGIN`, the dict),
//! good, bad, unknown, malformed and locked out, through the in-process
//! node with a `log` logger capturing everything at trace level (the
//! core's own records and smoltcp's).
//!
//! One test in this binary: the logger is process-wide.

mod login_support;

use std::sync::Mutex;

use log::{LevelFilter, Log, Metadata, Record as LogRecord};
use login_support::{LOGIN, hex, line, scram_login};
use smoltalk::Config;
use smoltalk::chat::AutoResponder;
use smoltalk::login::{Record, Store};
use smoltalk::net::HostMemory;
use smoltalk::sim::World;
use smoltcp::time::Duration;

static RECORDS: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl Log for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &LogRecord<'_>) {
        let text = format!("{} {} {}", record.level(), record.target(), record.args());
        RECORDS.lock().unwrap().push(text);
    }
    fn flush(&self) {}
}

static LOGGER: Capture = Capture;

// Distinctive strings, so that a match cannot be a coincidence (a demo
// password such as "123" could be part of an address).
const USER: &str = "alice-username-x7";
const PASSWORD: &str = "correct-horse-pw-q9";
const WRONG: &str = "wrong-guess-pw-k3";
const UNKNOWN: &str = "mallory-unknown-z5";
const NONCE: &str = "client-nonce-r8t2";

#[test]
fn no_secret_reaches_any_log_record() {
    log::set_logger(&LOGGER).unwrap();
    log::set_max_level(LevelFilter::Trace);

    let salt = *b"salt-bytes-16-xy";
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(PASSWORD.as_bytes(), &salt, 64, &mut salted);
    let records = [Record::from_salted_password(USER, 64, salt, &salted)];
    let store = Store::new(&records);
    let config = Config::HOST;
    let mut mem = HostMemory::new(&config);
    let mut w = World::with(&config, &mut mem, &store, AutoResponder::new(), 31).unwrap();
    let mut secrets: Vec<String> = vec![
        USER.into(),
        PASSWORD.into(),
        WRONG.into(),
        UNKNOWN.into(),
        NONCE.into(),
        hex(&salt),
        "salt-bytes-16-xy".into(),
        hex(&records[0].stored_key),
        hex(&records[0].server_key),
    ];

    let c = w.add_client();
    let conn = w.connect(c, LOGIN).unwrap();
    let failed = "ERR invalid user name or password\n";
    // Challenge-response: good, wrong password, unknown user.
    for (user, password, ok) in [
        (USER, PASSWORD, true),
        (USER, WRONG, false),
        (UNKNOWN, WRONG, false),
    ] {
        let (verdict, ex) = scram_login(&mut w, conn, user, NONCE, password);
        if ok {
            assert_eq!(verdict, ex.expected_ok);
            secrets.push(verdict.trim_end().rsplit(' ').next().unwrap().into());
        } else {
            assert_eq!(verdict, failed);
        }
        secrets.push(ex.proof_hex.clone());
        secrets.push(ex.nonce.clone());
        secrets.push(ex.salt_hex.clone());
    }
    // Plaintext line form: good, wrong, unknown, malformed.
    assert_eq!(
        line(&mut w, conn, &format!("LOGIN {USER} {PASSWORD}\n")),
        format!("OK {USER}\n")
    );
    assert_eq!(
        line(&mut w, conn, &format!("LOGIN {USER} {WRONG}\n")),
        failed
    );
    assert_eq!(
        line(&mut w, conn, &format!("LOGIN {UNKNOWN} {WRONG}\n")),
        failed
    );
    assert!(
        line(&mut w, conn, &format!("LOGIN {USER} {PASSWORD} extra\n")).starts_with("ERR usage")
    );
    assert!(
        line(&mut w, conn, &format!("AUTH {USER} {NONCE} {PASSWORD}\n")).starts_with("ERR usage")
    );
    assert!(line(&mut w, conn, &format!("{PASSWORD}\n")).starts_with("ERR unknown command"));
    // The dict form: good, wrong, malformed.
    for (request, verdict) in [
        (format!("{{'{USER}': '{PASSWORD}'}}"), "登录成功!"),
        (format!("{{'{USER}': '{WRONG}'}}"), "用户名或密码错误!"),
        (format!("{{'{USER}': {PASSWORD}}}"), "请求格式错误!"),
    ] {
        let conn = w.connect(c, LOGIN).unwrap();
        w.send(conn, request.as_bytes()).unwrap();
        let got = w.wait_closed(conn, Duration::from_secs(30)).unwrap();
        assert_eq!(String::from_utf8(got).unwrap(), verdict);
    }
    // Enough failures to be locked out, then refused in every form.
    for _ in 0..5 {
        line(&mut w, conn, &format!("LOGIN {USER} {WRONG}\n"));
    }
    assert!(line(&mut w, conn, &format!("AUTH {USER} {NONCE}\n")).starts_with("ERR locked out"));
    assert!(
        line(&mut w, conn, &format!("LOGIN {USER} {PASSWORD}\n")).starts_with("ERR locked out")
    );
    assert_eq!(line(&mut w, conn, "QUIT\n"), "OK bye\n");
    w.wait_closed(conn, Duration::from_secs(30)).unwrap();

    let logged = RECORDS.lock().unwrap().clone();
    // The capture works and saw the logins: otherwise this test proves nothing.
    let count = |needle: &str| logged.iter().filter(|r| r.contains(needle)).count();
    assert!(count(": ok") >= 3, "{logged:#?}");
    assert!(count(": failed") >= 5, "{logged:#?}");
    assert!(count("locked out") >= 2, "{logged:#?}");
    assert!(count("challenge sent") >= 3, "{logged:#?}");
    assert!(
        logged.iter().any(|r| r.starts_with("TRACE")),
        "trace level reached"
    );
    for secret in &secrets {
        for record in &logged {
            assert!(
                !record.contains(secret.as_str()),
                "{secret:?} in the log: {record}"
            );
        }
    }
    eprintln!(
        "{} log records checked against {} secrets",
        logged.len(),
        secrets.len()
    );
}
