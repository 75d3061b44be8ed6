//! forge-manager: the command line. Thin: parsing, config loading, wiring.
fn main() {}
