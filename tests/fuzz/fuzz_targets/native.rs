//! Native events, one a line.
//!
//! See `cinch_fuzz::native` for what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cinch_fuzz::native(data));
