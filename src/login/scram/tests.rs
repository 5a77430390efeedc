//! The key schedule against RFC 7677's example, the exchange against an
//! independent client (the `pbkdf2` and `hmac` crates, not this module's
//! code), fake challenges and nonces. The client helpers are shared with
//! the session's tests.
extern crate std;

use std::format;
use std::string::String;
use std::vec::Vec;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use smoltcp::wire::{IpAddress, Ipv4Address};

use super::*;
use crate::login::store::DEMO;

type ClientHmac = Hmac<Sha256>;

fn mac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut m = <ClientHmac as Mac>::new_from_slice(key).expect("any key length");
    m.update(data);
    m.finalize().into_bytes().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// The client's first line, with its LF.
pub(crate) fn client_first(user: &str, client_nonce: &str) -> String {
    format!("AUTH {user} {client_nonce}\n")
}

/// The client's side of one exchange, computed independently of the
/// server's code.
pub(crate) struct ClientExchange {
    pub salt: [u8; 16],
    pub iterations: u32,
    pub nonce: String,
    /// The CHALLENGE line without its LF.
    pub challenge_line: String,
    pub proof: [u8; 32],
    pub server_signature: [u8; 32],
}

impl ClientExchange {
    /// `first`: the AUTH line sent (with LF); `challenge`: the reply
    /// without its LF.
    pub(crate) fn new(first: &str, challenge: &str, password: &str) -> Self {
        let words: Vec<&str> = challenge.split(' ').collect();
        assert_eq!(words.len(), 4, "{challenge}");
        assert_eq!(words[0], "CHALLENGE");
        let salt: [u8; 16] = unhex(words[1]).try_into().expect("16-byte salt");
        let iterations: u32 = words[2].parse().expect("iterations");
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &salt, iterations, &mut salted);
        let client_key = mac(&salted, b"Client Key");
        let stored_key: [u8; 32] = Sha256::digest(client_key).into();
        let server_key = mac(&salted, b"Server Key");
        let auth_message = format!("{}{}", first, challenge);
        let client_signature = mac(&stored_key, auth_message.as_bytes());
        let mut proof = [0u8; 32];
        for i in 0..32 {
            proof[i] = client_key[i] ^ client_signature[i];
        }
        ClientExchange {
            salt,
            iterations,
            nonce: words[3].into(),
            challenge_line: challenge.into(),
            proof,
            server_signature: mac(&server_key, auth_message.as_bytes()),
        }
    }

    pub(crate) fn proof_line(&self) -> String {
        format!("PROOF {}\n", hex(&self.proof))
    }

    pub(crate) fn expected_ok(&self, user: &str) -> String {
        format!("OK {user} {}\n", hex(&self.server_signature))
    }
}

fn peer() -> IpAddress {
    IpAddress::Ipv4(Ipv4Address::new(10, 0, 0, 1))
}

/// Starts an exchange on `store`, returns the CHALLENGE line (no LF).
fn start(store: &Store<'_>, ch: &mut Challenges, user: &str) -> (Challenge, String) {
    let mut out = String::new();
    let c = Challenge::start(
        store,
        ch,
        user,
        "rOprNGfwEbeRWgbNEkqO",
        Instant::from_millis(5),
        peer(),
        &mut out,
    );
    assert!(out.ends_with('\n'));
    out.pop();
    (c, out)
}

#[test]
fn key_schedule_matches_rfc_7677() {
    // RFC 7677 section 3: user "user", password "pencil", 4096 iterations.
    let salt = [
        0x5b, 0x6d, 0x99, 0x68, 0x9d, 0x12, 0x35, 0x8e, 0xec, 0xa0, 0x4b, 0x14, 0x12, 0x36, 0xfa,
        0x81,
    ]; // base64 W22ZaJ0SNY7soEsUEjb6gQ==
    let salted = crate::login::hash::pbkdf2_sha256(b"pencil", &salt, 4096);
    let auth_message = "n=user,r=rOprNGfwEbeRWgbNEkqO,\
                        r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                        s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,\
                        c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    let ck = client_key(&salted);
    let signature = crate::login::hash::hmac_sha256(&stored_key(&ck), &[auth_message.as_bytes()]);
    let proof: Vec<u8> = ck
        .iter()
        .zip(signature.iter())
        .map(|(a, b)| a ^ b)
        .collect();
    // base64 dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=
    assert_eq!(
        hex(&proof),
        "747cdb65aa56224e2352137e52d7bdcad6a0f738df30782caa69a2cfb0277554"
    );
    let server_signature =
        crate::login::hash::hmac_sha256(&server_key(&salted), &[auth_message.as_bytes()]);
    // base64 6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=
    assert_eq!(
        hex(&server_signature),
        "eabae24d1062db75a9451ff0b6ea7e98c8546549ff741e672d3251b2397de46e"
    );
}

#[test]
fn demo_records_hold_the_keys_of_the_tutorial_passwords() {
    for (r, password) in DEMO.records().iter().zip(["123", "345", "567"]) {
        let salted = crate::login::hash::pbkdf2_sha256(password.as_bytes(), &r.salt, 4096);
        assert_eq!(r.stored_key, stored_key_of(&salted), "{}", r.user);
        assert_eq!(r.server_key, server_key(&salted), "{}", r.user);
    }
}

#[test]
fn an_independent_client_logs_in() {
    let mut ch = Challenges::new(7, &DEMO);
    for (user, password) in [("张三", "123"), ("赵四", "345"), ("王八", "567")] {
        let (c, line) = start(&DEMO, &mut ch, user);
        let first = client_first(user, "rOprNGfwEbeRWgbNEkqO");
        let ex = ClientExchange::new(&first, &line, password);
        assert!(bool::from(c.verify(&ex.proof)), "{user}");
        let mut ok = String::new();
        c.write_ok(&mut ok);
        assert_eq!(ok, ex.expected_ok(user));
        // Any other proof fails: a wrong password, a flipped bit.
        let wrong = ClientExchange::new(&first, &line, "124");
        assert!(!bool::from(c.verify(&wrong.proof)));
        let mut flipped = ex.proof;
        flipped[31] ^= 1;
        assert!(!bool::from(c.verify(&flipped)));
    }
}

#[test]
fn the_challenge_line_is_canonical() {
    let mut ch = Challenges::new(7, &DEMO);
    let (_, line) = start(&DEMO, &mut ch, "张三");
    let words: Vec<&str> = line.split(' ').collect();
    assert_eq!(words[0], "CHALLENGE");
    assert_eq!(words[1], "a8270b019d7f25a0b802b1837c003000");
    assert_eq!(words[2], "4096");
    let server_part = words[3]
        .strip_prefix("rOprNGfwEbeRWgbNEkqO")
        .expect("client nonce first");
    assert_eq!(server_part.len(), 2 * SERVER_NONCE_LEN);
    assert!(
        server_part
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    );
    assert!(line.len() <= CHALLENGE_MAX);
    // The longest possible line fits.
    let long_nonce = "~".repeat(CLIENT_NONCE_MAX);
    let mut out = String::new();
    let user = "x".repeat(MAX_USER);
    Challenge::start(
        &DEMO,
        &mut ch,
        &user,
        &long_nonce,
        Instant::ZERO,
        peer(),
        &mut out,
    );
    assert!(out.ends_with(&format!(
        "{long_nonce}{}\n",
        &out[out.len() - 33..out.len() - 1]
    )));
    assert_eq!(
        out.len() - 1,
        "CHALLENGE ".len() + 32 + " 4096 ".len() + 64 + 32
    );
}

#[test]
fn unknown_users_fail_whatever_the_proof() {
    let mut ch = Challenges::new(7, &DEMO);
    let (c, line) = start(&DEMO, &mut ch, "nobody");
    let ex = ClientExchange::new(&client_first("nobody", "rOprNGfwEbeRWgbNEkqO"), &line, "");
    assert!(!bool::from(c.verify(&ex.proof)));
    // Even a proof made from the (fake) zero StoredKey's preimage cannot
    // exist; and the known flag is false regardless.
    assert!(!c.known);
    assert_eq!(ex.iterations, DEMO.dummy().iterations);
}

#[test]
fn fake_salts_are_stable_per_user_and_depend_on_the_whole_store() {
    let a = Challenges::new(1, &DEMO);
    let b = Challenges::new(2, &DEMO);
    assert_eq!(a.fake_salt("nobody"), b.fake_salt("nobody"), "across boots");
    assert_ne!(a.fake_salt("nobody"), a.fake_salt("nobody2"));
    // Another store (here: one user fewer) gives other fake salts.
    let fewer = Store::new(&DEMO_RECORDS_TAIL);
    assert_ne!(
        Challenges::new(1, &fewer).fake_salt("nobody"),
        a.fake_salt("nobody")
    );
}

static DEMO_RECORDS_TAIL: [Record<'static>; 2] = {
    let r = &crate::login::store::DEMO_RECORDS;
    [r[1], r[2]]
};

#[test]
fn server_nonces_do_not_repeat() {
    let mut a = Challenges::new(1, &DEMO);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..2000 {
        // Same time and peer: the counter alone keeps them apart.
        assert!(seen.insert(a.server_nonce(Instant::ZERO, peer())));
    }
    // Another boot (seed) starts a different sequence.
    let mut b = Challenges::new(2, &DEMO);
    let mut a = Challenges::new(1, &DEMO);
    assert_ne!(
        a.server_nonce(Instant::ZERO, peer()),
        b.server_nonce(Instant::ZERO, peer())
    );
}

#[test]
fn client_nonce_rules() {
    assert!(valid_client_nonce("abcdefgh"));
    assert!(valid_client_nonce(&"!".repeat(64)));
    assert!(!valid_client_nonce("abcdefg"));
    assert!(!valid_client_nonce(&"a".repeat(65)));
    assert!(!valid_client_nonce("abcd efgh"));
    assert!(!valid_client_nonce("abcdefg\u{7f}"));
    assert!(!valid_client_nonce("abcdefgé"));
}

#[test]
fn parse_hex_is_strict() {
    assert_eq!(parse_hex::<2>("0aFf"), Some([0x0a, 0xff]));
    assert_eq!(parse_hex::<2>("0aF"), None);
    assert_eq!(parse_hex::<2>("0aFff"), None);
    assert_eq!(parse_hex::<2>("0g00"), None);
    assert_eq!(parse_hex::<2>("+a00"), None);
}
