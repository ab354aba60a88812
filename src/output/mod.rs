//! Output records.

pub mod dead_letter;
