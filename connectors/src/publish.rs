//! What the file-writing sinks share: checking their directory, publishing
//! a finished file by rename, and running blocking I/O off the task.

use std::fs::{self, File};
use std::io;
use std::path::Path;

use brook_core::{Error, Result};

/// Fails early on a directory that cannot be one, without writing
/// anything: a job that fails to start has written nothing. A directory
/// that does not exist yet is created by the first write.
pub fn check_dir(dir: &Path) -> Result<()> {
    let context = || format!("sink directory {}", dir.display());
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(Error::io(
            context(),
            io::Error::from(io::ErrorKind::NotADirectory),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(context(), e)),
    }
}

/// Creates `dir` and any missing parents, and syncs the parent of each
/// directory it creates, so that the new directories survive a crash with
/// the files later published in them. A directory that exists is left as
/// it is.
///
/// # Errors
/// [`Error::Io`] naming the directory that could not be created or synced.
pub fn create_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    // The directories to create, deepest first.
    let mut missing = Vec::new();
    let mut at = Some(dir);
    while let Some(d) = at.filter(|d| !d.as_os_str().is_empty() && !d.is_dir()) {
        missing.push(d);
        at = d.parent();
    }
    fs::create_dir_all(dir)
        .map_err(|e| Error::io(format_args!("creating directory {}", dir.display()), e))?;
    for d in missing.into_iter().rev() {
        match d.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(parent) => sync_dir(parent)?,
            // A relative path's first component: its parent is the
            // working directory.
            None => sync_dir(Path::new("."))?,
        }
    }
    Ok(())
}

/// Publishes a finished file: syncs `file` (written at `in_progress`),
/// renames it to `done` (replacing a file of that name) and syncs `dir`,
/// the directory holding both, so that the rename survives a crash.
///
/// # Errors
/// [`Error::Io`] naming the path; the in-progress file then stays.
pub fn publish(file: File, in_progress: &Path, done: &Path, dir: &Path) -> Result<()> {
    sync_file(file, in_progress)?;
    rename(in_progress, done, dir)
}

/// Syncs and closes `file`, written at `path`.
///
/// # Errors
/// [`Error::Io`] naming the path.
pub fn sync_file(file: File, path: &Path) -> Result<()> {
    file.sync_all()
        .map_err(|e| Error::io(format_args!("syncing {}", path.display()), e))
}

/// Renames a finished file `from` to `to` (replacing a file of that name)
/// and syncs `dir`, the directory holding both, so that the rename
/// survives a crash.
///
/// # Errors
/// [`Error::Io`] naming the paths.
pub fn rename(from: &Path, to: &Path, dir: &Path) -> Result<()> {
    fs::rename(from, to).map_err(|e| {
        let context = format_args!("renaming {} to {}", from.display(), to.display());
        Error::io(context, e)
    })?;
    sync_dir(dir)
}

/// Syncs a directory, so that a rename in it is durable.
#[cfg(unix)]
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(format_args!("syncing directory {}", dir.display()), e))
}

/// Other systems cannot open a directory as a file to sync it.
#[cfg(not(unix))]
pub fn sync_dir(_dir: &Path) -> Result<()> {
    Ok(())
}

/// Runs blocking encoding and file I/O of a `sink` ("a parquet sink") on
/// tokio's blocking pool.
pub async fn blocking<R: Send + 'static>(
    sink: &'static str,
    f: impl FnOnce() -> Result<R> + Send + 'static,
) -> Result<R> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("{sink}'s blocking write failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_dir_makes_the_missing_parents_and_leaves_what_exists() {
        let root = tempfile::tempdir().expect("tempdir");
        let deep = root.path().join("out").join("k=1").join("v=2");
        create_dir(&deep).expect("create");
        assert!(deep.is_dir());
        fs::write(deep.join("kept"), "x").expect("write");
        create_dir(&deep).expect("again");
        assert!(deep.join("kept").exists());
    }

    #[test]
    fn create_dir_under_a_file_names_it() {
        let root = tempfile::tempdir().expect("tempdir");
        let file = root.path().join("file");
        fs::write(&file, "x").expect("write");
        let err = create_dir(&file.join("sub")).expect_err("a file is in the way");
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
        assert!(err.to_string().contains("file/sub"), "{err}");
    }
}
