//! Links Brook's programs (`brook`, the examples, the tests and benches)
//! with packed relative relocations where the machine that builds them,
//! and so runs them, supports it.
//!
//! A position-independent executable holds a relocation for every pointer
//! in its read-only data (vtables, tables of strings): about 200,000 of
//! them, 5 MB, for `log_analysis`. The loader reads them all at start-up,
//! and their pages then stay resident for nothing. Packed (`DT_RELR`,
//! `-z pack-relative-relocs`) they take 53 KB; the executable stays
//! position-independent. The log-analysis job's peak RSS at parallelism 2
//! went from 66 to 61 MB with them packed.
//!
//! Only glibc 2.36 and later load such an executable, so the flag is given
//! only when building on and for Linux with glibc, on a glibc that new, and
//! with the toolchain's own linker (gold, for one, refuses the flag): not
//! when a linker is configured for the target or `-fuse-ld` is in the
//! flags. `BROOK_NO_RELR=1` turns it off, to build programs for an older
//! glibc than the one building them.

use std::env;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=BROOK_NO_RELR");
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    if packed_relocations_load() {
        println!("cargo:rustc-link-arg=-Wl,-z,pack-relative-relocs");
    }
}

/// Whether the programs are built for this machine, Linux with glibc 2.36
/// or later.
fn packed_relocations_load() -> bool {
    let var = |name: &str| env::var(name).unwrap_or_default();
    let off = var("BROOK_NO_RELR");
    let flags = var("CARGO_ENCODED_RUSTFLAGS");
    if !(off.is_empty() || off == "0")
        || var("CARGO_CFG_TARGET_OS") != "linux"
        || var("CARGO_CFG_TARGET_ENV") != "gnu"
        || var("HOST") != var("TARGET")
        || env::var_os("RUSTC_LINKER").is_some()
        || flags.contains("fuse-ld")
        || flags.contains("linker")
    {
        return false;
    }
    // "glibc 2.36"
    let Ok(out) = Command::new("getconf").arg("GNU_LIBC_VERSION").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut version = text
        .trim()
        .strip_prefix("glibc ")
        .unwrap_or_default()
        .split('.')
        .map(|part| part.parse::<u32>().ok());
    match (version.next().flatten(), version.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= (2, 36),
        _ => false,
    }
}
