//! Planning a read: which files a path names, how they are cut into byte
//! ranges, and which ranges each parallel instance reads.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use brook_core::{Error, Result};

use super::lines::LineIndex;

/// One file to read.
#[derive(Debug)]
pub(crate) struct FileEntry {
    pub(crate) path: PathBuf,
    /// The size when the read was planned.
    pub(crate) size: u64,
    /// Whether a warning about a dropped line was logged for this file.
    pub(crate) warned: AtomicBool,
    /// The line counts known so far, shared by the file's readers.
    pub(crate) lines: LineIndex,
}

impl FileEntry {
    /// A file of `size` bytes, nothing known about its lines yet.
    pub(crate) fn new(path: PathBuf, size: u64) -> Self {
        FileEntry {
            path,
            size,
            warned: AtomicBool::new(false),
            lines: LineIndex::default(),
        }
    }
}

/// A byte range `[start, end)` of a file. Its reader owns every line that
/// starts in the range.
#[derive(Debug, Clone)]
pub(crate) struct Split {
    pub(crate) file: Arc<FileEntry>,
    pub(crate) start: u64,
    pub(crate) end: u64,
    /// Where reading resumes, a line start a checkpoint recorded; `None`
    /// to read the range from its start.
    pub(crate) resume: Option<u64>,
}

/// The work of every parallel instance, planned once.
#[derive(Debug)]
pub(crate) struct Plan {
    shares: Vec<Vec<Split>>,
}

impl Plan {
    /// Cuts the files into ranges of at least `split_size` bytes (and of
    /// about `total / parallelism` when that is more) and gives each
    /// instance a contiguous run of ranges of about the same number of bytes.
    pub(crate) fn split(files: Vec<FileEntry>, parallelism: usize, split_size: u64) -> Plan {
        let p = parallelism.max(1);
        let total: u64 = files.iter().map(|f| f.size).sum();
        let piece = split_size.max(total / p as u64).max(1);
        let mut shares = vec![Vec::new(); p];
        let mut before = 0u64; // bytes of the files before this one
        for file in files.into_iter().map(Arc::new) {
            let n = (file.size / piece).max(1);
            for k in 0..n {
                let (start, end) = (file.size * k / n, file.size * (k + 1) / n);
                if start == end {
                    continue;
                }
                // The owner is the instance whose share of the bytes holds
                // the range's middle.
                let mid = u128::from(before + start + (end - start) / 2);
                let owner = (mid * p as u128 / u128::from(total)) as usize;
                shares[owner.min(p - 1)].push(Split {
                    file: file.clone(),
                    start,
                    end,
                    resume: None,
                });
            }
            before += file.size;
        }
        Plan { shares }
    }

    /// Gives whole files to the instances, round-robin, for follow mode.
    pub(crate) fn round_robin(files: Vec<FileEntry>, parallelism: usize) -> Plan {
        let p = parallelism.max(1);
        let mut shares = vec![Vec::new(); p];
        for (i, file) in files.into_iter().enumerate() {
            shares[i % p].push(Split {
                file: Arc::new(file),
                start: 0,
                end: u64::MAX,
                resume: None,
            });
        }
        Plan { shares }
    }

    /// The ranges instance `instance` reads, in file and offset order.
    pub(crate) fn share(&self, instance: usize) -> Vec<Split> {
        self.shares.get(instance).cloned().unwrap_or_default()
    }
}

/// The files `path` names: the file itself, a directory's regular non-hidden
/// files sorted by name, or the files a glob pattern matches, sorted.
///
/// # Errors
/// [`Error::Config`] when nothing matches or the pattern is invalid;
/// [`Error::Io`] when a directory or a file's metadata cannot be read.
pub(crate) fn list_files(path: &Path) -> Result<Vec<FileEntry>> {
    let paths = match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => vec![path.to_path_buf()],
        Ok(meta) if meta.is_dir() => list_dir(path)?,
        Ok(_) => {
            return Err(Error::Config(format!(
                "file source path {} is neither a file nor a directory",
                path.display()
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => list_glob(path)?,
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
    };
    if paths.is_empty() {
        return Err(Error::Config(format!(
            "file source: no file matches {}",
            path.display()
        )));
    }
    paths
        .into_iter()
        .map(|path| {
            let size = std::fs::metadata(&path)
                .map_err(|e| Error::io(format!("reading {}", path.display()), e))?
                .len();
            Ok(FileEntry::new(path, size))
        })
        .collect()
}

fn list_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let io = |e| Error::io(format!("listing directory {}", dir.display()), e);
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        // `fs::metadata` follows symbolic links to the file they name.
        if !hidden && std::fs::metadata(entry.path()).is_ok_and(|m| m.is_file()) {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

fn list_glob(pattern: &Path) -> Result<Vec<PathBuf>> {
    let Some(text) = pattern.to_str() else {
        return Err(Error::Config(format!(
            "file source: no file matches {} (and it is not valid UTF-8, so not a glob)",
            pattern.display()
        )));
    };
    let options = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: true,
    };
    let paths = glob::glob_with(text, options)
        .map_err(|e| Error::Config(format!("file source: bad glob pattern {text}: {e}")))?;
    let mut files = Vec::new();
    for path in paths {
        let path = path.map_err(|e| {
            let context = format!("listing {}", e.path().display());
            Error::io(context, e.into())
        })?;
        if std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}
