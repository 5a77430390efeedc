//! Where a client's input comes from: a person at a terminal, or a script.
//!
//! The difference matters in two places only: prompts are shown to a person
//! and never written into a script's output, and a password is read without
//! echo from the terminal but as a plain line from a script.

use std::error::Error;
use std::io::{self, BufRead, IsTerminal, StdinLock, Write};

/// Input lines from stdin.
pub struct Input {
    /// Locked once: the clients read nothing else.
    stdin: StdinLock<'static>,
    /// Whether a person is typing: decides prompts and password echo.
    tty: bool,
}

impl Input {
    /// Reads from this process's stdin.
    pub fn stdin() -> Input {
        let stdin = io::stdin();
        let tty = stdin.is_terminal();
        Input {
            stdin: stdin.lock(),
            tty,
        }
    }

    /// The next line with its terminator (the last line may have none), or
    /// `None` at end of input. `prompt` is shown on a terminal only, on
    /// stderr, so stdout carries nothing but replies.
    pub fn line(&mut self, prompt: &str) -> io::Result<Option<Vec<u8>>> {
        self.prompt(prompt)?;
        let mut line = Vec::new();
        if self.stdin.read_until(b'\n', &mut line)? == 0 {
            // Ctrl-D: end the prompt's line, so the shell's prompt starts clean.
            self.prompt("\n")?;
            return Ok(None);
        }
        Ok(Some(line))
    }

    /// The next line as text, without its terminator.
    pub fn text(&mut self, prompt: &str) -> Result<Option<String>, Box<dyn Error>> {
        let Some(line) = self.line(prompt)? else {
            return Ok(None);
        };
        let text = String::from_utf8(trim_newline(&line).to_vec())
            .map_err(|_| "input is not valid UTF-8")?;
        Ok(Some(text))
    }

    /// A secret: read without echo on a terminal, as a plain line otherwise.
    pub fn secret(&mut self, prompt: &str) -> Result<Option<String>, Box<dyn Error>> {
        if self.tty {
            Ok(Some(rpassword::prompt_password(prompt)?))
        } else {
            self.text(prompt)
        }
    }

    fn prompt(&self, prompt: &str) -> io::Result<()> {
        if self.tty {
            let mut stderr = io::stderr().lock();
            stderr.write_all(prompt.as_bytes())?;
            stderr.flush()?;
        }
        Ok(())
    }
}

/// `line` without a trailing LF or CRLF.
pub fn trim_newline(line: &[u8]) -> &[u8] {
    match line.strip_suffix(b"\n") {
        Some(line) => line.strip_suffix(b"\r").unwrap_or(line),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::trim_newline;

    #[test]
    fn trims_lf_and_crlf_only() {
        assert_eq!(trim_newline(b"hi\r\n"), b"hi");
        assert_eq!(trim_newline(b"hi\n"), b"hi");
        assert_eq!(trim_newline(b"hi"), b"hi");
        assert_eq!(trim_newline(b"hi\r"), b"hi\r", "a lone CR is data");
        assert_eq!(trim_newline(b"\n"), b"");
    }
}
