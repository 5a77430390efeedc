//! The login service (tutorial exercise 1), TCP port 8083.
//!
//! CONTRACT (for the implementer; replace this paragraph with real docs):
//! see `/work/main/notes/login-contract.md`.

pub mod dict;
pub mod hash;
pub mod lockout;
pub mod request;
pub mod session;
pub mod store;

pub use lockout::Lockout;
pub use session::LoginSession;
pub use store::{Record, Store};
