//! The three measurements, as a client on std (kernel) sockets against any
//! TCP echo server. Every echo is checked byte for byte: a server that
//! loses or reorders data fails the benchmark instead of looking fast.
//! Every socket has a read and write timeout, so a stuck server ends the
//! run with an error, never a hang.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

/// The longest any single read or write may block. Each normally takes
/// microseconds; seconds mean the server is gone (Ctrl-C stops it too).
const IO_WAIT: Duration = Duration::from_secs(3);

/// Round trips made before the latency clock starts: the first ones pay
/// for cold caches and ARP.
const WARMUP: usize = 500;

/// Size of the small messages, as in the peers' figures.
const SMALL: usize = 64;

/// The bulk pattern repeats every 251 bytes (a prime, so it never lines up
/// with a buffer or segment size): a byte out of place shows.
const PERIOD: usize = 251;

/// What one run measured.
#[derive(Debug, Clone, Copy)]
pub struct Figures {
    /// Bulk echo, bytes sent and received back per second, in MB/s (10^6).
    pub bulk_mb_s: f64,
    /// Median small-message round trip, µs.
    pub rtt_p50_us: f64,
    /// 99th percentile small-message round trip, µs.
    pub rtt_p99_us: f64,
    /// Round trips per second over many concurrent connections.
    pub rt_per_s: f64,
}

/// What to measure.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub bulk: usize,
    pub rtts: usize,
    pub conns: usize,
    pub rounds: usize,
}

/// Runs all three measurements against `addr`.
pub fn measure(addr: SocketAddr, plan: &Plan) -> io::Result<Figures> {
    let bulk_mb_s = bulk(addr, plan.bulk).map_err(|e| stalled("bulk echo", e))?;
    let (rtt_p50_us, rtt_p99_us) = latency(addr, plan.rtts).map_err(|e| stalled("latency", e))?;
    let rt_per_s =
        concurrency(addr, plan.conns, plan.rounds).map_err(|e| stalled("concurrency", e))?;
    Ok(Figures {
        bulk_mb_s,
        rtt_p50_us,
        rtt_p99_us,
        rt_per_s,
    })
}

/// Names the measurement, and says what a timeout means.
fn stalled(what: &str, e: io::Error) -> io::Error {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => io::Error::other(format!(
            "{what}: no progress for {IO_WAIT:?}: the server stopped answering"
        )),
        _ => io::Error::other(format!("{what}: {e}")),
    }
}

/// Connects with the timeouts set.
pub fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(IO_WAIT))?;
    stream.set_write_timeout(Some(IO_WAIT))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Streams `bytes` through the echo (a writer thread sends while this one
/// reads back) and returns MB/s, timed from the first byte sent to the last
/// byte received.
fn bulk(addr: SocketAddr, bytes: usize) -> io::Result<f64> {
    let mut stream = connect(addr)?;
    let mut writer = stream.try_clone()?;
    let chunk: Vec<u8> = (0..PERIOD * 256).map(|i| (i % PERIOD) as u8).collect();
    let start = Instant::now();
    thread::scope(|s| {
        let sender = s.spawn(move || -> io::Result<()> {
            let mut sent = 0;
            while sent < bytes {
                // Chunks are whole periods, so each starts at pattern byte 0.
                let n = chunk.len().min(bytes - sent);
                writer.write_all(&chunk[..n])?;
                sent += n;
            }
            writer.shutdown(Shutdown::Write)
        });
        let received = receive_pattern(&mut stream, bytes);
        if received.is_err() {
            // Wakes the sender if it is blocked on a full window.
            let _ = stream.shutdown(Shutdown::Both);
        }
        let sent = sender
            .join()
            .map_err(|_| io::Error::other("bulk sender panicked"))?;
        received.and(sent)
    })?;
    Ok(bytes as f64 / start.elapsed().as_secs_f64() / 1e6)
}

/// Reads `bytes` of the bulk pattern back, checking every byte. The check
/// is a `memcmp` against a precomputed copy of the pattern: a per-byte
/// check would cost the client as much CPU as the kernel's whole echo.
fn receive_pattern(stream: &mut TcpStream, bytes: usize) -> io::Result<()> {
    const READ: usize = 256 * 1024;
    let pattern: Vec<u8> = (0..PERIOD + READ).map(|i| (i % PERIOD) as u8).collect();
    let mut buf = vec![0; READ];
    let mut got = 0;
    while got < bytes {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(io::Error::other(format!(
                "echo closed after {got} of {bytes} bytes"
            )));
        }
        let expected = &pattern[got % PERIOD..][..n];
        if buf[..n] != *expected {
            let k = buf
                .iter()
                .zip(expected)
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            return Err(io::Error::other(format!(
                "echo corrupted at byte {}",
                got + k
            )));
        }
        got += n;
    }
    Ok(())
}

/// One small message at a time; returns the p50 and p99 round trip in µs.
fn latency(addr: SocketAddr, rtts: usize) -> io::Result<(f64, f64)> {
    let mut stream = connect(addr)?;
    let mut times = Vec::with_capacity(rtts);
    let (mut msg, mut back) = ([0u8; SMALL], [0u8; SMALL]);
    for i in 0..WARMUP + rtts.max(1) {
        // A counter in every message: a stale or repeated echo shows.
        msg[..8].copy_from_slice(&(i as u64).to_le_bytes());
        let start = Instant::now();
        round_trip(&mut stream, &msg, &mut back)?;
        if i >= WARMUP {
            times.push(start.elapsed());
        }
    }
    times.sort_unstable();
    let pick = |q: usize| times[(times.len() * q / 100).min(times.len() - 1)].as_secs_f64() * 1e6;
    Ok((pick(50), pick(99)))
}

/// `conns` connections, each on its own thread, each making `rounds` round
/// trips, all at once. Returns round trips per second, timed from the
/// moment all connections are open and released together.
fn concurrency(addr: SocketAddr, conns: usize, rounds: usize) -> io::Result<f64> {
    let streams = (0..conns)
        .map(|_| connect(addr))
        .collect::<io::Result<Vec<_>>>()?;
    let gate = Barrier::new(conns + 1);
    let (start, results) = thread::scope(|s| {
        let workers: Vec<_> = streams
            .into_iter()
            .enumerate()
            .map(|(c, mut stream)| {
                let gate = &gate;
                s.spawn(move || -> io::Result<()> {
                    let (mut msg, mut back) = ([c as u8; SMALL], [0u8; SMALL]);
                    gate.wait();
                    for r in 0..rounds {
                        msg[..8].copy_from_slice(&(r as u64).to_le_bytes());
                        round_trip(&mut stream, &msg, &mut back)?;
                    }
                    Ok(())
                })
            })
            .collect();
        gate.wait();
        let start = Instant::now();
        let results: Vec<_> = workers.into_iter().map(|w| w.join()).collect();
        (start, results)
    });
    let elapsed = start.elapsed();
    for r in results {
        r.map_err(|_| io::Error::other("connection thread panicked"))??;
    }
    Ok((conns * rounds) as f64 / elapsed.as_secs_f64())
}

/// Sends `msg`, reads the same number of bytes back and checks them.
fn round_trip(stream: &mut TcpStream, msg: &[u8], back: &mut [u8]) -> io::Result<()> {
    stream.write_all(msg)?;
    stream.read_exact(back)?;
    if back != msg {
        return Err(io::Error::other("echo returned different bytes"));
    }
    Ok(())
}
