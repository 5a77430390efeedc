//! `host-sim`: run the smoltalk services on a host, and talk to them.
//!
//! One binary, one subcommand per job. This file only parses arguments and
//! calls the module that does the work.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

mod bench;
mod client;
mod demo;
mod serve;
mod simulate;
mod soak;
mod users;

/// Run the socket tutorial's services on smoltcp, on a TAP device or an
/// in-process virtual network, and talk to them.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every service on an in-process virtual network and print a
    /// transcript. Needs no setup and no root.
    Demo(DemoArgs),
    /// Run the device on a Linux TAP interface.
    Serve(ServeArgs),
    /// Add a user to a credential file (asks for the password without echo).
    AddUser(AddUserArgs),
    /// TCP echo client (port 7 by default): stdin lines go out, echoes come back.
    Echo(ClientArgs),
    /// Login client: challenge-response by default (the password never
    /// crosses the wire), --plain for `LOGIN user password`, --tutorial for
    /// the dict form.
    Login(LoginArgs),
    /// Turn-taking TCP chat client.
    Chat(ClientArgs),
    /// UDP hotline chat client.
    UdpChat(ClientArgs),
    /// Benchmark TCP echo through TAP in a private network namespace against
    /// the kernel's own path (needs root).
    Bench(BenchArgs),
    /// Run seeds of the deterministic network simulation (faults, many
    /// clients, every service) and print each failing seed's replay command.
    Simulate(SimulateArgs),
    /// Client churn across every service for a given time, on `serve --tap`
    /// in a private namespace (root), the mps2-an385 board under QEMU, or a
    /// device at an address; reports latency over time, errors and what
    /// was left in use.
    Soak(soak::SoakArgs),
}

#[derive(Args)]
pub struct DemoArgs {
    /// Write every frame of the demo to this pcap file (opens in Wireshark).
    #[arg(long)]
    pub pcap: Option<PathBuf>,
    /// Drop each frame with this probability (0.0 to 0.5); TCP recovers.
    #[arg(long, default_value_t = 0.0)]
    pub loss: f64,
    /// Seed for the simulated network.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Args)]
pub struct ServeArgs {
    /// TAP interface to open (created when we have the privilege).
    #[arg(long, default_value = "tap0")]
    pub tap: String,
    /// Device address and prefix.
    #[arg(long, default_value = "192.168.69.1/24")]
    pub ip: String,
    /// Host-side address configured on the TAP interface when we create it.
    #[arg(long, default_value = "192.168.69.100/24")]
    pub host_ip: String,
    /// Write every frame to this pcap file. Note: it records plaintext logins.
    #[arg(long)]
    pub pcap: Option<PathBuf>,
    /// Let a person type chat replies instead of the auto-responder.
    #[arg(long)]
    pub operator: bool,
    /// Credential file (see `add-user`); default: the tutorial's demo users.
    #[arg(long)]
    pub users: Option<PathBuf>,
    /// Sockets per TCP service port.
    #[arg(long, default_value_t = 8)]
    pub pool: usize,
    /// TCP socket buffer size in bytes: each send buffer, and each receive
    /// buffer up to 65535 (the largest window that needs no scaling; see
    /// `MAX_TCP_RX` in serve.rs for why).
    #[arg(long, default_value_t = 65536)]
    pub tcp_buffer: usize,
    /// MTU of the TAP link, set on both ends: the host's interface and the
    /// device. Default: the interface's own (1500 for one we create). Up
    /// to 65521 (a 64 KiB frame): fewer, larger frames, fewer system calls.
    #[arg(long)]
    pub mtu: Option<usize>,
}

#[derive(Args)]
pub struct AddUserArgs {
    /// The credential file; created if missing.
    #[arg(long)]
    pub users: PathBuf,
    /// The user name (UTF-8, no spaces or ':').
    pub name: String,
    /// PBKDF2 iterations.
    #[arg(long, default_value_t = 4096)]
    pub iterations: u32,
    /// Read the password from stdin instead of the terminal (for scripts).
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Args)]
pub struct ClientArgs {
    /// Where the service is; default: the TAP device at 192.168.69.1 on the
    /// service's port.
    #[arg(long)]
    pub to: Option<SocketAddr>,
}

#[derive(Args)]
pub struct LoginArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Send the tutorial's dict form `{'user': 'password'}` (plaintext).
    #[arg(long)]
    pub tutorial: bool,
    /// Send `LOGIN user password`, the password in clear, instead of the
    /// challenge-response exchange.
    #[arg(long, conflicts_with = "tutorial")]
    pub plain: bool,
}

#[derive(Args)]
pub struct BenchArgs {
    /// Bytes for the bulk echo test.
    #[arg(long, default_value_t = 256 << 20)]
    pub bulk: usize,
    /// Round trips for the latency test.
    #[arg(long, default_value_t = 20_000)]
    pub rtts: usize,
    /// Connections for the concurrency test.
    #[arg(long, default_value_t = 32)]
    pub conns: usize,
    /// Round trips per connection.
    #[arg(long, default_value_t = 200)]
    pub rounds: usize,
    /// `serve --mtu`: the TAP link's MTU, set on both of its ends.
    #[arg(long, default_value_t = 65521)]
    pub mtu: usize,
    /// `serve --tcp-buffer`: each TCP socket's send buffer, and its
    /// receive buffer up to 65535.
    #[arg(long, default_value_t = 65536)]
    pub tcp_buffer: usize,
    /// MTU of the kernel's veth pair. The kernel's own default, 1500, is
    /// the baseline the ratios are meant against.
    #[arg(long, default_value_t = 1500)]
    pub kernel_mtu: usize,
}

#[derive(Args)]
pub struct SimulateArgs {
    /// How many seeds to run.
    #[arg(long, default_value_t = 100)]
    pub seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    pub from: u64,
    /// Threads (each seed runs in one, deterministically); default: one per CPU.
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Write every frame of the run to this pcap file (with --seeds 1).
    #[arg(long)]
    pub pcap: Option<PathBuf>,
    /// Print each seed's outcome, and with --seeds 1 its whole scenario.
    #[arg(long)]
    pub verbose: bool,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(a) => demo::run(a),
        Command::Serve(a) => serve::run(a),
        Command::AddUser(a) => users::add_user(a),
        Command::Echo(a) => client::echo(a),
        Command::Login(a) => client::login(a),
        Command::Chat(a) => client::chat(a),
        Command::UdpChat(a) => client::udp_chat(a),
        Command::Bench(a) => bench::run(a),
        Command::Simulate(a) => simulate::run(a),
        Command::Soak(a) => soak::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("host-sim: {e}");
            ExitCode::FAILURE
        }
    }
}
