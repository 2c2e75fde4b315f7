//! Where checkpoints live: a directory with one folder per checkpoint,
//! `chk-000042/<node>/<instance>` holding each node instance's state, and
//! `chk-000042/_manifest.json` written last, atomically, when the
//! checkpoint is complete.
//!
//! # Durability
//! Every state file is written and synced before the manifest; the
//! manifest is written to a temporary name, synced, renamed into place, and
//! the directory synced. A folder without a manifest (the process died
//! while writing it) or whose manifest does not parse is not a checkpoint:
//! restore skips it with a warning naming it, and retention deletes it.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::checkpoint::manifest::{Manifest, VERSION};
use crate::error::{Error, Result};
use crate::message::CheckpointId;

/// The name of a checkpoint's manifest inside its folder.
pub(crate) const MANIFEST: &str = "_manifest.json";

/// A checkpoint directory on the local filesystem, locked against a
/// second job while a value of it lives.
#[derive(Debug, Clone)]
pub(crate) struct LocalStorage {
    dir: PathBuf,
    /// The directory's lock file, locked; the OS frees it if the process
    /// dies.
    _lock: std::sync::Arc<fs::File>,
}

/// The lock file in a checkpoint directory.
const LOCK: &str = ".brook-checkpoints.lock";

/// Why a folder is not a usable checkpoint.
#[derive(Debug)]
pub(crate) struct Skipped {
    pub(crate) path: PathBuf,
    pub(crate) reason: String,
}

fn io(what: impl std::fmt::Display, path: &Path, e: std::io::Error) -> Error {
    Error::io(format_args!("checkpoints: {what} {}", path.display()), e)
}

/// Writes `bytes` to `path` and syncs it.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = fs::File::create(path).map_err(|e| io("creating", path, e))?;
    f.write_all(bytes).map_err(|e| io("writing", path, e))?;
    f.sync_all().map_err(|e| io("syncing", path, e))
}

/// Syncs a directory, so the names in it are durable.
fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("syncing the directory", dir, e))
}

impl LocalStorage {
    /// Checkpoints under `dir`, which is created if missing.
    pub(crate) fn new(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| io("creating", &dir, e))?;
        if !dir.is_dir() {
            return Err(Error::Config(format!(
                "checkpoints: {} is not a directory",
                dir.display()
            )));
        }
        let path = dir.join(LOCK);
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io("opening", &path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(Error::Config(format!(
                    "checkpoints: {} is in use by another running job",
                    dir.display()
                )));
            }
            Err(fs::TryLockError::Error(e)) => return Err(io("locking", &path, e)),
        }
        Ok(LocalStorage {
            dir,
            _lock: std::sync::Arc::new(file),
        })
    }

    /// The directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The folder of checkpoint `id`.
    pub(crate) fn folder(&self, id: CheckpointId) -> PathBuf {
        self.dir.join(format!("chk-{id:06}"))
    }

    /// Where a node instance's state goes, relative to the checkpoint's
    /// folder: `<node>/<instance>`.
    pub(crate) fn state_name(node: &str, instance: usize) -> String {
        format!("{}/{instance}", escape(node))
    }

    /// Writes one node instance's state into checkpoint `id` and syncs it;
    /// returns its name relative to the checkpoint's folder.
    pub(crate) fn write_state(
        &self,
        id: CheckpointId,
        node: &str,
        instance: usize,
        bytes: &[u8],
    ) -> Result<String> {
        let name = Self::state_name(node, instance);
        let path = self.folder(id).join(&name);
        let parent = path.parent().unwrap_or(&self.dir);
        fs::create_dir_all(parent).map_err(|e| io("creating", parent, e))?;
        write_synced(&path, bytes)?;
        Ok(name)
    }

    /// Reads a state file named in checkpoint `id`'s manifest.
    pub(crate) fn read_state(&self, id: CheckpointId, name: &str) -> Result<Vec<u8>> {
        let path = self.folder(id).join(name);
        fs::read(&path).map_err(|e| io("reading", &path, e))
    }

    /// Completes checkpoint `id`: syncs its folders and writes its
    /// manifest atomically.
    pub(crate) fn write_manifest(&self, manifest: &Manifest) -> Result<()> {
        let folder = self.folder(manifest.id);
        fs::create_dir_all(&folder).map_err(|e| io("creating", &folder, e))?;
        for entry in fs::read_dir(&folder).map_err(|e| io("listing", &folder, e))? {
            let entry = entry.map_err(|e| io("listing", &folder, e))?;
            if entry.path().is_dir() {
                sync_dir(&entry.path())?;
            }
        }
        let bytes = serde_json::to_vec_pretty(manifest)
            .map_err(|e| Error::Internal(format!("encoding a checkpoint manifest: {e}")))?;
        let tmp = folder.join(format!(".{MANIFEST}.tmp"));
        write_synced(&tmp, &bytes)?;
        let path = folder.join(MANIFEST);
        fs::rename(&tmp, &path).map_err(|e| io("renaming into place", &path, e))?;
        sync_dir(&folder)?;
        sync_dir(&self.dir)
    }

    /// The ids of the folders that look like checkpoints, oldest first.
    fn ids(&self) -> Result<Vec<CheckpointId>> {
        let mut ids = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(|e| io("listing", &self.dir, e))? {
            let entry = entry.map_err(|e| io("listing", &self.dir, e))?;
            let name = entry.file_name();
            if let Some(id) = name
                .to_str()
                .and_then(|n| n.strip_prefix("chk-"))
                .and_then(|n| n.parse::<CheckpointId>().ok())
            {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        Ok(ids)
    }

    /// Reads checkpoint `id`'s manifest, checking that every state file it
    /// names is there with its recorded size.
    pub(crate) fn read_manifest(&self, id: CheckpointId) -> std::result::Result<Manifest, String> {
        let path = self.folder(id).join(MANIFEST);
        let bytes = fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => "no manifest: the checkpoint never completed".into(),
            _ => format!("reading its manifest: {e}"),
        })?;
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| format!("its manifest is corrupt: {e}"))?;
        if manifest.id != id {
            return Err(format!("its manifest names checkpoint {}", manifest.id));
        }
        for (name, size) in manifest.state_files() {
            let file = self.folder(id).join(name);
            match fs::metadata(&file) {
                Ok(m) if m.len() == size => {}
                Ok(m) => {
                    return Err(format!(
                        "{} holds {} bytes, its manifest says {size}",
                        file.display(),
                        m.len()
                    ));
                }
                Err(e) => return Err(format!("{}: {e}", file.display())),
            }
        }
        Ok(manifest)
    }

    /// The newest complete checkpoint (or checkpoint `wanted`), and the
    /// newer folders skipped on the way with why.
    pub(crate) fn latest(
        &self,
        wanted: Option<CheckpointId>,
    ) -> Result<(Option<Manifest>, Vec<Skipped>)> {
        let mut skipped = Vec::new();
        for id in self.ids()?.into_iter().rev() {
            if wanted.is_some_and(|w| w != id) {
                continue;
            }
            match self.read_manifest(id) {
                Ok(m) if m.version != VERSION => {
                    return Err(Error::Config(format!(
                        "checkpoint {} was written in checkpoint format {}, and this Brook \
                         reads format {VERSION}: restore it with the Brook that wrote it, or \
                         start fresh",
                        self.folder(id).display(),
                        m.version
                    )));
                }
                Ok(m) => return Ok((Some(m), skipped)),
                Err(reason) => skipped.push(Skipped {
                    path: self.folder(id),
                    reason,
                }),
            }
        }
        Ok((None, skipped))
    }

    /// The id the next checkpoint takes: past every folder there.
    pub(crate) fn next_id(&self) -> Result<CheckpointId> {
        Ok(self.ids()?.last().map_or(1, |id| id + 1))
    }

    /// Keeps the newest `retain` complete checkpoints (at least one) and
    /// deletes older folders, complete or not. Folders newer than the
    /// newest complete one are left alone: one may be in progress.
    pub(crate) fn retain(&self, retain: usize) -> Result<()> {
        let ids = self.ids()?;
        let complete: Vec<_> = ids
            .iter()
            .copied()
            .filter(|&id| self.folder(id).join(MANIFEST).is_file())
            .collect();
        let keep = retain.max(1);
        let Some(&oldest_kept) = complete.iter().rev().take(keep).next_back() else {
            return Ok(());
        };
        for id in ids.into_iter().filter(|&id| id < oldest_kept) {
            let folder = self.folder(id);
            if let Err(e) = fs::remove_dir_all(&folder) {
                tracing::warn!(folder = %folder.display(), error = %e, "Could not delete an old checkpoint.");
            }
        }
        Ok(())
    }
}

impl LocalStorage {
    /// Deletes every checkpoint folder (a job that completed has nothing
    /// to resume); other files in the directory stay.
    pub(crate) fn clear(&self) -> Result<()> {
        for id in self.ids()? {
            let folder = self.folder(id);
            fs::remove_dir_all(&folder).map_err(|e| io("deleting", &folder, e))?;
        }
        Ok(())
    }
}

/// A node name as a folder name: path separators and dots are escaped.
fn escape(node: &str) -> String {
    let mut s = String::with_capacity(node.len());
    for c in node.chars() {
        match c {
            '/' | '\\' | '%' | ':' => s.push_str(&format!("%{:02X}", c as u32)),
            '.' if s.is_empty() => s.push_str("%2E"),
            c => s.push(c),
        }
    }
    s
}
