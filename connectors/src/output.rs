//! An output directory that a sink writes: one writer at a time (a lock the
//! OS releases when the process dies), the clean-up of what a crashed
//! writer left, and the commit record of a run that replaces the one
//! before it.
//!
//! # The lock
//! [`OutputLock::acquire`] creates the directory if needed and takes an
//! exclusive `flock` on `.brook.lock` in it, writing the holder's process
//! id and job into the file for the error a second writer gets. The lock
//! is released when the [`OutputLock`] is dropped, or by the OS when the
//! process dies, so a crash never leaves a directory locked.
//!
//! # The commit record
//! A sink that replaces earlier output (see
//! `ParquetSink::replace_on_success` in `brook-parquet`)
//! records the files of its last successful run in `_brook_output.json`,
//! written atomically (temporary file, sync, rename, directory sync). The
//! next such run removes exactly those files once it has succeeded, so
//! files Brook did not write are never removed. Readers that honour the
//! record (`brook sql`) see the old run's files or the new run's, never a
//! mix.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

use brook_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// The lock file's name, in the output directory.
pub const LOCK_FILE: &str = ".brook.lock";
/// The commit record's name, in the output directory.
pub const COMMIT_FILE: &str = "_brook_output.json";

/// An exclusive claim on an output directory, held while it lives.
#[derive(Debug)]
pub struct OutputLock {
    _file: File,
}

impl OutputLock {
    /// Creates `dir` if it does not exist and locks it for `job`.
    ///
    /// # Errors
    /// [`Error::Config`] when another process (or another sink of this
    /// one) holds the lock, or `dir` is not a directory; [`Error::Io`]
    /// when it cannot be created or locked.
    pub fn acquire(dir: &Path, job: &str) -> Result<OutputLock> {
        if let Ok(meta) = fs::metadata(dir)
            && !meta.is_dir()
        {
            return Err(Error::Config(format!(
                "output directory {} is not a directory",
                dir.display()
            )));
        }
        crate::publish::create_dir(dir)?;
        let path = dir.join(LOCK_FILE);
        let io = |e| Error::io(format_args!("locking {}", path.display()), e);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let holder = if holder.is_empty() {
                    "another job".to_string()
                } else {
                    holder.to_string()
                };
                return Err(Error::Config(format!(
                    "output directory {} is being written by {holder}; \
                     one job at a time may write to a directory ({} is its lock)",
                    dir.display(),
                    path.display()
                )));
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        let holder = format!("job '{job}' (process {})\n", std::process::id());
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(holder.as_bytes()))
            .map_err(io)?;
        Ok(OutputLock { _file: file })
    }
}

/// Removes the hidden in-progress files (`.part-*.inprogress`) under
/// `dir`, in every partition directory: with the lock held, no writer is
/// at work on them, so they are what a crashed or failed run left.
/// Returns how many were removed.
///
/// # Errors
/// [`Error::Io`] naming the path that could not be listed or removed.
pub fn remove_abandoned(dir: &Path) -> Result<usize> {
    remove_abandoned_except(dir, &[])
}

/// As [`remove_abandoned`], sparing the in-progress files of `keep`, given
/// by their final paths ([`in_progress_path`]): what a checkpoint being
/// restored pre-committed, to be published later.
///
/// # Errors
/// [`Error::Io`] naming the path that could not be listed or removed.
pub fn remove_abandoned_except(dir: &Path, keep: &[PathBuf]) -> Result<usize> {
    let keep: std::collections::HashSet<PathBuf> =
        keep.iter().map(|p| in_progress_path(p)).collect();
    let mut removed = 0;
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let io = |e| Error::io(format_args!("listing {}", d.display()), e);
        let entries = match fs::read_dir(&d) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() && !name.starts_with('.') {
                dirs.push(entry.path());
            } else if kind.is_file()
                && name.starts_with(".part-")
                && name.ends_with(".inprogress")
                && !keep.contains(&entry.path())
            {
                fs::remove_file(entry.path()).map_err(|e| {
                    Error::io(format_args!("removing {}", entry.path().display()), e)
                })?;
                removed += 1;
            }
        }
    }
    if removed > 0 {
        tracing::warn!(
            dir = %dir.display(),
            removed,
            "Removed in-progress files an interrupted earlier run left."
        );
    }
    Ok(removed)
}

/// The record of the last run that replaced a directory's output.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitRecord {
    /// The format of this record; 1.
    pub version: u32,
    /// The job that wrote the run.
    pub job: String,
    /// The run's id, as in its file names.
    pub run: String,
    /// When the run was committed, in epoch milliseconds.
    pub committed_ms: i64,
    /// The run's files, relative to the directory, `/`-separated.
    pub files: Vec<String>,
    /// While a commit is under way: the files of the run replacing this
    /// one, still to be renamed into place. A writer that finds a record
    /// with pending files completes the commit first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<String>,
}

impl CommitRecord {
    /// Reads the record in `dir`; `None` if there is none.
    ///
    /// # Errors
    /// [`Error::Io`] when it cannot be read, [`Error::Config`] when it
    /// is not a commit record.
    pub fn read(dir: &Path) -> Result<Option<CommitRecord>> {
        let path = dir.join(COMMIT_FILE);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(format_args!("reading {}", path.display()), e)),
        };
        serde_json::from_str(&text).map(Some).map_err(|e| {
            Error::Config(format!(
                "{} is not a Brook commit record: {e}",
                path.display()
            ))
        })
    }

    /// Writes the record into `dir` atomically: a temporary file, synced,
    /// renamed over the old record, and the directory synced.
    ///
    /// # Errors
    /// [`Error::Io`] naming the path.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let path = dir.join(COMMIT_FILE);
        let tmp = dir.join(format!(".{COMMIT_FILE}.tmp"));
        let io = |e| Error::io(format_args!("writing {}", path.display()), e);
        let text = serde_json::to_vec_pretty(self).map_err(|e| io(io::Error::other(e)))?;
        let mut file = File::create(&tmp).map_err(io)?;
        file.write_all(&text)
            .and_then(|()| file.sync_all())
            .map_err(io)?;
        drop(file);
        fs::rename(&tmp, &path).map_err(io)?;
        crate::publish::sync_dir(dir)
    }

    /// The paths of the record's files under `dir`.
    pub fn paths(&self, dir: &Path) -> Vec<PathBuf> {
        self.files.iter().map(|f| dir.join(f)).collect()
    }
}

/// The hidden name a part file has while it is written, or staged for a
/// commit: `.<name>.inprogress` beside its final name `done`.
pub fn in_progress_path(done: &Path) -> PathBuf {
    let name = done
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    done.with_file_name(format!(".{name}.inprogress"))
}

/// `path` relative to `dir`, `/`-separated, as a commit record lists it.
/// `path` relative to `dir`, `/`-separated, as a commit record or a
/// checkpoint lists it.
///
/// # Errors
/// [`Error::Internal`] when `path` is not under `dir`.
pub fn relative_path(dir: &Path, path: &Path) -> Result<String> {
    relative(dir, path)
}

fn relative(dir: &Path, path: &Path) -> Result<String> {
    let rel = path.strip_prefix(dir).map_err(|_| {
        Error::Internal(format!("{} is not under {}", path.display(), dir.display()))
    })?;
    Ok(rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/"))
}

/// Makes a replacing run's output final, once the run has succeeded:
/// `staged` are its finished files, still under their in-progress names
/// (final paths given). Records the intent, renames the files into place,
/// records them as the directory's output, then removes the files of the
/// run they replace (only those its record lists). A run that staged no
/// file replaces nothing: the earlier output stays, with a warning.
/// Returns whether the output was replaced.
///
/// # Errors
/// [`Error::Io`] naming the path; [`Error::Config`] when the directory's
/// record is not one. A commit that fails half-way is completed by the
/// next writer of the directory ([`recover`]).
pub fn commit_replacing(dir: &Path, job: &str, run: &str, staged: &[PathBuf]) -> Result<bool> {
    if staged.is_empty() {
        tracing::warn!(
            dir = %dir.display(),
            "The run wrote no rows; the earlier output in the directory stays."
        );
        return Ok(false);
    }
    let old = CommitRecord::read(dir)?.unwrap_or_default();
    let mut pending = staged
        .iter()
        .map(|p| relative(dir, p))
        .collect::<Result<Vec<_>>>()?;
    pending.sort();
    let intent = CommitRecord {
        version: 1,
        job: job.to_string(),
        run: run.to_string(),
        committed_ms: brook_core::time::now_ms(),
        files: old.files,
        pending,
    };
    intent.write(dir)?;
    complete(dir, intent)?;
    Ok(true)
}

/// Completes a commit whose intent `record` holds: renames its pending
/// files into place (those already there count as done), records them as
/// the output, and removes the files they replace.
fn complete(dir: &Path, record: CommitRecord) -> Result<()> {
    let pending: Vec<PathBuf> = record.pending.iter().map(|f| dir.join(f)).collect();
    publish_staged(dir, &pending)?;
    let replaced: Vec<String> = record
        .files
        .iter()
        .filter(|f| !record.pending.contains(f))
        .cloned()
        .collect();
    let done = CommitRecord {
        files: record.pending,
        pending: Vec::new(),
        ..record
    };
    done.write(dir)?;
    let mut removed = 0;
    for file in replaced {
        let path = dir.join(&file);
        let ours = path
            .file_name()
            .is_some_and(|n| is_part_file(&n.to_string_lossy()));
        if !ours {
            continue;
        }
        match fs::remove_file(&path) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format_args!("removing {}", path.display()), e)),
        }
    }
    tracing::info!(
        dir = %dir.display(),
        files = done.files.len(),
        replaced = removed,
        "Output committed."
    );
    Ok(())
}

/// Publishes files staged under their in-progress names
/// ([`in_progress_path`] of each of `done`): renames each to its final
/// name, then syncs each directory that holds one, once, so that the
/// renames survive a crash. A file already published counts as done, so a
/// publish interrupted by a crash can be repeated.
///
/// One directory sync for all the files, not one per file: on a
/// journalling file system each sync is a journal commit, and a job at
/// parallelism 16 publishes 16 files at a time. Nothing relies on a
/// rename before this returns.
///
/// # Errors
/// [`Error::Io`] naming the path, also when neither name of a file exists.
/// Files renamed before the error stay renamed (and are synced with the
/// rest when the publish is repeated).
pub fn publish_staged<P: AsRef<Path>>(dir: &Path, done: &[P]) -> Result<()> {
    let mut parents: Vec<&Path> = Vec::new();
    for done in done {
        let done = done.as_ref();
        let staged = in_progress_path(done);
        match fs::rename(&staged, done) {
            Ok(()) => {}
            // Published before.
            Err(e) if e.kind() == io::ErrorKind::NotFound && done.exists() => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::io(
                    format_args!(
                        "publishing {}: neither it nor {} exists",
                        done.display(),
                        staged.display()
                    ),
                    e,
                ));
            }
            Err(e) => {
                let context = format_args!("renaming {} to {}", staged.display(), done.display());
                return Err(Error::io(context, e));
            }
        }
        // Synced even when it was published before: that publish may
        // have been cut short between its rename and its sync.
        let parent = done.parent().unwrap_or(dir);
        if !parents.contains(&parent) {
            parents.push(parent);
        }
    }
    parents.into_iter().try_for_each(crate::publish::sync_dir)
}

/// Completes a commit that a writer of `dir` left half-way (it died after
/// recording the intent). Call with the directory's lock held.
///
/// # Errors
/// As [`commit_replacing`].
pub fn recover(dir: &Path) -> Result<()> {
    match CommitRecord::read(dir)? {
        Some(record) if !record.pending.is_empty() => {
            tracing::warn!(dir = %dir.display(), run = %record.run, "Completing a commit an earlier run left half-way.");
            complete(dir, record)
        }
        _ => Ok(()),
    }
}

/// Removes the staged files of a run that is not to be committed (it was
/// stopped before its input ended).
///
/// # Errors
/// [`Error::Io`] naming the file that could not be removed.
pub fn discard(staged: &[PathBuf]) -> Result<()> {
    for done in staged {
        let path = in_progress_path(done);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format_args!("removing {}", path.display()), e)),
        }
    }
    Ok(())
}

/// An id for one run of a sink: the start time in milliseconds and 24
/// random bits (`1700000000000-3fa9c2`), so that runs into the same
/// directory, or two sinks of one process started in the same
/// millisecond, never pick the same file names.
pub fn run_id() -> String {
    use std::hash::{BuildHasher, Hash, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static SINKS: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    std::process::id().hash(&mut hasher);
    SINKS.fetch_add(1, Ordering::Relaxed).hash(&mut hasher);
    std::time::SystemTime::now().hash(&mut hasher);
    format!(
        "{}-{:06x}",
        brook_core::time::now_ms(),
        hasher.finish() & 0xff_ff_ff
    )
}

/// What a writer of part files pre-commits at a checkpoint: files
/// finished and synced under their hidden in-progress names
/// ([`in_progress_path`]), relative to the sink's directory, to be
/// published ([`publish_staged`]) when the checkpoint completes.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreCommit {
    /// The files' final paths, relative to the directory, `/`-separated.
    pub files: Vec<String>,
}

impl PreCommit {
    /// The pre-commit of `files` (final paths under `dir`); `None` for no
    /// file.
    ///
    /// # Errors
    /// [`Error::Internal`] for a path not under `dir`.
    pub fn encode(dir: &Path, files: &[PathBuf]) -> Result<Option<Vec<u8>>> {
        if files.is_empty() {
            return Ok(None);
        }
        let pre = PreCommit {
            files: files
                .iter()
                .map(|f| relative_path(dir, f))
                .collect::<Result<_>>()?,
        };
        serde_json::to_vec(&pre)
            .map(Some)
            .map_err(|e| Error::Internal(format!("encoding a pre-commit: {e}")))
    }

    /// The final paths (under `dir`) of the files in writers'
    /// pre-commits.
    ///
    /// # Errors
    /// [`Error::State`] for a pre-commit that does not parse.
    pub fn files(dir: &Path, pre_committed: &[Vec<u8>]) -> Result<Vec<PathBuf>> {
        let mut files = Vec::new();
        for bytes in pre_committed {
            let pre: PreCommit = serde_json::from_slice(bytes).map_err(|e| {
                Error::State(format!("a file sink's pre-commit does not parse: {e}"))
            })?;
            files.extend(pre.files.iter().map(|f| dir.join(f)));
        }
        Ok(files)
    }
}

/// Whether `name` is the name of a part file a Brook sink publishes:
/// `part-<anything>.<extension>`, not hidden.
pub fn is_part_file(name: &str) -> bool {
    name.starts_with("part-")
}

#[cfg(test)]
mod tests;
