//! One file per subcommand: argument structs and the glue that builds validated settings and
//! calls the library. `anyhow` is used here, at the binary's edge, and nowhere in the engine.

pub mod demo;
pub mod eval;
pub mod keygen;
pub mod replay;
pub mod run;
pub mod simulate;
pub mod verify;

use std::path::Path;

use anyhow::Context;

use crate::config::Settings;

/// Loads settings from `path`, or the defaults when none is given.
pub fn load_settings(path: Option<&Path>) -> anyhow::Result<Settings> {
    match path {
        Some(p) => {
            Settings::load(p).with_context(|| format!("loading settings from {}", p.display()))
        }
        None => Ok(Settings::default()),
    }
}
