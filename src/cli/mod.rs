//! One module per subcommand: argument structs and runners.

pub mod simulate;
