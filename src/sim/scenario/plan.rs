//! From a seed to a [`Scenario`]: the device's configuration, each link's
//! faults, and each client's jobs.
//!
//! The mix is chosen so that a correct device passes every seed: faults are
//! frequent but not hopeless (a few per cent of frames), the device's peer
//! timeout is raised far above any outage TCP can recover from, and UDP
//! traffic stays within what the device's UDP queues hold, so that every
//! failure is a finding, not noise.

use smoltcp::time::Duration;

use crate::config::Config;
use crate::sim::faults::{Faults, Flap};
use crate::sim::rng::Rng;
use crate::sim::scenario::jobs::{Ending, Job, LoginForm, Say, TOPICS, USERS};
use crate::sim::scenario::{ClientPlan, Scenario};

/// Share of seeds with no fault at all: the baseline every faulty seed is
/// compared against.
const CLEAN: f64 = 0.2;

/// The device's peer timeout in the simulation. smoltcp's retransmission
/// timer starts at one second and doubles up to a minute, so with a few per
/// cent loss plus an outage, a segment can go unanswered for tens of
/// seconds; 300 s takes ten losses in a row to reach. The 30 s default is
/// tested where it belongs (`tests/resilience.rs`).
const PEER_TIMEOUT: Duration = Duration::from_secs(300);

/// Longest any workload may take, in simulated time.
const DEADLINE: Duration = Duration::from_secs(1800);

/// Failed logins a client may make: one fewer than the lockout threshold,
/// so that every verdict is the password's, never a lockout.
const BAD_LOGINS: usize = 4;

impl Scenario {
    /// The scenario of `seed`: mixed faults (none on some seeds), and 3 to
    /// 12 clients doing 1 to 4 jobs each, all at once.
    pub fn from_seed(seed: u64) -> Scenario {
        let mut r = Rng::new(seed);
        let mut config = if r.chance(1.0 / 3.0) {
            Config::MEDIUM
        } else {
            Config::HOST
        };
        config.limits.peer_timeout = PEER_TIMEOUT;
        let clean = r.chance(CLEAN);
        let faults = |r: &mut Rng, p: f64| {
            if !clean && r.chance(p) {
                random_faults(r)
            } else {
                Faults::NONE
            }
        };
        let device = faults(&mut r, 0.3);
        let switch = faults(&mut r, 0.1);
        let mut budget = UdpBudget::for_config(&config);
        let clients = (0..r.range(3, 12))
            .map(|_| {
                let faults = faults(&mut r, 1.0);
                let start = r.duration(Duration::ZERO, Duration::from_millis(200));
                let mut bad = 0;
                let mut jobs: Vec<Job> = (0..r.range(1, 4))
                    .map(|_| random_job(&mut r, &config, &mut budget, &mut bad))
                    .collect();
                if r.chance(0.05) {
                    let port = *r.pick(&tcp_ports(&config));
                    jobs.push(Job::Vanish { port });
                }
                ClientPlan {
                    faults,
                    start,
                    jobs,
                }
            })
            .collect();
        Scenario {
            seed,
            config,
            switch,
            device,
            clients,
            deadline: DEADLINE,
        }
    }
}

/// Faults of one link: each kind on or off at random, at a random rate.
pub fn random_faults(r: &mut Rng) -> Faults {
    let rate = |r: &mut Rng, on: f64, max: f64| if r.chance(on) { r.unit() * max } else { 0.0 };
    let loss = rate(r, 0.5, 0.05);
    let duplicate = rate(r, 0.4, 0.05);
    let reorder = rate(r, 0.4, 0.1);
    let corrupt = rate(r, 0.4, 0.03);
    let ms = Duration::from_millis;
    let delay = if r.chance(0.5) {
        r.duration(ms(0), ms(20))
    } else {
        Duration::ZERO
    };
    let jitter = if r.chance(0.5) {
        r.duration(ms(0), delay.max(ms(2)))
    } else {
        Duration::ZERO
    };
    // Outages of up to a few seconds, with the link up at least five times
    // as long as it is down: TCP's backed-off retransmissions (up to a
    // minute apart) must still meet an up link before the peer timeout.
    let flap = r.chance(0.2).then(|| {
        let down = r.duration(ms(100), ms(2_000));
        Flap {
            up: r.duration((down * 5).max(ms(1_000)), ms(12_000)),
            down,
        }
    });
    Faults {
        loss,
        duplicate,
        reorder,
        corrupt,
        delay,
        jitter,
        flap,
    }
}

/// How many UDP callers a seed may have, per port, so that no burst can
/// overflow the device's UDP queues: each caller has at most one datagram
/// out (two, if the network duplicates it), and a queue of `udp_packets`
/// holds half as many callers. (A burst larger than a queue is dropped by
/// smoltcp, by design; that is not what this simulation looks for.)
struct UdpBudget {
    hotline: usize,
    echo: [usize; 2],
}

/// Largest UDP echo payload: small enough that two per caller fit the
/// smallest payload buffer, even around its wrap-around.
const UDP_ECHO_MAX: u64 = 256;

impl UdpBudget {
    fn for_config(c: &Config) -> Self {
        let per_port = (c.buffers.udp_packets / 2).min(6);
        UdpBudget {
            hotline: per_port,
            echo: [per_port.min(2); 2],
        }
    }
}

/// Every TCP service port.
fn tcp_ports(config: &Config) -> [u16; 4] {
    let p = &config.ports;
    [p.tcp_echo[0], p.tcp_echo[1], p.login, p.chat]
}

fn random_job(r: &mut Rng, config: &Config, udp: &mut UdpBudget, bad: &mut usize) -> Job {
    let ports = &config.ports;
    loop {
        let job = match r.below(100) {
            0..=2 => Job::Abort {
                port: *r.pick(&tcp_ports(config)),
            },
            3..=29 => {
                let len = match r.below(10) {
                    0..=2 => r.range(0, 64),
                    3..=5 => r.range(65, 4096),
                    _ => r.range(4097, 64 * 1024),
                };
                Job::Echo {
                    port: *r.pick(&ports.tcp_echo),
                    len: len as usize,
                    half_close: r.chance(0.3),
                }
            }
            30..=54 => {
                let (user, good) = *r.pick(USERS);
                let password = *r.pick(&[good, good, "wrong", "000"]);
                let user = if r.chance(0.1) { "nobody" } else { user };
                Job::Login {
                    form: *r.pick(&[
                        LoginForm::Line,
                        LoginForm::Session,
                        LoginForm::Pipelined,
                        LoginForm::Dict,
                        LoginForm::DictHalfClose,
                    ]),
                    user,
                    password,
                }
            }
            55..=79 => Job::Chat {
                says: (0..r.range(0, 4))
                    .map(|_| Say {
                        topic: r.below(TOPICS.len() as u64) as u8,
                        insult: r.chance(0.3),
                        long: r.chance(0.1),
                    })
                    .collect(),
                ending: *r.pick(&[Ending::Lf, Ending::CrLf, Ending::Tutorial]),
                pipelined: r.chance(0.3),
            },
            80..=91 if udp.hotline > 0 => {
                udp.hotline -= 1;
                Job::Hotline {
                    says: (0..r.range(1, 5))
                        .map(|_| r.below(TOPICS.len() as u64) as u8)
                        .collect(),
                }
            }
            92..=99 => {
                let i = r.below(2) as usize;
                if udp.echo[i] == 0 {
                    continue;
                }
                udp.echo[i] -= 1;
                Job::UdpEcho {
                    port: ports.udp_echo[i],
                    sizes: (0..r.range(1, 4))
                        .map(|_| r.range(0, UDP_ECHO_MAX) as u16)
                        .collect(),
                }
            }
            _ => continue,
        };
        if job.is_bad_login() {
            if *bad == BAD_LOGINS {
                continue;
            }
            *bad += 1;
        }
        return job;
    }
}
