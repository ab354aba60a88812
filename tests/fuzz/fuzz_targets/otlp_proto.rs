//! An OTLP protobuf export request, as a Kafka message with `otlp_proto`.
//!
//! See `cinch_fuzz::otlp_proto` for what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cinch_fuzz::otlp_proto(data));
