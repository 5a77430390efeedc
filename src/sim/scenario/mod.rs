//! Deterministic network simulation: one seed, one run, one verdict.
//!
//! A seed picks a [`Scenario`] ([`Scenario::from_seed`]): the device's
//! configuration, the faults of every link (none on some seeds), and 3 to 12
//! clients, each doing 1 to 4 [`Job`]s in turn — TCP echo streams, logins in
//! every form, chats that end with `byebye`, hotline and UDP echo calls, and
//! now and then a client that resets a session or vanishes mid-session. All
//! clients run at once, as non-blocking state machines over one
//! [`World`], on simulated time, in one thread: the same seed replays the
//! same run, frame for frame.
//!
//! Every run checks what the services promise:
//! - each TCP echo stream comes back byte-exact, each login gets exactly one
//!   correct verdict, each chat message exactly one reply (`tcp`: every
//!   byte the device sends must be the next expected one, and the device
//!   must close exactly after the last);
//! - each UDP datagram that reaches the device gets exactly one reply
//!   (`ledger`: counted at the switch, per caller);
//! - once every client has left and every timeout has passed, the device
//!   holds no session, no hotline caller and no lockout entry;
//! - the device never panics: a panic is caught and reported as the seed's
//!   failure, not as a crash of the runner.
//!
//! # Layout
//! - `plan`: from a seed to a scenario.
//! - `jobs`: what each job sends and the exact answers it must get.
//! - `tcp`, `udp`: the client state machines.
//! - `ledger`: the UDP accounting at the switch.

mod jobs;
mod ledger;
mod plan;
mod tcp;
mod udp;

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::rc::Rc;

use smoltcp::time::{Duration, Instant};

use jobs::Task;
pub use jobs::{Ending, Job, LoginForm, Say, TOPICS, USERS};
use ledger::Ledger;
pub use plan::random_faults;
pub use tcp::Step;

use crate::config::Config;
use crate::net::{HostMemory, Usage};
use crate::sim::faults::{FaultCounts, Faults};
use crate::sim::rng::Rng;
use crate::sim::world::{ClientId, World};

/// Everything about one run, fixed before it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// The seed: of the plan, of the switch's dice, of every node.
    pub seed: u64,
    /// The device's configuration.
    pub config: Config,
    /// Faults of the switch, which every frame crosses.
    pub switch: Faults,
    /// Faults of the device's own cable.
    pub device: Faults,
    /// The clients, each on its own cable.
    pub clients: Vec<ClientPlan>,
    /// Simulated time the jobs may take before the run fails.
    pub deadline: Duration,
}

/// One client node.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientPlan {
    /// Faults of its cable.
    pub faults: Faults,
    /// When it starts its first job.
    pub start: Duration,
    /// What it does, one job after the other.
    pub jobs: Vec<Job>,
}

/// What a run did; equal for two runs of the same scenario.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Outcome {
    /// Why the run failed, if it did.
    pub failure: Option<String>,
    /// Frames sent on the switch.
    pub frames: u64,
    /// Faults injected, by kind.
    pub faults: FaultCounts,
    /// Simulated time when the last job finished.
    pub jobs_done_at: Duration,
    /// Simulated time at the end, after the timeouts ran out.
    pub sim_time: Duration,
    /// World steps taken.
    pub steps: u64,
    /// Jobs completed.
    pub jobs: u64,
    /// TCP connections the device refused because its pool was full (the
    /// client dialled again).
    pub refused: u64,
    /// UDP datagrams whose reply never came back (lost on the way there or
    /// back; the ledger proves the device answered every one it got).
    pub unanswered: u64,
    /// Frames the device dropped for a wrong TCP or UDP checksum.
    pub bad_checksums: u64,
}

/// A run's outcome and its cost.
#[derive(Debug, Clone)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// What happened.
    pub outcome: Outcome,
    /// Wall-clock time the run took (the only thing that differs between
    /// two runs of a seed).
    pub wall: std::time::Duration,
}

impl Report {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.outcome.failure.is_none()
    }
}

/// Runs the scenario of `seed`.
pub fn run(seed: u64) -> Report {
    Scenario::from_seed(seed).run()
}

impl Scenario {
    /// Runs the scenario; a panic anywhere in it is caught and becomes the
    /// failure.
    pub fn run(&self) -> Report {
        self.run_traced(None)
    }

    /// Runs the scenario and writes every frame sent to a pcap file at
    /// `capture` (as sent, before the faults: what each node put on its
    /// cable), for replaying a failing seed in Wireshark.
    pub fn run_captured(&self, capture: &Path) -> Report {
        self.run_traced(Some(capture))
    }

    fn run_traced(&self, capture: Option<&Path>) -> Report {
        let started = std::time::Instant::now();
        let outcome = match catch_unwind(AssertUnwindSafe(|| self.execute(capture))) {
            Ok(outcome) => outcome,
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "(not a string)".into());
                Outcome {
                    failure: Some(format!("panicked: {msg}")),
                    ..Outcome::default()
                }
            }
        };
        Report {
            seed: self.seed,
            outcome,
            wall: started.elapsed(),
        }
    }

    /// The same workload with `faults` on every client's cable and none
    /// elsewhere: for a test aimed at one kind of fault.
    pub fn with_link_faults(mut self, faults: Faults) -> Scenario {
        self.switch = Faults::NONE;
        self.device = Faults::NONE;
        for c in &mut self.clients {
            c.faults = faults;
        }
        self
    }

    /// Simulated time after the last job for every timeout to run out: an
    /// idle session told off, its close unanswered until the peer timeout,
    /// a silent hotline caller, a lockout window.
    pub fn run_out(&self) -> Duration {
        let l = &self.config.limits;
        let longest = l
            .idle_timeout
            .max(l.hotline_idle)
            .max(l.login_window + l.login_lockout);
        longest + l.peer_timeout + Duration::from_secs(10)
    }

    fn execute(&self, capture: Option<&Path>) -> Outcome {
        let mut out = Outcome::default();
        let mut memory = HostMemory::new(&self.config);
        let mut w = match World::new(&self.config, &mut memory, self.seed) {
            Ok(w) => w,
            Err(e) => {
                out.failure = Some(format!("the device did not start: {e}"));
                return out;
            }
        };
        if let Some(path) = capture
            && let Err(e) = w.hub().capture(path)
        {
            out.failure = Some(format!("cannot write {}: {e}", path.display()));
            return out;
        }
        w.hub().set_faults(self.switch);
        w.set_server_faults(self.device);
        let ledger = Rc::new(RefCell::new(Ledger::default()));
        let p = &self.config.ports;
        let services = [p.udp_echo[0], p.udp_echo[1], p.hotline];
        w.hub().set_tap(Ledger::tap(ledger.clone(), services));
        let mut dice = Rng::new(self.seed).fork(0x00c1_1e47);
        let mut clients: Vec<Runner> = (self.clients.iter().enumerate())
            .map(|(i, plan)| {
                let id = w.add_client();
                w.set_client_faults(id, plan.faults);
                Runner::new(i, id, plan, dice.fork(i as u64))
            })
            .collect();

        out.failure = self.drive(&mut w, &mut clients).err();
        out.jobs_done_at = w.now() - Instant::ZERO;
        for c in &clients {
            out.jobs += c.done as u64;
            out.refused += c.refused;
            out.unanswered += c.unanswered;
        }
        if out.failure.is_none() {
            w.run_for(self.run_out());
            out.failure = leaks(w.server().usage(), &ledger.borrow(), self.run_out());
        }
        let stats = w.hub().stats();
        out.frames = stats.frames;
        out.faults = stats.faults;
        out.bad_checksums = u64::from(w.server_bad_checksums());
        out.sim_time = w.now() - Instant::ZERO;
        out.steps = w.steps();
        if let Err(e) = w.hub().flush_capture() {
            out.failure.get_or_insert(format!("capture: {e}"));
        }
        out
    }

    /// Steps the world and every client until all jobs are done.
    fn drive(&self, w: &mut World<'_>, clients: &mut [Runner]) -> Result<(), String> {
        let deadline = Instant::ZERO + self.deadline;
        loop {
            let mut wake = deadline;
            let mut busy = false;
            for c in clients.iter_mut() {
                c.drive(w, &self.config)?;
                if let Some(at) = c.wake_at() {
                    busy = true;
                    wake = wake.min(at);
                }
            }
            if !busy {
                return Ok(());
            }
            if w.now() >= deadline {
                let stuck: Vec<String> = clients.iter().filter_map(Runner::stuck).collect();
                return Err(format!(
                    "jobs unfinished after {}: {}",
                    self.deadline,
                    stuck.join("; ")
                ));
            }
            w.step_until(wake);
        }
    }
}

/// What the device still holds after everyone left, and UDP calls whose
/// replies do not match their arrivals.
fn leaks(usage: Usage, ledger: &Ledger, after: Duration) -> Option<String> {
    let mut problems = ledger.mismatches();
    if usage != Usage::default() {
        problems.push(format!(
            "{after} after the last client left, the device still holds {usage:?}"
        ));
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

/// One client node working through its jobs.
struct Runner {
    index: usize,
    id: ClientId,
    jobs: Vec<Job>,
    start: Instant,
    /// Jobs finished.
    done: usize,
    task: Option<Task>,
    rng: Rng,
    refused: u64,
    unanswered: u64,
}

impl Runner {
    fn new(index: usize, id: ClientId, plan: &ClientPlan, rng: Rng) -> Self {
        Runner {
            index,
            id,
            jobs: plan.jobs.clone(),
            start: Instant::ZERO + plan.start,
            done: 0,
            task: None,
            rng,
            refused: 0,
            unanswered: 0,
        }
    }

    /// When this client must be driven again even if nothing arrives;
    /// `None` once all its jobs are done.
    fn wake_at(&self) -> Option<Instant> {
        if self.done == self.jobs.len() {
            return None;
        }
        let at = match &self.task {
            None => Some(self.start),
            Some(Task::Tcp(t)) => t.wake_at(),
            Some(Task::Udp(t)) => t.wake_at(),
        };
        // A client with nothing scheduled still waits for frames.
        Some(at.unwrap_or(Instant::from_micros(i64::MAX)))
    }

    fn drive(&mut self, w: &mut World<'_>, config: &Config) -> Result<(), String> {
        while self.done < self.jobs.len() && w.now() >= self.start {
            let job = &self.jobs[self.done];
            let task = match &mut self.task {
                Some(task) => task,
                None => {
                    let tag = format!("#{}.{}", self.index, self.done);
                    let rng = self.rng.fork(self.done as u64);
                    self.task.insert(job.task(&config.ports, &tag, rng))
                }
            };
            let (result, finished) = match task {
                Task::Tcp(t) => (t.drive(w, self.id), t.is_done()),
                Task::Udp(t) => (t.drive(w, self.id), t.is_done()),
            };
            result.map_err(|e| {
                format!(
                    "client {} job {} {job:?}, at {}: {e}",
                    self.index,
                    self.done,
                    w.now()
                )
            })?;
            if !finished {
                return Ok(());
            }
            match self.task.take() {
                Some(Task::Tcp(t)) => self.refused += t.refused,
                Some(Task::Udp(t)) => self.unanswered += t.unanswered,
                None => {}
            }
            if let Job::Vanish { .. } = job {
                w.unplug(self.id);
            }
            self.done += 1;
        }
        Ok(())
    }

    /// What this client was doing, if it had not finished.
    fn stuck(&self) -> Option<String> {
        let job = self.jobs.get(self.done)?;
        let progress = match &self.task {
            Some(Task::Tcp(t)) => t.progress(),
            Some(Task::Udp(t)) => t.progress(),
            None => "not started".into(),
        };
        Some(format!(
            "client {} job {} {job:?}: {progress}",
            self.index, self.done
        ))
    }
}
