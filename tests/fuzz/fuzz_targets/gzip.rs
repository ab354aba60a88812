//! gzip input (several members, cut short or damaged) through the replay input path.
//!
//! See `cinch_fuzz::gzip` for what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cinch_fuzz::gzip(data));
