//! The credential store: who may log in, as a salt and the SCRAM keys
//! derived from the salted password, never as plain text.
//!
//! A record keeps `StoredKey` and `ServerKey` (see [`super::scram`]), not
//! the PBKDF2 output itself: that output, `SaltedPassword`, is enough to
//! answer a SCRAM challenge, whereas the two keys are not. Both the
//! challenge-response form and the plaintext forms check against
//! `StoredKey`.
//!
//! The core only ever reads a borrowed slice of [`Record`]s, so a board can
//! keep its store in flash (`static`) and the host can load one from a users
//! file. With the `std` feature this module also reads and writes that file
//! format (see [`parse_line`]).

use core::fmt;

use subtle::ConstantTimeEq;

use super::hash::{HASH_LEN, Pbkdf2Job};
use super::scram;

/// Longest user name, in bytes of UTF-8. Records with longer names never
/// match (a session keeps the name of its logged-in user in a buffer of this
/// size).
pub const MAX_USER: usize = 32;

/// Length of a record's salt, in bytes.
pub const SALT_LEN: usize = 16;

/// PBKDF2 iterations of the demo records, and of the dummy check run for
/// unknown users when the store is empty.
pub const DEFAULT_ITERATIONS: u32 = 4096;

/// One user's credentials: with `SaltedPassword = PBKDF2-HMAC-SHA256(password,
/// salt, iterations)`, the SCRAM keys `StoredKey` and `ServerKey` derived
/// from it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// The user name: 1..=[`MAX_USER`] bytes, no whitespace, no `:`.
    pub user: &'a str,
    /// PBKDF2 iteration count.
    pub iterations: u32,
    /// The per-user random salt.
    pub salt: [u8; SALT_LEN],
    /// `SHA-256(HMAC(SaltedPassword, "Client Key"))`: what a password or a
    /// client proof is checked against.
    pub stored_key: [u8; HASH_LEN],
    /// `HMAC(SaltedPassword, "Server Key")`: signs the server's `OK`, so the
    /// client knows it talks to a server that holds its keys.
    pub server_key: [u8; HASH_LEN],
}

impl fmt::Debug for Record<'_> {
    /// Leaves out the salt and keys: debug output ends up in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("user", &self.user)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl<'a> Record<'a> {
    /// The record of `user` whose PBKDF2 output is `salted_password`: what
    /// the old users-file format stored, and what `add-user` computes.
    pub fn from_salted_password(
        user: &'a str,
        iterations: u32,
        salt: [u8; SALT_LEN],
        salted_password: &[u8; HASH_LEN],
    ) -> Self {
        Record {
            user,
            iterations,
            salt,
            stored_key: scram::stored_key_of(salted_password),
            server_key: scram::server_key(salted_password),
        }
    }

    /// Checks `password` against this record in one blocking call. For tools
    /// and tests: a session hashes in slices instead.
    pub fn verify(&self, password: &[u8]) -> bool {
        let mut job = Pbkdf2Job::new(password, &self.salt, self.iterations);
        job.step(u32::MAX);
        match job.result() {
            Some(salted) => scram::stored_key_of(salted).ct_eq(&self.stored_key).into(),
            None => false,
        }
    }
}

/// The records the login service checks against.
#[derive(Debug, Clone, Copy)]
pub struct Store<'a> {
    records: &'a [Record<'a>],
}

impl<'a> Store<'a> {
    /// A store over `records`. If two records have the same user name, the
    /// first one wins.
    pub const fn new(records: &'a [Record<'a>]) -> Self {
        Store { records }
    }

    /// The record of `user`, if there is one. Returns `None` for names longer
    /// than [`MAX_USER`]. The caller must then still do the same hash work
    /// (see [`Store::dummy`]), or the reply time tells which users exist.
    /// Looks at every record, wherever the name is found, so the time it
    /// takes does not tell where (or whether) it was.
    pub fn find(&self, user: &str) -> Option<&Record<'a>> {
        if user.len() > MAX_USER {
            return None;
        }
        let mut found = None;
        for r in self.records {
            if found.is_none() && r.user == user {
                found = Some(r);
            }
        }
        found
    }

    /// A record that no password matches, costing as many iterations as the
    /// store's first record (or [`DEFAULT_ITERATIONS`] if the store is
    /// empty): checking an unknown user against it takes as long as checking
    /// a wrong password for a known one. Stores that mix iteration counts
    /// leak which count a user has; keep them uniform.
    pub fn dummy(&self) -> Record<'static> {
        let iterations = match self.records.first() {
            Some(r) => r.iterations,
            None => DEFAULT_ITERATIONS,
        };
        // The key is never compared on its own: the session also requires
        // that the user was found. Zeros are not a plausible SHA-256 output.
        Record {
            user: "",
            iterations,
            salt: [0x5a; SALT_LEN],
            stored_key: [0; HASH_LEN],
            server_key: [0; HASH_LEN],
        }
    }

    /// All records, in order.
    pub fn records(&self) -> &'a [Record<'a>] {
        self.records
    }
}

/// The tutorial's three users (张三, 赵四, 王八, with the tutorial's
/// passwords), stored as salt, `StoredKey` and `ServerKey` with 4096
/// PBKDF2 iterations. Regenerate a record with
/// `python3 -c "import hashlib,hmac,os; s=os.urandom(16); p=hashlib.pbkdf2_hmac('sha256', PASSWORD.encode(), s, 4096); print(s.hex(), hashlib.sha256(hmac.digest(p, b'Client Key', 'sha256')).hexdigest(), hmac.digest(p, b'Server Key', 'sha256').hex())"`.
pub static DEMO_RECORDS: [Record<'static>; 3] = [
    Record {
        user: "张三",
        iterations: DEFAULT_ITERATIONS,
        salt: hex16("a8270b019d7f25a0b802b1837c003000"),
        stored_key: hex32("f1409f1803fb77e7a4de159b7948de8e79129ca4dd7ce6a89d3fa98b7eac96aa"),
        server_key: hex32("24c0aed295b0947251cac8ae5ffda39bdcba5c6b2919efe93bbad68af5e6cc60"),
    },
    Record {
        user: "赵四",
        iterations: DEFAULT_ITERATIONS,
        salt: hex16("e3f7c460a051c44c1a375b488c6a99a9"),
        stored_key: hex32("0ea26e8986d606256eec3dffa5d027727d1ba40e72836be14c657694e6412030"),
        server_key: hex32("fff51a0773705ff1cdac605d441d1c22f4a864b80c113d202bcfa16d3cdd4000"),
    },
    Record {
        user: "王八",
        iterations: DEFAULT_ITERATIONS,
        salt: hex16("74ddfb1c67acdfba4211a29f5554bc5c"),
        stored_key: hex32("61b811a13fdf98a61265a8b60b7ca38aff0b9f9cf1eee6471f7ba10e1b1ec5c6"),
        server_key: hex32("f1cb4371ee5a75c81f7b7184db67972b821c46912d08ff18e166cbaebb0da5e3"),
    },
];

/// A store of the [`DEMO_RECORDS`].
pub const DEMO: Store<'static> = Store::new(&DEMO_RECORDS);

/// Why a user name is not allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserError {
    /// The name is empty.
    Empty,
    /// The name is longer than [`MAX_USER`] bytes.
    TooLong,
    /// The name contains whitespace (the line protocol splits on it).
    Whitespace,
    /// The name contains `:` (the users file separates fields with it).
    Colon,
    /// The name contains a control character.
    Control,
}

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UserError::Empty => "user name is empty",
            UserError::TooLong => "user name is longer than 32 bytes",
            UserError::Whitespace => "user name contains whitespace",
            UserError::Colon => "user name contains ':'",
            UserError::Control => "user name contains a control character",
        })
    }
}

/// Checks that `user` is 1..=[`MAX_USER`] bytes of UTF-8 without whitespace,
/// `:` or control characters.
pub fn validate_user(user: &str) -> Result<(), UserError> {
    if user.is_empty() {
        return Err(UserError::Empty);
    }
    if user.len() > MAX_USER {
        return Err(UserError::TooLong);
    }
    for c in user.chars() {
        if c.is_whitespace() {
            return Err(UserError::Whitespace);
        }
        if c == ':' {
            return Err(UserError::Colon);
        }
        if c.is_control() {
            return Err(UserError::Control);
        }
    }
    Ok(())
}

/// Decodes 2 * N hex digits at compile time (a bad literal fails the build).
const fn hex<const N: usize>(s: &str) -> [u8; N] {
    const fn digit(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => panic!("not a hex digit"),
        }
    }
    let s = s.as_bytes();
    assert!(s.len() == 2 * N, "wrong hex length");
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = digit(s[2 * i]) << 4 | digit(s[2 * i + 1]);
        i += 1;
    }
    out
}

const fn hex16(s: &str) -> [u8; 16] {
    hex::<16>(s)
}

const fn hex32(s: &str) -> [u8; 32] {
    hex::<32>(s)
}

#[cfg(feature = "std")]
pub use self::file::{OwnedRecord, ParseError, Scheme, format_line, parse_line, parse_line_scheme};

/// The users file (host only).
///
/// One user per line. The second field names the format of the rest, so it
/// is the line's version tag:
///
/// ```text
/// user:scram-sha-256:ITERATIONS:SALT_HEX:STORED_KEY_HEX:SERVER_KEY_HEX
/// 张三:scram-sha-256:4096:a8270b019d7f25a0b802b1837c003000:f1409f18…aa:24c0aed2…60
/// ```
///
/// - `user`: 1..=32 bytes of UTF-8, no whitespace, no `:`, no control
///   characters;
/// - `scram-sha-256`: the scheme, version 2 of this file;
/// - `ITERATIONS`: PBKDF2 iterations, decimal, at least 1;
/// - `SALT_HEX`: 16 bytes as 32 hex digits;
/// - `STORED_KEY_HEX`, `SERVER_KEY_HEX`: the SCRAM keys (see
///   [`super::scram`]), 32 bytes each as 64 hex digits.
///
/// Version 1 lines, `user:pbkdf2-sha256:ITERATIONS:SALT_HEX:HASH_HEX`, are
/// still read: `HASH_HEX` is `SaltedPassword`, from which both keys are
/// derived on loading, so those users can log in every way. But a version 1
/// file is *password-equivalent* for challenge-response: whoever reads
/// `SaltedPassword` can compute a valid proof without knowing the password.
/// Re-add such users (`host-sim add-user`), which writes version 2 lines;
/// [`parse_line_scheme`] tells which lines are old.
///
/// [`parse_line`] reads one line; skipping blank lines and `#` comments and
/// numbering lines for error messages is the caller's job.
#[cfg(feature = "std")]
mod file {
    use std::string::String;

    use super::super::hash::pbkdf2_sha256;
    use super::super::scram::parse_hex;
    use super::*;

    /// The version 2 scheme tag, the one [`format_line`] writes.
    const SCRAM: &str = "scram-sha-256";
    /// The version 1 scheme tag, still read.
    const PBKDF2: &str = "pbkdf2-sha256";

    /// Which format a users-file line has.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Scheme {
        /// Version 2: `scram-sha-256`, salt and the two SCRAM keys.
        ScramSha256,
        /// Version 1: `pbkdf2-sha256`, salt and `SaltedPassword` (converted
        /// to the keys on loading; password-equivalent, so rewrite it).
        Pbkdf2Sha256,
    }

    /// A record that owns its user name, as read from a users file. The host
    /// keeps a `Vec<OwnedRecord>`, builds a `Vec<Record>` from it with
    /// [`OwnedRecord::as_record`] and a [`Store`] over that.
    #[derive(Clone, PartialEq, Eq)]
    pub struct OwnedRecord {
        /// The user name.
        pub user: String,
        /// PBKDF2 iteration count.
        pub iterations: u32,
        /// The per-user salt.
        pub salt: [u8; SALT_LEN],
        /// `StoredKey`.
        pub stored_key: [u8; HASH_LEN],
        /// `ServerKey`.
        pub server_key: [u8; HASH_LEN],
    }

    impl fmt::Debug for OwnedRecord {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.as_record().fmt(f)
        }
    }

    impl OwnedRecord {
        /// Hashes `password` (for `add-user`). The caller supplies a fresh
        /// random `salt`.
        pub fn from_password(
            user: &str,
            password: &str,
            iterations: u32,
            salt: [u8; SALT_LEN],
        ) -> Result<Self, ParseError> {
            validate_user(user).map_err(ParseError::User)?;
            if iterations == 0 {
                return Err(ParseError::Iterations);
            }
            let mut salted = pbkdf2_sha256(password.as_bytes(), &salt, iterations);
            let record = Self::from_salted(user, iterations, salt, &salted);
            super::super::hash::wipe(&mut salted);
            Ok(record)
        }

        fn from_salted(
            user: &str,
            iterations: u32,
            salt: [u8; SALT_LEN],
            salted: &[u8; HASH_LEN],
        ) -> Self {
            let r = Record::from_salted_password(user, iterations, salt, salted);
            OwnedRecord {
                user: user.into(),
                iterations,
                salt,
                stored_key: r.stored_key,
                server_key: r.server_key,
            }
        }

        /// The borrowed form the store holds.
        pub fn as_record(&self) -> Record<'_> {
            Record {
                user: &self.user,
                iterations: self.iterations,
                salt: self.salt,
                stored_key: self.stored_key,
                server_key: self.server_key,
            }
        }
    }

    /// Why a users-file line was rejected.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum ParseError {
        /// Not six `:`-separated fields (five for `pbkdf2-sha256`).
        FieldCount,
        /// The user name is not allowed.
        User(UserError),
        /// The scheme is neither `scram-sha-256` nor `pbkdf2-sha256`.
        Scheme,
        /// The iteration count is not a decimal number from 1 to 2^32 - 1.
        Iterations,
        /// The salt is not 32 hex digits.
        Salt,
        /// A key (or the old format's hash) is not 64 hex digits.
        Hash,
    }

    impl fmt::Display for ParseError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                ParseError::FieldCount => f.write_str(
                    "expected user:scram-sha-256:ITERATIONS:SALT_HEX:STORED_KEY_HEX:SERVER_KEY_HEX \
                     (or the old user:pbkdf2-sha256:ITERATIONS:SALT_HEX:HASH_HEX)",
                ),
                ParseError::User(e) => e.fmt(f),
                ParseError::Scheme => {
                    f.write_str("unknown scheme (expected scram-sha-256 or pbkdf2-sha256)")
                }
                ParseError::Iterations => {
                    f.write_str("iterations must be a decimal number from 1 to 4294967295")
                }
                ParseError::Salt => f.write_str("salt must be 32 hex digits (16 bytes)"),
                ParseError::Hash => f.write_str("keys and hashes must be 64 hex digits (32 bytes)"),
            }
        }
    }

    impl std::error::Error for ParseError {}

    /// Reads one users-file line of either version (without its line
    /// terminator; surrounding whitespace is ignored).
    pub fn parse_line(line: &str) -> Result<OwnedRecord, ParseError> {
        parse_line_scheme(line).map(|(r, _)| r)
    }

    /// [`parse_line`], also telling which version the line is.
    pub fn parse_line_scheme(line: &str) -> Result<(OwnedRecord, Scheme), ParseError> {
        let fields: std::vec::Vec<&str> = line.trim().split(':').collect();
        if fields.len() < 5 {
            return Err(ParseError::FieldCount);
        }
        let user = fields[0];
        validate_user(user).map_err(ParseError::User)?;
        let scheme = match fields[1] {
            SCRAM => Scheme::ScramSha256,
            PBKDF2 => Scheme::Pbkdf2Sha256,
            _ => return Err(ParseError::Scheme),
        };
        let expected = match scheme {
            Scheme::ScramSha256 => 6,
            Scheme::Pbkdf2Sha256 => 5,
        };
        if fields.len() != expected {
            return Err(ParseError::FieldCount);
        }
        let iterations = match fields[2].parse::<u32>() {
            Ok(n) if n > 0 && fields[2].bytes().all(|b| b.is_ascii_digit()) => n,
            _ => return Err(ParseError::Iterations),
        };
        let salt = parse_hex::<SALT_LEN>(fields[3]).ok_or(ParseError::Salt)?;
        let key = |i: usize| parse_hex::<HASH_LEN>(fields[i]).ok_or(ParseError::Hash);
        let record = match scheme {
            Scheme::ScramSha256 => OwnedRecord {
                user: user.into(),
                iterations,
                salt,
                stored_key: key(4)?,
                server_key: key(5)?,
            },
            Scheme::Pbkdf2Sha256 => {
                let mut salted = key(4)?;
                let r = OwnedRecord::from_salted(user, iterations, salt, &salted);
                super::super::hash::wipe(&mut salted);
                r
            }
        };
        Ok((record, scheme))
    }

    /// Writes `record` as one version 2 users-file line, without a line
    /// terminator.
    pub fn format_line(record: &Record<'_>) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = write!(s, "{}:{}:{}:", record.user, SCRAM, record.iterations);
        for (i, field) in [&record.salt[..], &record.stored_key, &record.server_key]
            .into_iter()
            .enumerate()
        {
            if i > 0 {
                s.push(':');
            }
            for b in field {
                let _ = write!(s, "{b:02x}");
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::format;

    use super::*;

    #[test]
    fn demo_store_verifies_the_tutorial_passwords() {
        for (user, password) in [("张三", "123"), ("赵四", "345"), ("王八", "567")] {
            let r = DEMO.find(user).expect("demo user");
            assert_eq!(r.iterations, 4096);
            assert!(r.verify(password.as_bytes()), "{user}");
        }
    }

    #[test]
    fn demo_store_rejects_wrong_passwords_and_unknown_users() {
        let r = DEMO.find("张三").expect("demo user");
        assert!(!r.verify(b"124"));
        assert!(!r.verify(b"345"));
        assert!(!r.verify(b""));
        assert!(DEMO.find("李四").is_none());
        assert!(DEMO.find("").is_none());
        assert!(DEMO.find("张三 ").is_none());
    }

    #[test]
    fn demo_salts_are_distinct_and_names_valid() {
        for (i, a) in DEMO_RECORDS.iter().enumerate() {
            assert_eq!(validate_user(a.user), Ok(()));
            for b in &DEMO_RECORDS[i + 1..] {
                assert_ne!(a.salt, b.salt);
            }
        }
    }

    #[test]
    fn dummy_costs_like_the_first_record_and_matches_nothing() {
        let d = DEMO.dummy();
        assert_eq!(d.iterations, DEMO_RECORDS[0].iterations);
        assert_eq!(Store::new(&[]).dummy().iterations, DEFAULT_ITERATIONS);
        assert!(!Record { iterations: 1, ..d }.verify(b""));
    }

    #[test]
    fn debug_hides_salt_and_hash() {
        let s = format!("{:?}", DEMO_RECORDS[0]);
        assert!(
            s.contains("张三") && !s.contains("salt") && !s.contains("hash"),
            "{s}"
        );
    }

    #[test]
    fn user_name_rules() {
        assert_eq!(validate_user("alice"), Ok(()));
        assert_eq!(validate_user(&"x".repeat(32)), Ok(()));
        assert_eq!(validate_user(&"x".repeat(33)), Err(UserError::TooLong));
        assert_eq!(validate_user(&"张".repeat(11)), Err(UserError::TooLong)); // 33 bytes
        assert_eq!(validate_user(""), Err(UserError::Empty));
        assert_eq!(validate_user("a b"), Err(UserError::Whitespace));
        assert_eq!(validate_user("a\u{3000}b"), Err(UserError::Whitespace));
        assert_eq!(validate_user("a:b"), Err(UserError::Colon));
        assert_eq!(validate_user("a\0b"), Err(UserError::Control));
        let long = "y".repeat(33);
        let recs = [Record {
            user: &long,
            ..DEMO_RECORDS[0]
        }];
        assert!(Store::new(&recs).find(&long).is_none());
    }

    #[cfg(feature = "std")]
    mod file {
        use super::super::*;

        #[test]
        fn format_then_parse_round_trips_the_demo_records() {
            for r in &DEMO_RECORDS {
                let line = format_line(r);
                let (owned, scheme) = parse_line_scheme(&line).expect("own output parses");
                assert_eq!(owned.as_record(), *r);
                assert_eq!(scheme, Scheme::ScramSha256);
            }
            assert_eq!(
                format_line(&DEMO_RECORDS[0]),
                "张三:scram-sha-256:4096:a8270b019d7f25a0b802b1837c003000:\
                 f1409f1803fb77e7a4de159b7948de8e79129ca4dd7ce6a89d3fa98b7eac96aa:\
                 24c0aed295b0947251cac8ae5ffda39bdcba5c6b2919efe93bbad68af5e6cc60"
            );
        }

        #[test]
        fn version_1_lines_migrate_to_the_same_keys() {
            // The demo records as the old format stored them: SaltedPassword.
            let old = [
                "张三:pbkdf2-sha256:4096:a8270b019d7f25a0b802b1837c003000:\
                 92fbb19e79dde71716db911d7d20d8e473aa2505676d0571cd910ea2d27725c1",
                "赵四:pbkdf2-sha256:4096:e3f7c460a051c44c1a375b488c6a99a9:\
                 3dcb8786bef30c2374ed3256b367918a4780d44b608b0f6d8f04c970c8bb7c33",
                "王八:pbkdf2-sha256:4096:74ddfb1c67acdfba4211a29f5554bc5c:\
                 1a088ea74983752db34e1809217be99b4c591106e3f93259677462e3977c3b60",
            ];
            for (line, demo) in old.iter().zip(&DEMO_RECORDS) {
                let (owned, scheme) = parse_line_scheme(line).expect("old lines parse");
                assert_eq!(scheme, Scheme::Pbkdf2Sha256);
                assert_eq!(owned.as_record(), *demo);
                // Written back, it is a version 2 line.
                assert!(format_line(&owned.as_record()).contains(":scram-sha-256:"));
            }
        }

        #[test]
        fn from_password_verifies_and_builds_a_store() {
            let salt = *b"0123456789abcdef";
            let owned = [
                OwnedRecord::from_password("alice", "s3cret", 10, salt).unwrap(),
                OwnedRecord::from_password("bob", "hunter2", 10, salt).unwrap(),
            ];
            let records: Vec<Record<'_>> = owned.iter().map(OwnedRecord::as_record).collect();
            let store = Store::new(&records);
            assert!(store.find("alice").unwrap().verify(b"s3cret"));
            assert!(!store.find("bob").unwrap().verify(b"s3cret"));
            assert_eq!(store.dummy().iterations, 10);
            assert_eq!(
                OwnedRecord::from_password("a b", "x", 10, salt),
                Err(ParseError::User(UserError::Whitespace))
            );
            assert_eq!(
                OwnedRecord::from_password("a", "x", 0, salt),
                Err(ParseError::Iterations)
            );
        }

        #[test]
        fn parse_line_errors() {
            let salt = "00".repeat(16);
            let key = "ab".repeat(32);
            let ok = format!("u:scram-sha-256:10:{salt}:{key}:{key}");
            assert!(parse_line(&ok).is_ok());
            assert!(parse_line(&format!("  {ok}\r\n")).is_ok());
            assert!(parse_line(&format!("u:pbkdf2-sha256:10:{salt}:{key}")).is_ok());
            assert_eq!(
                parse_line(&format!(
                    "u:scram-sha-256:10:{salt}:{}:{key}",
                    "AB".repeat(32)
                ))
                .map(|r| r.stored_key),
                Ok([0xab; 32])
            );
            let cases = [
                ("", ParseError::FieldCount),
                ("u:scram-sha-256:10:00", ParseError::FieldCount),
                (&*format!("{ok}:extra"), ParseError::FieldCount),
                (
                    &*format!("u:scram-sha-256:10:{salt}:{key}"),
                    ParseError::FieldCount,
                ),
                (
                    &*format!("u:pbkdf2-sha256:10:{salt}:{key}:{key}"),
                    ParseError::FieldCount,
                ),
                (
                    &*format!(":scram-sha-256:10:{salt}:{key}:{key}"),
                    ParseError::User(UserError::Empty),
                ),
                (
                    &*format!("a b:scram-sha-256:10:{salt}:{key}:{key}"),
                    ParseError::User(UserError::Whitespace),
                ),
                (
                    &*format!("u:sha1:10:{salt}:{key}:{key}"),
                    ParseError::Scheme,
                ),
                (
                    &*format!("u:scram-sha-256:0:{salt}:{key}:{key}"),
                    ParseError::Iterations,
                ),
                (
                    &*format!("u:scram-sha-256:+10:{salt}:{key}:{key}"),
                    ParseError::Iterations,
                ),
                (
                    &*format!("u:scram-sha-256:x:{salt}:{key}:{key}"),
                    ParseError::Iterations,
                ),
                (
                    &*format!("u:scram-sha-256:99999999999:{salt}:{key}:{key}"),
                    ParseError::Iterations,
                ),
                (
                    &*format!("u:scram-sha-256:10:00:{key}:{key}"),
                    ParseError::Salt,
                ),
                (
                    &*format!("u:scram-sha-256:10:{}:{key}:{key}", "zz".repeat(16)),
                    ParseError::Salt,
                ),
                (
                    &*format!("u:scram-sha-256:10:{salt}:{}:{key}", "a".repeat(63)),
                    ParseError::Hash,
                ),
                (
                    &*format!("u:scram-sha-256:10:{salt}:{key}:{}", "é".repeat(32)),
                    ParseError::Hash,
                ),
                (
                    &*format!("u:pbkdf2-sha256:10:{salt}:{}", "a".repeat(65)),
                    ParseError::Hash,
                ),
            ];
            for (line, err) in cases {
                assert_eq!(parse_line(line), Err(err), "{line}");
                assert!(!err.to_string().is_empty());
            }
        }
    }
}
