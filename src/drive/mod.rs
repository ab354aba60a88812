//! Drivers around the engine. They own all I/O; the engine owns none.

pub mod authorize;
pub mod counts;
pub mod files;
pub mod history;
pub mod input;
pub mod kafka;
pub mod replay;
mod sharded;
pub mod step;
