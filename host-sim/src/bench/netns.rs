//! Private network namespaces, and the processes run inside them, for the
//! benchmark and the TAP tests. Both are torn down by `Drop`, so a failed
//! run or a panicking test leaves no namespace, TAP device or server behind.
//!
//! Traffic stays inside: a namespace has its own interfaces, routes and
//! addresses, so 192.168.69.1 there is the device under test and nothing on
//! any real network.
//!
//! `tests/tap.rs` includes this file with `#[path]`, so it uses only `std`
//! and `nix`.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, CpuSet, sched_setaffinity, setns};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Makes names unique within this process; the PID makes them unique
/// across processes, so parallel tests and runs never collide.
static NEXT: AtomicU32 = AtomicU32::new(0);

/// A network namespace of our own, deleted on drop.
pub struct NetNs {
    name: String,
}

impl NetNs {
    /// Creates `PREFIX-<pid>-<n>` with its loopback up.
    pub fn create(prefix: &str) -> io::Result<NetNs> {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("{prefix}-{}-{n}", std::process::id());
        ip(&["netns", "add", &name])?;
        // From here on, `Drop` deletes it whatever happens.
        let ns = NetNs { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name, for `ip netns exec`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip -n NAME ARGS…`.
    pub fn ip(&self, args: &[&str]) -> io::Result<()> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// A command that runs `program` inside: `ip netns exec NAME program`.
    /// `ip` execs the program, so a spawned child's PID is the program's own
    /// and signals sent to it reach the program.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// Runs `f` on a thread that has entered the namespace. Threads that `f`
    /// spawns start inside too, and sockets stay in the namespace they were
    /// made in. A panic in `f` is passed on.
    pub fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> io::Result<T> {
        let handle = File::open(format!("/var/run/netns/{}", self.name))?;
        let joined = thread::scope(|s| {
            s.spawn(move || {
                setns(&handle, CloneFlags::CLONE_NEWNET)?;
                Ok(f())
            })
            .join()
        });
        match joined {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        if let Err(e) = ip(&["netns", "delete", &self.name]) {
            eprintln!(
                "warning: could not delete network namespace {}: {e}",
                self.name
            );
        }
    }
}

/// Runs `ip ARGS…`, turning a failure into an error that quotes its stderr.
fn ip(args: &[&str]) -> io::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()?;
    if out.status.success() {
        Ok(())
    } else {
        let why = String::from_utf8_lossy(&out.stderr);
        Err(io::Error::other(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            why.trim()
        )))
    }
}

/// A child process that is stopped on drop: SIGINT first, so it can shut
/// down as on Ctrl-C, then SIGKILL if it is still there after a bound.
/// Its stdout and stderr go to a log file, quoted when something fails.
pub struct Proc {
    child: Child,
    /// What it is, for messages.
    what: String,
    /// Where its output goes; removed on drop.
    log: PathBuf,
}

impl Proc {
    /// Spawns `cmd` with stdin closed and its output in a log file.
    pub fn spawn(mut cmd: Command, what: &str) -> io::Result<Proc> {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let log = std::env::temp_dir().join(format!("smoltalk-{}-{n}.log", std::process::id()));
        let file = File::create(&log)?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()?;
        Ok(Proc {
            child,
            what: what.to_owned(),
            log,
        })
    }

    /// The process ID: the program's own (see [`NetNs::command`]).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it has exited, and how.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Sends SIGINT by PID and waits up to `bound` for the exit; SIGKILL
    /// after that. Returns how it exited.
    pub fn interrupt(&mut self, bound: Duration) -> io::Result<ExitStatus> {
        if let Some(status) = self.exited() {
            return Ok(status);
        }
        let pid = Pid::from_raw(self.pid() as i32);
        let _ = kill(pid, Signal::SIGINT);
        if let Some(status) = wait_until(bound, || self.exited()) {
            return Ok(status);
        }
        eprintln!(
            "warning: {} ignored SIGINT for {bound:?}; killing it",
            self.what
        );
        self.child.kill()?;
        self.child.wait()
    }

    /// Everything it printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// An error that says the process died, with its output.
    pub fn died(&mut self) -> io::Error {
        let status = self
            .exited()
            .map_or("still running".into(), |s| s.to_string());
        io::Error::other(format!(
            "{} stopped ({status}); its output:\n{}",
            self.what,
            self.log()
        ))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Err(e) = self.interrupt(Duration::from_secs(3)) {
            eprintln!("warning: could not stop {}: {e}", self.what);
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Calls `probe` every 10 ms until it returns something or `bound` passes.
pub fn wait_until<T>(bound: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + bound;
    loop {
        if let Some(t) = probe() {
            return Some(t);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Pins the calling thread, and the threads it spawns later, to one CPU.
pub fn pin_to_cpu(cpu: usize) -> io::Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu)?;
    // PID 0: the calling thread.
    sched_setaffinity(Pid::from_raw(0), &set)?;
    Ok(())
}

/// Why this machine cannot run namespaced TAP work, or `None` if it can:
/// it needs root (namespaces, TAP), `ip` from iproute2 and `/dev/net/tun`.
pub fn missing_prerequisite() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("needs root (network namespaces and TAP devices)".into());
    }
    match Command::new("ip")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => {}
        _ => return Some("needs `ip` from iproute2".into()),
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        return Some("needs /dev/net/tun (the tun kernel module)".into());
    }
    None
}
