#![no_main]
//! See `smoltalk_fuzz::login`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| smoltalk_fuzz::login::run(data));
