//! What the login tests share: a SCRAM client written against the `pbkdf2`
//! and `hmac` crates (not the core's code), and small World helpers.

#![allow(dead_code)]

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use smoltalk::sim::{Conn, World};

pub const LOGIN: u16 = 8083;

/// Sends `request` and returns the reply line (with its LF).
pub fn line(w: &mut World, conn: Conn, request: &str) -> String {
    w.send(conn, request.as_bytes()).unwrap();
    w.recv_line(conn).unwrap()
}

fn mac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
    m.update(data);
    m.finalize().into_bytes().into()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One challenge-response exchange as a client computes it.
pub struct Scram {
    /// The AUTH line, without LF.
    pub first: String,
    /// The CHALLENGE line, without LF.
    pub challenge: String,
    pub salt_hex: String,
    pub iterations: u32,
    pub nonce: String,
    /// `PROOF <hex>` with LF.
    pub proof_line: String,
    pub proof_hex: String,
    /// The `OK` line a genuine server sends, with LF.
    pub expected_ok: String,
}

/// `AUTH user nonce` → `CHALLENGE …`, then computes the proof for
/// `password` (the PROOF is not sent).
pub fn challenge(w: &mut World, conn: Conn, user: &str, nonce: &str, password: &str) -> Scram {
    let first = format!("AUTH {user} {nonce}");
    let reply = line(w, conn, &format!("{first}\n"));
    let challenge = reply.trim_end().to_string();
    answer(&first, &challenge, user, password)
}

/// The client's computation for an exchange.
pub fn answer(first: &str, challenge: &str, user: &str, password: &str) -> Scram {
    let words: Vec<&str> = challenge.split(' ').collect();
    assert_eq!(words.len(), 4, "not a challenge: {challenge:?}");
    assert_eq!(words[0], "CHALLENGE", "{challenge:?}");
    let salt: Vec<u8> = (0..words[1].len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&words[1][i..i + 2], 16).unwrap())
        .collect();
    let iterations: u32 = words[2].parse().unwrap();
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &salt, iterations, &mut salted);
    let client_key = mac(&salted, b"Client Key");
    let stored_key: [u8; 32] = Sha256::digest(client_key).into();
    let auth_message = format!("{first}\n{challenge}");
    let signature = mac(&stored_key, auth_message.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(signature)
        .map(|(k, s)| k ^ s)
        .collect();
    let server_signature = mac(&mac(&salted, b"Server Key"), auth_message.as_bytes());
    Scram {
        first: first.into(),
        challenge: challenge.into(),
        salt_hex: words[1].into(),
        iterations,
        nonce: words[3].into(),
        proof_line: format!("PROOF {}\n", hex(&proof)),
        proof_hex: hex(&proof),
        expected_ok: format!("OK {user} {}\n", hex(&server_signature)),
    }
}

/// A whole exchange; returns the verdict line and the exchange.
pub fn scram_login(
    w: &mut World,
    conn: Conn,
    user: &str,
    nonce: &str,
    password: &str,
) -> (String, Scram) {
    let ex = challenge(w, conn, user, nonce, password);
    let verdict = line(w, conn, &ex.proof_line);
    (verdict, ex)
}
