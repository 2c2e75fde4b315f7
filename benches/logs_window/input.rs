//! The bench's input: a JSON-lines file given by the user, or one made once
//! under `target/` by the workload's generator and reused.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use brook_workload::generator::LogGenerator;

/// Events in a file the bench makes itself (env `BROOK_BENCH_EVENTS`).
const DEFAULT_EVENTS: u64 = 2_000_000;
/// The seed of a file the bench makes.
const SEED: u64 = 1;

/// The input file and how it was obtained.
pub(crate) struct Input {
    pub(crate) path: PathBuf,
    pub(crate) origin: String,
}

/// The path from env `BROOK_BENCH_LOGS` or the first argument that is not a
/// flag (`cargo bench` passes `--bench`); else a file under `target/`:
/// reused if it exists, else made by [`LogGenerator`].
pub(crate) fn locate() -> anyhow::Result<Input> {
    let given = std::env::var_os("BROOK_BENCH_LOGS")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::args_os()
                .skip(1)
                .find(|a| !a.to_string_lossy().starts_with('-'))
                .map(PathBuf::from)
        });
    if let Some(path) = given {
        if !path.is_file() {
            bail!("no such input file: {}", path.display());
        }
        return Ok(Input {
            path,
            origin: "given".into(),
        });
    }
    let events = match std::env::var("BROOK_BENCH_EVENTS") {
        Ok(v) => v.parse().context("BROOK_BENCH_EVENTS: not a number")?,
        Err(_) => DEFAULT_EVENTS,
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tag = if events % 1_000_000 == 0 {
        format!("{}m", events / 1_000_000)
    } else {
        events.to_string()
    };
    let path = root.join(format!("target/bench-logs-{tag}-rust.jsonl"));
    if path.is_file() {
        return Ok(Input {
            path,
            origin: format!("reused, made earlier by LogGenerator (seed {SEED})"),
        });
    }
    std::fs::create_dir_all(root.join("target"))?;
    eprintln!("Making {} with LogGenerator ...", path.display());
    write_generated(&path, events)?;
    Ok(Input {
        path,
        origin: format!("made by LogGenerator (seed {SEED})"),
    })
}

/// Writes `events` generated events to `path`, through a temporary file.
fn write_generated(path: &Path, events: u64) -> anyhow::Result<()> {
    let tmp = path.with_extension("jsonl.part");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    let mut buf = String::with_capacity(1 << 20);
    for e in LogGenerator::new(events, SEED).iter() {
        e.write_json_line(&mut buf);
        if buf.len() >= 1 << 20 {
            file.write_all(buf.as_bytes())?;
            buf.clear();
        }
    }
    file.write_all(buf.as_bytes())?;
    file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
