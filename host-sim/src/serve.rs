//! `host-sim serve`: the device on a Linux TAP interface.
//!
//! The host's kernel sits on one side of the TAP interface and this process
//! on the other, running the same [`Node`] a board runs. The loop is the
//! node's whole contract: poll, then sleep until a frame arrives or
//! [`Node::poll_delay`] runs out.
//!
//! Every frame costs a `read` or `write` system call on the TAP device, and
//! on the host that cost, not the protocol work, bounds throughput. So the
//! host tuning is about frames: `--mtu 65521` sets the link's MTU on both
//! ends and moves 64 KiB per call instead of 1.5 KiB (bulk echo about 7×
//! faster). None of it reaches a board: these are `serve` options, not
//! [`Config`] defaults.
//!
//! - [`tap`]: opening (or creating and configuring) the interface.
//! - [`tap_device`]: its frames, as a smoltcp `Device`.
//! - [`wait`]: sleeping on the TAP file descriptor.
//! - [`capture`]: the `--pcap` file.
//! - [`operator`]: `--operator`, a person answering the chats.

mod capture;
mod operator;
mod tap;
mod tap_device;
mod wait;

use std::error::Error;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use smoltalk::chat::{AutoResponder, Responder};
use smoltalk::login::Store;
use smoltalk::login::store::DEMO;
use smoltalk::net::HostMemory;
use smoltalk::{Config, NetConfig, Node};
use smoltcp::phy::{Device, PcapMode, PcapWriter};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, Ipv4Cidr};

use crate::ServeArgs;
use capture::Capture;
use operator::{Console, Operator};

/// The device's Ethernet address: locally administered, like the simulator's.
const MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);
/// Longest sleep between polls, whatever the node says: operator lines and
/// Ctrl-C are noticed within this.
const MAX_SLEEP: Duration = Duration::from_millis(50);
/// TCP sockets per pool: `SessionId` numbers sockets with a `u8`, and a
/// node has four pools (two echo ports, login, chat).
const MAX_POOL: usize = 63;
/// Bounds for `--tcp-buffer`: below a reply's size every answer is split;
/// above this, `--pool 63` would ask for half a gigabyte.
const TCP_BUFFER: std::ops::RangeInclusive<usize> = 64..=1 << 20;
/// Bounds for `--mtu`: IPv4's minimum, and the largest that keeps a frame,
/// Ethernet header included, within 64 KiB.
const MTU: std::ops::RangeInclusive<usize> = 576..=65521;
/// The largest TCP receive buffer, whatever `--tcp-buffer` says: the
/// largest window smoltcp advertises without scaling it (RFC 7323).
///
/// smoltcp 0.14 scales the window of a receive buffer of 64 KiB or more,
/// and rounds the scaled window down from the latest acknowledgement, so
/// the window's right edge can move back by up to 2^scale - 1 bytes. A
/// client that has already sent up to the old edge is then ahead of the
/// window; if the receive buffer fills at that moment (the echo's send
/// buffer is full because the client is not reading), the window is zero,
/// and smoltcp drops every segment from the client that starts past the
/// window, acknowledgements and window updates included. The client's
/// window never reopens for smoltcp, and the connection hangs. Seen with
/// 1 MiB buffers twice in about 270 bulk runs of `host-sim bench` (the
/// window moved back by 14 bytes, then stayed shut); an unscaled window
/// cannot be retracted by rounding. The default, 64 KiB, loses one byte.
const MAX_TCP_RX: usize = 65535;

/// Runs the device until Ctrl-C.
pub fn run(args: ServeArgs) -> Result<(), Box<dyn Error>> {
    let ip: Ipv4Cidr = args.ip.parse().map_err(|()| {
        format!(
            "--ip {:?}: expected an address/prefix such as 192.168.69.1/24",
            args.ip
        )
    })?;
    let host_ip: Ipv4Cidr = args.host_ip.parse().map_err(|()| {
        format!(
            "--host-ip {:?}: expected an address/prefix such as 192.168.69.100/24",
            args.host_ip
        )
    })?;
    if host_ip.address() == ip.address() {
        return Err("--ip and --host-ip must differ: they are the two ends of the link".into());
    }
    if !(1..=MAX_POOL).contains(&args.pool) {
        return Err(format!("--pool must be from 1 to {MAX_POOL}").into());
    }
    if !TCP_BUFFER.contains(&args.tcp_buffer) {
        return Err(format!(
            "--tcp-buffer must be from {} to {} bytes",
            TCP_BUFFER.start(),
            TCP_BUFFER.end()
        )
        .into());
    }
    if let Some(mtu) = args.mtu
        && !MTU.contains(&mtu)
    {
        return Err(format!("--mtu must be from {} to {}", MTU.start(), MTU.end()).into());
    }
    let mut config = Config::HOST;
    config.pools.echo = [args.pool; 2];
    config.pools.login = args.pool;
    config.pools.chat = args.pool;
    config.buffers.tcp_rx = args.tcp_buffer.min(MAX_TCP_RX);
    config.buffers.tcp_tx = args.tcp_buffer;
    if args.tcp_buffer > 1 << 16 {
        log::info!(
            "TCP send buffers {} bytes; receive buffers (the window) {MAX_TCP_RX}: a scaled window can hang smoltcp 0.14",
            args.tcp_buffer
        );
    }

    // The store borrows its records, which borrow the loaded file.
    let owned = args.users.as_deref().map(crate::users::load).transpose()?;
    let records: Vec<_> = owned.iter().flatten().map(|r| r.as_record()).collect();
    let store = if owned.is_some() {
        Store::new(&records)
    } else {
        DEMO
    };
    let mut random = [0u8; 8];
    getrandom::fill(&mut random)
        .map_err(|e| format!("no random numbers for TCP sequence numbers: {e}"))?;
    let net = NetConfig {
        mac: MAC,
        ip,
        gateway: None,
        random_seed: u64::from_le_bytes(random),
    };

    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .map_err(|e| format!("cannot catch Ctrl-C: {e}"))?;

    let device = tap::open(&args.tap, host_ip, args.mtu)?;
    let fd = device.as_raw_fd();
    let mut memory = HostMemory::new(&config);
    let setup = Setup {
        config: &config,
        net: &net,
        store: &store,
        operator: args.operator,
        stop: &stop,
    };
    println!(
        "serving on {}: the device is {ip} ({MAC}); from the host try `nc {} 7` (Ctrl-C stops)",
        args.tap,
        ip.address()
    );
    match &args.pcap {
        Some(path) => {
            warn_plaintext(path);
            let sink = Capture::create(path)
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
            setup.serve(
                PcapWriter::new(device, sink, PcapMode::Both),
                fd,
                &mut memory,
            )?;
        }
        None => setup.serve(device, fd, &mut memory)?,
    }
    println!("serve: stopped. Goodbye!");
    Ok(())
}

/// What the loop needs besides the device.
struct Setup<'s> {
    config: &'s Config,
    net: &'s NetConfig,
    store: &'s Store<'s>,
    operator: bool,
    stop: &'s AtomicBool,
}

impl Setup<'_> {
    /// Builds the node with the chosen responder and runs it on `device`,
    /// whose readiness `fd` tells.
    fn serve<D: Device>(
        &self,
        mut device: D,
        fd: RawFd,
        memory: &mut HostMemory,
    ) -> Result<(), Box<dyn Error>> {
        let now = Instant::now();
        let setup_error = |e: smoltalk::net::SetupError| format!("cannot start the device: {e}");
        if self.operator {
            let mut node = Node::new(
                self.config,
                self.net,
                &mut device,
                memory.memory(),
                self.store,
                Operator::new(),
                now,
            )
            .map_err(setup_error)?;
            let mut console = Console::start();
            self.run(&mut node, &mut device, fd, |node| console.deliver(node))
        } else {
            let mut node = Node::new(
                self.config,
                self.net,
                &mut device,
                memory.memory(),
                self.store,
                AutoResponder::new(),
                now,
            )
            .map_err(setup_error)?;
            self.run(&mut node, &mut device, fd, |_| {})
        }
    }

    /// The main loop. `before_poll` runs first in every turn, so whatever it
    /// queues (an operator's reply) goes out in the same turn.
    fn run<'a, R: Responder, D: Device>(
        &self,
        node: &mut Node<'a, R>,
        device: &mut D,
        fd: RawFd,
        mut before_poll: impl FnMut(&mut Node<'a, R>),
    ) -> Result<(), Box<dyn Error>> {
        while !self.stop.load(Ordering::SeqCst) {
            before_poll(node);
            node.poll(Instant::now(), device);
            let sleep = node
                .poll_delay(Instant::now())
                .map_or(MAX_SLEEP, |d| d.min(MAX_SLEEP));
            wait::readable(fd, sleep.into())
                .map_err(|e| format!("waiting for the TAP device: {e}"))?;
        }
        // What a leak would leave: `host-sim soak` reads this line.
        let u = node.usage();
        println!(
            "serve: in use at exit: {} tcp sessions, {} hotline callers, {} locked-out addresses",
            u.tcp_sessions, u.hotline_sessions, u.lockout_entries
        );
        Ok(())
    }
}

/// `--pcap` records every byte, logins included.
fn warn_plaintext(path: &Path) {
    log::warn!(
        "recording every frame to {}: it holds the passwords of logins made while it runs; keep it private",
        path.display()
    );
}
