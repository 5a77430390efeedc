//! One TCP client session as a non-blocking state machine: connect (again,
//! after a pause, when the pool refuses), then play a script of sends and
//! expected replies, then see the device close.
//!
//! Every byte the device sends is compared, as it arrives, with the script's
//! expected bytes, and the device must close exactly at their end. That one
//! rule checks every TCP invariant: an echo comes back byte-exact, a login
//! gets exactly one verdict, a chat message exactly one reply — a missing
//! reply stalls the script, a second one shows up as bytes nobody expected.

use smoltcp::socket::tcp::State;
use smoltcp::time::{Duration, Instant};

use crate::chat::Responder;
use crate::sim::rng::Rng;
use crate::sim::world::{ClientId, Conn, World};

/// One step of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Write these bytes (as fast as the socket takes them).
    Send(Vec<u8>),
    /// The device must send exactly these bytes next. Later steps wait
    /// until they have all arrived: that is how a client takes turns.
    Expect(Vec<u8>),
    /// Close our sending half (FIN).
    Close,
    /// Reset the connection (RST), like a client that crashed, and end the
    /// session there: what the device sent before is not checked.
    Abort,
    /// Walk away without a word (the cable is about to be cut): end the
    /// session here, unchecked, and leave the socket as it is.
    Leave,
}

/// Where the session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting to dial, at the start or after a refusal.
    Idle {
        until: Instant,
    },
    Connecting,
    Talking,
    Done,
}

/// A TCP session of a simulated client.
#[derive(Debug)]
pub(crate) struct TcpTask {
    port: u16,
    steps: Vec<Step>,
    /// Every `Expect` of the script, end to end.
    expected: Vec<u8>,
    /// For each step: how many expected bytes must have arrived first.
    gate: Vec<usize>,
    /// Next step to send, and how far into it.
    next: usize,
    offset: usize,
    /// Expected bytes that have arrived, all matching.
    received: usize,
    conn: Option<Conn>,
    phase: Phase,
    /// Connections the device refused (its pool was full).
    pub(crate) refused: u64,
    rng: Rng,
}

impl TcpTask {
    pub(crate) fn new(port: u16, steps: Vec<Step>, rng: Rng) -> Self {
        let mut expected = Vec::new();
        let mut gate = Vec::with_capacity(steps.len());
        for step in &steps {
            gate.push(expected.len());
            if let Step::Expect(b) = step {
                expected.extend_from_slice(b);
            }
        }
        TcpTask {
            port,
            steps,
            expected,
            gate,
            next: 0,
            offset: 0,
            received: 0,
            conn: None,
            phase: Phase::Idle {
                until: Instant::ZERO,
            },
            refused: 0,
            rng,
        }
    }

    /// When the task needs driving even if no frame arrives.
    pub(crate) fn wake_at(&self) -> Option<Instant> {
        match self.phase {
            Phase::Idle { until } => Some(until),
            _ => None,
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Where the session stands, for a report.
    pub(crate) fn progress(&self) -> String {
        format!(
            "{:?}, step {} of {}, {} of {} expected bytes received",
            self.phase,
            self.next,
            self.steps.len(),
            self.received,
            self.expected.len()
        )
    }

    /// Moves the session on as far as it can without stepping the world.
    pub(crate) fn drive<R: Responder>(
        &mut self,
        w: &mut World<'_, R>,
        client: ClientId,
    ) -> Result<(), String> {
        let now = w.now();
        match self.phase {
            Phase::Idle { until } if now >= until => {
                self.conn = Some(w.open(client, self.port).map_err(|e| e.to_string())?);
                self.phase = Phase::Connecting;
            }
            Phase::Idle { .. } | Phase::Done => return Ok(()),
            Phase::Connecting | Phase::Talking => {}
        }
        let Some(conn) = self.conn else {
            return Ok(());
        };
        if self.phase == Phase::Connecting {
            match w.state(conn) {
                State::SynSent => return Ok(()),
                State::Closed => {
                    // Refused: every socket of the pool is busy. Dial again
                    // later, as a real client would.
                    self.refused += 1;
                    let pause = self.rng.range(50, 500);
                    self.phase = Phase::Idle {
                        until: now + Duration::from_millis(pause),
                    };
                    return Ok(());
                }
                _ => self.phase = Phase::Talking,
            }
        }
        self.talk(w, conn)
    }

    fn talk<R: Responder>(&mut self, w: &mut World<'_, R>, conn: Conn) -> Result<(), String> {
        let aborts = self.steps.contains(&Step::Abort) || self.steps.contains(&Step::Leave);
        let mut error = None;
        let finished = w.drain(conn, |bytes| {
            if error.is_none() && !aborts {
                error = self.check(bytes).err();
            }
        });
        if let Some(e) = error {
            return Err(e);
        }
        while let Some(step) = self.steps.get(self.next) {
            if self.received < self.gate[self.next] {
                break;
            }
            match step {
                Step::Send(data) => {
                    self.offset += w.write_some(conn, &data[self.offset..]);
                    if self.offset < data.len() {
                        break;
                    }
                }
                Step::Expect(_) => {}
                Step::Close => w.close(conn),
                Step::Abort | Step::Leave => {
                    if *step == Step::Abort {
                        w.tcp(conn).abort();
                    }
                    self.phase = Phase::Done;
                    return Ok(());
                }
            }
            self.next += 1;
            self.offset = 0;
        }
        if !finished {
            return Ok(());
        }
        let state = w.state(conn);
        if self.received < self.expected.len() {
            return Err(format!(
                "the device closed ({state}) after {} of {} expected bytes; next expected: {}",
                self.received,
                self.expected.len(),
                quote(&self.expected[self.received..])
            ));
        }
        if state == State::Closed {
            return Err("the connection was reset instead of closed".into());
        }
        if self.next < self.steps.len() {
            return Err(format!(
                "the device closed before step {} of the script",
                self.next
            ));
        }
        // Our half: the tutorial's clients close once the server has.
        w.close(conn);
        self.phase = Phase::Done;
        Ok(())
    }

    /// Matches arriving bytes against the script.
    fn check(&mut self, bytes: &[u8]) -> Result<(), String> {
        let at = self.received;
        let want = &self.expected[at..];
        let same = bytes.iter().zip(want).take_while(|(a, b)| a == b).count();
        if same == bytes.len() {
            self.received += same;
            return Ok(());
        }
        let end = at + same;
        Err(if same == want.len() {
            format!(
                "{} bytes the script did not expect after byte {}: {}",
                bytes.len() - same,
                end,
                quote(&bytes[same..])
            )
        } else {
            format!(
                "byte {} differs: expected {} got {} (after {})",
                end,
                quote(&want[same..]),
                quote(&bytes[same..]),
                quote(&self.expected[end.saturating_sub(16)..end])
            )
        })
    }
}

/// Up to 48 bytes as an escaped string, for a failure message.
pub(crate) fn quote(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(48)];
    let text = String::from_utf8_lossy(cut);
    let more = if bytes.len() > cut.len() { "…" } else { "" };
    format!("{:?}{more}", text)
}
