//! Drivers around the engine. They own all I/O; the engine owns none.

pub mod counts;
pub mod kafka;
pub mod replay;
