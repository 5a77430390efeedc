//! `host-sim bench`: TCP echo through smoltalk on a TAP device, measured
//! against the Linux kernel's own path, in one run on one machine.
//!
//! ```text
//! sudo target/release/host-sim bench [--bulk BYTES] [--rtts N] [--conns N] [--rounds N]
//!                                     [--mtu N] [--tcp-buffer BYTES] [--kernel-mtu N]
//! ```
//!
//! Needs root, `ip` (iproute2), `taskset` and `/dev/net/tun`. It builds its
//! own world and tears it down again, whatever happens:
//!
//! ```text
//!  namespace A (client side)                      namespace B
//!  ┌───────────────────────────────────────┐      ┌─────────────────────────┐
//!  │ tap0 192.168.69.100 ── host-sim serve │      │ kernel echo server      │
//!  │                        192.168.69.1   │      │ (std TcpListener,       │
//!  │ veth0 192.168.70.1 ────────────────── veth ── │  thread per connection) │
//!  │ bench client (this process)           │      │ veth1 192.168.70.2      │
//!  └───────────────────────────────────────┘      └─────────────────────────┘
//! ```
//!
//! Client and servers are pinned to CPU 0 (`taskset -c 0`), as the peers'
//! baselines were measured: unpinned, a round trip flips between same-CPU and
//! cross-CPU wake-ups and the figures mean nothing. Each path is measured
//! [`RUNS`] times, alternating, and the median of each figure is reported.
//!
//! `serve` runs with host tuning: `--mtu 65521` by default, set on both ends
//! of the TAP link, so a bulk transfer moves 64 KiB per frame (per system
//! call) instead of 1.5 KiB. The kernel keeps its own defaults (veth MTU
//! 1500, with its segmentation offloads): that is the baseline the ratios
//! are against. `--kernel-mtu 65521` measures the kernel on jumbo frames
//! too. The options used head the table. Progress goes to stderr; stdout
//! gets one Markdown table:
//!
//! ```text
//! TCP echo, client and servers pinned to CPU 0, median of 5 runs
//! smoltalk: `host-sim serve --tap tap0 --pool 33 --mtu 65521 --tcp-buffer 65536`
//! kernel: veth MTU 1500, default socket buffers
//!
//! | server | bulk echo 256 MiB, MB/s | RTT 64 B p50 / p99 µs | 32 conns × 200 round trips, rt/s |
//! |---|---|---|---|
//! | smoltalk, `host-sim serve` on TAP | 807 | 14.5 / 18.0 | 84 k |
//! | Linux kernel over veth | 971 | 14.2 / 16.9 | 59 k |
//! | smoltalk / kernel | 0.83 | 1.02 / 1.07 | 1.42 |
//! ```
//!
//! MB is 10^6 bytes. The ratio row divides smoltalk's figure by the
//! kernel's: above 1 is better for throughput, worse for latency. Absolute
//! figures vary from machine to machine (a 2-vCPU VM where even loopback
//! takes 13 µs per round trip gave the ones above); the ratios travel.
//!
//! # Layout
//!
//! - this file: building the world and printing the table.
//! - [`netns`]: namespaces and child processes that clean up after themselves.
//! - [`kernel_echo`]: the kernel echo server.
//! - [`load`]: the client and its three measurements.

use std::error::Error;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::BenchArgs;

mod kernel_echo;
mod load;
mod netns;

use load::{Figures, Plan};
use netns::{NetNs, Proc};

/// Measurements per path. Each run takes a few seconds; five give a
/// stable median.
const RUNS: usize = 5;

/// The device, as `serve` configures it by default.
const SMOLTALK: &str = "192.168.69.1:7";

/// The kernel echo server, across the veth pair.
const KERNEL: &str = "192.168.70.2:7";

/// How long a server may take to answer its first connection.
const STARTUP: Duration = Duration::from_secs(10);

/// Runs the benchmark (or, internally, the kernel echo server).
pub fn run(args: BenchArgs) -> Result<(), Box<dyn Error>> {
    if let Some(addr) = std::env::var_os(kernel_echo::ROLE_ENV) {
        return kernel_echo::serve(&addr.to_string_lossy());
    }
    if let Some(why) = netns::missing_prerequisite() {
        return Err(format!("bench {why}").into());
    }
    if !Command::new("taskset")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return Err("bench needs `taskset` (util-linux) to pin the servers to CPU 0".into());
    }
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; measure with `cargo build --release`");
    }
    warn_if_busy();
    // Ctrl-C reaches the servers too and ends the run with an error; this
    // handler only keeps us alive long enough to clean up.
    let _ = ctrlc::set_handler(|| eprintln!("interrupted: cleaning up"));

    let plan = Plan {
        bulk: args.bulk,
        rtts: args.rtts,
        conns: args.conns,
        rounds: args.rounds,
    };
    let exe = std::env::current_exe()?;
    let serve_args = serve_args(&args);
    let (client_ns, mut smoltalk) = start_smoltalk(&exe, &serve_args)?;
    let (server_ns, mut kernel) = start_kernel(&exe, &client_ns, args.kernel_mtu)?;
    let smoltalk_addr: SocketAddr = SMOLTALK.parse()?;
    let kernel_addr: SocketAddr = KERNEL.parse()?;

    let runs = client_ns.enter(|| -> Result<_, Box<dyn Error + Send + Sync>> {
        netns::pin_to_cpu(0)?;
        wait_ready(&mut smoltalk, smoltalk_addr)?;
        wait_ready(&mut kernel, kernel_addr)?;
        let mut runs = (Vec::new(), Vec::new());
        for i in 1..=RUNS {
            let s = load::measure(smoltalk_addr, &plan).map_err(|e| format!("smoltalk: {e}"))?;
            eprintln!("run {i}/{RUNS} smoltalk: {}", line(&s));
            let k = load::measure(kernel_addr, &plan).map_err(|e| format!("kernel: {e}"))?;
            eprintln!("run {i}/{RUNS} kernel:   {}", line(&k));
            runs.0.push(s);
            runs.1.push(k);
        }
        Ok(runs)
    })?;
    let (s, k) = runs.map_err(|e| e.to_string())?;
    print_table(
        &plan,
        &serve_args,
        args.kernel_mtu,
        &median(&s),
        &median(&k),
    );
    // Servers stop before their namespaces go (drop order is reverse).
    drop((kernel, server_ns, smoltalk, client_ns));
    Ok(())
}

/// The `serve` options measured: the link and buffers asked for, and a
/// socket pool large enough for every concurrent connection. Printed with
/// the table, so a figure always says what it was measured with.
fn serve_args(args: &BenchArgs) -> Vec<String> {
    let pool = (args.conns + 1).max(8);
    [
        "--tap".to_owned(),
        "tap0".to_owned(),
        "--pool".to_owned(),
        pool.to_string(),
        "--mtu".to_owned(),
        args.mtu.to_string(),
        "--tcp-buffer".to_owned(),
        args.tcp_buffer.to_string(),
    ]
    .into()
}

/// Namespace A with `host-sim serve ARGS` on tap0, pinned to CPU 0.
fn start_smoltalk(exe: &Path, serve_args: &[String]) -> Result<(NetNs, Proc), Box<dyn Error>> {
    let ns = NetNs::create("smtb")?;
    let mut cmd = ns.command("taskset");
    cmd.args(["-c", "0"]).arg(exe).arg("serve").args(serve_args);
    // Per-connection log lines would be measured too.
    cmd.env("RUST_LOG", "warn");
    let serve = Proc::spawn(cmd, "host-sim serve")?;
    Ok((ns, serve))
}

/// Namespace B, joined to A by a veth pair of MTU `mtu`, with the kernel
/// echo server.
fn start_kernel(exe: &Path, client: &NetNs, mtu: usize) -> Result<(NetNs, Proc), Box<dyn Error>> {
    let ns = NetNs::create("smtb")?;
    client.ip(&[
        "link",
        "add",
        "veth0",
        "type",
        "veth",
        "peer",
        "name",
        "veth1",
        "netns",
        ns.name(),
    ])?;
    let mtu = mtu.to_string();
    client.ip(&["link", "set", "veth0", "mtu", &mtu])?;
    ns.ip(&["link", "set", "veth1", "mtu", &mtu])?;
    client.ip(&["addr", "add", "192.168.70.1/24", "dev", "veth0"])?;
    client.ip(&["link", "set", "veth0", "up"])?;
    ns.ip(&["addr", "add", "192.168.70.2/24", "dev", "veth1"])?;
    ns.ip(&["link", "set", "veth1", "up"])?;
    let mut cmd = ns.command("taskset");
    cmd.args(["-c", "0"])
        .arg(exe)
        .arg("bench")
        .env(kernel_echo::ROLE_ENV, KERNEL);
    let server = Proc::spawn(cmd, "kernel echo server")?;
    Ok((ns, server))
}

/// Waits until `addr` accepts a connection, or fails with the server's log.
fn wait_ready(server: &mut Proc, addr: SocketAddr) -> Result<(), Box<dyn Error + Send + Sync>> {
    let up = netns::wait_until(STARTUP, || {
        if server.exited().is_some() {
            return Some(false);
        }
        load::connect(addr).ok().map(|_| true)
    });
    match up {
        Some(true) => Ok(()),
        _ => Err(format!(
            "{addr} did not answer within {STARTUP:?}: {}",
            server.died()
        )
        .into()),
    }
}

/// Other work on the machine competes for CPU 0 and skews every figure:
/// say so, with the load average, rather than print quietly wrong numbers.
fn warn_if_busy() {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let one_minute: f64 = load
        .split_whitespace()
        .next()
        .and_then(|l| l.parse().ok())
        .unwrap_or(0.0);
    if one_minute > 0.5 {
        eprintln!(
            "warning: load average {one_minute:.2}: other work shares the CPUs, so the figures will be low and noisy"
        );
    }
}

/// The median of each figure on its own.
fn median(runs: &[Figures]) -> Figures {
    let mid = |f: fn(&Figures) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Figures {
        bulk_mb_s: mid(|f| f.bulk_mb_s),
        rtt_p50_us: mid(|f| f.rtt_p50_us),
        rtt_p99_us: mid(|f| f.rtt_p99_us),
        rt_per_s: mid(|f| f.rt_per_s),
    }
}

/// One run's figures on a progress line.
fn line(f: &Figures) -> String {
    format!(
        "{:.0} MB/s, RTT {:.1} / {:.1} µs, {:.0} rt/s",
        f.bulk_mb_s, f.rtt_p50_us, f.rtt_p99_us, f.rt_per_s
    )
}

/// The Markdown table on stdout.
fn print_table(plan: &Plan, serve_args: &[String], kernel_mtu: usize, s: &Figures, k: &Figures) {
    let mib = plan.bulk as f64 / (1 << 20) as f64;
    println!("TCP echo, client and servers pinned to CPU 0, median of {RUNS} runs");
    println!("smoltalk: `host-sim serve {}`", serve_args.join(" "));
    println!("kernel: veth MTU {kernel_mtu}, default socket buffers");
    println!();
    println!(
        "| server | bulk echo {mib} MiB, MB/s | RTT 64 B p50 / p99 µs | {} conns × {} round trips, rt/s |",
        plan.conns, plan.rounds
    );
    println!("|---|---|---|---|");
    for (name, f) in [
        ("smoltalk, `host-sim serve` on TAP", s),
        ("Linux kernel over veth", k),
    ] {
        println!(
            "| {name} | {:.0} | {:.1} / {:.1} | {:.0} k |",
            f.bulk_mb_s,
            f.rtt_p50_us,
            f.rtt_p99_us,
            f.rt_per_s / 1e3
        );
    }
    println!(
        "| smoltalk / kernel | {:.2} | {:.2} / {:.2} | {:.2} |",
        s.bulk_mb_s / k.bulk_mb_s,
        s.rtt_p50_us / k.rtt_p50_us,
        s.rtt_p99_us / k.rtt_p99_us,
        s.rt_per_s / k.rt_per_s
    );
}
