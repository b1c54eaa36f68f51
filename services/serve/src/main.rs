//! `imgfeat-serve`: flags, logging and signals.

fn main() {}
