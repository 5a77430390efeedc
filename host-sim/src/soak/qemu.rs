//! `--target qemu-mps2`: the mps2-an385 firmware, built and booted under
//! QEMU through the board's own runner (`boards/mps2-an385/run-qemu.sh`,
//! which is `boards/qemu/run-qemu.sh`), as `boards/qemu/board_test.py`
//! does it: on a free set of host ports (`SMOLTALK_PORT_OFFSET`), all on
//! 127.0.0.1, which QEMU's user networking forwards to the firmware.
//!
//! The runner, QEMU and the log decoder run in a process group of their
//! own, which is stopped as a whole at the end (also on failure). The
//! decoded log goes to a file under the board's `target/`; it is kept when
//! the soak fails.

use std::error::Error;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use smoltalk::config::Ports;

use super::Usage;

/// The board, relative to this package.
const BOARD: &str = "../boards/mps2-an385";

/// The firmware's target and binary name (its `.cargo/config.toml` and
/// `Cargo.toml`).
const ELF: &str = "target/thumbv7m-none-eabi/release/smoltalk-mps2-an385";

/// Host ports before the offset: `boards/qemu/run-qemu.sh`'s forwards.
const HOST_PORTS: Ports = Ports {
    tcp_echo: [8007, 8898],
    udp_echo: [8007, 9000],
    login: 8083,
    chat: 8081,
    hotline: 8086,
};

/// How long the firmware may take to boot and answer.
const BOOT: Duration = Duration::from_secs(30);

/// The firmware logs its usage this often (`STATUS_EVERY` in its main.rs).
pub const STATUS_EVERY: Duration = Duration::from_secs(60);

/// The board's directory.
pub fn board_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(BOARD);
    dir.canonicalize().unwrap_or(dir)
}

/// `cargo build --release` in the board's directory; returns the ELF.
pub fn build() -> Result<PathBuf, Box<dyn Error>> {
    let dir = board_dir();
    eprintln!("soak: cargo build --release in {}", dir.display());
    let status = Command::new("cargo")
        .args(["build", "--release"])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("building the mps2-an385 firmware failed ({status})").into());
    }
    let elf = dir.join(ELF);
    if !elf.exists() {
        return Err(format!("no firmware at {} after the build", elf.display()).into());
    }
    Ok(elf)
}

/// A running board.
pub struct Board {
    /// The runner: its PID is the process group's ID. Not reaped before
    /// the group is killed, so the ID cannot be reused meanwhile.
    runner: Child,
    /// The decoded firmware log.
    pub log_path: PathBuf,
    /// Added to every forwarded host port.
    pub offset: u16,
    stopped: bool,
}

impl Board {
    /// Boots `elf`; tries three sets of ports (one may be taken between
    /// the check and QEMU's bind).
    pub fn boot(elf: &Path) -> Result<Board, Box<dyn Error>> {
        let mut last = String::new();
        for _ in 0..3 {
            let mut board = Board::start(elf, pick_offset()?)?;
            match board.wait_ready() {
                Ok(()) => return Ok(board),
                Err(e) => {
                    let log = board.log();
                    board.stop();
                    if !log.contains("host forwarding") {
                        return Err(format!("{e}; the firmware log:\n{}", tail(&log, 30)).into());
                    }
                    last = e.to_string();
                }
            }
        }
        Err(format!("no free set of host ports worked: {last}").into())
    }

    fn start(elf: &Path, offset: u16) -> Result<Board, Box<dyn Error>> {
        let dir = board_dir();
        let log_path = dir
            .join("target")
            .join(format!("soak-{}-{offset}.log", std::process::id()));
        let log = File::create(&log_path)
            .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
        let runner = Command::new(dir.join("run-qemu.sh"))
            .arg(elf)
            .current_dir(&dir)
            .env("SMOLTALK_PORT_OFFSET", offset.to_string())
            .env("SMOLTALK_LOG", "decode")
            .env_remove("SMOLTALK_HOSTFWD")
            .env_remove("SMOLTALK_PCAP")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // A group of its own: the runner, QEMU and the decoder, which
            // stop() ends as a whole and nothing else shares.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start the QEMU runner: {e}"))?;
        Ok(Board {
            runner,
            log_path,
            offset,
            stopped: false,
        })
    }

    /// The forwarded ports on 127.0.0.1.
    pub fn ports(&self) -> Ports {
        let o = self.offset;
        Ports {
            tcp_echo: HOST_PORTS.tcp_echo.map(|p| p + o),
            udp_echo: HOST_PORTS.udp_echo.map(|p| p + o),
            login: HOST_PORTS.login + o,
            chat: HOST_PORTS.chat + o,
            hotline: HOST_PORTS.hotline + o,
        }
    }

    /// The decoded firmware log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Whether the runner is still running (a zombie has exited).
    pub fn alive(&self) -> bool {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.runner.id()));
        // The state follows the parenthesised command name.
        stat.ok()
            .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
            .unwrap_or(false)
    }

    /// Until the firmware has logged `node up` and TCP echo answers: QEMU
    /// accepts a forwarded connection before the guest does, so a connect
    /// alone proves nothing.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + BOOT;
        while !self.log().contains("node up") {
            if !self.alive() {
                return Err("QEMU exited during boot".into());
            }
            if Instant::now() >= deadline {
                return Err(format!("the firmware did not come up within {BOOT:?}"));
            }
            thread::sleep(Duration::from_millis(50));
        }
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.ports().tcp_echo[0]));
        loop {
            if echo_answers(addr) {
                return Ok(());
            }
            if !self.alive() {
                return Err("QEMU exited during boot".into());
            }
            if Instant::now() >= deadline {
                return Err(format!("TCP echo did not answer within {BOOT:?}"));
            }
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// The pool sizes the firmware logs at boot, as written.
    pub fn pools(&self) -> Option<String> {
        let log = self.log();
        let line = log.lines().find(|l| l.contains("pools: "))?;
        let (_, rest) = line.split_once("pools: ")?;
        Some(rest.split(';').next()?.trim().to_owned())
    }

    /// The firmware's first status line after byte `from` of the log,
    /// waiting up to `wait` for one.
    pub fn status_after(&self, from: usize, wait: Duration) -> Option<(Usage, String)> {
        let deadline = Instant::now() + wait;
        loop {
            let log = self.log();
            let found = log.get(from..).and_then(|new| {
                new.lines().find_map(|l| {
                    let (_, rest) = l.split_once("status: ")?;
                    Some((Usage::parse(rest)?, l.trim().to_owned()))
                })
            });
            if found.is_some() || Instant::now() >= deadline || !self.alive() {
                return found;
            }
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// Lines of the log that report a firmware error.
    pub fn errors(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.contains("ERROR") || l.contains("panic") || l.contains("qemu: fatal"))
            .map(|l| l.trim().to_owned())
            .collect()
    }

    /// Ends the process group: SIGTERM, then SIGKILL after 5 s.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let group = Pid::from_raw(self.runner.id() as i32);
        let _ = killpg(group, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.alive() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        // The runner is not reaped yet, so the group ID is still ours.
        let _ = killpg(group, Signal::SIGKILL);
        let _ = self.runner.wait();
    }
}

impl Drop for Board {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether TCP echo at `addr` echoes a few bytes within a second.
fn echo_answers(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    let mut back = [0u8; 6];
    s.write_all(b"ready?").is_ok() && s.read_exact(&mut back).is_ok() && &back == b"ready?"
}

/// An offset whose host ports are all free. Host ports 8007..9000 plus
/// 10000..23700 stay below Linux's ephemeral range (32768 and up), where
/// other programs' client sockets could take one between this check and
/// QEMU's bind.
fn pick_offset() -> Result<u16, Box<dyn Error>> {
    for _ in 0..100 {
        let mut r = [0u8; 2];
        getrandom::fill(&mut r).map_err(|e| format!("no random numbers: {e}"))?;
        let offset = 10_000 + u16::from_le_bytes(r) % 13_700;
        let p = HOST_PORTS;
        let tcp = [p.tcp_echo[0], p.tcp_echo[1], p.login, p.chat];
        let udp = [p.udp_echo[0], p.udp_echo[1], p.hotline];
        let free = tcp
            .iter()
            .all(|&port| std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port + offset)).is_ok())
            && udp
                .iter()
                .all(|&port| UdpSocket::bind((Ipv4Addr::LOCALHOST, port + offset)).is_ok());
        if free {
            return Ok(offset);
        }
    }
    Err("no free set of host ports found".into())
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
