//! Does the reply time tell whether a user exists? Two levels of answer.
//!
//! 1. Deterministic, on simulated time: an unknown user and a wrong
//!    password take exactly as many polls (so as many hash iterations, at
//!    `hash_iterations_per_poll` each) and exactly the same simulated reply
//!    latency, in every request form. A control store whose user has just 16
//!    more iterations (one poll) *is* told apart by the same measurement, so
//!    these equalities can fail.
//!
//! 2. Wall clock: real reply times of the in-process node, many samples. An
//!    unknown user and a wrong password ([`ITER`] iterations each) must be
//!    *equivalent*: the 99.9 % confidence interval of the median of their
//!    paired log-ratios lies within ±[`MARGIN`]. The same procedure must
//!    tell [`ITER`] from twice as many iterations (the control), whose
//!    interval must lie
//!    entirely beyond the margin; so the margin is tighter than the effect
//!    of a doubled iteration count, and a measurement too noisy to decide
//!    fails instead of passing. The interval is distribution-free (order
//!    statistics of the median) and its width comes from the measured
//!    spread; sampling goes on in batches until both decisions are made or
//!    [`BUDGET`] is spent. A round measures each request [`REPEATS`] times,
//!    interleaved in a balanced rotating order so that drift on a busy
//!    machine hits them alike, and keeps each one's fastest time: scheduling
//!    noise only ever adds time (the "box test" of remote-timing studies
//!    looks at low quantiles for the same reason).

mod login_support;

use std::time::Instant as WallClock;

use login_support::{LOGIN, challenge, line};
use smoltalk::Config;
use smoltalk::chat::AutoResponder;
use smoltalk::login::{DEMO, Record, Store};
use smoltalk::net::HostMemory;
use smoltalk::sim::{Conn, World};
use smoltcp::time::Duration;

/// Simulated time from sending `request` to its whole reply (a line, or
/// everything until the close for the dict form).
fn sim_latency(w: &mut World, conn: Conn, request: &str, dict: bool) -> (Duration, String) {
    let start = w.now();
    w.send(conn, request.as_bytes()).unwrap();
    let reply = if dict {
        String::from_utf8(w.wait_closed(conn, Duration::from_secs(30)).unwrap()).unwrap()
    } else {
        w.recv_line(conn).unwrap()
    };
    (w.now() - start, reply)
}

/// Latency of each request on a fresh connection of a fresh client (so no
/// lockout, no leftover state).
fn latencies(store: &Store<'_>, requests: &[(&str, bool)]) -> Vec<(Duration, String)> {
    let config = Config::HOST;
    let mut mem = HostMemory::new(&config);
    let mut w = World::with(&config, &mut mem, store, AutoResponder::new(), 5).unwrap();
    requests
        .iter()
        .map(|&(request, dict)| {
            let c = w.add_client();
            let conn = w.connect(c, LOGIN).unwrap();
            sim_latency(&mut w, conn, request, dict)
        })
        .collect()
}

#[test]
fn simulated_reply_latency_is_identical_for_unknown_user_and_wrong_password() {
    let got = latencies(
        &DEMO,
        &[
            ("LOGIN 张三 wrong\n", false),
            ("LOGIN nobody wrong\n", false),
            ("{'张三': 'wrong'}", true),
            ("{'nobody': 'wrong'}", true),
        ],
    );
    let failed = "ERR invalid user name or password\n";
    assert_eq!(got[0].1, failed);
    assert_eq!(got[1].1, failed);
    assert_eq!(got[2].1, "用户名或密码错误!");
    assert_eq!(got[3].1, "用户名或密码错误!");
    // 4096 iterations at 16 per poll: 256 polls, each a simulated step.
    assert!(got[0].0 > Duration::ZERO);
    assert_eq!(got[0].0, got[1].0, "LOGIN: unknown user vs wrong password");
    assert_eq!(got[2].0, got[3].0, "dict: unknown user vs wrong password");

    // Control: one user with 16 more iterations (one more poll) than the
    // first. Its wrong password is slower (by one simulated step, however
    // long the simulator makes a step), while the unknown user (checked at
    // the first record's count) stays level with the 4096-iteration user.
    let records = [
        Record::from_salted_password("four", 4096, [1; 16], &[0; 32]),
        Record::from_salted_password("more", 4096 + 16, [2; 16], &[0; 32]),
    ];
    let control = latencies(
        &Store::new(&records),
        &[
            ("LOGIN four wrong\n", false),
            ("LOGIN nobody wrong\n", false),
            ("LOGIN more wrong\n", false),
        ],
    );
    assert_eq!(control[0].0, control[1].0);
    assert!(
        control[2].0 > control[0].0,
        "the measurement must see one poll more: {:?} vs {:?}",
        control[2].0,
        control[0].0
    );
    eprintln!(
        "simulated latency: wrong password {} µs, unknown user {} µs, 16 iterations more {} µs",
        control[0].0.total_micros(),
        control[1].0.total_micros(),
        control[2].0.total_micros()
    );
}

#[test]
fn simulated_latency_of_challenge_response_is_identical_for_unknown_users() {
    let config = Config::HOST;
    let mut mem = HostMemory::new(&config);
    let mut w = World::new(&config, &mut mem, 6).unwrap();
    let mut seen = Vec::new();
    for user in ["张三", "nobody", "王八", "somebody"] {
        let c = w.add_client();
        let conn = w.connect(c, LOGIN).unwrap();
        let first = format!("AUTH {user} nonce-abcdefgh\n");
        let (auth, reply) = sim_latency(&mut w, conn, &first, false);
        let ex = login_support::answer(first.trim_end(), reply.trim_end(), user, "wrong");
        let (proof, verdict) = sim_latency(&mut w, conn, &ex.proof_line, false);
        assert_eq!(verdict, "ERR invalid user name or password\n");
        seen.push((auth, proof, reply.len()));
    }
    assert!(seen.iter().all(|s| *s == seen[0]), "{seen:?}");
    // And the exchange does not depend on luck with the connection either:
    // a second exchange on an open connection takes as long.
    let c = w.add_client();
    let conn = w.connect(c, LOGIN).unwrap();
    let ex = challenge(&mut w, conn, "赵四", "nonce-abcdefgh", "wrong");
    let (proof, _) = sim_latency(&mut w, conn, &ex.proof_line, false);
    assert_eq!(proof, seen[0].1);
}

/// The equivalence margin on the median log-ratio of reply times: 0.10,
/// about 10 %. (A doubled iteration count shows as about 0.69, ln 2: the
/// reply time is nearly all hashing.)
const MARGIN: f64 = 0.10;
/// The most wall-clock time the sampling may take (a round more at most:
/// under 1 s even in a debug build on a loaded machine).
const BUDGET: std::time::Duration = std::time::Duration::from_secs(20);
/// Rounds before the first judgement, and between judgements.
const BATCH: usize = 24;
/// PBKDF2 iterations of the measured pair (the control has twice as
/// many). An eighth of the demo's count, so that a debug build on a loaded
/// machine still takes enough samples within [`BUDGET`]; the simulated-time
/// tests above pin the equality at the demo's 4096.
const ITER: u32 = 512;
/// Repeats of each request per round; the round keeps the fastest.
const REPEATS: usize = 3;
/// Rounds at most, whatever the clock says.
const MAX_ROUNDS: usize = 2000;
/// z for a two-sided 99.9 % interval.
const Z: f64 = 3.29;

/// The median of `v` and its distribution-free confidence interval: the
/// order statistics `n/2 ∓ Z·√n/2` (the binomial sign-test interval, by
/// the normal approximation).
fn median_ci(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = s.len() as f64;
    let half = Z * n.sqrt() / 2.0;
    let lo = ((n / 2.0 - half).floor().max(0.0)) as usize;
    let hi = ((n / 2.0 + half).ceil() as usize).min(s.len() - 1);
    let median = if s.len() % 2 == 1 {
        s[s.len() / 2]
    } else {
        (s[s.len() / 2 - 1] + s[s.len() / 2]) / 2.0
    };
    (median, s[lo], s[hi])
}

fn median(v: &[f64]) -> f64 {
    median_ci(v).0
}

#[test]
fn wall_clock_unknown_user_and_wrong_password_are_equivalent_and_the_control_is_not() {
    // "known" and the unknown user's dummy: ITER iterations; "double": twice.
    let records = [
        Record::from_salted_password("known", ITER, [1; 16], &[0; 32]),
        Record::from_salted_password("double", 2 * ITER, [2; 16], &[0; 32]),
    ];
    let store = Store::new(&records);
    let mut config = Config::HOST;
    // Every failure opens a new window, so thousands of them never lock
    // the client out.
    config.limits.login_window = Duration::ZERO;
    let mut mem = HostMemory::new(&config);
    let mut w = World::with(&config, &mut mem, &store, AutoResponder::new(), 7).unwrap();
    let c = w.add_client();
    let conn = w.connect(c, LOGIN).unwrap();

    let requests = [
        "LOGIN known wrong\n",
        "LOGIN nobody wrong\n",
        "LOGIN double wrong\n",
    ];
    let time = |w: &mut World, i: usize| {
        let t = WallClock::now();
        let reply = line(w, conn, requests[i]);
        let took = t.elapsed().as_secs_f64();
        assert_eq!(reply, "ERR invalid user name or password\n");
        took
    };
    // Every order of the three, in turn: each request is measured first,
    // second and third equally often.
    const ORDERS: [[usize; 3]; 6] = [
        [0, 1, 2],
        [1, 2, 0],
        [2, 0, 1],
        [0, 2, 1],
        [2, 1, 0],
        [1, 0, 2],
    ];
    for i in 0..3 {
        time(&mut w, i); // warm-up
    }
    let start = WallClock::now();
    let mut samples: Vec<[f64; 3]> = Vec::new();
    let verdict = loop {
        for _ in 0..BATCH {
            // K repeats of each request, interleaved; the round keeps each
            // request's fastest: scheduling noise only ever adds time.
            let mut t = [f64::INFINITY; 3];
            for k in 0..REPEATS {
                let order = ORDERS[(samples.len() * REPEATS + k) % ORDERS.len()];
                for i in order {
                    t[i] = t[i].min(time(&mut w, i));
                }
            }
            samples.push(t);
            if start.elapsed() > BUDGET && samples.len() >= BATCH {
                break;
            }
        }
        let unknown: Vec<f64> = samples.iter().map(|t| (t[1] / t[0]).ln()).collect();
        let double: Vec<f64> = samples.iter().map(|t| (t[2] / t[0]).ln()).collect();
        let (u, u_lo, u_hi) = median_ci(&unknown);
        let (d, d_lo, d_hi) = median_ci(&double);
        let equivalent = -MARGIN < u_lo && u_hi < MARGIN;
        let control_detected = d_lo > MARGIN;
        let out_of_time = start.elapsed() > BUDGET || samples.len() >= MAX_ROUNDS;
        if (equivalent && control_detected) || out_of_time {
            break (u, u_lo, u_hi, d, d_lo, d_hi, equivalent, control_detected);
        }
    };
    let (u, u_lo, u_hi, d, d_lo, d_hi, equivalent, control_detected) = verdict;
    let ms = |i: usize| 1e3 * median(&samples.iter().map(|t| t[i]).collect::<Vec<_>>());
    let report = format!(
        "{ITER} iterations, {} rounds in {:.1} s: fastest-of-{REPEATS} median reply wrong password {:.3} ms, unknown user {:.3} ms, \
         {} iterations {:.3} ms; ln(unknown/wrong) median {u:+.4} [99.9 % CI {u_lo:+.4}, \
         {u_hi:+.4}], ln(double/single) median {d:+.4} [{d_lo:+.4}, {d_hi:+.4}], \
         margin ±{MARGIN}",
        samples.len(),
        start.elapsed().as_secs_f64(),
        ms(0),
        ms(1),
        2 * ITER,
        ms(2),
    );
    eprintln!("{report}");
    assert!(
        control_detected,
        "the measurement cannot tell {ITER} from {} iterations, so it proves nothing: {report}",
        2 * ITER
    );
    assert!(
        equivalent,
        "unknown user and wrong password are not shown equivalent (a difference, or too \
         much noise to decide): {report}"
    );
}
