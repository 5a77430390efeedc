//! One complete login-service request, parsed: a command of the line
//! protocol or the tutorial's dict.
//!
//! The two forms are told apart by the first non-whitespace byte: `{` starts
//! the tutorial's dict (`{'user': 'password'}`, see [`super::dict`]),
//! anything else is a line of the line protocol:
//!
//! ```text
//! AUTH <user> <client-nonce>  start a challenge-response login (see
//!                             super::scram): the password never crosses
//!                             the wire
//! PROOF <client-proof-hex>    answer the server's CHALLENGE
//! LOGIN <user> <password>     check credentials sent in clear; user and
//!                             password are single tokens without whitespace
//! WHOAMI                      who is logged in on this connection
//! LOGOUT                      forget the login
//! QUIT                        say goodbye and close
//! HELP                        list the commands
//! ```
//!
//! Commands are case-insensitive; tokens are separated by any Unicode
//! whitespace. Framing (finding the end of a request, stripping LF/CR,
//! the length limit) is the session's job: this module sees one request.

use super::dict::{self, DictError, Entry};
use super::hash::HASH_LEN;
use super::scram;
use super::store::MAX_USER;

/// Which form a request has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// The line protocol: one command per line, one reply line per command.
    Line,
    /// The tutorial's dict: one request, one verdict, then the connection
    /// closes.
    Dict,
}

impl Form {
    /// The form of a request whose first non-whitespace byte is `first`.
    pub fn of(first: u8) -> Form {
        if first == b'{' {
            Form::Dict
        } else {
            Form::Line
        }
    }
}

/// A parsed request.
///
/// The dict variant carries its decoded strings inline (about 0.5 KiB): a
/// request lives briefly on the stack, and there is no heap to box it on.
#[allow(clippy::large_enum_variant)]
pub enum Request<'a> {
    /// `AUTH <user> <client-nonce>`: the user name fits in [`MAX_USER`]
    /// bytes and the nonce is valid ([`scram::valid_client_nonce`]).
    Auth {
        /// The user name.
        user: &'a str,
        /// The client's nonce.
        client_nonce: &'a str,
    },
    /// `PROOF <client-proof-hex>`, decoded.
    Proof([u8; HASH_LEN]),
    /// `LOGIN <user> <password>`.
    Login {
        /// The user name.
        user: &'a str,
        /// The password.
        password: &'a str,
    },
    /// The dict form: key is the user name, value the password.
    DictLogin(Entry),
    /// `WHOAMI`.
    WhoAmI,
    /// `LOGOUT`.
    Logout,
    /// `QUIT`.
    Quit,
    /// `HELP`.
    Help,
}

impl core::fmt::Debug for Request<'_> {
    /// Never shows a password.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Request::Auth { user, .. } => f
                .debug_struct("Auth")
                .field("user", user)
                .finish_non_exhaustive(),
            Request::Proof(_) => f.write_str("Proof(..)"),
            Request::Login { user, .. } => f
                .debug_struct("Login")
                .field("user", user)
                .finish_non_exhaustive(),
            Request::DictLogin(entry) => f.debug_tuple("DictLogin").field(entry).finish(),
            Request::WhoAmI => f.write_str("WhoAmI"),
            Request::Logout => f.write_str("Logout"),
            Request::Quit => f.write_str("Quit"),
            Request::Help => f.write_str("Help"),
        }
    }
}

/// Why a request could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestError {
    /// Only whitespace: no request at all.
    Empty,
    /// The bytes are not UTF-8.
    InvalidUtf8,
    /// `LOGIN` without exactly a user and a password.
    LoginUsage,
    /// `AUTH` without exactly a user and a nonce.
    AuthUsage,
    /// `AUTH` with a user name over [`MAX_USER`] bytes (no such user can
    /// exist, so saying so tells nothing about the store).
    AuthUserTooLong,
    /// `AUTH` with a nonce that is not 8 to 64 printable ASCII characters.
    AuthNonce,
    /// `PROOF` without exactly one argument of 64 hex digits.
    ProofUsage,
    /// Not a command of the line protocol (or one with arguments it does
    /// not take).
    UnknownCommand,
    /// The dict form is malformed.
    Dict(DictError),
}

/// Parses one complete request: `bytes` without its line terminator.
pub fn parse(bytes: &[u8]) -> Result<Request<'_>, RequestError> {
    let first = bytes.iter().copied().find(|b| !b.is_ascii_whitespace());
    let Some(first) = first else {
        return Err(RequestError::Empty);
    };
    let text = core::str::from_utf8(bytes).map_err(|_| RequestError::InvalidUtf8)?;
    match Form::of(first) {
        Form::Dict => dict::parse(text)
            .map(Request::DictLogin)
            .map_err(RequestError::Dict),
        Form::Line => parse_line(text),
    }
}

fn parse_line(text: &str) -> Result<Request<'_>, RequestError> {
    // The words are split once, up to one more than any command takes: one
    // call site of the Unicode-aware splitter keeps the firmware small.
    let mut words = [""; 4];
    let mut n = 0;
    for (slot, word) in words.iter_mut().zip(text.split_whitespace()) {
        *slot = word;
        n += 1;
    }
    let [command, a, b, _] = words;
    if n == 0 {
        return Err(RequestError::Empty);
    }
    let args = n - 1;
    let is = |name: &str| command.eq_ignore_ascii_case(name);
    if is("LOGIN") {
        return match args {
            2 => Ok(Request::Login {
                user: a,
                password: b,
            }),
            _ => Err(RequestError::LoginUsage),
        };
    }
    if is("AUTH") {
        return match args {
            2 if a.len() > MAX_USER => Err(RequestError::AuthUserTooLong),
            2 if !scram::valid_client_nonce(b) => Err(RequestError::AuthNonce),
            2 => Ok(Request::Auth {
                user: a,
                client_nonce: b,
            }),
            _ => Err(RequestError::AuthUsage),
        };
    }
    if is("PROOF") {
        return match args {
            1 => scram::parse_hex(a)
                .map(Request::Proof)
                .ok_or(RequestError::ProofUsage),
            _ => Err(RequestError::ProofUsage),
        };
    }
    let request = if is("WHOAMI") {
        Request::WhoAmI
    } else if is("LOGOUT") {
        Request::Logout
    } else if is("QUIT") {
        Request::Quit
    } else if is("HELP") {
        Request::Help
    } else {
        return Err(RequestError::UnknownCommand);
    };
    match args {
        0 => Ok(request),
        _ => Err(RequestError::UnknownCommand),
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::format;
    use std::string::String;

    use super::*;

    fn login(bytes: &[u8]) -> Option<(String, String)> {
        match parse(bytes) {
            Ok(Request::Login { user, password }) => Some((user.into(), password.into())),
            Ok(Request::DictLogin(e)) => Some((e.key().into(), e.value().into())),
            _ => None,
        }
    }

    #[test]
    fn line_commands() {
        assert_eq!(
            login(b"LOGIN alice s3cret"),
            Some(("alice".into(), "s3cret".into()))
        );
        assert_eq!(
            login(b"login  alice\ts3cret "),
            Some(("alice".into(), "s3cret".into()))
        );
        assert_eq!(
            login("LoGiN 张三 p@ss:w{r}d'".as_bytes()),
            Some(("张三".into(), "p@ss:w{r}d'".into()))
        );
        assert!(matches!(parse(b"whoami"), Ok(Request::WhoAmI)));
        assert!(matches!(parse(b"Logout"), Ok(Request::Logout)));
        assert!(matches!(parse(b"QUIT"), Ok(Request::Quit)));
        assert!(matches!(parse(b" help "), Ok(Request::Help)));
        assert!(matches!(
            parse("auth 张三 abcdefgh".as_bytes()),
            Ok(Request::Auth {
                user: "张三",
                client_nonce: "abcdefgh"
            })
        ));
        let proof = format!("PROOF {}", "aB".repeat(32));
        assert!(matches!(parse(proof.as_bytes()), Ok(Request::Proof(p)) if p == [0xab; 32]));
    }

    #[test]
    fn scram_errors() {
        let long_user = format!("AUTH {} abcdefgh", "x".repeat(MAX_USER + 1));
        let fits = format!("AUTH {} abcdefgh", "x".repeat(MAX_USER));
        assert!(matches!(parse(fits.as_bytes()), Ok(Request::Auth { .. })));
        let nonce_64 = format!("AUTH u {}", "~".repeat(64));
        assert!(matches!(
            parse(nonce_64.as_bytes()),
            Ok(Request::Auth { .. })
        ));
        let nonce_65 = format!("AUTH u {}", "n".repeat(65));
        let bad_hex = format!("PROOF zz{}", "0".repeat(62));
        let cases: [(&[u8], RequestError); 11] = [
            (b"AUTH", RequestError::AuthUsage),
            (b"AUTH u", RequestError::AuthUsage),
            (b"AUTH u abcdefgh x", RequestError::AuthUsage),
            (long_user.as_bytes(), RequestError::AuthUserTooLong),
            (b"AUTH u short", RequestError::AuthNonce),
            (nonce_65.as_bytes(), RequestError::AuthNonce),
            ("AUTH u abcdefg\u{e9}".as_bytes(), RequestError::AuthNonce),
            (b"PROOF", RequestError::ProofUsage),
            (b"PROOF abcd", RequestError::ProofUsage),
            (b"PROOF 00 00", RequestError::ProofUsage),
            (bad_hex.as_bytes(), RequestError::ProofUsage),
        ];
        for (line, err) in cases {
            assert_eq!(
                parse(line).err(),
                Some(err),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn line_errors() {
        for bad in [&b"LOGIN"[..], b"LOGIN alice", b"login a b c"] {
            assert_eq!(parse(bad).err(), Some(RequestError::LoginUsage));
        }
        for bad in [&b"LOGINX a b"[..], b"hello", b"WHOAMI now", b"QUIT!", b"}"] {
            assert_eq!(parse(bad).err(), Some(RequestError::UnknownCommand));
        }
        assert_eq!(parse(b"").err(), Some(RequestError::Empty));
        assert_eq!(parse(b" \t ").err(), Some(RequestError::Empty));
        assert_eq!(
            parse(b"LOGIN a \xff").err(),
            Some(RequestError::InvalidUtf8)
        );
    }

    #[test]
    fn debug_hides_passwords() {
        let proof = format!("PROOF {}", "5e".repeat(32));
        assert_eq!(
            format!("{:?}", parse(proof.as_bytes()).unwrap()),
            "Proof(..)"
        );
        for req in [
            &b"LOGIN alice s3cret"[..],
            b"{'alice': 's3cret'}",
            b"AUTH alice s3cretnonce",
        ] {
            let shown = format!("{:?}", parse(req).unwrap());
            assert!(
                shown.contains("alice") && !shown.contains("s3cret"),
                "{shown}"
            );
        }
    }

    #[test]
    fn dict_form() {
        assert_eq!(
            login("{'张三': '123'}".as_bytes()),
            Some(("张三".into(), "123".into()))
        );
        assert_eq!(login(b"  {'a': 'b'}"), Some(("a".into(), "b".into())));
        assert_eq!(
            parse(b"{'a': 1}").err(),
            Some(RequestError::Dict(DictError::ExpectedString))
        );
        assert_eq!(
            parse(b"{'a': '\xff'}").err(),
            Some(RequestError::InvalidUtf8)
        );
        assert_eq!(Form::of(b'{'), Form::Dict);
        assert_eq!(Form::of(b'L'), Form::Line);
    }
}
