//! Keyword rules: rewrite what a client said before it is quoted back.
//!
//! The tutorial's hotline replaces an insult in the client's message and
//! sends the rewritten message back with the operator's answer. Here the
//! rules are a plain table, so changing them is editing a list.

use heapless::String;

/// Replace every occurrence of `keyword` with `replacement`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// What to look for (exact, case-sensitive substring).
    pub keyword: &'static str,
    /// What to put instead.
    pub replacement: &'static str,
}

/// The default rules: mask the tutorial's insult (`sb`) and its Chinese
/// original, so the reply never repeats it.
pub const DEFAULT_RULES: &[Rule] = &[
    Rule {
        keyword: "傻逼",
        replacement: "**",
    },
    Rule {
        keyword: "sb",
        replacement: "**",
    },
];

/// The rewritten text did not fit in `N` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong;

/// Applies `rules` to `text`, in order, writing the result to `out`.
/// Returns whether any rule matched (the caller only quotes the message
/// back when something was rewritten).
pub fn rewrite<const N: usize>(
    text: &str,
    rules: &[Rule],
    out: &mut String<N>,
) -> Result<bool, TooLong> {
    out.clear();
    let mut matched = false;
    let mut rest = text;
    'outer: while !rest.is_empty() {
        for rule in rules {
            // `strip_prefix`, not `&rest[len..]`: no slicing panic path, which
            // would link core's char-boundary message (5.4 KiB on lm3s6965evb).
            if let Some(after) = rest
                .strip_prefix(rule.keyword)
                .filter(|_| !rule.keyword.is_empty())
            {
                out.push_str(rule.replacement).map_err(|_| TooLong)?;
                rest = after;
                matched = true;
                continue 'outer;
            }
        }
        // `rest` is non-empty, so it has a first char.
        let mut chars = rest.chars();
        let Some(c) = chars.next() else { break };
        out.push(c).map_err(|_| TooLong)?;
        rest = chars.as_str();
    }
    Ok(matched)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> (bool, std::string::String) {
        let mut out: String<64> = String::new();
        let m = rewrite(text, DEFAULT_RULES, &mut out).unwrap();
        (m, out.as_str().into())
    }

    #[test]
    fn masks_every_occurrence() {
        assert_eq!(run("you sb, sb!"), (true, "you **, **!".into()));
        assert_eq!(run("你是傻逼"), (true, "你是**".into()));
    }

    #[test]
    fn leaves_clean_text_alone() {
        assert_eq!(run("hello 你好"), (false, "hello 你好".into()));
        assert_eq!(run(""), (false, "".into()));
    }

    #[test]
    fn overflow_is_an_error_not_a_panic() {
        let mut out: String<4> = String::new();
        let long = Rule {
            keyword: "a",
            replacement: "aaaa",
        };
        assert_eq!(rewrite("aa", &[long], &mut out), Err(TooLong));
    }
}
