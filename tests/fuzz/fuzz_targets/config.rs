//! A TOML config: parsing and validation.
//!
//! See `cinch_fuzz::config` for what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cinch_fuzz::config(data));
