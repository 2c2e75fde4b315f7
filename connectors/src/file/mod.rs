//! File sources (being written).
