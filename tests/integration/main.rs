//! Brook's integration tests: one binary, one module per area.

mod file_sources;
