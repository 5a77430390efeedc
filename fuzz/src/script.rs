//! The input format every stateful target shares: a script of steps.
//!
//! A fuzz input is read as a sequence of steps, each starting with one op
//! byte `t` whose low two bits say what it is:
//!
//! ```text
//! t & 3 == 0   Data   tag = t >> 2, then LEN (1 byte),     then LEN bytes
//! t & 3 == 3   Data   tag = t >> 2, then LEN (2 bytes BE), then LEN bytes
//! t & 3 == 1   Wait   then N (1 byte): N × unit, unit = 1 ms, 10 ms, 1 s
//!                     or 60 s by bits 2-3 of t
//! t & 3 == 2   Event  tag = t >> 2, then ARG (1 byte)
//! ```
//!
//! A step cut short by the end of the input takes what is there (missing
//! length or argument bytes count as zero). Every byte string is a valid
//! script, so the fuzzer wastes no inputs on a parse error, while seeds
//! made from real traffic (`make_seeds.py`) keep their payloads verbatim,
//! where mutations of the text stay meaningful.
//!
//! What a tag or an event means is up to each target: a client's address,
//! a frame's rewrite flags, "the peer closes", "time to reconnect".

use smoltcp::time::Duration;

/// One step of a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'a> {
    /// Bytes arriving: a chunk of a stream, a datagram or a frame.
    Data {
        /// Six bits the target interprets (who sends it, how).
        tag: u8,
        /// The bytes.
        bytes: &'a [u8],
    },
    /// Time passes.
    Wait(Duration),
    /// Something other than bytes happens.
    Event {
        /// Six bits: which event.
        tag: u8,
        /// Its argument.
        arg: u8,
    },
}

/// The units of [`Step::Wait`]: short enough to land between the chat's
/// 30 ms quiet gap, long enough to reach the 300 s idle timeout in a few
/// steps.
const UNITS: [Duration; 4] = [
    Duration::from_millis(1),
    Duration::from_millis(10),
    Duration::from_secs(1),
    Duration::from_secs(60),
];

/// Iterates over the steps of an input.
#[derive(Debug, Clone)]
pub struct Script<'a> {
    rest: &'a [u8],
}

impl<'a> Script<'a> {
    /// Reads `input` as a script.
    pub fn new(input: &'a [u8]) -> Self {
        Script { rest: input }
    }

    fn byte(&mut self) -> u8 {
        match self.rest.split_first() {
            Some((&b, rest)) => {
                self.rest = rest;
                b
            }
            None => 0,
        }
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.rest.split_at(n.min(self.rest.len()));
        self.rest = tail;
        head
    }
}

impl<'a> Iterator for Script<'a> {
    type Item = Step<'a>;

    fn next(&mut self) -> Option<Step<'a>> {
        if self.rest.is_empty() {
            return None;
        }
        let t = self.byte();
        let tag = t >> 2;
        Some(match t & 3 {
            0 => {
                let n = usize::from(self.byte());
                Step::Data {
                    tag,
                    bytes: self.take(n),
                }
            }
            3 => {
                let n = usize::from(u16::from_be_bytes([self.byte(), self.byte()]));
                Step::Data {
                    tag,
                    bytes: self.take(n),
                }
            }
            1 => {
                let unit = UNITS[usize::from(tag & 3)];
                Step::Wait(unit * u32::from(self.byte()))
            }
            _ => Step::Event {
                tag,
                arg: self.byte(),
            },
        })
    }
}

/// Writes scripts: the inverse of [`Script`], for tests.
#[derive(Debug, Clone, Default)]
pub struct Writer {
    /// The script so far.
    pub bytes: Vec<u8>,
}

impl Writer {
    /// An empty script.
    pub fn new() -> Self {
        Writer::default()
    }

    /// Appends `bytes` as [`Step::Data`] (several steps if longer than
    /// 65535 bytes).
    pub fn data(&mut self, tag: u8, bytes: &[u8]) -> &mut Self {
        assert!(tag < 64);
        if bytes.is_empty() {
            self.bytes.extend([tag << 2, 0]);
        }
        for chunk in bytes.chunks(usize::from(u16::MAX)) {
            if chunk.len() < 256 {
                self.bytes.extend([tag << 2, chunk.len() as u8]);
            } else {
                self.bytes.push((tag << 2) | 3);
                self.bytes.extend((chunk.len() as u16).to_be_bytes());
            }
            self.bytes.extend_from_slice(chunk);
        }
        self
    }

    /// Appends [`Step::Wait`]s adding up to `ms` milliseconds.
    pub fn wait_ms(&mut self, mut ms: u64) -> &mut Self {
        for (unit, ms_per) in [(3u8, 60_000u64), (2, 1000), (1, 10), (0, 1)] {
            while ms >= ms_per {
                let n = (ms / ms_per).min(255);
                self.bytes.extend([(unit << 2) | 1, n as u8]);
                ms -= n * ms_per;
            }
        }
        self
    }

    /// Appends a [`Step::Event`].
    pub fn event(&mut self, tag: u8, arg: u8) -> &mut Self {
        assert!(tag < 64);
        self.bytes.extend([(tag << 2) | 2, arg]);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_and_reader_agree() {
        let long = vec![7u8; 300];
        let mut w = Writer::new();
        w.data(5, b"hi")
            .wait_ms(61_234)
            .event(9, 42)
            .data(63, &long);
        let steps: Vec<_> = Script::new(&w.bytes).collect();
        assert_eq!(
            steps[0],
            Step::Data {
                tag: 5,
                bytes: b"hi"
            }
        );
        let waited = steps
            .iter()
            .filter_map(|s| match s {
                Step::Wait(d) => Some(*d),
                _ => None,
            })
            .fold(Duration::ZERO, |a, b| a + b);
        assert_eq!(waited, Duration::from_millis(61_234));
        assert!(steps.contains(&Step::Event { tag: 9, arg: 42 }));
        assert_eq!(
            steps.last(),
            Some(&Step::Data {
                tag: 63,
                bytes: &long[..]
            })
        );
    }

    #[test]
    fn any_bytes_are_a_script() {
        for input in [
            &b""[..],
            b"\x00",
            b"\x03\xff",
            b"\x01",
            b"\x02",
            b"\x00\x05ab",
        ] {
            assert!(Script::new(input).count() <= input.len());
        }
    }
}
