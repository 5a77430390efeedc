//! `--target tap`: `host-sim serve --tap tap0` in a private network
//! namespace, made for the run and deleted after it. The churn runs on
//! threads that entered the namespace, so 192.168.69.1 is the device under
//! test and no packet leaves the namespace.
//!
//! At the end `serve` is stopped with SIGINT (by PID) and prints what was
//! still in use (`serve: in use at exit: …`): that line is the device's own
//! account of leaked slots.

use std::error::Error;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use super::Usage;
use super::netns::{self, NetNs, Proc};

/// The device's address, `serve`'s default.
pub const DEVICE: Ipv4Addr = Ipv4Addr::new(192, 168, 69, 1);

/// How long `serve` may take to answer its first connection.
const STARTUP: Duration = Duration::from_secs(10);

/// How long `serve` may take to stop on SIGINT.
const SHUTDOWN: Duration = Duration::from_secs(5);

/// What `serve` prints on its way out, before the figures.
const EXIT_LINE: &str = "serve: in use at exit: ";

/// `serve` in its namespace.
pub struct Device {
    /// Declared first, so it is stopped before the namespace goes.
    serve: Proc,
    ns: NetNs,
}

impl Device {
    /// Creates the namespace, starts `serve` in it and waits until it
    /// answers.
    pub fn start() -> Result<Device, Box<dyn Error>> {
        if let Some(why) = netns::missing_prerequisite() {
            return Err(format!("soak --target tap {why}").into());
        }
        let exe = std::env::current_exe()?;
        let ns = NetNs::create("smts")?;
        let mut cmd = ns.command(&exe);
        cmd.args(["serve", "--tap", "tap0"]);
        // A line per connection would fill the log; warnings still come.
        cmd.env("RUST_LOG", "warn");
        let serve = Proc::spawn(cmd, "host-sim serve")?;
        let mut device = Device { serve, ns };
        device.wait_ready()?;
        Ok(device)
    }

    fn wait_ready(&mut self) -> Result<(), Box<dyn Error>> {
        let serve = &mut self.serve;
        let probe = SocketAddr::from((DEVICE, 8898));
        let up = self.ns.enter(|| {
            netns::wait_until(STARTUP, || {
                if serve.exited().is_some() {
                    return Some(false);
                }
                TcpStream::connect_timeout(&probe, Duration::from_millis(200))
                    .ok()
                    .map(|_| true)
            })
        })?;
        match up {
            Some(true) => Ok(()),
            _ => Err(format!(
                "serve did not answer within {STARTUP:?}: {}",
                self.serve.died()
            )
            .into()),
        }
    }

    /// Runs `f` on a thread inside the namespace; threads it starts are
    /// inside too.
    pub fn inside<T: Send>(&self, f: impl FnOnce() -> T + Send) -> std::io::Result<T> {
        self.ns.enter(f)
    }

    /// Whether `serve` is still running (it must be, after the churn).
    pub fn check_alive(&mut self) -> Result<(), Box<dyn Error>> {
        match self.serve.exited() {
            None => Ok(()),
            Some(_) => Err(self.serve.died().into()),
        }
    }

    /// Stops `serve` with SIGINT and returns what it had in use.
    pub fn stop(mut self) -> Result<Usage, Box<dyn Error>> {
        let status = self.serve.interrupt(SHUTDOWN)?;
        let log = self.serve.log();
        if !status.success() {
            return Err(format!("serve exited with {status} on SIGINT; its output:\n{log}").into());
        }
        log.lines()
            .find_map(|l| l.strip_prefix(EXIT_LINE).and_then(Usage::parse))
            .ok_or_else(|| {
                format!("serve printed no `{EXIT_LINE}…` line on SIGINT; its output:\n{log}").into()
            })
    }
}
