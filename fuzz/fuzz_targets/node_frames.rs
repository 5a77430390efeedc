#![no_main]
//! See `smoltalk_fuzz::node`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| smoltalk_fuzz::node::run(data));
