//! The login service (tutorial exercise 1), TCP port 8083.
//!
//! The tutorial's login server `eval()`s what the client sends, keeps
//! passwords in plain text and answers once per stored user. This one reads
//! the same request as data, keeps only keys derived from salted PBKDF2
//! hashes (SCRAM's `StoredKey` and `ServerKey`), and gives one
//! verdict per request, so that the unmodified tutorial client still works.
//! It also speaks a small line protocol (`LOGIN user password`, `WHOAMI`,
//! `LOGOUT`, `QUIT`, `HELP`) for humans with `nc`, and a challenge-response
//! login (`AUTH`, `CHALLENGE`, `PROOF`: SCRAM-SHA-256 in line syntax) that
//! keeps the password off the wire. The dict form stays plaintext: the
//! tutorial's client cannot do anything else.
//!
//! - [`dict`]: the parser for the tutorial's `{'user': 'password'}` request.
//! - [`request`]: one complete request of either form, parsed.
//! - [`hash`]: PBKDF2-HMAC-SHA256 in slices, so a check never stalls the node.
//! - [`scram`]: the challenge-response exchange, its key schedule, server
//!   nonces and the fake challenges of unknown users.
//! - [`store`]: the credential records, kept as SCRAM keys (and, with
//!   `std`, the users file).
//! - [`lockout`]: per-address failure counting, shared by all sessions.
//! - [`session`]: [`LoginSession`], the [`crate::session::Protocol`] that
//!   ties them together.

pub mod dict;
pub mod hash;
pub mod lockout;
pub mod request;
pub mod scram;
pub mod session;
pub mod store;

pub use lockout::Lockout;
pub use scram::Challenges;
pub use session::LoginSession;
pub use store::{DEMO, DEMO_RECORDS, Record, Store};
