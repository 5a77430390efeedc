//! Challenge-response login: SCRAM-SHA-256 (RFC 5802, RFC 7677) in the line
//! protocol's syntax, so that the password never crosses the wire.
//!
//! # The exchange
//!
//! ```text
//! C: AUTH <user> <client-nonce>
//! S: CHALLENGE <salt-hex> <iterations> <nonce>
//! C: PROOF <client-proof-hex>
//! S: OK <user> <server-signature-hex>
//!    or ERR invalid user name or password
//! ```
//!
//! - `user`: as in `LOGIN`, one token of 1 to [`MAX_USER`] bytes of UTF-8
//!   (longer: `ERR user name too long (max 32 bytes)`).
//! - `client-nonce`: [`CLIENT_NONCE_MIN`] to [`CLIENT_NONCE_MAX`] printable
//!   ASCII characters (`!` to `~`), fresh and random for every attempt
//!   (otherwise: `ERR client nonce must be 8 to 64 printable ASCII
//!   characters`).
//! - `salt-hex`: the user's 16-byte salt, 32 lower-case hex digits;
//!   `iterations`: the PBKDF2 iteration count, decimal.
//! - `nonce`: the client nonce followed by the server's
//!   [`SERVER_NONCE_LEN`]-byte nonce in 32 lower-case hex digits.
//! - `client-proof-hex`: 32 bytes, 64 hex digits (either case; otherwise
//!   `ERR usage: PROOF <client-proof-hex>`).
//! - `server-signature-hex`: 32 bytes, 64 lower-case hex digits. The client
//!   checks it: only a server that holds the user's keys can make it.
//!
//! A challenge answers the next line only: `PROOF` must follow `CHALLENGE`
//! directly, any other line (or a malformed `PROOF`) abandons it, and
//! `PROOF` without a challenge gets `ERR no challenge: send AUTH first`. So
//! every challenge allows one guess, and each failed guess counts towards
//! the lockout exactly like a failed `LOGIN`. A locked-out address gets
//! `ERR locked out: …` to `AUTH` (or to `PROOF`, if the lock began in
//! between) and costs no work.
//!
//! # The computation
//!
//! ```text
//! SaltedPassword  = PBKDF2-HMAC-SHA256(password, salt, iterations)  (32 bytes: RFC 5802's Hi)
//! ClientKey       = HMAC(SaltedPassword, "Client Key")
//! StoredKey       = SHA-256(ClientKey)
//! ServerKey       = HMAC(SaltedPassword, "Server Key")
//! AuthMessage     = "AUTH " user " " client-nonce LF "CHALLENGE " salt-hex " " iterations " " nonce
//! ClientSignature = HMAC(StoredKey, AuthMessage)
//! ClientProof     = ClientKey XOR ClientSignature
//! ServerSignature = HMAC(ServerKey, AuthMessage)
//! ```
//!
//! `AuthMessage` is the client's `AUTH` line spelt canonically (upper-case
//! `AUTH`, single spaces, no terminator), one LF, and the `CHALLENGE` line
//! exactly as the server sent it, without its terminator. The password is
//! its UTF-8 bytes, as `LOGIN` sends it. HMAC and SHA-256 are the RFC's; what
//! differs from RFC 5802 is the framing: lines of words instead of GS2
//! attribute lists, hex instead of base64, no SASLprep, no channel binding
//! and no authorisation identity. Without channel binding, SCRAM does not
//! stop an active man in the middle from relaying a whole exchange; it does
//! keep the password (and anything a replay could use) off the wire.
//!
//! The server verifies: `ClientKey' = ClientProof XOR ClientSignature`, then
//! `SHA-256(ClientKey') == StoredKey`, compared in constant time. It keeps
//! only `StoredKey` and `ServerKey` per user ([`Record`]): neither lets
//! anyone log in, so a stolen users file still has to be cracked one
//! PBKDF2 guess at a time. (`ServerKey` does let its holder pose as the
//! server.) The plaintext forms check a password the same way:
//! PBKDF2 → `SaltedPassword` → `StoredKey`, compared with the record.
//!
//! # Unknown users
//!
//! An unknown user gets a challenge that looks real and stays the same:
//! its salt is `HMAC(fake-salt key, 0x00 "fake salt" user)`, cut to 16
//! bytes, and its iteration count is [`Store::dummy`]'s. The exchange then
//! fails with the same `ERR` line, after the same work, as a wrong password.
//! The fake-salt key is an HMAC chain over every record's name, count,
//! salt and keys: it survives reboots (a salt that changed with every boot would
//! tell fake from real), and no single user can compute it, since each
//! knows only their own password. Two caveats: with a single user, that
//! user can; and the demo records are public, so the demo store hides
//! nothing (its user list is public too).
//!
//! # Server nonces
//!
//! A server nonce is `HMAC(nonce key, counter, now, peer)`, cut to
//! [`SERVER_NONCE_LEN`] bytes, where the nonce key is
//! `HMAC(fake-salt key, "nonce key" random_seed)` and the counter counts the
//! node's challenges. Within one boot the counter makes every nonce new, so
//! a recorded `PROOF` never fits a later challenge. Across boots that rests
//! on `NetConfig::random_seed` differing. **Boards without a hardware RNG**
//! (the LM3S6965 mixes its MAC address with a clock jitter) must make sure
//! it does: a seed that repeats replays the same nonce sequence, and an
//! eavesdropper who recorded the k-th login after one boot could replay it
//! as the k-th after another. The time and the peer address in the HMAC
//! make that much harder, but they are no substitute for entropy.
//!
//! # Cost
//!
//! The server's side is a handful of HMACs, not a PBKDF2: the client pays
//! the iterations. `AUTH` is charged [`AUTH_COST`] and `PROOF`
//! [`PROOF_COST`] against the node's `hash_budget`, the same for known and
//! unknown users.

use sha2::{Digest, Sha256};
use smoltcp::time::Instant;
use smoltcp::wire::IpAddress;
use subtle::{Choice, ConstantTimeEq};

use super::hash::{self, HASH_LEN, wipe};
use super::store::{MAX_USER, Record, SALT_LEN, Store};

/// Fewest characters of a client nonce.
pub const CLIENT_NONCE_MIN: usize = 8;
/// Most characters of a client nonce.
pub const CLIENT_NONCE_MAX: usize = 64;
/// Bytes of the server's part of the nonce (sent as twice as many hex
/// digits).
pub const SERVER_NONCE_LEN: usize = 16;

/// Hash budget `AUTH` is charged: four HMACs (fake salt, server nonce,
/// both signatures), each about two PBKDF2 iterations' work.
pub const AUTH_COST: u32 = 8;
/// Hash budget `PROOF` is charged: one SHA-256 and a comparison.
pub const PROOF_COST: u32 = 1;

/// The longest `CHALLENGE` line, without its LF.
const CHALLENGE_MAX: usize = "CHALLENGE ".len()
    + 2 * SALT_LEN
    + " 4294967295 ".len()
    + CLIENT_NONCE_MAX
    + 2 * SERVER_NONCE_LEN;

/// A user name as an exchange remembers it.
type UserName = heapless::String<MAX_USER>;

/// `ClientKey = HMAC(SaltedPassword, "Client Key")`.
pub fn client_key(salted_password: &[u8; HASH_LEN]) -> [u8; HASH_LEN] {
    hash::hmac_sha256(salted_password, &[b"Client Key"])
}

/// `StoredKey = SHA-256(ClientKey)`.
pub fn stored_key(client_key: &[u8; HASH_LEN]) -> [u8; HASH_LEN] {
    // As a slice: the same instantiation `hash::keyed` uses.
    Sha256::digest(&client_key[..]).into()
}

/// `ServerKey = HMAC(SaltedPassword, "Server Key")`.
pub fn server_key(salted_password: &[u8; HASH_LEN]) -> [u8; HASH_LEN] {
    hash::hmac_sha256(salted_password, &[b"Server Key"])
}

/// `StoredKey` straight from `SaltedPassword`: how the plaintext forms
/// check a password against a record.
pub fn stored_key_of(salted_password: &[u8; HASH_LEN]) -> [u8; HASH_LEN] {
    let mut ck = client_key(salted_password);
    let sk = stored_key(&ck);
    wipe(&mut ck);
    sk
}

/// Whether `client_nonce` is acceptable: [`CLIENT_NONCE_MIN`] to
/// [`CLIENT_NONCE_MAX`] printable ASCII characters.
pub fn valid_client_nonce(client_nonce: &str) -> bool {
    (CLIENT_NONCE_MIN..=CLIENT_NONCE_MAX).contains(&client_nonce.len())
        && client_nonce.bytes().all(|b| b.is_ascii_graphic())
}

/// The node-wide part of challenge-response: where server nonces and fake
/// salts come from. One per node, lent to sessions through
/// [`crate::session::Shared`].
pub struct Challenges {
    /// Keys the fake salts of unknown users: stable across boots, derived
    /// from the whole store.
    fake_key: [u8; HASH_LEN],
    /// Keys the server nonces: new every boot (from the random seed).
    nonce_key: [u8; HASH_LEN],
    /// Challenges issued since boot: no nonce repeats within a boot.
    counter: u64,
}

impl Challenges {
    /// Derives the keys from the node's random seed and its credential
    /// store (see the module documentation).
    #[inline(never)] // runs once, at boot: keep it out of the main loop
    pub fn new(random_seed: u64, store: &Store<'_>) -> Self {
        // An HMAC chain over the records rather than one streamed SHA-256:
        // the same secrecy, and the firmware reuses the one HMAC function
        // instead of carrying a second copy of the digest plumbing.
        let mut fake_key = hash::hmac_sha256(b"smoltalk scram fake-salt key", &[]);
        for r in store.records() {
            fake_key = hash::hmac_sha256(
                &fake_key,
                &[
                    r.user.as_bytes(),
                    &[0],
                    &r.iterations.to_be_bytes(),
                    &r.salt,
                    &r.stored_key,
                    &r.server_key,
                ],
            );
        }
        let nonce_key = hash::hmac_sha256(&fake_key, &[b"nonce key", &random_seed.to_be_bytes()]);
        Challenges {
            fake_key,
            nonce_key,
            counter: 0,
        }
    }

    /// The salt an unknown `user` is shown: the same every time.
    pub fn fake_salt(&self, user: &str) -> [u8; SALT_LEN] {
        let mac = hash::hmac_sha256(&self.fake_key, &[b"\0fake salt", user.as_bytes()]);
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(&mac[..SALT_LEN]);
        salt
    }

    /// A server nonce never issued before in this boot.
    pub fn server_nonce(&mut self, now: Instant, peer: IpAddress) -> [u8; SERVER_NONCE_LEN] {
        self.counter = self.counter.wrapping_add(1);
        let mac = hash::hmac_sha256(
            &self.nonce_key,
            &[
                &self.counter.to_be_bytes(),
                &now.total_micros().to_be_bytes(),
                &address_bytes(peer),
            ],
        );
        let mut nonce = [0u8; SERVER_NONCE_LEN];
        nonce.copy_from_slice(&mac[..SERVER_NONCE_LEN]);
        nonce
    }
}

/// `peer` as 16 bytes (an IPv4 address in the first four), for hashing.
// IPv4 is the only address family the core is built with, so the pattern
// cannot fail today; it would start to with IPv6.
#[allow(irrefutable_let_patterns)]
fn address_bytes(peer: IpAddress) -> [u8; 16] {
    let mut bytes = [0u8; 16];
    if let IpAddress::Ipv4(a) = peer {
        bytes[..4].copy_from_slice(&a.octets());
    }
    bytes
}

impl Drop for Challenges {
    fn drop(&mut self) {
        wipe(&mut self.fake_key);
        wipe(&mut self.nonce_key);
    }
}

/// One exchange between `CHALLENGE` and `PROOF`.
///
/// Both signatures are computed when the challenge is made, so the exchange
/// keeps 3 keys' worth of state rather than the parts of `AuthMessage`, and
/// `PROOF` costs one SHA-256.
pub struct Challenge {
    /// Who is logging in: named in the `OK` reply.
    user: UserName,
    /// Whether the user exists: a fake challenge never succeeds.
    known: bool,
    /// The record's `StoredKey` (zeros for an unknown user).
    stored_key: [u8; HASH_LEN],
    /// `HMAC(StoredKey, AuthMessage)`: with the client's proof, it gives
    /// the client key, so it is wiped on drop.
    client_signature: [u8; HASH_LEN],
    /// `HMAC(ServerKey, AuthMessage)`: sent with `OK`.
    server_signature: [u8; HASH_LEN],
}

impl Challenge {
    /// Starts an exchange for `user` (at most [`MAX_USER`] bytes) and
    /// `client_nonce` (checked with [`valid_client_nonce`]): writes the
    /// `CHALLENGE` line, with its LF, into `out`. Does the same work whether
    /// or not the user exists.
    pub fn start(
        store: &Store<'_>,
        challenges: &mut Challenges,
        user: &str,
        client_nonce: &str,
        now: Instant,
        peer: IpAddress,
        out: &mut impl core::fmt::Write,
    ) -> Challenge {
        let fake_salt = challenges.fake_salt(user);
        let dummy = store.dummy();
        let mut name = UserName::new();
        let fits = name.push_str(user).is_ok();
        let (record, known): (Record<'_>, bool) = match store.find(user) {
            Some(r) if fits => (*r, true),
            _ => (
                Record {
                    salt: fake_salt,
                    ..dummy
                },
                false,
            ),
        };
        let server_nonce = challenges.server_nonce(now, peer);

        // Bytes, not a `String`: hex and decimal digits by hand keep the
        // firmware free of per-character formatting code.
        let mut line = heapless::Vec::<u8, CHALLENGE_MAX>::new();
        let _ = line.extend_from_slice(b"CHALLENGE ");
        push_hex(&mut line, &record.salt);
        let _ = line.push(b' ');
        push_decimal(&mut line, record.iterations);
        let _ = line.push(b' ');
        let _ = line.extend_from_slice(client_nonce.as_bytes());
        push_hex(&mut line, &server_nonce);

        let auth_message: [&[u8]; 6] = [
            b"AUTH ",
            user.as_bytes(),
            b" ",
            client_nonce.as_bytes(),
            b"\n",
            &line,
        ];
        // Hex, digits and the nonce's printable ASCII: always UTF-8.
        let _ = out.write_str(core::str::from_utf8(&line).unwrap_or(""));
        let _ = out.write_str("\n");
        Challenge {
            user: name,
            known,
            stored_key: record.stored_key,
            client_signature: hash::hmac_sha256(&record.stored_key, &auth_message),
            server_signature: hash::hmac_sha256(&record.server_key, &auth_message),
        }
    }

    /// Whether `proof` proves the password: `SHA-256(proof XOR
    /// ClientSignature) == StoredKey` and the user exists, in constant time.
    pub fn verify(&self, proof: &[u8; HASH_LEN]) -> Choice {
        let mut client_key = [0u8; HASH_LEN];
        for (k, (p, s)) in client_key
            .iter_mut()
            .zip(proof.iter().zip(self.client_signature.iter()))
        {
            *k = p ^ s;
        }
        let ok = stored_key(&client_key).ct_eq(&self.stored_key) & Choice::from(self.known as u8);
        wipe(&mut client_key);
        ok
    }

    /// The user this exchange is for.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Moves the user name out (the exchange is over).
    pub(crate) fn take_user(&mut self) -> UserName {
        core::mem::take(&mut self.user)
    }

    /// Writes `OK <user> <server-signature-hex>` with its LF.
    pub fn write_ok(&self, out: &mut impl core::fmt::Write) {
        let mut sig = heapless::Vec::<u8, { 2 * HASH_LEN }>::new();
        push_hex(&mut sig, &self.server_signature);
        let _ = out.write_str("OK ");
        let _ = out.write_str(&self.user);
        let _ = out.write_str(" ");
        let _ = out.write_str(core::str::from_utf8(&sig).unwrap_or(""));
        let _ = out.write_str("\n");
    }
}

impl Drop for Challenge {
    fn drop(&mut self) {
        wipe(&mut self.client_signature);
        wipe(&mut self.stored_key);
    }
}

/// Appends `bytes` as lower-case hex. The callers size `v` for it.
fn push_hex<const N: usize>(v: &mut heapless::Vec<u8, N>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        let _ = v.push(DIGITS[usize::from(b >> 4)]);
        let _ = v.push(DIGITS[usize::from(b & 15)]);
    }
}

/// Appends `n` in decimal, without leading zeros.
fn push_decimal<const N: usize>(v: &mut heapless::Vec<u8, N>, mut n: u32) {
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let _ = v.extend_from_slice(&digits[i..]);
}

/// Decodes exactly 2 * N hex digits (either case).
pub fn parse_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let s = s.as_bytes();
    if s.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        *o = (hi << 4 | lo) as u8;
    }
    Some(out)
}

#[cfg(test)]
pub(crate) mod tests;
