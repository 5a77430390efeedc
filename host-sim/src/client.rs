//! The `echo`, `login`, `chat` and `udp-chat` subcommands: clients for the
//! services, on the host's own (kernel) sockets.
//!
//! Each client works two ways. On a terminal it prompts and reads what a
//! person types, like the tutorial's clients (the password without echo).
//! With stdin redirected it is a filter: one input per line, each reply
//! printed on its own line on stdout, exit at end of input. That is what
//! lets scripts and the TAP tests drive the services.
//!
//! # Layout
//!
//! - this file: one small function per client.
//! - [`input`]: where input lines come from (a terminal or a script).
//! - [`wire`]: connecting and reading replies, with bounded waits and errors
//!   that say what probably went wrong.
//! - [`pyrepr`]: Python's `repr()` of a string, for the tutorial's dict form.
//! - [`scram`]: the login's challenge-response, the client's side.

use std::error::Error;
use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use smoltalk::chat::BYEBYE;
use smoltalk::config::Ports;
use smoltalk::login::session::DICT_OK;

use crate::{ClientArgs, LoginArgs};

mod input;
mod pyrepr;
mod scram;
mod wire;

use input::Input;
use wire::Conn;

/// The result every subcommand returns to `main`.
type Outcome = Result<(), Box<dyn Error>>;

/// Where `host-sim serve` puts the device by default (`--ip`), so that the
/// clients reach it with no arguments.
const DEVICE: Ipv4Addr = Ipv4Addr::new(192, 168, 69, 1);

/// The service ports, from the core's own table so they cannot drift.
const PORTS: Ports = Ports::TUTORIAL;

/// How long echo and login wait for an answer. The device answers in
/// microseconds; seconds of silence mean it is gone.
const REPLY_WAIT: Duration = Duration::from_secs(10);

/// How long the chat waits for a reply: with `serve --operator` a person
/// types it.
const CHAT_WAIT: Duration = Duration::from_secs(120);

/// How long `udp-chat` waits for a reply datagram. UDP has no connection to
/// refuse, so silence is the only sign that nobody is there.
const UDP_WAIT: Duration = Duration::from_secs(3);

/// The largest echo write before its echo is read back. Reading each chunk's
/// echo before sending the next means a line of any length cannot fill both
/// directions' buffers and deadlock.
const ECHO_CHUNK: usize = 16 * 1024;

/// `--to`, or the device's address on the service's port.
fn target(args: &ClientArgs, port: u16) -> SocketAddr {
    args.to.unwrap_or(SocketAddr::from((DEVICE, port)))
}

/// TCP echo (RFC 862): each input line goes out as it is, terminator and
/// all, and what comes back is printed as it is. Scripted, stdout therefore
/// equals stdin byte for byte when the echo is faithful.
pub fn echo(args: ClientArgs) -> Outcome {
    let mut conn = Conn::open(target(&args, PORTS.tcp_echo[0]), REPLY_WAIT)?;
    let mut input = Input::stdin();
    let mut stdout = io::stdout().lock();
    while let Some(line) = input.line("echo> ")? {
        for chunk in line.chunks(ECHO_CHUNK) {
            conn.send(chunk)?;
            stdout.write_all(&conn.recv_exact(chunk.len())?)?;
        }
        stdout.flush()?;
    }
    Ok(())
}

/// The login service: asks for a user name and a password, logs in, and
/// prints the server's verdict (`OK <user>` or the server's `ERR …` line).
/// Exit status 0 when accepted, 1 when refused.
///
/// By default the password never leaves this machine: the challenge-response
/// exchange ([`scram`]) proves it, and checks that the server holds the
/// user's keys. `--plain` sends `LOGIN user password` in clear; `--tutorial`
/// sends what the tutorial's client sends, `str({user: password})`, also in
/// clear.
pub fn login(args: LoginArgs) -> Outcome {
    // Connect first, as the tutorial's client does, so a dead server is
    // reported before anyone types a password.
    let mut conn = Conn::open(target(&args.client, PORTS.login), REPLY_WAIT)?;
    let mut input = Input::stdin();
    let user = input.text("user: ")?.ok_or("no user name given")?;
    let password = input.secret("password: ")?.ok_or("no password given")?;
    let (verdict, accepted) = if args.tutorial {
        login_dict(&mut conn, &user, &password)?
    } else if args.plain {
        login_line(&mut conn, &user, &password)?
    } else {
        login_scram(&mut conn, &user, &password)?
    };
    println!("{verdict}");
    if accepted {
        Ok(())
    } else {
        Err("login refused".into())
    }
}

/// The tutorial's form: one dict literal, no newline; the server answers
/// with its verdict and closes. Returns the verdict and whether it is a yes.
fn login_dict(
    conn: &mut Conn,
    user: &str,
    password: &str,
) -> Result<(String, bool), Box<dyn Error>> {
    conn.send(pyrepr::dict(user, password).as_bytes())?;
    let verdict = conn.recv_until_close()?;
    let accepted = verdict == DICT_OK;
    Ok((verdict, accepted))
}

/// Challenge-response: `AUTH`, `CHALLENGE`, `PROOF`, then `OK <user>
/// <signature>` (checked, and printed as `OK <user>`) or `ERR …`.
fn login_scram(
    conn: &mut Conn,
    user: &str,
    password: &str,
) -> Result<(String, bool), Box<dyn Error>> {
    if user.split_whitespace().count() != 1 {
        return Err("the line protocol takes a user name without spaces; try --tutorial".into());
    }
    let exchange = scram::Exchange::new(user)?;
    conn.send(exchange.first_line().as_bytes())?;
    let challenge = conn
        .recv_line()?
        .ok_or("the server closed without a challenge")?;
    if !challenge.starts_with("CHALLENGE ") {
        if challenge.starts_with("ERR unknown command") {
            return Err("the server does not know AUTH (challenge-response);                         --plain would send the password in clear"
                .into());
        }
        // Locked out, or a name the server can never know: its own words.
        return Ok((challenge, false));
    }
    let answer = exchange.answer(&challenge, password)?;
    conn.send(answer.proof_line.as_bytes())?;
    let verdict = conn
        .recv_line()?
        .ok_or("the server closed without a verdict")?;
    let Some(rest) = verdict.strip_prefix("OK ") else {
        return Ok((verdict, false));
    };
    let name = answer.check_ok(rest)?.to_owned();
    let _ = conn.send(b"QUIT\n").and_then(|()| conn.recv_line());
    Ok((format!("OK {name}"), true))
}

/// The line protocol in clear (`--plain`): `LOGIN user password`, one
/// `OK …`/`ERR …` line back.
fn login_line(
    conn: &mut Conn,
    user: &str,
    password: &str,
) -> Result<(String, bool), Box<dyn Error>> {
    let one_token = |s: &str| s.split_whitespace().count() == 1;
    if !one_token(user) || !one_token(password) {
        let why = "LOGIN takes a user name and a password without spaces; \
                   try without --plain, or --tutorial";
        return Err(why.into());
    }
    conn.send(format!("LOGIN {user} {password}\n").as_bytes())?;
    let verdict = conn
        .recv_line()?
        .ok_or("the server closed without a verdict")?;
    // Polite, not essential: the verdict is already in.
    let _ = conn.send(b"QUIT\n").and_then(|()| conn.recv_line());
    let accepted = verdict.starts_with("OK ");
    Ok((verdict, accepted))
}

/// The turn-taking TCP chat: prints the server's greeting, then sends each
/// input line and prints the one reply. `byebye` from either side ends it.
pub fn chat(args: ClientArgs) -> Outcome {
    let mut conn = Conn::open(target(&args, PORTS.chat), CHAT_WAIT)?;
    let greeting = conn
        .recv_line()?
        .ok_or("the server closed before its greeting")?;
    println!("{greeting}");
    let mut input = Input::stdin();
    while let Some(line) = input.line(">>>>> ")? {
        let message = input::trim_newline(&line);
        // Always LF-terminated, so the reply is a line too (replies mirror
        // the terminator) and comes without the 30 ms quiet-gap wait.
        conn.send(&[message, b"\n"].concat())?;
        let reply = conn
            .recv_line()?
            .ok_or("the server closed the connection")?;
        println!("{reply}");
        if reply.trim() == BYEBYE || message.trim_ascii() == BYEBYE.as_bytes() {
            break;
        }
    }
    Ok(())
}

/// The UDP hotline: each input line is one datagram, and the one reply
/// datagram is printed. `byebye` from either side ends it.
pub fn udp_chat(args: ClientArgs) -> Outcome {
    let to = target(&args, PORTS.hotline);
    let any: SocketAddr = if to.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        "[::]:0".parse()?
    };
    let socket = UdpSocket::bind(any)?;
    // A connected UDP socket only receives from the server, and reports an
    // ICMP "port unreachable" as a refusal instead of as silence.
    socket.connect(to).map_err(|e| wire::explain(to, e))?;
    socket.set_read_timeout(Some(UDP_WAIT))?;
    let mut input = Input::stdin();
    let mut buf = vec![0; 64 * 1024];
    while let Some(line) = input.line(">>>")? {
        let message = input::trim_newline(&line);
        socket.send(message).map_err(|e| wire::explain(to, e))?;
        let n = socket
            .recv(&mut buf)
            .map_err(|e| wire::explain_udp(to, UDP_WAIT, e))?;
        let reply = String::from_utf8_lossy(&buf[..n]);
        println!("{reply}");
        if reply.trim() == BYEBYE || message.trim_ascii() == BYEBYE.as_bytes() {
            break;
        }
    }
    Ok(())
}
