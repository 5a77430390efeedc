//! The benchmark's reference server: TCP echo on the Linux kernel's own
//! stack, the plainest way std allows (a `TcpListener`, one thread per
//! connection). Whatever smoltalk reaches is put next to this.
//!
//! It runs as its own process, like `serve`, so both paths pay the same
//! process switches: `bench` starts the same binary as `host-sim bench` with
//! [`ROLE_ENV`] naming the address to listen on.

use std::error::Error;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;

use nix::sys::signal::Signal;

/// Set to an address, `host-sim bench` becomes the kernel echo server
/// instead of running the benchmark. Internal: only `bench` sets it.
pub const ROLE_ENV: &str = "HOST_SIM_BENCH_KERNEL_ECHO";

/// Serves TCP echo on `addr` until killed.
pub fn serve(addr: &str) -> Result<(), Box<dyn Error>> {
    // Dies with the benchmark even if the benchmark itself is killed
    // before it can stop us.
    nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)?;
    let addr: SocketAddr = addr
        .parse()
        .map_err(|e| format!("{ROLE_ENV}={addr}: {e}"))?;
    let listener = TcpListener::bind(addr)?;
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                thread::spawn(move || echo(stream));
            }
            Err(e) => eprintln!("kernel-echo: accept: {e}"),
        }
    }
    Ok(())
}

/// Echoes one connection until the client closes it.
fn echo(mut stream: TcpStream) {
    // Like smoltalk's sockets: no Nagle delay on small echoes.
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0; 64 * 1024];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        if stream.write_all(&buf[..n]).is_err() {
            return;
        }
    }
}
