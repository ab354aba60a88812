//! Any bytes as a replay input: framing, sniffing, streaming of long messages, decoding.
//!
//! See `cinch_fuzz::framing` for what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cinch_fuzz::framing(data));
