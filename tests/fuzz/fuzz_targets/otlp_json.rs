//! OTLP JSON export requests, one a line (and their protobuf encodings).
//!
//! See `cinch_fuzz::otlp_json` for what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cinch_fuzz::otlp_json(data));
