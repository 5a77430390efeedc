//! `host-sim soak`: client churn across every service for a given time,
//! then a report of what it did to the device.
//!
//! ```text
//! sudo host-sim soak --duration 60                       # serve --tap in a private namespace
//! host-sim soak --duration 60 --target qemu-mps2         # the mps2-an385 firmware under QEMU
//! host-sim soak --duration 60 --target 192.168.69.1      # a device that is already running
//!      [--clients N] [--seed S] [--svg FILE]
//! ```
//!
//! N client threads each open a session with a service picked at random
//! (seeded), use it, check every reply, close it, and start the next, until
//! the time is up: TCP echo, UDP echo, login in all three forms, the chat,
//! the hotline. The report, on stdout:
//!
//! - latency percentiles (p50/p90/p99/max) per service and per tenth of
//!   the run, and over the whole run;
//! - sessions served, errors by kind, refused connections tried again,
//!   UDP resends;
//! - what the device still had in use at the end. On TAP, `serve` says so
//!   itself when stopped. The emulated board logs it once a minute: the
//!   soak waits for the next such line (`--no-status-wait` skips that),
//!   and also measures from outside what it measured before the churn:
//!   how many connections each TCP port serves at once, how many hotline
//!   callers are served. At an address only that measurement is possible.
//!
//! `--svg FILE` plots p50 and p99 over time per service. The exit status is
//! non-zero on any error or any slot left in use.
//!
//! # Layout
//!
//! - this file: the arguments, the targets, the report.
//! - [`churn`]: the client threads and their sessions.
//! - [`stats`]: latency histograms and counts.
//! - [`svg`]: the plot.
//! - [`probe`]: measuring free sessions from outside.
//! - [`tap`]: `serve --tap` in a private network namespace.
//! - [`qemu`]: the mps2-an385 board under QEMU.

use std::error::Error;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::Args;
use smoltalk::config::Ports;

mod churn;
// Shared with the benchmark and the client, without making their modules
// public: the namespace helpers, and the SCRAM client.
#[allow(dead_code, clippy::duplicate_mod)]
#[path = "bench/netns.rs"]
mod netns;
mod probe;
mod qemu;
#[allow(dead_code, clippy::duplicate_mod)]
#[path = "client/scram.rs"]
mod scram;
mod stats;
mod svg;
mod tap;

use churn::Plan;
use probe::Capacity;
use stats::{Service, Tally, fmt_us};

/// Time buckets of the report and the plot.
const BUCKETS: usize = 10;

/// The longest soak accepted: a week.
const MAX_DURATION: u64 = 7 * 24 * 3600;

/// The most client threads.
const MAX_CLIENTS: usize = 256;

/// How long after the churn a device may take to free what the last
/// sessions used (their closes are in flight).
const SETTLE: Duration = Duration::from_millis(300);

/// Set on Ctrl-C: the churn stops early and the report still comes.
static STOP: AtomicBool = AtomicBool::new(false);

#[derive(Args)]
pub struct SoakArgs {
    /// How long the churn runs, in seconds.
    #[arg(long)]
    pub duration: u64,
    /// `tap` (`serve --tap` in a private network namespace; root),
    /// `qemu-mps2` (the mps2-an385 firmware under QEMU), or the IP address
    /// of a device already running the services on the tutorial's ports.
    #[arg(long, default_value = "tap")]
    pub target: String,
    /// Client threads, each running one session at a time.
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// Seed of the session mix.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write a plot of p50 and p99 latency over time per service (SVG).
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// qemu-mps2: do not wait (up to a minute) for the firmware's next
    /// status line; rely on the measurement from outside alone.
    #[arg(long)]
    pub no_status_wait: bool,
}

/// What the soak runs against.
enum Target {
    Tap,
    Qemu,
    Addr(IpAddr),
}

/// What a device said it had in use: `serve`'s exit line, or the
/// firmware's status line. Both read `N tcp sessions, N hotline callers,
/// N locked-out addresses`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub tcp_sessions: usize,
    pub hotline_callers: usize,
    pub lockout_entries: usize,
}

impl Usage {
    /// Reads the figures from the start of `text`.
    pub fn parse(text: &str) -> Option<Usage> {
        let mut parts = text.split(", ");
        let mut figure = |unit: &str| -> Option<usize> {
            let part = parts.next()?;
            let (n, rest) = part.split_once(' ')?;
            rest.starts_with(unit).then_some(())?;
            n.parse().ok()
        };
        Some(Usage {
            tcp_sessions: figure("tcp sessions")?,
            hotline_callers: figure("hotline callers")?,
            lockout_entries: figure("locked-out addresses")?,
        })
    }
}

/// What was left in use at the end, by whoever could tell.
#[derive(Default)]
struct Leftover {
    /// The device's own account, and where it came from.
    device: Option<(Usage, String)>,
    /// Measured from outside: before the churn, after it.
    probe: Option<(Capacity, Capacity)>,
    /// Why a way of telling was not available.
    notes: Vec<String>,
}

impl Leftover {
    /// Sessions left in use (the lockout table is not a leak: it forgets
    /// an address a minute after its last failure).
    fn leaked(&self) -> usize {
        let device = self
            .device
            .as_ref()
            .map_or(0, |(u, _)| u.tcp_sessions + u.hotline_callers);
        let probe = self.probe.as_ref().map_or(0, |(before, after)| {
            let (tcp, hotline) = before.missing(after);
            tcp.iter().sum::<usize>() + hotline
        });
        device.max(probe)
    }
}

/// Runs the soak.
pub fn run(args: SoakArgs) -> Result<(), Box<dyn Error>> {
    if !(1..=MAX_DURATION).contains(&args.duration) {
        return Err(format!("--duration must be from 1 to {MAX_DURATION} seconds").into());
    }
    if !(1..=MAX_CLIENTS).contains(&args.clients) {
        return Err(format!("--clients must be from 1 to {MAX_CLIENTS}").into());
    }
    let target = match args.target.as_str() {
        "tap" => Target::Tap,
        "qemu-mps2" => Target::Qemu,
        other => Target::Addr(other.parse().map_err(|_| {
            format!("--target {other:?}: expected tap, qemu-mps2 or an IP address")
        })?),
    };
    let _ = ctrlc::set_handler(|| {
        eprintln!("soak: interrupted: finishing the sessions under way");
        STOP.store(true, Ordering::SeqCst);
    });
    let plan = |ip: IpAddr, ports: Ports| Plan {
        ip,
        ports,
        clients: args.clients,
        duration: Duration::from_secs(args.duration),
        seed: args.seed,
        buckets: BUCKETS,
    };
    let (what, plan, tally, leftover) = match target {
        Target::Tap => {
            let plan = plan(tap::DEVICE.into(), Ports::TUTORIAL);
            let (tally, leftover) = soak_tap(&plan)?;
            let what = "`host-sim serve --tap tap0` in a private network namespace".to_owned();
            (what, plan, tally, leftover)
        }
        Target::Qemu => {
            let elf = qemu::build()?;
            let board = qemu::Board::boot(&elf)?;
            let plan = plan(Ipv4Addr::LOCALHOST.into(), board.ports());
            let (tally, leftover) = soak_qemu(&plan, board, !args.no_status_wait)?;
            let what = "the mps2-an385 firmware under QEMU (user networking, 127.0.0.1)".to_owned();
            (what, plan, tally, leftover)
        }
        Target::Addr(ip) => {
            let plan = plan(ip, Ports::TUTORIAL);
            let (tally, leftover) = soak_addr(&plan)?;
            (format!("the device at {ip}"), plan, tally, leftover)
        }
    };

    print_report(&what, &plan, &tally, &leftover);
    if let Some(path) = &args.svg {
        let title = format!(
            "smoltalk soak on {}: {} clients, {} s — p50 solid, p99 dashed",
            args.target, args.clients, args.duration
        );
        std::fs::write(path, svg::render(&tally.latency, &title))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        eprintln!("soak: plot written to {}", path.display());
    }
    let errors = tally.total_errors();
    let leaked = leftover.leaked();
    if STOP.load(Ordering::SeqCst) {
        return Err("soak: interrupted before the end".into());
    }
    if errors > 0 || leaked > 0 {
        return Err(format!(
            "soak failed: {errors} error(s), {leaked} session(s) left in use at the end"
        )
        .into());
    }
    Ok(())
}

/// The churn, announced on stderr.
fn churn(plan: &Plan) -> Tally {
    eprintln!(
        "soak: {} clients for {} s against {} (seed {})",
        plan.clients,
        plan.duration.as_secs(),
        plan.ip,
        plan.seed
    );
    churn::run(plan, &STOP)
}

fn soak_tap(plan: &Plan) -> Result<(Tally, Leftover), Box<dyn Error>> {
    let mut device = tap::Device::start()?;
    let tally = device.inside(|| churn(plan))?;
    std::thread::sleep(SETTLE);
    device.check_alive()?;
    let usage = device.stop()?;
    let leftover = Leftover {
        device: Some((usage, "`serve`'s exit line".into())),
        ..Leftover::default()
    };
    Ok((tally, leftover))
}

fn soak_qemu(
    plan: &Plan,
    board: qemu::Board,
    wait_status: bool,
) -> Result<(Tally, Leftover), Box<dyn Error>> {
    eprintln!(
        "soak: board up on 127.0.0.1, host ports +{}, pools {}; log {}",
        board.offset,
        board.pools().unwrap_or_else(|| "not logged".into()),
        board.log_path.display()
    );
    let before = probe::measure(plan.ip, &plan.ports)?;
    let tally = churn(plan);
    let churn_end = board.log().len();
    if !board.alive() {
        return Err(format!(
            "QEMU stopped during the soak; the firmware log:\n{}",
            qemu::tail(&board.log(), 30)
        )
        .into());
    }
    std::thread::sleep(SETTLE);
    let after = probe::measure_until_back(plan.ip, &plan.ports, &before, Duration::from_secs(5))?;
    let mut leftover = Leftover {
        probe: Some((before, after)),
        ..Leftover::default()
    };
    if wait_status {
        eprintln!(
            "soak: waiting up to {} s for the firmware's next status line (--no-status-wait skips this)",
            qemu::STATUS_EVERY.as_secs() + 5
        );
        match board.status_after(churn_end, qemu::STATUS_EVERY + Duration::from_secs(5)) {
            Some((usage, line)) => {
                // The figures, without the NIC counters after them.
                let line = line.split(';').next().unwrap_or(&line);
                leftover.device = Some((usage, format!("the firmware's status line `{line}`")))
            }
            None => leftover
                .notes
                .push("the firmware logged no status line after the churn".into()),
        }
    } else {
        leftover.notes.push(format!(
            "the firmware's own account: not waited for (it logs one every {} s; --no-status-wait)",
            qemu::STATUS_EVERY.as_secs()
        ));
    }
    let errors = board.errors();
    let log_path = board.log_path.clone();
    drop(board);
    if errors.is_empty() && tally.total_errors() == 0 && leftover.leaked() == 0 {
        let _ = std::fs::remove_file(&log_path);
    } else {
        leftover
            .notes
            .push(format!("firmware log kept: {}", log_path.display()));
        for e in errors.iter().take(5) {
            leftover.notes.push(format!("firmware error: {e}"));
        }
    }
    Ok((tally, leftover))
}

fn soak_addr(plan: &Plan) -> Result<(Tally, Leftover), Box<dyn Error>> {
    let before = probe::measure(plan.ip, &plan.ports)?;
    let tally = churn(plan);
    std::thread::sleep(SETTLE);
    let after = probe::measure_until_back(plan.ip, &plan.ports, &before, Duration::from_secs(5))?;
    let leftover = Leftover {
        probe: Some((before, after)),
        notes: vec!["the device's own account: not available at an address".into()],
        ..Leftover::default()
    };
    Ok((tally, leftover))
}

/// The report, as Markdown on stdout.
fn print_report(what: &str, plan: &Plan, tally: &Tally, leftover: &Leftover) {
    let lat = &tally.latency;
    println!(
        "soak: {} s against {what}, {} clients, seed {}",
        plan.duration.as_secs(),
        plan.clients,
        plan.seed
    );
    println!();
    println!("Latency per exchange, by service and by tenth of the run:");
    println!();
    println!("| service | time, s | exchanges | p50 | p90 | p99 | max |");
    println!("|---|---|---|---|---|---|---|");
    for service in Service::ALL {
        let whole = lat.whole(service);
        if whole.len() == 0 {
            continue;
        }
        for b in 0..lat.buckets() {
            let (from, to) = lat.bucket_range(b);
            let range = format!("{from:.0}–{to:.0}");
            match lat.get(service, b).percentiles() {
                Some(p) => println!(
                    "| {} | {range} | {} | {} | {} | {} | {} |",
                    service.name(),
                    p.n,
                    fmt_us(p.p50),
                    fmt_us(p.p90),
                    fmt_us(p.p99),
                    fmt_us(p.max)
                ),
                None => println!("| {} | {range} | 0 | | | | |", service.name()),
            }
        }
        if let Some(p) = whole.percentiles() {
            println!(
                "| **{}** | **all** | **{}** | **{}** | **{}** | **{}** | **{}** |",
                service.name(),
                p.n,
                fmt_us(p.p50),
                fmt_us(p.p90),
                fmt_us(p.p99),
                fmt_us(p.max)
            );
        }
    }
    println!();
    println!("An exchange is:");
    for service in Service::ALL {
        println!("- {}: {}", service.name(), service.exchange());
    }
    println!();

    println!("| total | |");
    println!("|---|---|");
    let by_service: Vec<String> = Service::ALL
        .iter()
        .zip(tally.served)
        .map(|(s, n)| format!("{} {n}", s.name()))
        .collect();
    println!(
        "| sessions served | {} ({}) |",
        tally.total_served(),
        by_service.join(", ")
    );
    println!("| exchanges timed | {} |", tally.exchanges);
    let errors = if tally.errors.is_empty() {
        "0".to_owned()
    } else {
        let kinds: Vec<String> = tally
            .errors
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        format!("{} ({})", tally.total_errors(), kinds.join(", "))
    };
    println!("| errors | {errors} |");
    println!(
        "| refused connections tried again | {} |",
        tally.refusals_retried
    );
    println!("| UDP datagrams sent again | {} |", tally.udp_resends);
    println!(
        "| wrong passwords sent (one per {} s at most) | {} |",
        churn::BAD_LOGIN_EVERY.as_secs(),
        tally.bad_logins
    );
    match &leftover.device {
        Some((u, source)) => println!(
            "| in use at the end, the device says | {} tcp sessions, {} hotline callers; {} locked-out addresses (not a leak: the table forgets an address when its minute is over), from {source} |",
            u.tcp_sessions, u.hotline_callers, u.lockout_entries
        ),
        None => println!("| in use at the end, the device says | n/a |"),
    }
    if let Some((before, after)) = &leftover.probe {
        let (tcp, hotline) = before.missing(after);
        let ports: Vec<String> = probe::TCP_NAMES
            .iter()
            .enumerate()
            .map(|(i, name)| format!("{name} {}/{}", after.tcp[i], before.tcp[i]))
            .collect();
        println!(
            "| in use at the end, measured | {} tcp sessions, {} hotline callers (served at once after/before the churn: {}, hotline {}/{}) |",
            tcp.iter().sum::<usize>(),
            hotline,
            ports.join(", "),
            after.hotline,
            before.hotline
        );
    }
    for note in &leftover.notes {
        println!("| note | {note} |");
    }
    if !tally.examples.is_empty() {
        println!();
        println!("First errors:");
        for e in &tally.examples {
            println!("- {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_usage_lines_of_serve_and_the_firmware() {
        let u = Usage::parse("2 tcp sessions, 1 hotline callers, 3 locked-out addresses").unwrap();
        assert_eq!(
            u,
            Usage {
                tcp_sessions: 2,
                hotline_callers: 1,
                lockout_entries: 3
            }
        );
        let fw =
            "0 tcp sessions, 0 hotline callers, 1 locked-out addresses; nic rx 10 tx 9, 0 dropped";
        assert_eq!(Usage::parse(fw).unwrap().lockout_entries, 1);
        assert_eq!(Usage::parse("x tcp sessions"), None);
        assert_eq!(Usage::parse("1 tcp sessions, 2 hotline callers"), None);
    }
}
