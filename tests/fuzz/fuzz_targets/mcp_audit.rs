//! MCP gateway (ToolHive) audit events, one a line.
//!
//! See `cinch_fuzz::mcp_audit` for what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cinch_fuzz::mcp_audit(data));
