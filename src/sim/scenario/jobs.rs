//! What a simulated client does in one session ([`Job`]), and the exact
//! bytes the device must answer — written out here by hand from the
//! services' documented behaviour, not computed by the code under test.

use crate::config::Ports;
use crate::sim::pattern;
use crate::sim::rng::Rng;
use crate::sim::scenario::tcp::{Step, TcpTask};
use crate::sim::scenario::udp::UdpTask;

/// The TCP chat's greeting (the auto-responder's).
const GREETING: &str = "Welcome to the smoltalk hotline. Type help for topics, byebye to leave.";

/// What a client may say, and the auto-responder's answer to it.
pub const TOPICS: &[(&str, &str)] = &[
    ("hours", "We are open 24/7, holidays included."),
    ("what is the price?", "Calls to this hotline are free."),
    (
        "help",
        "Topics: hours, price, agent, hello. Say byebye to leave.",
    ),
    (
        "hello there",
        "Hello! How can I help? (type help for topics)",
    ),
    ("你好", "你好! How can I help? (type help for topics)"),
    (
        "agent please",
        "All agents are robots today; this one is listening.",
    ),
    ("just saying", "Noted. Type help for topics."),
];

/// The demo users' passwords (`login::store::DEMO`).
pub const USERS: &[(&str, &str)] = &[("张三", "123"), ("赵四", "345"), ("王八", "567")];

/// Bytes a client's write may hold to leave in one TCP segment (the MSS is
/// 1460 here).
const ONE_SEGMENT: usize = 1400;

/// The chat's answer to a message over `MAX_MESSAGE` bytes.
const TOO_LONG: &str = "error: message too long (max 256 bytes)";

/// One chat message: a topic from [`TOPICS`], and whether it carries the
/// word the keyword rules mask (`sb`), so the reply quotes it back, masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Say {
    /// Index into [`TOPICS`].
    pub topic: u8,
    /// Add ` sb <tag>`: the reply then ends `You said: … ** <tag>`.
    pub insult: bool,
    /// Pad the message past 256 bytes: the reply is the "too long" error
    /// (line clients only; the rest of the line is skipped).
    pub long: bool,
}

/// How a chat client ends its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// `\n`, like `nc`.
    Lf,
    /// `\r\n`, like `telnet`.
    CrLf,
    /// Nothing: the tutorial's client, one message per `send()`.
    Tutorial,
}

/// How a login is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginForm {
    /// `LOGIN user password`, wait for the verdict, `QUIT`.
    Line,
    /// `LOGIN`, then `WHOAMI`, `LOGOUT`, `WHOAMI`, `QUIT`, one at a time.
    Session,
    /// `LOGIN …` and `QUIT` in one write, as a script would.
    Pipelined,
    /// The tutorial's `{'user': 'password'}`; the device closes after the
    /// verdict.
    Dict,
    /// The dict, and our FIN right behind it: the verdict must still come.
    DictHalfClose,
}

/// What one simulated client does in one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    /// A TCP echo stream of `len` pattern bytes to `port`, written and read
    /// at once; then the client closes.
    Echo {
        /// 7 or 8898.
        port: u16,
        /// Bytes to send.
        len: usize,
        /// Close our half as soon as everything is written, before the
        /// echo is back: the device must still echo it all, then close.
        half_close: bool,
    },
    /// One login.
    Login {
        /// The request form.
        form: LoginForm,
        /// User name.
        user: &'static str,
        /// Password; the verdict is "ok" only for a pair in [`USERS`].
        password: &'static str,
    },
    /// A TCP chat: greeting, one reply per message, then `byebye`.
    Chat {
        /// What the client says, in order.
        says: Vec<Say>,
        /// How its messages end.
        ending: Ending,
        /// Write every message at once after the greeting (line clients
        /// only): each still gets exactly one reply, in order.
        pipelined: bool,
    },
    /// Hotline datagrams, then `byebye`.
    Hotline {
        /// What the caller says (always tagged, so each reply names its
        /// datagram).
        says: Vec<u8>,
    },
    /// UDP echo datagrams of these sizes.
    UdpEcho {
        /// 7 or 9000.
        port: u16,
        /// Payload sizes.
        sizes: Vec<u16>,
    },
    /// Connect to `port`, send part of a request, and reset (RST), like a
    /// client that crashed. Only the device's cleanup is checked.
    Abort {
        /// Any TCP service port.
        port: u16,
    },
    /// Connect to `port`, send part of a request, and vanish: the client's
    /// cable is cut for the rest of the run, so nothing it sent is ever
    /// acknowledged or closed. The device must free the socket by its own
    /// timeouts. Always a client's last job.
    Vanish {
        /// Any TCP service port.
        port: u16,
    },
}

/// A job under way.
#[derive(Debug)]
pub(crate) enum Task {
    Tcp(TcpTask),
    Udp(UdpTask),
}

impl Job {
    /// Whether this is a login the device must refuse.
    pub fn is_bad_login(&self) -> bool {
        matches!(self, Job::Login { user, password, .. } if !USERS.contains(&(user, password)))
    }

    /// The session that does this job; `tag` makes its messages unique.
    pub(crate) fn task(&self, ports: &Ports, tag: &str, rng: Rng) -> Task {
        match self {
            Job::Echo {
                port,
                len,
                half_close,
            } => {
                let data = pattern(*len, rng.clone().next_u64() as u32);
                let steps = if *half_close {
                    vec![Step::Send(data.clone()), Step::Close, Step::Expect(data)]
                } else {
                    vec![Step::Send(data.clone()), Step::Expect(data), Step::Close]
                };
                Task::Tcp(TcpTask::new(*port, steps, rng))
            }
            Job::Login {
                form,
                user,
                password,
            } => Task::Tcp(TcpTask::new(
                ports.login,
                login_script(*form, user, password),
                rng,
            )),
            Job::Chat {
                says,
                ending,
                pipelined,
            } => Task::Tcp(TcpTask::new(
                ports.chat,
                chat_script(says, *ending, *pipelined, tag),
                rng,
            )),
            Job::Hotline { says } => {
                let mut calls: Vec<_> = says
                    .iter()
                    .enumerate()
                    .map(|(i, &topic)| {
                        let say = Say {
                            topic,
                            insult: true,
                            long: false,
                        };
                        let (text, reply) = conversation(say, &format!("{tag}.{i}"));
                        (text.into_bytes(), reply.into_bytes())
                    })
                    .collect();
                calls.push((b"byebye".to_vec(), b"byebye".to_vec()));
                Task::Udp(UdpTask::new(ports.hotline, calls))
            }
            Job::UdpEcho { port, sizes } => {
                let mut seeds = rng;
                let calls = sizes
                    .iter()
                    .map(|&n| {
                        let data = pattern(usize::from(n), seeds.next_u64() as u32);
                        (data.clone(), data)
                    })
                    .collect();
                Task::Udp(UdpTask::new(*port, calls))
            }
            Job::Abort { port } => Task::Tcp(TcpTask::new(
                *port,
                vec![Step::Send(partial(*port, ports)), Step::Abort],
                rng,
            )),
            Job::Vanish { port } => Task::Tcp(TcpTask::new(
                *port,
                vec![Step::Send(partial(*port, ports)), Step::Leave],
                rng,
            )),
        }
    }
}

/// The start of a request to `port`, cut off before it is complete.
fn partial(port: u16, ports: &Ports) -> Vec<u8> {
    let bytes: &[u8] = if port == ports.login {
        "LOGIN 张三 12".as_bytes()
    } else if port == ports.chat {
        b"what are your ho"
    } else {
        b"half an ec"
    };
    bytes.to_vec()
}

/// A chat: the greeting, one exact reply per message, then `byebye`.
fn chat_script(says: &[Say], ending: Ending, pipelined: bool, tag: &str) -> Vec<Step> {
    let end = match ending {
        Ending::Lf => "\n",
        Ending::CrLf => "\r\n",
        Ending::Tutorial => "",
    };
    // The "too long" error ends like the last complete message did (LF
    // before any): it answers no complete message of its own.
    let mut last_end = "\n";
    let mut exchanges: Vec<(String, String)> = says
        .iter()
        .enumerate()
        .map(|(i, say)| {
            let (text, reply) = conversation(*say, &format!("{tag}.{i}"));
            if say.long && ending != Ending::Tutorial {
                let long = format!("{text} {}", "x".repeat(300));
                (format!("{long}{end}"), format!("{TOO_LONG}{last_end}"))
            } else {
                last_end = end;
                (format!("{text}{end}"), format!("{reply}{end}"))
            }
        })
        .collect();
    exchanges.push((format!("byebye{end}"), format!("byebye{end}")));
    let mut steps = vec![Step::Expect(format!("{GREETING}\n").into_bytes())];
    // A batch must fit one segment: split across two, a retransmission
    // delay in the middle of a line is a quiet gap, which by the framing
    // rule ends a message there — correct, but not this script's replies.
    let batch: usize = exchanges.iter().map(|(send, _)| send.len()).sum();
    if pipelined && ending != Ending::Tutorial && batch <= ONE_SEGMENT {
        let (sends, replies): (String, String) = exchanges.into_iter().unzip();
        steps.push(Step::Send(sends.into_bytes()));
        steps.push(Step::Expect(replies.into_bytes()));
    } else {
        for (send, reply) in exchanges {
            steps.push(Step::Send(send.into_bytes()));
            steps.push(Step::Expect(reply.into_bytes()));
        }
    }
    steps
}

/// A chat message and the auto-responder's exact reply to it.
fn conversation(say: Say, tag: &str) -> (String, String) {
    let (text, answer) = TOPICS[usize::from(say.topic) % TOPICS.len()];
    if say.insult {
        (
            format!("{text} sb {tag}"),
            format!("{answer} You said: {text} ** {tag}"),
        )
    } else {
        (text.to_string(), answer.to_string())
    }
}

fn login_script(form: LoginForm, user: &str, password: &str) -> Vec<Step> {
    let ok = USERS.contains(&(user, password));
    let bytes = |s: String| s.into_bytes();
    let verdict = if ok {
        format!("OK {user}\n")
    } else {
        "ERR invalid user name or password\n".to_string()
    };
    let login = format!("LOGIN {user} {password}\n");
    let whoami = if ok {
        format!("OK {user}\n")
    } else {
        "ERR not logged in\n".to_string()
    };
    let ask =
        |send: &str, expect: String| [Step::Send(bytes(send.into())), Step::Expect(bytes(expect))];
    match form {
        LoginForm::Line => [ask(&login, verdict), ask("QUIT\n", "OK bye\n".into())].concat(),
        LoginForm::Session => [
            ask(&login, verdict),
            ask("WHOAMI\n", whoami),
            ask("LOGOUT\n", "OK logged out\n".into()),
            ask("WHOAMI\n", "ERR not logged in\n".into()),
            ask("QUIT\n", "OK bye\n".into()),
        ]
        .concat(),
        LoginForm::Pipelined => vec![
            Step::Send(bytes(format!("{login}QUIT\n"))),
            Step::Expect(bytes(format!("{verdict}OK bye\n"))),
        ],
        LoginForm::Dict | LoginForm::DictHalfClose => {
            let reply = if ok {
                "登录成功!"
            } else {
                "用户名或密码错误!"
            };
            let mut steps = vec![
                Step::Send(bytes(format!("{{'{user}': '{password}'}}"))),
                Step::Expect(reply.as_bytes().to_vec()),
            ];
            if form == LoginForm::DictHalfClose {
                steps.insert(1, Step::Close);
            }
            steps
        }
    }
}
