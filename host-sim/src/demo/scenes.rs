//! The demo's sessions: one method per scene, each a client script that
//! prints what crosses the wire and checks what the device answers.

use std::error::Error;
use std::fmt;

use smoltalk::login::session::{DICT_FAILED, DICT_OK};
use smoltalk::sim::{Conn, UdpConn, pattern};
use smoltcp::socket::tcp::State;
use smoltcp::time::Duration;

use super::transcript::{self, event, message, note, quote};
use super::{Demo, LOSSY_STREAM, Outcome, STREAM};

/// How long a UDP client waits for a reply before it asks again.
const UDP_RETRY: Duration = Duration::from_secs(2);
/// How often a UDP client asks before it gives up (at 50% loss a round
/// trip succeeds one time in four).
const UDP_TRIES: usize = 40;

/// What a reply must look like.
#[derive(Clone, Copy)]
enum Want<'s> {
    Exactly(&'s str),
    StartsWith(&'s str),
    Contains(&'s str),
}

impl Want<'_> {
    fn matches(self, got: &[u8]) -> bool {
        let Ok(got) = std::str::from_utf8(got) else {
            return false;
        };
        match self {
            Want::Exactly(s) => got == s,
            Want::StartsWith(s) => got.starts_with(s),
            Want::Contains(s) => got.contains(s),
        }
    }
}

impl fmt::Display for Want<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Want::Exactly(s) => write!(f, "{}", quote(s.as_bytes())),
            Want::StartsWith(s) => write!(f, "{}…", quote(s.as_bytes())),
            Want::Contains(s) => write!(f, "…{}…", quote(s.as_bytes())),
        }
    }
}

/// Fails unless `got` is what was wanted.
fn check(got: &[u8], want: Want<'_>) -> Outcome {
    if want.matches(got) {
        Ok(())
    } else {
        Err(format!("expected {want}, got {}", quote(got)).into())
    }
}

impl Demo<'_> {
    pub(super) fn tcp_echo(&mut self) -> Outcome {
        for port in self.config.ports.tcp_echo {
            let conn = self.connect(0, port)?;
            let to = format!("echo:{port}");
            self.send(0, conn, &to, b"hello!")?;
            let got = self.w.recv_until(conn, self.patience, |b| b.len() >= 6)?;
            message("device", &Self::name(0), &got);
            check(&got, Want::Exactly("hello!"))?;
            self.hang_up(conn)?;
        }
        Ok(())
    }

    pub(super) fn tcp_echo_stream(&mut self) -> Outcome {
        let data = pattern(if self.lossy { LOSSY_STREAM } else { STREAM }, 1);
        let port = self.config.ports.tcp_echo[0];
        let conn = self.connect(0, port)?;
        let got = self.w.echo_exchange(conn, &data, self.patience)?;
        let verdict = if got == data {
            "byte-exact ✓"
        } else {
            "DIFFERENT ✗"
        };
        let what = format!(
            "{} bytes out, {} bytes back, {verdict}",
            data.len(),
            got.len()
        );
        transcript::exchange(&Self::name(0), "⇄", &format!("echo:{port}"), &what);
        if got != data {
            return Err("the echoed stream differs from what was sent".into());
        }
        self.hang_up(conn)
    }

    pub(super) fn udp_echo(&mut self) -> Outcome {
        let sock = self.w.udp_bind(self.clients[0]);
        for port in self.config.ports.udp_echo {
            self.ask(
                0,
                sock,
                port,
                &format!("echo:{port}/udp"),
                "hello",
                Want::Exactly("hello"),
            )?;
        }
        Ok(())
    }

    pub(super) fn login_line(&mut self) -> Outcome {
        let conn = self.connect(0, self.config.ports.login)?;
        let to = format!("login:{}", self.config.ports.login);
        self.line(0, conn, &to, "LOGIN 张三 123\n", Want::Exactly("OK 张三\n"))?;
        note(&format!(
            "PBKDF2 with 4096 iterations, {} per poll: other clients never wait for it",
            self.config.limits.hash_iterations_per_poll
        ));
        let bad = Want::Exactly("ERR invalid user name or password\n");
        self.line(0, conn, &to, "LOGIN 张三 124\n", bad)?;
        self.line(0, conn, &to, "QUIT\n", Want::Exactly("OK bye\n"))?;
        self.closed(0, conn)
    }

    pub(super) fn login_dict(&mut self) -> Outcome {
        let to = format!("login:{}", self.config.ports.login);
        for (request, verdict) in [
            ("{'张三': '123'}", DICT_OK),
            ("{'张三': '124'}", DICT_FAILED),
        ] {
            let conn = self.connect(0, self.config.ports.login)?;
            self.send(0, conn, &to, request.as_bytes())?;
            // One verdict, no newline, then the device closes: exactly what
            // the tutorial's client reads with a single recv().
            let got = self.until_closed(conn)?;
            message("device", &Self::name(0), &got);
            event("device", &Self::name(0), "(closes)");
            check(&got, Want::Exactly(verdict))?;
            self.hang_up(conn)?;
        }
        Ok(())
    }

    pub(super) fn chat_lines(&mut self) -> Outcome {
        let conn = self.dial_chat(1)?;
        let to = format!("chat:{}", self.config.ports.chat);
        self.line(1, conn, &to, "hi\n", Want::StartsWith("Hello!"))?;
        self.line(
            1,
            conn,
            &to,
            "what are your hours?\n",
            Want::Contains("24/7"),
        )?;
        self.line(1, conn, &to, "byebye\n", Want::Exactly("byebye\n"))?;
        self.closed(1, conn)
    }

    pub(super) fn chat_tutorial(&mut self) -> Outcome {
        let conn = self.dial_chat(2)?;
        let to = format!("chat:{}", self.config.ports.chat);
        self.send(2, conn, &to, "你好".as_bytes())?;
        let got = self.w.recv_until(conn, self.patience, |b| !b.is_empty())?;
        message("device", &Self::name(2), &got);
        note(&format!(
            "no newline: the message ended when the client had been quiet for {} ms",
            self.config.limits.quiet_flush.total_millis()
        ));
        check(&got, Want::StartsWith("你好!"))?;
        if got.ends_with(b"\n") {
            return Err("a reply to a message without newline must not add one".into());
        }
        self.send(2, conn, &to, b"byebye")?;
        // `byebye` exactly: the tutorial's client compares without stripping.
        let got = self.until_closed(conn)?;
        message("device", &Self::name(2), &got);
        event("device", &Self::name(2), "(closes)");
        check(&got, Want::Exactly("byebye"))?;
        self.hang_up(conn)
    }

    pub(super) fn hotline(&mut self) -> Outcome {
        let port = self.config.ports.hotline;
        let to = format!("hotline:{port}");
        let socks: Vec<UdpConn> = self.clients.map(|c| self.w.udp_bind(c)).to_vec();
        let rounds: [&[(usize, &str, Want<'_>)]; 2] = [
            &[
                (0, "hello", Want::StartsWith("Hello!")),
                (1, "you sb", Want::Contains("You said: you **")),
                (2, "what are your hours?", Want::Contains("24/7")),
            ],
            &[
                (1, "is it free? what is the price", Want::Contains("free")),
                (0, "byebye", Want::Exactly("byebye")),
                (2, "help", Want::StartsWith("Topics:")),
            ],
        ];
        for (i, round) in rounds.iter().enumerate() {
            for &(c, text, want) in *round {
                let reply = self.ask(c, socks[c], port, &to, text, want)?;
                if text.contains("sb") && reply.windows(2).any(|w| w == b"sb") {
                    return Err("the hotline repeated the insult".into());
                }
            }
            let callers = self.w.server().usage().hotline_sessions;
            note(&match i {
                0 => format!("the device now keeps {callers} hotline sessions at once"),
                _ => format!(
                    "client 1 said byebye: {callers} sessions remain, until 120 s of silence"
                ),
            });
        }
        Ok(())
    }

    /// Connects client `c` to the chat and reads the greeting: the server
    /// speaks first.
    fn dial_chat(&mut self, c: usize) -> Result<Conn, Box<dyn Error>> {
        let port = self.config.ports.chat;
        let conn = self.connect(c, port)?;
        event(&Self::name(c), &format!("chat:{port}"), "(connects)");
        let got = self
            .w
            .recv_until(conn, self.patience, |b| b.contains(&b'\n'))?;
        message("device", &Self::name(c), &got);
        check(&got, Want::StartsWith("Welcome"))?;
        Ok(conn)
    }

    /// Client `c` sends `data` on `conn`.
    fn send(&mut self, c: usize, conn: Conn, to: &str, data: &[u8]) -> Outcome {
        message(&Self::name(c), to, data);
        Ok(self.w.send(conn, data)?)
    }

    /// Client `c` sends one line and reads one line back.
    fn line(&mut self, c: usize, conn: Conn, to: &str, text: &str, want: Want<'_>) -> Outcome {
        self.send(c, conn, to, text.as_bytes())?;
        let got = self
            .w
            .recv_until(conn, self.patience, |b| b.contains(&b'\n'))?;
        message("device", &Self::name(c), &got);
        check(&got, want)
    }

    /// Waits for the device to close after a goodbye, then closes our end.
    fn closed(&mut self, c: usize, conn: Conn) -> Outcome {
        let rest = self.until_closed(conn)?;
        event("device", &Self::name(c), "(closes)");
        if !rest.is_empty() {
            return Err(format!("unexpected bytes before the close: {}", quote(&rest)).into());
        }
        self.hang_up(conn)
    }

    /// Everything the device sends until it closes; a reset is an error,
    /// not an empty reply.
    fn until_closed(&mut self, conn: Conn) -> Result<Vec<u8>, Box<dyn Error>> {
        let got = self.w.wait_closed(conn, self.patience)?;
        if self.w.state(conn) == State::Closed {
            let what = if got.is_empty() {
                String::new()
            } else {
                format!(" after {}", quote(&got))
            };
            return Err(format!("the connection was reset{what}").into());
        }
        Ok(got)
    }

    /// Closes our end and waits until the device has closed too, so its
    /// socket is free for the next client.
    fn hang_up(&mut self, conn: Conn) -> Outcome {
        self.w.close(conn);
        self.w.wait_closed(conn, self.patience)?;
        Ok(())
    }

    /// Client `c` sends one datagram to `port` and waits for the reply that
    /// `want` describes, asking again on a lossy link. Returns the reply.
    fn ask(
        &mut self,
        c: usize,
        sock: UdpConn,
        port: u16,
        to: &str,
        text: &str,
        want: Want<'_>,
    ) -> Result<Vec<u8>, Box<dyn Error>> {
        let me = Self::name(c);
        message(&me, to, text.as_bytes());
        for attempt in 0..UDP_TRIES {
            if attempt > 0 {
                note(&format!(
                    "no reply within {} s: asking again",
                    UDP_RETRY.secs()
                ));
            }
            self.w.udp_send(sock, port, text.as_bytes())?;
            let until = self.w.now() + UDP_RETRY;
            // Each pass takes one datagram or ends the wait; the queue is
            // bounded, so is the loop.
            for _ in 0..64 {
                if self.w.now() >= until {
                    break;
                }
                let Ok(reply) = self.w.udp_recv(sock, until - self.w.now()) else {
                    break;
                };
                if want.matches(&reply) {
                    message("device", &me, &reply);
                    return Ok(reply);
                }
                if !self.lossy {
                    message("device", &me, &reply);
                    return Err(format!("expected {want}, got {}", quote(&reply)).into());
                }
                note(&format!(
                    "ignored {}: the answer to an earlier try",
                    quote(&reply)
                ));
            }
            if !self.lossy {
                break;
            }
        }
        Err(format!("no answer from {to}").into())
    }
}
