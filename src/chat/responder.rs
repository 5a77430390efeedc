//! Who answers chat messages.
//!
//! A board has no operator, so by default an [`AutoResponder`] answers from a
//! table of canned answers keyed by keyword. On the host, `host-sim serve
//! --operator` plugs in a responder that shows each message to a person and
//! answers [`Answer::Later`], when the person has typed a reply.

use core::fmt::Write;

use heapless::String;

use crate::chat::rules::{DEFAULT_RULES, Rule};
use crate::config::MAX_REPLY;
use crate::session::SessionId;

/// A reply under construction.
pub type Reply = String<MAX_REPLY>;

/// Whether a reply was written now or will come later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The reply is in `out`; send it.
    Now,
    /// Someone else (an operator) will reply through
    /// [`crate::net::Node::operator_reply`]. The TCP session reads nothing
    /// more from its client until then: the chat takes turns.
    Later,
}

/// Answers chat messages.
pub trait Responder {
    /// The keyword rules applied to every client message before it reaches
    /// [`Responder::answer`].
    fn rules(&self) -> &[Rule] {
        DEFAULT_RULES
    }

    /// What the server says first when a TCP chat client connects.
    fn greeting(&mut self, session: SessionId, out: &mut Reply);

    /// Answers `text` from `session`. `rewritten` is the message after the
    /// keyword rules, when any rule matched: quote it back, as the tutorial's
    /// hotline does.
    fn answer(
        &mut self,
        session: SessionId,
        text: &str,
        rewritten: Option<&str>,
        out: &mut Reply,
    ) -> Answer;

    /// The session ended (byebye, timeout, reset or expiry). Lets an operator
    /// console forget it.
    fn ended(&mut self, _session: SessionId) {}
}

/// A canned answer, given when a message mentions `keyword`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Canned {
    /// Matched case-insensitively, as a whole word for ASCII keywords.
    pub keyword: &'static str,
    /// The answer.
    pub answer: &'static str,
}

/// The default canned answers. `help` lists the topics.
pub const DEFAULT_CANNED: &[Canned] = &[
    Canned {
        keyword: "help",
        answer: "Topics: hours, price, agent, hello. Say byebye to leave.",
    },
    Canned {
        keyword: "hours",
        answer: "We are open 24/7, holidays included.",
    },
    Canned {
        keyword: "price",
        answer: "Calls to this hotline are free.",
    },
    Canned {
        keyword: "agent",
        answer: "All agents are robots today; this one is listening.",
    },
    Canned {
        keyword: "hello",
        answer: "Hello! How can I help? (type help for topics)",
    },
    Canned {
        keyword: "hi",
        answer: "Hello! How can I help? (type help for topics)",
    },
    Canned {
        keyword: "你好",
        answer: "你好! How can I help? (type help for topics)",
    },
];

/// Answers from a table; needs no person and no heap.
#[derive(Debug, Clone, Copy)]
pub struct AutoResponder {
    /// Canned answers, first match wins.
    pub canned: &'static [Canned],
    /// Keyword rules applied to client text.
    pub rules: &'static [Rule],
    /// What the TCP chat says first.
    pub greeting: &'static str,
}

impl AutoResponder {
    /// The default tables.
    pub const fn new() -> Self {
        AutoResponder {
            canned: DEFAULT_CANNED,
            rules: DEFAULT_RULES,
            greeting: "Welcome to the smoltalk hotline. Type help for topics, byebye to leave.",
        }
    }

    /// The canned answer for `text`, if it mentions a keyword.
    pub fn lookup(&self, text: &str) -> Option<&'static str> {
        self.canned
            .iter()
            .find(|c| mentions(text, c.keyword))
            .map(|c| c.answer)
    }
}

impl Default for AutoResponder {
    fn default() -> Self {
        Self::new()
    }
}

impl Responder for AutoResponder {
    fn rules(&self) -> &[Rule] {
        self.rules
    }

    fn greeting(&mut self, _: SessionId, out: &mut Reply) {
        let _ = out.push_str(self.greeting);
    }

    fn answer(
        &mut self,
        _: SessionId,
        text: &str,
        rewritten: Option<&str>,
        out: &mut Reply,
    ) -> Answer {
        let answer = match (self.lookup(text), text.trim().is_empty()) {
            (Some(a), _) => a,
            (None, true) => "(empty message) Type help for topics.",
            (None, false) => "Noted. Type help for topics.",
        };
        let _ = out.push_str(answer);
        if let Some(r) = rewritten {
            // Overflow only truncates the quote; the answer is already there.
            let _ = write!(out, " You said: {}", r);
        }
        Answer::Now
    }
}

/// Whether `text` mentions `keyword`: case-insensitive, and for ASCII
/// keywords only as a whole word, so that `hi` does not match `this`.
fn mentions(text: &str, keyword: &str) -> bool {
    let (t, k) = (text.as_bytes(), keyword.as_bytes());
    if k.is_empty() || t.len() < k.len() {
        return false;
    }
    let word = k.iter().all(u8::is_ascii_alphanumeric);
    (0..=t.len() - k.len()).any(|i| {
        t[i..i + k.len()].eq_ignore_ascii_case(k)
            && (!word
                || ((i == 0 || !t[i - 1].is_ascii_alphanumeric())
                    && t.get(i + k.len())
                        .is_none_or(|b| !b.is_ascii_alphanumeric())))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Transport;

    const ID: SessionId = SessionId {
        transport: Transport::Tcp,
        index: 0,
        generation: 0,
    };

    fn ask(text: &str, rewritten: Option<&str>) -> std::string::String {
        let mut out = Reply::new();
        assert_eq!(
            AutoResponder::new().answer(ID, text, rewritten, &mut out),
            Answer::Now
        );
        out.as_str().into()
    }

    #[test]
    fn canned_answers_by_keyword() {
        assert!(ask("HELP please", None).starts_with("Topics:"));
        assert!(ask("what are your hours?", None).contains("24/7"));
        assert!(ask("你好呀", None).starts_with("你好!"));
    }

    #[test]
    fn ascii_keywords_match_whole_words_only() {
        assert_eq!(ask("this is it", None), "Noted. Type help for topics.");
        assert!(ask("hi!", None).starts_with("Hello!"));
    }

    #[test]
    fn rewritten_text_is_quoted() {
        assert_eq!(
            ask("you **", Some("you **")),
            "Noted. Type help for topics. You said: you **"
        );
    }

    #[test]
    fn empty_message_gets_an_answer() {
        assert!(ask("", None).contains("empty"));
    }
}
