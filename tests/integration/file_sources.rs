//! File sources run inside jobs (written with the file connector).
