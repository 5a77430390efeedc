//! What the TAP test files share: `host-sim serve` in a private network
//! namespace, the prerequisite check, and small client helpers.
//!
//! Each test file includes this with `mod common;` and uses part of it.
//! Every wait is bounded, and the namespace and the server go away on drop,
//! also when a test fails.

#![allow(dead_code)]

#[path = "../../src/bench/netns.rs"]
pub mod netns;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use netns::{NetNs, Proc};

pub const EXE: &str = env!("CARGO_BIN_EXE_host-sim");

/// The device's address, `serve`'s default.
pub const DEVICE: Ipv4Addr = Ipv4Addr::new(192, 168, 69, 1);

/// The port that tells that `serve` is up.
pub const PROBE: u16 = 8898;

/// How long `serve` may take to answer its first connection.
pub const STARTUP: Duration = Duration::from_secs(10);

/// How long any one client program may run.
pub const PROGRAM: Duration = Duration::from_secs(20);

/// The longest a socket read or write may block.
pub const IO_WAIT: Duration = Duration::from_secs(5);

pub fn addr(port: u16) -> SocketAddr {
    SocketAddr::from((DEVICE, port))
}

/// Whether this machine can run the test. Under CI a missing prerequisite
/// fails the test: a skipped end-to-end test must not look like a pass.
pub fn can_run(python: bool) -> bool {
    let mut missing = netns::missing_prerequisite();
    if missing.is_none()
        && python
        && !Command::new("python3")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success())
    {
        missing = Some("needs python3 (for the tutorial's clients)".into());
    }
    let Some(why) = missing else { return true };
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("TAP test {why}, and CI=true: failing rather than skipping");
    }
    // Straight to stderr: the test harness captures `eprintln!`, and a skip
    // nobody sees is worse than a failure.
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!!!!!! SKIPPED: the TAP test {why} !!!!!!!!\n"
    );
    false
}

/// `host-sim serve` inside a namespace of its own.
pub struct Device {
    /// Declared first, so it is stopped before the namespace goes.
    pub serve: Proc,
    pub ns: NetNs,
    /// Extra `serve` arguments, kept for a restart.
    pub args: Vec<String>,
}

impl Device {
    /// Starts `serve --tap tap0 ARGS…` and waits until it answers.
    pub fn start(args: &[&str]) -> Device {
        let ns = NetNs::create("smt").expect("create a network namespace");
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let serve = spawn_serve(&ns, &args);
        let mut device = Device { serve, ns, args };
        device.wait_ready();
        device
    }

    /// Waits until TCP echo on 8898 accepts a connection; returns how long
    /// it took. The probe keeps off port 7, so that a probe connection still
    /// closing cannot take one of the sockets the pool test counts.
    pub fn wait_ready(&mut self) -> Duration {
        let start = Instant::now();
        let serve = &mut self.serve;
        let up = self.ns.enter(|| {
            netns::wait_until(STARTUP, || {
                if serve.exited().is_some() {
                    return Some(false);
                }
                TcpStream::connect_timeout(&addr(PROBE), Duration::from_millis(200))
                    .ok()
                    .map(|_| true)
            })
        });
        match up.expect("enter the namespace") {
            Some(true) => start.elapsed(),
            _ => panic!(
                "serve did not answer within {STARTUP:?}: {}",
                self.serve.died()
            ),
        }
    }

    /// Stops `serve` with SIGINT (by PID) and starts it again.
    pub fn restart(&mut self) -> Duration {
        let status = self
            .serve
            .interrupt(Duration::from_secs(5))
            .expect("stop serve");
        assert!(
            status.success(),
            "serve exited with {status} on SIGINT: {}",
            self.serve.log()
        );
        self.serve = spawn_serve(&self.ns, &self.args);
        self.wait_ready()
    }

    /// Panics, with `serve`'s output, if it is no longer running.
    pub fn assert_alive(&mut self, when: &str) {
        if let Some(status) = self.serve.exited() {
            panic!(
                "serve died {when} ({status}); its output:\n{}",
                self.serve.log()
            );
        }
    }

    /// Gives the namespace's end of tap0 more addresses, so clients can
    /// bind to them: `192.168.69.N/24` for each N. Only inside the
    /// namespace, so they go away with it.
    ///
    /// Each address is then introduced to the device: smoltcp 0.14 sends
    /// one ARP request per second for all unknown addresses together
    /// (smoltcp#1209), so clients on several new addresses at once would
    /// wait up to a second each for their first reply. The namespace
    /// forgets the device's MAC address and asks for it again from each
    /// new address; the device learns the asker from the request.
    pub fn add_client_addresses(&self, hosts: &[u8]) {
        for &n in hosts {
            let cidr = format!("192.168.69.{n}/24");
            self.ns
                .ip(&["addr", "add", &cidr, "dev", "tap0"])
                .expect("add a client address inside the namespace");
        }
        for &n in hosts {
            self.ns
                .ip(&["neigh", "flush", "dev", "tap0"])
                .expect("flush the namespace's ARP cache");
            let src = Ipv4Addr::new(192, 168, 69, n);
            let known = self.inside(|| {
                let s = UdpSocket::bind((src, 0)).ok()?;
                s.connect(addr(9000)).ok()?;
                s.set_read_timeout(Some(Duration::from_millis(200))).ok()?;
                let mut buf = [0u8; 16];
                (0..15).find_map(|_| {
                    s.send(b"hello").ok()?;
                    s.recv(&mut buf).ok()
                })
            });
            assert!(known.is_some(), "the device never answered {src}");
        }
    }

    /// Runs `f` inside the namespace.
    pub fn inside<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        self.ns.enter(f).expect("enter the namespace")
    }

    /// Runs `program ARGS…` inside the namespace with `stdin` as its input,
    /// killing it if it outlives [`PROGRAM`].
    pub fn run(&self, program: &str, args: &[&str], stdin: &[u8]) -> Output {
        let mut cmd = self.ns.command(program);
        cmd.args(args)
            .env("TUTORIAL_HOST", DEVICE.to_string())
            .env("PYTHONIOENCODING", "utf-8")
            .env("PYTHONUTF8", "1");
        run_bounded(cmd, stdin, &format!("{program} {}", args.join(" ")))
    }

    /// `host-sim ARGS…` inside, with `stdin`.
    pub fn host_sim(&self, args: &[&str], stdin: &str) -> Output {
        self.run(EXE, args, stdin.as_bytes())
    }

    /// A tutorial client inside, with `stdin` for its `input()` calls.
    pub fn tutorial(&self, script: &str, stdin: &str) -> String {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/tutorial_clients")
            .join(script);
        let path = path.to_string_lossy().into_owned();
        let out = self.run("python3", &[&path], stdin.as_bytes());
        assert!(
            out.status.success(),
            "{script} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

pub fn spawn_serve(ns: &NetNs, args: &[String]) -> Proc {
    let mut cmd = ns.command(EXE);
    cmd.args(["serve", "--tap", "tap0"]).args(args);
    Proc::spawn(cmd, "host-sim serve").expect("spawn host-sim serve")
}

/// Runs `cmd` to completion with `stdin` fed from a thread, within [`PROGRAM`].
pub fn run_bounded(mut cmd: Command, stdin: &[u8], what: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let (mut input, mut out, mut err) = (
        child.stdin.take().unwrap(),
        child.stdout.take().unwrap(),
        child.stderr.take().unwrap(),
    );
    let stdin = stdin.to_vec();
    // Feeding and draining on threads: a large input cannot deadlock
    // against a full output pipe. Dropping `input` closes the child's stdin.
    let feeder = thread::spawn(move || input.write_all(&stdin));
    let reader = thread::spawn(move || {
        let mut v = Vec::new();
        out.read_to_end(&mut v).map(|_| v)
    });
    let err_reader = thread::spawn(move || {
        let mut v = Vec::new();
        err.read_to_end(&mut v).map(|_| v)
    });
    let Some(status) = netns::wait_until(PROGRAM, || child.try_wait().ok().flatten()) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{what} did not finish within {PROGRAM:?}");
    };
    let _ = feeder.join();
    let stdout = reader.join().unwrap().unwrap_or_default();
    let stderr = err_reader.join().unwrap().unwrap_or_default();
    Output {
        status,
        stdout,
        stderr,
    }
}

/// Connects with timeouts set.
pub fn connect(port: u16) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr(port), Duration::from_secs(2))?;
    s.set_read_timeout(Some(IO_WAIT))?;
    s.set_write_timeout(Some(IO_WAIT))?;
    Ok(s)
}

/// One small echo round trip.
pub fn echo_once(s: &mut TcpStream, msg: &[u8]) {
    s.write_all(msg).expect("send");
    let mut back = vec![0; msg.len()];
    s.read_exact(&mut back).expect("echo");
    assert_eq!(back, msg);
}

/// One UDP round trip, asking up to three times: UDP may drop.
pub fn udp_echo(port: u16, data: &[u8]) -> Vec<u8> {
    let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
    s.connect(addr(port)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = vec![0; 65536];
    for _ in 0..3 {
        s.send(data).unwrap();
        if let Ok(n) = s.recv(&mut buf) {
            return buf[..n].to_vec();
        }
    }
    panic!("no UDP reply from port {port}");
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
