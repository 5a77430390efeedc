//! A parser for the tutorial's login request: a one-entry Python dict
//! literal such as `{'张三': '123'}`, as the tutorial client makes it with
//! `str({user: password}).encode('utf-8')`.
//!
//! The tutorial's server ran `eval()` on this text, which lets any client
//! run code on the server. This module reads the same text as *data*: it
//! accepts exactly `{ STRING : STRING [,] }` with Python string-literal
//! syntax (single or double quotes, backslash escapes), and nothing else.
//! Anything that would need evaluation, such as
//! `{'a': __import__('os').system('x')}`, is a parse error.
//!
//! What is accepted, following Python where it matters:
//! - ASCII whitespace (space, tab, CR, LF, form feed) between tokens, and a
//!   trailing comma after the entry;
//! - `'…'` or `"…"` strings without prefixes (no `b''`, `r''`, `u''`),
//!   triple quotes or implicit concatenation (`str()` never makes them);
//! - escapes `\\ \' \" \a \b \f \n \r \t \v`, `\ooo` (1 to 3 octal digits),
//!   `\xHH`, `\uHHHH`, `\UHHHHHHHH`, and backslash-newline (dropped). An
//!   unknown escape such as `\q` stays as the two characters, as in Python.
//!   `\N{name}` is rejected (no name table on a microcontroller), and so are
//!   surrogate code points, which cannot be UTF-8;
//! - no raw NUL anywhere, and no raw line break inside a string (Python
//!   rejects both). An escaped NUL (`\x00`) is kept, as Python would.
//!
//! Both strings land in bounded [`heapless::String`]s of [`MAX_MESSAGE`]
//! bytes. The decoded text is never longer than its literal, so any request
//! within the message limit fits.

use core::fmt;

use crate::config::MAX_MESSAGE;

/// A decoded key or value.
pub type Field = heapless::String<MAX_MESSAGE>;

/// The one entry of a parsed dict. Both strings are overwritten when it is
/// dropped, since the value is a password.
pub struct Entry {
    key: Field,
    value: Field,
}

impl Entry {
    /// The key: in the login request, the user name.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The value: in the login request, the password.
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Debug for Entry {
    /// Never shows the value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        wipe_string(&mut self.key);
        wipe_string(&mut self.value);
    }
}

/// Overwrites a string's bytes with NULs, then empties it (no `unsafe`: the
/// bytes are overwritten by pushing NULs over them).
pub(crate) fn wipe_string<const N: usize>(s: &mut heapless::String<N>) {
    let n = s.len();
    s.clear();
    for _ in 0..n {
        let _ = s.push('\0');
    }
    core::hint::black_box(&*s);
    s.clear();
    core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
}

/// Why a text is not a one-entry dict of strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DictError {
    /// The text does not start with `{`.
    NotADict,
    /// `{}`: no entry at all.
    Empty,
    /// A key or value is not a plain string literal (a number, a name, a
    /// call, a nested container, a prefixed or triple-quoted string...).
    ExpectedString,
    /// The key is not followed by `:`.
    ExpectedColon,
    /// More than one entry.
    MultipleEntries,
    /// The entry is not followed by `}` (or `, }`).
    ExpectedEnd,
    /// A string is not closed before the end of the text or of the line.
    UnterminatedString,
    /// A malformed or unsupported escape sequence.
    BadEscape,
    /// A raw NUL byte.
    Nul,
    /// Something other than whitespace after the closing `}`.
    TrailingGarbage,
    /// A decoded string does not fit in [`MAX_MESSAGE`] bytes.
    TooLong,
}

impl fmt::Display for DictError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DictError::NotADict => "not a dict literal",
            DictError::Empty => "empty dict",
            DictError::ExpectedString => "expected a string literal",
            DictError::ExpectedColon => "expected ':'",
            DictError::MultipleEntries => "more than one entry",
            DictError::ExpectedEnd => "expected '}'",
            DictError::UnterminatedString => "unterminated string",
            DictError::BadEscape => "bad escape sequence",
            DictError::Nul => "NUL byte",
            DictError::TrailingGarbage => "text after the closing '}'",
            DictError::TooLong => "string too long",
        })
    }
}

/// Parses `text` as a one-entry dict literal with a string key and value.
pub fn parse(text: &str) -> Result<Entry, DictError> {
    if text.as_bytes().contains(&0) {
        return Err(DictError::Nul);
    }
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    p.skip_ws();
    if !p.eat(b'{') {
        return Err(DictError::NotADict);
    }
    p.skip_ws();
    if p.peek() == Some(b'}') {
        return Err(DictError::Empty);
    }
    let mut entry = Entry {
        key: Field::new(),
        value: Field::new(),
    };
    p.string(&mut entry.key)?;
    p.skip_ws();
    if !p.eat(b':') {
        return Err(DictError::ExpectedColon);
    }
    p.skip_ws();
    p.string(&mut entry.value)?;
    p.skip_ws();
    if p.eat(b',') {
        p.skip_ws();
        if matches!(p.peek(), Some(b'\'' | b'"')) {
            return Err(DictError::MultipleEntries);
        }
    }
    if !p.eat(b'}') {
        return Err(DictError::ExpectedEnd);
    }
    p.skip_ws();
    if p.peek().is_some() {
        return Err(DictError::TrailingGarbage);
    }
    Ok(entry)
}

/// Finds where a dict request ends: the index just past the `}` that closes
/// the first `{` (braces inside strings do not count), or `None` if the
/// bytes so far do not hold a complete dict. The tutorial client sends no
/// newline and waits for the reply, so the closing brace is the only end
/// marker it gives.
pub fn dict_end(bytes: &[u8]) -> Option<usize> {
    let mut scanner = Scanner::new();
    bytes.iter().position(|&b| scanner.feed(b)).map(|i| i + 1)
}

/// [`dict_end`] one byte at a time, for input that arrives in pieces.
///
/// Tracks only brace depth and whether it is inside a string (and after a
/// backslash there); all of those are ASCII, so UTF-8 continuation bytes
/// (all ≥ 0x80) never confuse it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scanner {
    depth: u16,
    /// The quote that opened the current string, or 0 outside strings.
    quote: u8,
    /// The previous byte was a backslash inside a string.
    escape: bool,
}

impl Scanner {
    /// A scanner at the start of a request.
    pub const fn new() -> Self {
        Scanner {
            depth: 0,
            quote: 0,
            escape: false,
        }
    }

    /// Takes the next byte; returns `true` if it is the brace that ends the
    /// dict (or a `}` with no `{` open, which ends a malformed request).
    pub fn feed(&mut self, b: u8) -> bool {
        if self.quote != 0 {
            if self.escape {
                self.escape = false;
            } else if b == b'\\' {
                self.escape = true;
            } else if b == self.quote {
                self.quote = 0;
            }
            return false;
        }
        match b {
            b'\'' | b'"' => self.quote = b,
            b'{' => self.depth = self.depth.saturating_add(1),
            b'}' => {
                self.depth = self.depth.saturating_sub(1);
                return self.depth == 0;
            }
            _ => {}
        }
        false
    }
}

struct Parser<'t> {
    s: &'t [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n' | b'\x0c')) {
            self.i += 1;
        }
    }

    /// Reads one string literal into `out`.
    fn string(&mut self, out: &mut Field) -> Result<(), DictError> {
        let quote = match self.peek() {
            Some(q @ (b'\'' | b'"')) => q,
            _ => return Err(DictError::ExpectedString),
        };
        self.i += 1;
        if self.peek() == Some(quote) && self.s.get(self.i + 1) == Some(&quote) {
            // Triple quotes: never made by `str()`.
            return Err(DictError::ExpectedString);
        }
        loop {
            // Copy the run of plain text up to the next quote, backslash or
            // line break in one go: it is valid UTF-8 because `text` is and
            // the run ends before an ASCII byte.
            let start = self.i;
            while let Some(b) = self.peek() {
                if b == quote || b == b'\\' || b == b'\n' || b == b'\r' {
                    break;
                }
                self.i += 1;
            }
            let run = core::str::from_utf8(&self.s[start..self.i])
                .map_err(|_| DictError::ExpectedString)?;
            out.push_str(run).map_err(|_| DictError::TooLong)?;
            match self.peek() {
                None | Some(b'\n' | b'\r') => return Err(DictError::UnterminatedString),
                Some(b'\\') => {
                    self.i += 1;
                    self.escape(out)?;
                }
                Some(_) => {
                    self.i += 1; // the closing quote
                    return Ok(());
                }
            }
        }
    }

    /// Decodes the escape after a backslash into `out`.
    fn escape(&mut self, out: &mut Field) -> Result<(), DictError> {
        let b = self.peek().ok_or(DictError::UnterminatedString)?;
        self.i += 1;
        let c = match b {
            b'\n' => return Ok(()),
            b'\r' => {
                self.eat(b'\n');
                return Ok(());
            }
            b'\\' | b'\'' | b'"' => b as char,
            b'a' => '\x07',
            b'b' => '\x08',
            b'f' => '\x0c',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'v' => '\x0b',
            b'0'..=b'7' => {
                let mut v = (b - b'0') as u32;
                for _ in 0..2 {
                    match self.peek() {
                        Some(d @ b'0'..=b'7') => {
                            v = v * 8 + (d - b'0') as u32;
                            self.i += 1;
                        }
                        _ => break,
                    }
                }
                char::from_u32(v).ok_or(DictError::BadEscape)?
            }
            b'x' => self.hex(2)?,
            b'u' => self.hex(4)?,
            b'U' => self.hex(8)?,
            b'N' => return Err(DictError::BadEscape),
            _ => {
                // Unknown escape: Python keeps the backslash and the
                // character (which may be multi-byte: back up and let the
                // string loop copy it).
                self.i -= 1;
                '\\'
            }
        };
        out.push(c).map_err(|_| DictError::TooLong)
    }

    /// Reads exactly `digits` hex digits as a code point.
    fn hex(&mut self, digits: usize) -> Result<char, DictError> {
        let mut v: u32 = 0;
        for _ in 0..digits {
            let d = self.peek().and_then(|b| (b as char).to_digit(16));
            v = v * 16 + d.ok_or(DictError::BadEscape)?;
            self.i += 1;
        }
        char::from_u32(v).ok_or(DictError::BadEscape)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::format;
    use std::string::String;

    use super::*;

    fn ok(text: &str) -> (String, String) {
        let e = parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        (e.key().into(), e.value().into())
    }

    fn kv(k: &str, v: &str) -> (String, String) {
        (k.into(), v.into())
    }

    #[test]
    fn tutorial_requests() {
        assert_eq!(ok("{'张三': '123'}"), kv("张三", "123"));
        assert_eq!(ok("{'赵四': '345'}"), kv("赵四", "345"));
        assert_eq!(ok("{\"a\": \"b\"}"), kv("a", "b"));
        assert_eq!(ok("{'a':\"b\"}"), kv("a", "b"));
        assert_eq!(ok("  {\t'a' \r\n:\x0c 'b' , }\n"), kv("a", "b"));
        assert_eq!(ok("{'': ''}"), kv("", ""));
    }

    #[test]
    fn quotes_inside_strings() {
        // Python: str({"it's": 'say "hi"'}) == `{"it's": 'say "hi"'}`
        assert_eq!(ok(r#"{"it's": 'say "hi"'}"#), kv("it's", "say \"hi\""));
        // Python: str({'a': 'both \' and "'}) == `{'a': 'both \' and "'}`
        assert_eq!(ok(r#"{'a': 'both \' and "'}"#), kv("a", "both ' and \""));
        assert_eq!(ok(r#"{'{': '}'}"#), kv("{", "}"));
    }

    #[test]
    fn escapes() {
        assert_eq!(ok(r"{'\\': '\n\r\t'}"), kv("\\", "\n\r\t"));
        assert_eq!(
            ok(r"{'\a\b\f\v': '\0\101\1011'}"),
            kv("\x07\x08\x0c\x0b", "\0AA1")
        );
        assert_eq!(ok(r"{'\x41\xe9': '\u5f20\U0001f600'}"), kv("Aé", "张😀"));
        assert_eq!(ok(r"{'\xA0': 'x'}"), kv("\u{a0}", "x"));
        assert_eq!(ok(r"{'\q\é': 'x'}"), kv("\\q\\é", "x"));
        assert_eq!(ok("{'a\\\nb': 'x'}"), kv("ab", "x"));
        assert_eq!(ok(r"{'\777': 'x'}"), kv("\u{1ff}", "x"));
        for bad in [
            r"{'\x4': 'x'}",
            r"{'\xg0': 'x'}",
            r"{'\u12': 'x'}",
            r"{'\ud800': 'x'}",
            r"{'\U00110000': 'x'}",
            r"{'\N{BULLET}': 'x'}",
        ] {
            assert_eq!(parse(bad).err(), Some(DictError::BadEscape), "{bad}");
        }
    }

    #[test]
    fn python_repr_of_unusual_strings() {
        // The exact text Python 3 prints for str({k: v}) of these strings.
        assert_eq!(
            ok(r"{'tab\there': 'nul\x00 del\x7f'}"),
            kv("tab\there", "nul\0 del\x7f")
        );
        assert_eq!(
            ok(r"{'zw\u200b': 'tag\U000e0001'}"),
            kv("zw\u{200b}", "tag\u{e0001}")
        );
    }

    #[test]
    fn rejects_code_and_non_strings() {
        let cases = [
            (
                "{'a': __import__('os').system('x')}",
                DictError::ExpectedString,
            ),
            ("{'a': 1}", DictError::ExpectedString),
            ("{1: 'a'}", DictError::ExpectedString),
            ("{'a': ['b']}", DictError::ExpectedString),
            ("{'a': {'b': 'c'}}", DictError::ExpectedString),
            ("{'a': b'x'}", DictError::ExpectedString),
            ("{'a': r'x'}", DictError::ExpectedString),
            ("{'a': '''x'''}", DictError::ExpectedString),
            ("{'a': 'b' 'c'}", DictError::ExpectedEnd),
            ("{'a': 'b' + 'c'}", DictError::ExpectedEnd),
            ("{'a': 'b'}.clear()", DictError::TrailingGarbage),
            ("{'a': 'b'} x", DictError::TrailingGarbage),
            ("{'a': 'b'}{'c': 'd'}", DictError::TrailingGarbage),
            ("{'a': 'b', 'c': 'd'}", DictError::MultipleEntries),
            ("{'a': 'b',, }", DictError::ExpectedEnd),
            ("{'a' 'b'}", DictError::ExpectedColon),
            ("{'a'= 'b'}", DictError::ExpectedColon),
            ("{}", DictError::Empty),
            ("{ }", DictError::Empty),
            ("", DictError::NotADict),
            ("['a', 'b']", DictError::NotADict),
            ("LOGIN a b", DictError::NotADict),
            ("{'a': 'b'", DictError::ExpectedEnd),
            ("{'a': 'b", DictError::UnterminatedString),
            ("{'a\nb': 'c'}", DictError::UnterminatedString),
            ("{'a': 'b\\", DictError::UnterminatedString),
            ("{'a': 'b\0'}", DictError::Nul),
            ("\0{'a': 'b'}", DictError::Nul),
        ];
        for (text, err) in cases {
            assert_eq!(parse(text).err(), Some(err), "{text:?}");
        }
    }

    #[test]
    fn bounded_output() {
        let long = "x".repeat(MAX_MESSAGE);
        let text = format!("{{'{long}': '{long}'}}");
        assert_eq!(ok(&text), kv(&long, &long));
        let text = format!("{{'{long}x': 'y'}}");
        assert_eq!(parse(&text).err(), Some(DictError::TooLong));
    }

    #[test]
    fn debug_hides_the_value() {
        let e = parse("{'user': 'secret'}").unwrap();
        let s = format!("{e:?}");
        assert!(s.contains("user") && !s.contains("secret"));
    }

    #[test]
    fn dict_end_finds_the_closing_brace() {
        assert_eq!(dict_end(b"{'a': 'b'}"), Some(10));
        assert_eq!(dict_end(b"{'a': 'b'}\n"), Some(10));
        assert_eq!(dict_end(b"{'a': 'b'"), None);
        assert_eq!(dict_end(b"{'}': '{'"), None);
        assert_eq!(dict_end(b"{'}': '{'}"), Some(10));
        assert_eq!(dict_end(br#"{'\'}': "\"}"}"#), Some(14));
        assert_eq!(dict_end(b"{'a': {'b': 'c'}}"), Some(17));
        assert_eq!(dict_end("{'张三': '1}'".as_bytes()), None);
        assert_eq!(dict_end(b"}"), Some(1));
        assert_eq!(dict_end(b""), None);
        // Byte by byte gives the same answer.
        let text = "{'张三': '1\\'2'} trailing".as_bytes();
        let mut s = Scanner::new();
        let at = text.iter().position(|&b| s.feed(b)).map(|i| i + 1);
        assert_eq!(at, dict_end(text));
        assert_eq!(at, Some(text.len() - " trailing".len()));
    }
}
