//! Logging that works on every target from the same call sites.
//!
//! On boards the `defmt` feature sends records over RTT or semihosting as
//! compact indices; on the host the `log` feature hands them to any `log`
//! backend (`RUST_LOG=debug`). With neither feature the macros compile to
//! nothing, but their arguments are still type-checked so a board build cannot
//! silently break a host log line.
//!
//! The macros are crate-internal on purpose: the `cfg` inside them must see
//! *this* crate's features, not the features of whoever calls them.
//!
//! Arguments must implement both `core::fmt::Display` and `defmt::Format`
//! (smoltcp's address types and plain integers and `&str` do). Never pass a
//! password or a credential: see the login module.

macro_rules! __log {
    ($level:ident, $($arg:tt)+) => {{
        #[cfg(feature = "log")]
        ::log::$level!($($arg)+);
        #[cfg(feature = "defmt")]
        ::defmt::$level!($($arg)+);
        #[cfg(not(any(feature = "log", feature = "defmt")))]
        {
            let _ = || {
                let _ = ::core::format_args!($($arg)+);
            };
        }
    }};
}

/// Log at debug level.
macro_rules! debug { ($($arg:tt)+) => { __log!(debug, $($arg)+) }; }
/// Log at info level.
macro_rules! info { ($($arg:tt)+) => { __log!(info, $($arg)+) }; }
/// Log at warn level.
macro_rules! warn { ($($arg:tt)+) => { __log!(warn, $($arg)+) }; }
