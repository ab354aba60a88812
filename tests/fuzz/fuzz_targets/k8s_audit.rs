//! Kubernetes audit events, one a line.
//!
//! See `cinch_fuzz::k8s_audit` for what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cinch_fuzz::k8s_audit(data));
