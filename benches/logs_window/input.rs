//! The bench's input: a `gen_logs.py` file given by the user, or one made
//! once under `target/` and reused.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use brook::connectors::generator::LogGenerator;

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
/// reused if it exists, else made by `gen_logs.py`, else (no Python) by
/// [`LogGenerator`] in the same format.
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
    let python = root.join(format!("target/bench-logs-{tag}.jsonl"));
    let rust = root.join(format!("target/bench-logs-{tag}-rust.jsonl"));
    let script = root.join("../shared/bench/gen_logs.py");
    for (path, what) in [(&python, "gen_logs.py"), (&rust, "LogGenerator")] {
        if path.is_file() {
            return Ok(Input {
                path: path.clone(),
                origin: format!("reused, made earlier by {what} (seed {SEED})"),
            });
        }
    }
    std::fs::create_dir_all(root.join("target"))?;
    if script.is_file() {
        eprintln!("Making {} with {} ...", python.display(), script.display());
        let tmp = python.with_extension("jsonl.part");
        let status = Command::new("python3")
            .arg(&script)
            .args(["--events", &events.to_string(), "--seed", &SEED.to_string()])
            .arg("--out")
            .arg(&tmp)
            .status();
        match status {
            Ok(s) if s.success() => {
                std::fs::rename(&tmp, &python)?;
                return Ok(Input {
                    path: python,
                    origin: format!("made by gen_logs.py (seed {SEED})"),
                });
            }
            Ok(s) => eprintln!("gen_logs.py failed ({s}); using LogGenerator instead."),
            Err(e) => eprintln!("Cannot run python3 ({e}); using LogGenerator instead."),
        }
        let _ = std::fs::remove_file(&tmp);
    }
    eprintln!("Making {} with LogGenerator ...", rust.display());
    write_generated(&rust, events)?;
    Ok(Input {
        path: rust,
        origin: format!("made by LogGenerator (seed {SEED}, same format as gen_logs.py)"),
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
