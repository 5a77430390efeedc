//! The client's side of the login's challenge-response: SCRAM-SHA-256 in
//! the line protocol (the exchange and the computation are specified in
//! `smoltalk::login::scram`).
//!
//! ```text
//! C: AUTH <user> <client-nonce>
//! S: CHALLENGE <salt-hex> <iterations> <nonce>
//! C: PROOF <client-proof-hex>
//! S: OK <user> <server-signature-hex>   (or ERR …)
//! ```
//!
//! Written with the `pbkdf2`, `hmac` and `sha2` crates, not with the core's
//! code, so that the client and the server are two implementations that
//! must agree. The client checks what a hostile or broken server could
//! abuse: the nonce must extend ours, the iteration count is bounded (a
//! server asking for 4 billion would hang us), and the server's signature
//! must match, or the server does not hold our keys.

use std::error::Error;
use std::fmt::Write as _;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Bytes of randomness in a client nonce (sent as twice as many hex
/// digits; the server takes 8 to 64 characters).
const NONCE_BYTES: usize = 16;

/// The most PBKDF2 iterations the client does for a server: at about a
/// microsecond each, a few seconds.
pub const MAX_ITERATIONS: u32 = 10_000_000;

/// One exchange, from the client's side.
pub struct Exchange {
    /// The `AUTH` line as sent, without its LF: the start of AuthMessage.
    first: String,
    client_nonce: String,
}

/// What the client sends to a challenge, and what it expects back.
pub struct Answer {
    /// `PROOF <hex>` with its LF.
    pub proof_line: String,
    /// The signature a genuine server returns with `OK`.
    server_signature: [u8; 32],
}

impl Exchange {
    /// Starts an exchange for `user` with a fresh random client nonce.
    pub fn new(user: &str) -> Result<Exchange, Box<dyn Error>> {
        let mut random = [0u8; NONCE_BYTES];
        getrandom::fill(&mut random).map_err(|e| format!("no random numbers for a nonce: {e}"))?;
        Ok(Exchange::with_nonce(user, &hex(&random)))
    }

    /// Starts an exchange with a chosen nonce (tests).
    pub fn with_nonce(user: &str, client_nonce: &str) -> Exchange {
        Exchange {
            first: format!("AUTH {user} {client_nonce}"),
            client_nonce: client_nonce.into(),
        }
    }

    /// The `AUTH` line to send, with its LF.
    pub fn first_line(&self) -> String {
        format!("{}\n", self.first)
    }

    /// Answers `challenge` (the server's line without its terminator) for
    /// `password`: checks it, runs PBKDF2 and makes the proof.
    pub fn answer(&self, challenge: &str, password: &str) -> Result<Answer, Box<dyn Error>> {
        let words: Vec<&str> = challenge.split(' ').collect();
        let [tag, salt, iterations, nonce] = words[..] else {
            return Err(format!("malformed challenge: {challenge:?}").into());
        };
        if tag != "CHALLENGE" {
            return Err(format!("expected CHALLENGE, got {challenge:?}").into());
        }
        let salt = unhex(salt).ok_or("malformed challenge: the salt is not hex")?;
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| "malformed challenge: the iteration count is not a number")?;
        if !(1..=MAX_ITERATIONS).contains(&iterations) {
            return Err(format!(
                "the server asks for {iterations} PBKDF2 iterations; this client does 1 to {MAX_ITERATIONS}"
            )
            .into());
        }
        match nonce.strip_prefix(&self.client_nonce) {
            Some(server_part) if !server_part.is_empty() => {}
            _ => {
                return Err(
                    "the challenge's nonce does not extend ours: not a genuine server".into(),
                );
            }
        }

        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &salt, iterations, &mut salted);
        let client_key = hmac(&salted, b"Client Key");
        let stored_key: [u8; 32] = Sha256::digest(client_key).into();
        let server_key = hmac(&salted, b"Server Key");
        let auth_message = format!("{}\n{}", self.first, challenge);
        let client_signature = hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(client_signature.iter())
            .map(|(k, s)| k ^ s)
            .collect();
        Ok(Answer {
            proof_line: format!("PROOF {}\n", hex(&proof)),
            server_signature: hmac(&server_key, auth_message.as_bytes()),
        })
    }
}

impl Answer {
    /// Checks the server's `OK <user> <signature-hex>` (without `OK `):
    /// returns the user name it names, or an error if the signature is
    /// not the one only a server holding our keys can make.
    pub fn check_ok<'a>(&self, rest: &'a str) -> Result<&'a str, Box<dyn Error>> {
        let (user, signature) = rest
            .rsplit_once(' ')
            .ok_or("the server said OK without its signature")?;
        let signature = unhex(signature).ok_or("the server's signature is not hex")?;
        if !constant_time_eq(&signature, &self.server_signature) {
            return Err(
                "the server's signature is wrong: it does not hold this user's keys \
                        (an impostor?); the login is not trusted"
                    .into(),
            );
        }
        Ok(user)
    }
}

/// HMAC-SHA256(key, data).
fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Compares without stopping at the first difference.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(2 * bytes.len());
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client against the core's server side, in process: the two
    /// implementations agree.
    fn server_challenge(user: &str, nonce: &str) -> (smoltalk::login::scram::Challenge, String) {
        use smoltalk::login::{Challenges, DEMO};
        use smoltcp::time::Instant;
        use smoltcp::wire::{IpAddress, Ipv4Address};
        let mut challenges = Challenges::new(3, &DEMO);
        let mut line = String::new();
        let c = smoltalk::login::scram::Challenge::start(
            &DEMO,
            &mut challenges,
            user,
            nonce,
            Instant::ZERO,
            IpAddress::Ipv4(Ipv4Address::new(127, 0, 0, 1)),
            &mut line,
        );
        line.pop();
        (c, line)
    }

    fn proof_of(answer: &Answer) -> [u8; 32] {
        let hex = answer.proof_line.trim_end().strip_prefix("PROOF ").unwrap();
        unhex(hex).unwrap().try_into().unwrap()
    }

    #[test]
    fn agrees_with_the_core() {
        let ex = Exchange::with_nonce("张三", "0123456789abcdef");
        let (server, challenge) = server_challenge("张三", "0123456789abcdef");
        let answer = ex.answer(&challenge, "123").unwrap();
        assert!(bool::from(server.verify(&proof_of(&answer))));
        let mut ok = String::new();
        server.write_ok(&mut ok);
        let rest = ok.trim_end().strip_prefix("OK ").unwrap();
        assert_eq!(answer.check_ok(rest).unwrap(), "张三");

        let wrong = ex.answer(&challenge, "124").unwrap();
        assert!(!bool::from(server.verify(&proof_of(&wrong))));
        // A wrong password also expects another server signature: an
        // impostor cannot pass by echoing anything.
        assert!(wrong.check_ok(rest).is_err());
    }

    #[test]
    fn refuses_hostile_challenges() {
        let ex = Exchange::with_nonce("u", "0123456789abcdef");
        let salt = "00".repeat(16);
        for bad in [
            format!("CHALLENGE {salt} 4096 someoneelses-nonce"),
            format!("CHALLENGE {salt} 4096 0123456789abcdef"),
            format!("CHALLENGE {salt} 4294967295 0123456789abcdefff"),
            format!("CHALLENGE {salt} 0 0123456789abcdefff"),
            "CHALLENGE zz 4096 0123456789abcdefff".to_string(),
            format!("CHALLENGE {salt} 4096"),
            format!("HELLO {salt} 4096 0123456789abcdefff"),
        ] {
            assert!(ex.answer(&bad, "pw").is_err(), "{bad}");
        }
        let good = ex
            .answer(&format!("CHALLENGE {salt} 2 0123456789abcdefff"), "pw")
            .unwrap();
        for bad in ["u", "u zz", &format!("u {}", "00".repeat(32))] {
            assert!(good.check_ok(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nonces_are_fresh_hex() {
        let a = Exchange::new("u").unwrap();
        let b = Exchange::new("u").unwrap();
        assert_ne!(a.client_nonce, b.client_nonce);
        assert_eq!(a.client_nonce.len(), 2 * NONCE_BYTES);
        assert!(a.first_line().starts_with("AUTH u ") && a.first_line().ends_with('\n'));
    }
}
