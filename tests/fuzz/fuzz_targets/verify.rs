//! Command records: `cinch authorize`'s intake and `cinch verify`.
//!
//! See `cinch_fuzz::verify` for what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cinch_fuzz::verify(data));
