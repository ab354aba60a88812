//! cinch: runtime least privilege for AI agents and other non-human identities.
pub mod cli;
pub mod event;
pub mod sim;
