#![no_main]
//! See `smoltalk_fuzz::hotline`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| smoltalk_fuzz::hotline::run(data));
