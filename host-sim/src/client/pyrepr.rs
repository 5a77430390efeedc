//! Python's `repr()` of a string, so that `login --tutorial` sends exactly
//! what the tutorial's client sends: `str({user: password}).encode('utf-8')`.
//!
//! The rules are CPython's (`unicode_repr`): single quotes unless the text
//! holds a `'` and no `"`; the chosen quote and `\` are escaped; tab, LF and
//! CR become `\t \n \r`; other ASCII controls and non-printable characters
//! become `\xHH`, `\uHHHH` or `\UHHHHHHHH`; everything printable, Chinese
//! included, stays as it is.
//!
//! "Printable" is Python's `str.isprintable()`, which depends on the Unicode
//! database. [`NOT_PRINTABLE`] lists the non-ASCII code points that are
//! controls, format characters, separators or private use (Unicode 14, as in
//! Python 3.11), plus the noncharacters and the unassigned planes 4 to 13.
//! Other unassigned code points are sent as they are where Python would
//! escape them: the server decodes both spellings to the same string, so
//! only the bytes on the wire differ, never the login.

/// The tutorial's request: a one-entry dict literal, `{'key': 'value'}`.
pub fn dict(key: &str, value: &str) -> String {
    format!("{{{}: {}}}", repr(key), repr(value))
}

/// `repr(text)` as Python prints it.
pub fn repr(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(text.len() + 2);
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            _ if c == quote => {
                out.push('\\');
                out.push(c);
            }
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            ' '..='~' => out.push(c),
            _ if printable(c) => out.push(c),
            _ => escape(c, &mut out),
        }
    }
    out.push(quote);
    out
}

/// `\xHH`, `\uHHHH` or `\UHHHHHHHH`, lower-case hex, as Python picks them.
fn escape(c: char, out: &mut String) {
    let n = u32::from(c);
    let s = match n {
        0..=0xFF => format!("\\x{n:02x}"),
        0x100..=0xFFFF => format!("\\u{n:04x}"),
        _ => format!("\\U{n:08x}"),
    };
    out.push_str(&s);
}

/// Whether a character outside printable ASCII counts as printable.
fn printable(c: char) -> bool {
    let n = u32::from(c);
    n >= 0x80 && !NOT_PRINTABLE.iter().any(|&(lo, hi)| (lo..=hi).contains(&n))
}

/// Non-ASCII code points Python does not print as they are (inclusive
/// ranges). Generated with `unicodedata` from Python 3.11: every code point
/// whose category is Cc, Cf, Zs, Zl, Zp or Co, then the noncharacters and
/// the planes that have never had an assignment.
const NOT_PRINTABLE: &[(u32, u32)] = &[
    (0x80, 0xA0),
    (0xAD, 0xAD),
    (0x600, 0x605),
    (0x61C, 0x61C),
    (0x6DD, 0x6DD),
    (0x70F, 0x70F),
    (0x890, 0x891),
    (0x8E2, 0x8E2),
    (0x1680, 0x1680),
    (0x180E, 0x180E),
    (0x2000, 0x200F),
    (0x2028, 0x202F),
    (0x205F, 0x2064),
    (0x2066, 0x206F),
    (0x3000, 0x3000),
    (0xE000, 0xF8FF),
    (0xFDD0, 0xFDEF),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0xFFFE, 0xFFFF),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x13438),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0x40000, 0xDFFFF),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
    (0xF0000, 0x10FFFF),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tutorials_users() {
        assert_eq!(dict("张三", "123"), "{'张三': '123'}");
    }

    #[test]
    fn quotes_like_python() {
        assert_eq!(repr("it's"), r#""it's""#);
        assert_eq!(repr(r#"say "hi""#), r#"'say "hi"'"#);
        assert_eq!(repr(r#"it's "x""#), r#"'it\'s "x"'"#);
        assert_eq!(repr(r"a\b"), r"'a\\b'");
    }

    #[test]
    fn escapes_like_python() {
        assert_eq!(repr("a\tb\nc\rd"), r"'a\tb\nc\rd'");
        assert_eq!(repr("\0\x1b\x7f"), r"'\x00\x1b\x7f'");
        assert_eq!(repr("\u{a0}\u{ad}é"), r"'\xa0\xadé'");
        assert_eq!(repr("\u{200b}\u{3000}\u{feff}"), r"'\u200b\u3000\ufeff'");
        assert_eq!(repr("\u{e0001}😀"), r"'\U000e0001😀'");
    }

    /// The same strings through the real Python, when there is one.
    #[test]
    fn agrees_with_python() {
        let samples = [
            "张三",
            "it's",
            "say \"hi\"",
            "it's \"x\"",
            "a\\b",
            "tab\tnl\ncr\r",
            "\0\x01\x1f\x7f",
            "\u{80}\u{9f}\u{a0}\u{a1}\u{ad}é",
            "\u{200b}\u{2028}\u{3000}\u{feff}\u{e000}",
            "😀\u{e0001}\u{f0000}",
            "{'a': __import__('os')}",
            "",
        ];
        let script = "import sys, json\nfor s in json.load(sys.stdin): print(repr(s))";
        let json = format!(
            "[{}]",
            samples
                .iter()
                .map(|s| json_string(s))
                .collect::<Vec<_>>()
                .join(",")
        );
        let Some(python) = run_python(script, &json) else {
            eprintln!("python3 not found: skipping the cross-check");
            return;
        };
        let ours: Vec<String> = samples.iter().map(|s| repr(s)).collect();
        assert_eq!(python.lines().collect::<Vec<_>>(), ours);
    }

    fn json_string(s: &str) -> String {
        let mut out = String::from("\"");
        for c in s.chars() {
            match c {
                '"' | '\\' => {
                    out.push('\\');
                    out.push(c);
                }
                ' '..='~' => out.push(c),
                _ => {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        out.push_str(&format!("\\u{u:04x}"));
                    }
                }
            }
        }
        out.push('"');
        out
    }

    fn run_python(script: &str, stdin: &str) -> Option<String> {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let mut child = Command::new("python3")
            .args(["-c", script])
            .env("PYTHONIOENCODING", "utf-8")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .ok()?;
        child.stdin.take()?.write_all(stdin.as_bytes()).ok()?;
        let out = child.wait_with_output().ok()?;
        assert!(out.status.success(), "python3 failed");
        String::from_utf8(out.stdout).ok()
    }
}
