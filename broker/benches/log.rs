//! Criterion benchmarks of the partition log (filled in with the log store).
fn main() {}
