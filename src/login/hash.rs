//! PBKDF2-HMAC-SHA256 (RFC 8018, 32-byte output) computed in slices.
//!
//! A password check costs thousands of HMAC iterations. Done in one go on a
//! small board it would stall every other service for a noticeable time, so
//! the work lives in a resumable [`Pbkdf2Job`]: the login session advances it
//! by a few iterations per poll (the node-wide `hash_budget`) and gives the
//! verdict once it is done.
//!
//! Only one output block is ever needed (SHA-256 gives 32 bytes, and
//! SCRAM's `SaltedPassword` is 32 bytes), so the job holds exactly one `U` and
//! one `T` block. [`hmac_sha256`] serves the rest of the login's key
//! schedule (see [`super::scram`]).

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

/// Length of a derived key (and of a stored password hash), in bytes.
pub const HASH_LEN: usize = 32;

/// SHA-256 block size: HMAC keys are padded or hashed to this length.
const BLOCK_LEN: usize = 64;

/// HMAC-SHA256, the PRF of PBKDF2 and of the SCRAM key schedule.
pub(crate) type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 keyed with `key`, done by hand (RFC 2104: hash keys longer
/// than a block, zero-pad the rest) so that keying is infallible, any key
/// length works, and the padded key is a local array we can wipe. One
/// function for every HMAC in the login service keeps the firmware small.
pub(crate) fn keyed(key: &[u8]) -> HmacSha256 {
    let mut block = [0u8; BLOCK_LEN];
    if key.len() > BLOCK_LEN {
        let digest = Sha256::digest(key);
        block[..HASH_LEN].copy_from_slice(&digest);
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mac = <HmacSha256 as KeyInit>::new(&block.into());
    wipe(&mut block);
    mac
}

/// HMAC-SHA256(`key`, the concatenation of `parts`).
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; HASH_LEN] {
    finish(keyed(key), parts)
}

/// Feeds `parts` to a keyed HMAC and finalises it: the one copy of that
/// code, shared by PBKDF2's iterations and every other HMAC.
#[inline(never)]
fn finish(mut mac: HmacSha256, parts: &[&[u8]]) -> [u8; HASH_LEN] {
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// One PBKDF2-HMAC-SHA256 computation that can be advanced a slice at a time.
///
/// Holds the HMAC state keyed with the password (cloned for every iteration,
/// which saves re-hashing the key each time), the last `U` block, the running
/// XOR `T` and the number of iterations still to do. The password itself is
/// not kept. `U` and `T` are overwritten when the job is dropped, and the
/// keyed HMAC state is replaced by one keyed with zeros.
pub struct Pbkdf2Job {
    /// HMAC-SHA256 keyed with the password.
    prf: HmacSha256,
    /// `U_i`, the previous iteration's output.
    u: [u8; HASH_LEN],
    /// `T = U_1 ^ U_2 ^ ... ^ U_i`: the derived key once `remaining` is 0.
    t: [u8; HASH_LEN],
    /// Iterations still to do.
    remaining: u32,
}

impl Pbkdf2Job {
    /// Starts deriving a key from `password` and `salt`.
    ///
    /// This already does the first iteration (`U_1 = PRF(P, S || 1)`), so
    /// the salt need not be stored: it costs one iteration plus keying the
    /// HMAC. `iterations` of 0 is treated as 1, the minimum PBKDF2 allows.
    pub fn new(password: &[u8], salt: &[u8], iterations: u32) -> Self {
        let prf = keyed(password);
        let u = finish(prf.clone(), &[salt, &1u32.to_be_bytes()]);
        Pbkdf2Job {
            prf,
            u,
            t: u,
            remaining: iterations.max(1) - 1,
        }
    }

    /// Does at most `max_iterations` more iterations and returns how many it
    /// did (0 once the job is done).
    pub fn step(&mut self, max_iterations: u32) -> u32 {
        let n = max_iterations.min(self.remaining);
        for _ in 0..n {
            self.u = finish(self.prf.clone(), &[&self.u]);
            for (t, u) in self.t.iter_mut().zip(self.u.iter()) {
                *t ^= *u;
            }
        }
        self.remaining -= n;
        n
    }

    /// Iterations still to do.
    pub fn remaining(&self) -> u32 {
        self.remaining
    }

    /// Whether the derived key is ready.
    pub fn is_done(&self) -> bool {
        self.remaining == 0
    }

    /// The derived key, once the job is done.
    pub fn result(&self) -> Option<&[u8; HASH_LEN]> {
        if self.is_done() { Some(&self.t) } else { None }
    }

    /// Whether the job is done and its key equals `expected`, compared in
    /// constant time so that the reply time does not tell how many leading
    /// bytes matched.
    pub fn matches(&self, expected: &[u8; HASH_LEN]) -> Choice {
        Choice::from(self.is_done() as u8) & self.t.ct_eq(expected)
    }
}

impl Drop for Pbkdf2Job {
    /// Overwrites the secrets: `T` is the password hash, `U` and the keyed
    /// HMAC state are steps towards it.
    fn drop(&mut self) {
        wipe(&mut self.u);
        wipe(&mut self.t);
        self.prf = <HmacSha256 as KeyInit>::new(&[0u8; BLOCK_LEN].into());
        core::hint::black_box(&self.prf);
    }
}

/// PBKDF2-HMAC-SHA256 in one call, for tools and tests (it blocks for the
/// whole computation; sessions use [`Pbkdf2Job`]).
pub fn pbkdf2_sha256(password: &[u8], salt: &[u8], iterations: u32) -> [u8; HASH_LEN] {
    let mut job = Pbkdf2Job::new(password, salt, iterations);
    job.step(u32::MAX);
    job.t
}

/// Overwrites `bytes` with zeros in a way the optimiser must not drop as a
/// dead store (the crate forbids `unsafe`, so no volatile writes: the zeros
/// are made observable through `black_box` instead). Never inlined: it runs
/// at a dozen places, and one copy keeps the firmware small.
#[inline(never)]
pub fn wipe(bytes: &mut [u8]) {
    for b in bytes.iter_mut() {
        *b = 0;
    }
    core::hint::black_box(&*bytes);
    core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(password: &[u8], salt: &[u8], iterations: u32) -> [u8; HASH_LEN] {
        let mut out = [0u8; HASH_LEN];
        pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
        out
    }

    const LONG_PASSWORD: &[u8] = b"a password that is much longer than one sixty-four byte \
                                   SHA-256 block, so HMAC hashes it first";

    const CASES: &[(&[u8], &[u8], u32)] = &[
        (b"password", b"salt", 1),
        (b"password", b"salt", 2),
        (b"password", b"salt", 4096),
        (b"", b"", 3),
        ("123".as_bytes(), b"0123456789abcdef", 100),
        ("密码".as_bytes(), b"\x00\x01\x02", 77),
        (LONG_PASSWORD, b"salt", 10),
        (&[0x41; 64], b"exactly one block of key", 5),
    ];

    #[test]
    fn matches_the_pbkdf2_crate_in_one_go() {
        for &(p, s, c) in CASES {
            assert_eq!(
                pbkdf2_sha256(p, s, c),
                reference(p, s, c),
                "{:?} {:?} {}",
                p,
                s,
                c
            );
        }
    }

    #[test]
    fn matches_the_pbkdf2_crate_in_slices() {
        for &(p, s, c) in CASES {
            let expected = reference(p, s, c);
            for slice in [1u32, 2, 3, 7, 16, 1000] {
                let mut job = Pbkdf2Job::new(p, s, c);
                let mut total = 1; // `new` does the first iteration
                let mut steps = 0;
                while !job.is_done() {
                    assert!(job.result().is_none());
                    assert!(!bool::from(job.matches(&expected)));
                    let used = job.step(slice);
                    assert!(used >= 1 && used <= slice);
                    total += used;
                    steps += 1;
                    assert!(steps <= c, "no progress");
                }
                assert_eq!(total, c.max(1));
                assert_eq!(job.step(slice), 0);
                assert_eq!(job.result(), Some(&expected));
                assert!(bool::from(job.matches(&expected)));
            }
        }
    }

    #[test]
    fn rfc7914_test_vector() {
        // RFC 7914 section 11: PBKDF2-HMAC-SHA256 (P="passwd", S="salt", c=1).
        let dk = pbkdf2_sha256(b"passwd", b"salt", 1);
        assert_eq!(
            dk[..16],
            [
                0x55, 0xac, 0x04, 0x6e, 0x56, 0xe3, 0x08, 0x9f, 0xec, 0x16, 0x91, 0xc2, 0x25, 0x44,
                0xb6, 0x05
            ]
        );
    }

    #[test]
    fn zero_iterations_is_one_and_step_zero_does_nothing() {
        let job = Pbkdf2Job::new(b"p", b"s", 0);
        assert!(job.is_done());
        assert_eq!(job.result(), Some(&reference(b"p", b"s", 1)));
        let mut job = Pbkdf2Job::new(b"p", b"s", 5);
        assert_eq!(job.step(0), 0);
        assert_eq!(job.remaining(), 4);
    }

    #[test]
    fn wrong_key_does_not_match() {
        let mut job = Pbkdf2Job::new(b"p", b"s", 3);
        job.step(10);
        let mut other = reference(b"p", b"s", 3);
        other[31] ^= 1;
        assert!(!bool::from(job.matches(&other)));
    }

    #[test]
    fn wipe_zeroes() {
        let mut b = [7u8; 9];
        wipe(&mut b);
        assert_eq!(b, [0; 9]);
    }
}
