//! `host-sim simulate`: run seeds of the deterministic network simulation
//! (`smoltalk::sim::scenario`) and report the failing ones.
//!
//! Each seed is one whole run — the device, its clients, the faults — on
//! simulated time in a single thread, so it replays exactly. Seeds are
//! independent, so `--jobs` threads take them from a shared counter; the
//! summary is the same whatever the thread count, except the wall time.
//! A failing seed is printed with the command that replays it alone.

use std::cell::RefCell;
use std::error::Error;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use smoltalk::sim::FaultCounts;
use smoltalk::sim::scenario::{Report, Scenario};

use crate::SimulateArgs;

/// How often progress is printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

thread_local! {
    /// Where the last panic on this thread happened: the scenario catches
    /// the panic itself, and gets only its message.
    static PANIC_AT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs the seeds; fails if any seed failed.
pub fn run(args: SimulateArgs) -> Result<(), Box<dyn Error>> {
    if args.seeds == 0 {
        return Err("--seeds must be at least 1".into());
    }
    if args.pcap.is_some() && args.seeds != 1 {
        return Err("--pcap records one run: use it with --seeds 1".into());
    }
    // Thousands of runs of the device would log every connection; only a
    // failure matters here. RUST_LOG brings the logs back.
    if std::env::var_os("RUST_LOG").is_none() {
        log::set_max_level(log::LevelFilter::Off);
    }
    // A panic is a failing seed, reported with its place, not a trace on
    // stderr in the middle of the progress lines.
    std::panic::set_hook(Box::new(|info| {
        let at = info.location().map(|l| l.to_string());
        PANIC_AT.with(|p| *p.borrow_mut() = at);
    }));

    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, 256);
    let last = args.from + (args.seeds - 1);
    println!(
        "simulate: seeds {}..={last} on {jobs} thread{}",
        args.from,
        if jobs == 1 { "" } else { "s" }
    );
    if args.verbose && args.seeds == 1 {
        println!("{:#?}", Scenario::from_seed(args.from));
    }

    let started = Instant::now();
    let next = AtomicU64::new(0);
    let (tx, rx) = mpsc::channel::<Report>();
    let mut summary = Summary::default();
    std::thread::scope(|s| {
        for _ in 0..jobs {
            let (tx, next, args) = (tx.clone(), &next, &args);
            s.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= args.seeds {
                        break;
                    }
                    if tx.send(run_seed(args.from + i, args)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut shown = Instant::now();
        for report in rx {
            if args.verbose {
                println!("seed {}: {:?}", report.seed, report.outcome);
            }
            summary.add(report);
            if shown.elapsed() >= PROGRESS_EVERY {
                shown = Instant::now();
                eprintln!(
                    "simulate: {}/{} seeds, {} failed, {:.0} packets per wall-second",
                    summary.seeds,
                    args.seeds,
                    summary.failures.len(),
                    summary.frames as f64 / started.elapsed().as_secs_f64()
                );
            }
        }
    });
    summary.print(started.elapsed());
    match summary.failures.len() {
        0 => Ok(()),
        n => Err(format!("{n} of {} seeds failed", summary.seeds).into()),
    }
}

/// One seed, with a capture if asked for.
fn run_seed(seed: u64, args: &SimulateArgs) -> Report {
    let scenario = Scenario::from_seed(seed);
    let mut report = match &args.pcap {
        Some(path) => scenario.run_captured(path),
        None => scenario.run(),
    };
    if let Some(failure) = report.outcome.failure.as_mut()
        && failure.starts_with("panicked")
        && let Some(at) = PANIC_AT.with(|p| p.borrow_mut().take())
    {
        failure.push_str(&format!(" (at {at})"));
    }
    report
}

/// Everything the seeds did, added up.
#[derive(Default)]
struct Summary {
    seeds: u64,
    frames: u64,
    jobs: u64,
    refused: u64,
    unanswered: u64,
    faults: FaultCounts,
    /// Simulated seconds, summed over the seeds.
    simulated: f64,
    /// Wall time of the seeds, summed over the threads.
    busy: Duration,
    /// Failing seeds and why, in seed order once sorted.
    failures: Vec<(u64, String)>,
}

impl Summary {
    fn add(&mut self, r: Report) {
        let o = r.outcome;
        self.seeds += 1;
        self.frames += o.frames;
        self.jobs += o.jobs;
        self.refused += o.refused;
        self.unanswered += o.unanswered;
        self.faults.add(&o.faults);
        self.simulated += o.sim_time.total_micros() as f64 / 1e6;
        self.busy += r.wall;
        if let Some(why) = o.failure {
            self.failures.push((r.seed, why));
        }
    }

    fn print(&mut self, wall: Duration) {
        let secs = wall.as_secs_f64().max(1e-9);
        println!(
            "simulate: {} seeds in {:.1} s wall ({:.0} seeds/s), {} passed, {} failed",
            self.seeds,
            secs,
            self.seeds as f64 / secs,
            self.seeds - self.failures.len() as u64,
            self.failures.len()
        );
        println!(
            "  {} client jobs; {} connections refused by a full pool and dialled again; \
             {} UDP datagrams unanswered (lost on a link; the device answered every one it got)",
            self.jobs, self.refused, self.unanswered
        );
        println!(
            "  {} packets simulated: {:.0} packets per wall-second ({:.0} per thread), \
             {:.0} s of simulated time",
            self.frames,
            self.frames as f64 / secs,
            self.frames as f64 / self.busy.as_secs_f64().max(1e-9),
            self.simulated
        );
        println!("  faults injected: {}", self.faults);
        self.failures.sort();
        for (seed, why) in &self.failures {
            println!("FAILED seed {seed}: {why}");
            println!(
                "  replay: cargo run --release -p host-sim -- simulate --seeds 1 --from {seed}"
            );
        }
    }
}
