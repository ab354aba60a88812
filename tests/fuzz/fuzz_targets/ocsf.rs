//! OCSF events, one a line.
//!
//! See `cinch_fuzz::ocsf` for what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cinch_fuzz::ocsf(data));
