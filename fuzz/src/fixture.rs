//! What the sans-IO targets lend a session: a credential store that is
//! cheap to hash against, a lockout table, limits and a responder.

use std::sync::OnceLock;

use smoltalk::chat::responder::Reply;
use smoltalk::chat::{Answer, AutoResponder, Responder};
use smoltalk::config::Limits;
use smoltalk::login::store::{OwnedRecord, SALT_LEN};
use smoltalk::login::{Challenges, Lockout, Record, Store};
use smoltalk::session::{SessionId, Shared};
use smoltcp::wire::{IpAddress, Ipv4Address};

/// The tutorial's users and passwords, as in the demo store.
pub const USERS: [(&str, &str); 3] = [("张三", "123"), ("赵四", "345"), ("王八", "567")];

/// PBKDF2 iterations of the fuzzing store. The demo's 4096 would spend
/// most of every run in SHA-256; a handful still takes several polls at a
/// small hash budget, so the sliced path is exercised.
pub const ITERATIONS: u32 = 5;

/// The demo users, hashed with [`ITERATIONS`], built once per process.
pub fn store() -> &'static Store<'static> {
    // Statics, not leaked boxes: LeakSanitizer sees what they hold.
    static OWNED: OnceLock<Vec<OwnedRecord>> = OnceLock::new();
    static RECORDS: OnceLock<Vec<Record<'static>>> = OnceLock::new();
    static STORE: OnceLock<Store<'static>> = OnceLock::new();
    STORE.get_or_init(|| {
        let owned = OWNED.get_or_init(|| {
            USERS
                .iter()
                .enumerate()
                .map(|(i, (user, password))| {
                    OwnedRecord::from_password(user, password, ITERATIONS, [i as u8 + 1; SALT_LEN])
                        .expect("the demo users are valid")
                })
                .collect()
        });
        let records = RECORDS.get_or_init(|| owned.iter().map(OwnedRecord::as_record).collect());
        Store::new(records)
    })
}

/// A responder that leaves every answer to an operator, as
/// `host-sim serve --operator` does.
#[derive(Debug, Default)]
pub struct Deferring;

impl Responder for Deferring {
    fn greeting(&mut self, _: SessionId, out: &mut Reply) {
        let _ = out.push_str("Welcome (operator)");
    }

    fn answer(&mut self, _: SessionId, _: &str, _: Option<&str>, _: &mut Reply) -> Answer {
        Answer::Later
    }
}

/// The node-wide state a session borrows.
pub struct Services {
    /// The default limits.
    pub limits: Limits,
    /// Shared by every connection of a run, as on a node.
    pub lockout: Lockout,
    /// The login's challenge-response state, node-wide too.
    pub challenges: Challenges,
    /// The board's responder.
    pub auto: AutoResponder,
    /// The operator's.
    pub deferring: Deferring,
    /// Whether the operator answers.
    pub operator: bool,
}

impl Default for Services {
    fn default() -> Self {
        Services {
            limits: Limits::DEFAULT,
            lockout: Lockout::new(),
            challenges: Challenges::new(1, store()),
            auto: AutoResponder::new(),
            deferring: Deferring,
            operator: false,
        }
    }
}

impl Services {
    /// The context for one call, with `hash_budget` iterations to spend.
    pub fn shared(&mut self, hash_budget: u32) -> Shared<'_, 'static> {
        let responder: &mut dyn Responder = if self.operator {
            &mut self.deferring
        } else {
            &mut self.auto
        };
        Shared {
            limits: &self.limits,
            store: store(),
            lockout: &mut self.lockout,
            challenges: &mut self.challenges,
            hash_budget,
            responder,
        }
    }
}

/// Client addresses: more than the lockout table holds, so that it fills.
pub fn client_ip(n: u8) -> IpAddress {
    IpAddress::Ipv4(Ipv4Address::new(192, 168, 69, 100 + n % 24))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_store_checks_passwords() {
        let s = store();
        assert!(s.find("张三").unwrap().verify(b"123"));
        assert!(!s.find("张三").unwrap().verify(b"124"));
        assert_eq!(s.dummy().iterations, ITERATIONS);
    }
}
