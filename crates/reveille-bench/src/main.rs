//! Reveille's benchmark program (being written).

fn main() {}
