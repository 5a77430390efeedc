//! `host-sim demo`: one session of every service on an in-process network,
//! printed as a transcript.
//!
//! The device and three client nodes share a simulated switch
//! ([`World`]). Each scene in [`scenes`] is one session of one service,
//! driven with the world's blocking helpers, printed as it happens and
//! checked against what the service must answer. Time is simulated, so the
//! whole demo takes a fraction of a second of real time, and a run with the
//! same `--seed` and `--loss` is the same frame for frame.
//!
//! With `--loss`, frames are dropped at random. TCP recovers by itself
//! (slowly: smoltcp's retransmission timer starts at one second and
//! doubles); the UDP clients ask again, as any UDP client must. The device's
//! peer and idle timeouts are raised to match, so a session that is only
//! slow is not cut.

mod scenes;
mod transcript;

use std::error::Error;
use std::time::Instant as WallClock;

use smoltalk::Config;
use smoltalk::chat::AutoResponder;
use smoltalk::net::HostMemory;
use smoltalk::sim::{ClientId, Conn, Faults, SimError, World};
use smoltcp::time::Duration;

use crate::DemoArgs;
use transcript::{emit, section};

/// What a scene returns: any failure ends that scene, not the demo.
type Outcome = Result<(), Box<dyn Error>>;

/// One session of one service.
type Scene<'a> = fn(&mut Demo<'a>) -> Outcome;

/// The scenes, in the order they run, with their section titles.
fn script<'a>() -> [(&'static str, Scene<'a>); 8] {
    [
        (
            "TCP echo: port 7, and the tutorial's hello on 8898",
            Demo::tcp_echo,
        ),
        ("TCP echo: a larger stream", Demo::tcp_echo_stream),
        (
            "UDP echo: port 7, and the tutorial's hello on 9000",
            Demo::udp_echo,
        ),
        (
            "login, line form: a good password, a bad one",
            Demo::login_line,
        ),
        ("login, the tutorial's dict form", Demo::login_dict),
        ("TCP chat: a line client (nc, telnet)", Demo::chat_lines),
        (
            "TCP chat: the tutorial's client (no newline)",
            Demo::chat_tutorial,
        ),
        ("UDP hotline: three callers at once", Demo::hotline),
    ]
}

/// Client nodes in the world.
const CLIENTS: usize = 3;
/// Bytes of the larger TCP echo stream.
const STREAM: usize = 256 * 1024;
/// The stream on a lossy link: every lost segment costs at least one second
/// of simulated time, so a shorter stream keeps the demo short.
const LOSSY_STREAM: usize = 32 * 1024;
/// How long a step may wait for the device, in simulated time: long enough
/// for TCP's backed-off retransmissions at 50% loss.
const PATIENCE: Duration = Duration::from_secs(60);
/// The same on a lossy link.
const LOSSY_PATIENCE: Duration = Duration::from_secs(3600);
/// `World::connect` gives up after 10 s of simulated time; on a lossy link
/// the handshake may take longer, so the demo dials again.
const CONNECT_TRIES: usize = 20;

/// The demo's state: the world and what the scenes need to drive it.
pub(crate) struct Demo<'a> {
    w: World<'a>,
    clients: [ClientId; CLIENTS],
    config: Config,
    /// How long to wait for any one answer.
    patience: Duration,
    /// Whether frames may be lost: UDP clients then ask again instead of
    /// failing at the first unexpected or missing reply.
    lossy: bool,
}

/// Runs the demo; fails if any session did not go as it must.
pub fn run(args: DemoArgs) -> Result<(), Box<dyn Error>> {
    if !(0.0..=0.5).contains(&args.loss) {
        return Err(format!("--loss must be between 0.0 and 0.5, got {}", args.loss).into());
    }
    // The transcript is the demo's output; the device's own log lines
    // would interleave with it. RUST_LOG=info brings them back.
    if std::env::var_os("RUST_LOG").is_none() {
        log::set_max_level(log::LevelFilter::Error);
    }
    let lossy = args.loss > 0.0;
    let patience = if lossy { LOSSY_PATIENCE } else { PATIENCE };
    let mut config = Config::HOST;
    config.limits.peer_timeout = config.limits.peer_timeout.max(patience);
    config.limits.idle_timeout = config.limits.idle_timeout.max(patience);

    let mut memory = HostMemory::new(&config);
    let mut w = World::new(&config, &mut memory, args.seed).map_err(|e| e.to_string())?;
    if let Some(path) = &args.pcap {
        w.hub()
            .capture(path)
            .map_err(|e| format!("cannot write the capture {}: {e}", path.display()))?;
    }
    w.hub().set_faults(Faults {
        loss: args.loss,
        ..Faults::NONE
    });
    let clients = [(); CLIENTS].map(|()| w.add_client());
    let mut demo = Demo {
        w,
        clients,
        config,
        patience,
        lossy,
    };

    emit(format_args!(
        "smoltalk demo: the device at {} and clients 1-{CLIENTS} at 192.168.69.100-{} on a simulated switch",
        World::<'_, AutoResponder>::SERVER_IP,
        99 + CLIENTS,
    ));
    if lossy {
        emit(format_args!(
            "link: {:.0}% of frames lost (seed {}); TCP retransmits, UDP clients ask again",
            args.loss * 100.0,
            args.seed
        ));
    }

    let started = WallClock::now();
    let mut failed = Vec::new();
    let scenes = script();
    for (title, scene) in scenes {
        section(title);
        if let Err(e) = scene(&mut demo) {
            emit(format_args!("  ✗ {e}"));
            failed.push(title);
        }
    }
    let captured = demo.w.hub().flush_capture();

    section("summary");
    let stats = demo.w.hub().stats();
    let ok = scenes.len() - failed.len();
    let mark = if failed.is_empty() { "✓" } else { "✗" };
    emit(format_args!(
        "  sessions   {ok} of {} OK {mark}",
        scenes.len()
    ));
    emit(format_args!(
        "  frames     {} sent, {} dropped",
        stats.frames, stats.dropped
    ));
    emit(format_args!(
        "  time       {:.3} s simulated, {:.3} s real",
        demo.w.now().total_millis() as f64 / 1000.0,
        started.elapsed().as_secs_f64()
    ));
    if let Some(path) = &args.pcap {
        match &captured {
            Ok(()) => emit(format_args!(
                "  capture    {} (open it in Wireshark)",
                path.display()
            )),
            Err(e) => emit(format_args!("  capture    {} failed: {e}", path.display())),
        }
    }
    if !failed.is_empty() {
        return Err(format!(
            "{} of {} sessions failed: {}",
            failed.len(),
            scenes.len(),
            failed.join("; ")
        )
        .into());
    }
    captured.map_err(|e| format!("cannot write the capture: {e}").into())
}

impl Demo<'_> {
    /// How the transcript names client `c`.
    fn name(c: usize) -> String {
        format!("client {}", c + 1)
    }

    /// Connects client `c` to the device's `port`, dialling again while
    /// the handshake times out (only on a lossy link).
    fn connect(&mut self, c: usize, port: u16) -> Result<Conn, SimError> {
        let mut tries = 0;
        loop {
            tries += 1;
            match self.w.connect(self.clients[c], port) {
                Err(SimError::Timeout(_)) if self.lossy && tries < CONNECT_TRIES => {
                    transcript::note("no answer to the connection request: dialling again")
                }
                result => return result,
            }
        }
    }
}
