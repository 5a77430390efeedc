#![no_main]
//! See `smoltalk_fuzz::chat`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| smoltalk_fuzz::chat::run(data));
