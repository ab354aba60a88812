//! CloudTrail records one a line, as a JSON array and as an S3 delivery `{"Records":[...]}`.
//!
//! See `cinch_fuzz::cloudtrail` for what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cinch_fuzz::cloudtrail(data));
