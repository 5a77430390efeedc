//! How the demo prints: section headers, and one aligned line per message,
//! `who → whom  "what"`.
//!
//! Lines carry no time stamps: the simulated clock advances in steps of up
//! to 100 ms when the network is idle, so per-message times would show the
//! simulator's step, not the service.
//!
//! Payloads are shown as quoted strings with control characters escaped
//! (`\n`, `\r`, `\xff` for bytes that are not UTF-8), so the reader sees the
//! exact bytes on the wire, including the terminators the framing rules are
//! about. Long payloads are cut to one line with their byte count.

use std::fmt::Write as _;
use std::io::{self, Write as _};

/// Width of the `who → whom` column.
const PARTIES: usize = 28;
/// Characters of payload shown before it is cut.
const SHOWN: usize = 60;

/// Writes one line to stdout. A closed stdout (`host-sim demo | head`) is
/// not an error for the demo: it keeps running and reports by exit status.
pub fn emit(line: std::fmt::Arguments<'_>) {
    let _ = writeln!(io::stdout().lock(), "{line}");
}

/// A section header.
pub fn section(title: &str) {
    emit(format_args!("\n── {title} ──"));
}

/// `from` sent `payload` to `to`.
pub fn message(from: &str, to: &str, payload: &[u8]) {
    event(from, to, &quote(payload));
}

/// A line in the message column that is not a payload: `(connects)`,
/// a summary, a note.
pub fn event(from: &str, to: &str, what: &str) {
    exchange(from, "→", to, what);
}

/// Like [`event`] with a chosen arrow (`⇄` for a two-way stream).
pub fn exchange(from: &str, arrow: &str, to: &str, what: &str) {
    let parties = format!("{from} {arrow} {to}");
    emit(format_args!("  {parties:<PARTIES$} {what}"));
}

/// An indented remark under the previous line.
pub fn note(what: &str) {
    emit(format_args!("  {:PARTIES$} ({what})", ""));
}

/// `payload` as a quoted, escaped string, cut after [`SHOWN`] characters.
pub fn quote(payload: &[u8]) -> String {
    let mut s = String::from("\"");
    let mut shown = 0;
    let mut cut = false;
    'all: for chunk in payload.utf8_chunks() {
        for c in chunk.valid().chars() {
            if shown == SHOWN {
                cut = true;
                break 'all;
            }
            match c {
                '\n' => s.push_str("\\n"),
                '\r' => s.push_str("\\r"),
                '\t' => s.push_str("\\t"),
                '"' => s.push_str("\\\""),
                '\\' => s.push_str("\\\\"),
                c if c.is_control() => {
                    let _ = write!(s, "\\u{{{:x}}}", c as u32);
                }
                c => s.push(c),
            }
            shown += 1;
        }
        for b in chunk.invalid() {
            if shown == SHOWN {
                cut = true;
                break 'all;
            }
            let _ = write!(s, "\\x{b:02x}");
            shown += 1;
        }
    }
    if cut {
        let _ = write!(s, "…\" ({} bytes)", payload.len());
    } else {
        s.push('"');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn escapes_terminators_and_bad_bytes() {
        assert_eq!(quote(b"hi\r\n"), r#""hi\r\n""#);
        assert_eq!(quote(b"a\"b\xff"), r#""a\"b\xff""#);
        assert_eq!(quote("登录成功!".as_bytes()), "\"登录成功!\"");
    }

    #[test]
    fn long_payloads_are_cut_with_their_length() {
        let q = quote(&[b'x'; 100]);
        assert!(q.ends_with("…\" (100 bytes)"), "{q}");
        assert_eq!(q.matches('x').count(), 60);
    }
}
