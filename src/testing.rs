//! Test fixtures shared by the protocol unit tests: a [`Shared`] context
//! with the demo credentials, a fresh lockout table and a responder.

use smoltcp::time::Instant;
use smoltcp::wire::{IpAddress, Ipv4Address};

use crate::chat::{Answer, AutoResponder, Responder, responder::Reply};
use crate::config::Limits;
use crate::login::{Challenges, Lockout, Store};
use crate::session::{SessionId, Shared};

/// `Instant` from milliseconds.
pub fn t(ms: i64) -> Instant {
    Instant::from_millis(ms)
}

/// A responder that defers every answer, like a human operator.
#[derive(Default)]
pub struct Deferring;

impl Responder for Deferring {
    fn greeting(&mut self, _: SessionId, out: &mut Reply) {
        let _ = out.push_str("Welcome (operator)");
    }
    fn answer(&mut self, _: SessionId, _: &str, _: Option<&str>, _: &mut Reply) -> Answer {
        Answer::Later
    }
}

/// Everything a session borrows while it runs.
pub struct Fixture {
    pub limits: Limits,
    pub store: Store<'static>,
    pub lockout: Lockout,
    pub challenges: Challenges,
    pub auto: AutoResponder,
    pub deferring: Deferring,
    /// Answer through [`Deferring`] instead of the auto-responder.
    pub operator: bool,
    pub hash_budget: u32,
}

impl Fixture {
    pub fn new() -> Self {
        Fixture {
            limits: Limits::DEFAULT,
            store: crate::login::store::DEMO,
            lockout: Lockout::new(),
            challenges: Challenges::new(1, &crate::login::store::DEMO),
            auto: AutoResponder::new(),
            deferring: Deferring,
            operator: false,
            hash_budget: u32::MAX,
        }
    }

    pub fn shared(&mut self) -> Shared<'_, 'static> {
        let responder: &mut dyn Responder = if self.operator {
            &mut self.deferring
        } else {
            &mut self.auto
        };
        Shared {
            limits: &self.limits,
            store: &self.store,
            lockout: &mut self.lockout,
            challenges: &mut self.challenges,
            hash_budget: self.hash_budget,
            responder,
        }
    }

    pub fn peer(&self) -> IpAddress {
        IpAddress::Ipv4(Ipv4Address::new(192, 0, 2, 7))
    }
}
