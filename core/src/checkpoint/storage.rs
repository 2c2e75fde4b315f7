//! Where checkpoints live: a directory (or an object-store prefix) with
//! one folder per checkpoint, `chk-000042/<node>/<instance>` holding each
//! node instance's state, and `chk-000042/_manifest.json` written last,
//! atomically, when the checkpoint is complete.
//!
//! # Backends
//! - **A local directory** (the default), written with `std::fs` because
//!   durability needs what `object_store`'s local store does not do (sync
//!   files and directories). Locked against a second job.
//! - **An object store** ([`object_store`]: in memory for tests, S3 and
//!   compatible stores with the `s3` feature), where a `put` is atomic and
//!   durable when it returns. Not locked: give each job its own prefix.
//!
//! # Durability
//! Every state file is written (and, locally, synced) before the manifest;
//! locally, the manifest is written to a temporary name, synced, renamed
//! into place, and the directory synced; in an object store it is one
//! atomic `put`. A folder without a manifest (the process died while
//! writing it) or whose manifest does not parse is not a checkpoint:
//! restore skips it with a warning naming it, and retention deletes it.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::checkpoint::Location;
use crate::checkpoint::manifest::{Manifest, VERSION};
use crate::error::{Error, Result};
use crate::message::CheckpointId;

/// The name of a checkpoint's manifest inside its folder.
pub(crate) const MANIFEST: &str = "_manifest.json";

/// The lock file in a checkpoint directory.
const LOCK: &str = super::LOCK_FILE;

/// The newest checkpoint number a directory had when its checkpoints were
/// cleared: numbers go on from it, so that a number names one checkpoint
/// of the directory forever (a sink's commit marker relies on it).
const LAST_ID: &str = "_last_checkpoint_id";

/// Why a folder is not a usable checkpoint.
#[derive(Debug)]
pub(crate) struct Skipped {
    /// The folder, as a path or URL.
    pub(crate) path: String,
    pub(crate) reason: String,
}

/// What a backend does, on paths relative to the checkpoint root
/// (`chk-000042/_manifest.json`). Called from blocking code.
trait Backend: Send + Sync + std::fmt::Debug {
    /// The full path or URL of `rel`, for messages.
    fn describe(&self, rel: &str) -> String;
    /// Writes a state file, durably (locally: synced; its directory is
    /// synced by `put_manifest`).
    fn put(&self, rel: &str, bytes: &[u8]) -> Result<()>;
    /// Writes checkpoint `folder`'s manifest atomically and durably, after
    /// everything in the folder is durable.
    fn put_manifest(&self, folder: &str, bytes: &[u8]) -> Result<()>;
    /// Reads a file; `None` if there is none.
    fn get(&self, rel: &str) -> Result<Option<Vec<u8>>>;
    /// A file's size; `None` if there is none.
    fn size(&self, rel: &str) -> Result<Option<u64>>;
    /// The names at the root (folders and files).
    fn list_root(&self) -> Result<Vec<String>>;
    /// Deletes a folder and everything in it.
    fn delete_folder(&self, folder: &str) -> Result<()>;
}

/// Where a job's checkpoints are, with the folder layout and the
/// manifest rules; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Storage {
    backend: Arc<dyn Backend>,
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

/// A checkpoint directory on the local filesystem, locked against a
/// second job while a value of it lives.
#[derive(Debug)]
struct LocalDir {
    dir: PathBuf,
    /// The directory's lock file, locked; the OS frees it if the process
    /// dies.
    _lock: fs::File,
}

impl LocalDir {
    /// Checkpoints under `dir`, which is created if missing.
    fn open(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir).map_err(|e| io("creating", dir, e))?;
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
        Ok(LocalDir {
            dir: dir.to_path_buf(),
            _lock: file,
        })
    }
}

impl Backend for LocalDir {
    fn describe(&self, rel: &str) -> String {
        self.dir.join(rel).display().to_string()
    }

    fn put(&self, rel: &str, bytes: &[u8]) -> Result<()> {
        let path = self.dir.join(rel);
        let parent = path.parent().unwrap_or(&self.dir);
        fs::create_dir_all(parent).map_err(|e| io("creating", parent, e))?;
        write_synced(&path, bytes)
    }

    fn put_manifest(&self, folder: &str, bytes: &[u8]) -> Result<()> {
        let folder = self.dir.join(folder);
        fs::create_dir_all(&folder).map_err(|e| io("creating", &folder, e))?;
        for entry in fs::read_dir(&folder).map_err(|e| io("listing", &folder, e))? {
            let entry = entry.map_err(|e| io("listing", &folder, e))?;
            if entry.path().is_dir() {
                sync_dir(&entry.path())?;
            }
        }
        let tmp = folder.join(format!(".{MANIFEST}.tmp"));
        write_synced(&tmp, bytes)?;
        let path = folder.join(MANIFEST);
        fs::rename(&tmp, &path).map_err(|e| io("renaming into place", &path, e))?;
        sync_dir(&folder)?;
        sync_dir(&self.dir)
    }

    fn get(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        let path = self.dir.join(rel);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("reading", &path, e)),
        }
    }

    fn size(&self, rel: &str) -> Result<Option<u64>> {
        let path = self.dir.join(rel);
        match fs::metadata(&path) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("reading the size of", &path, e)),
        }
    }

    fn list_root(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(|e| io("listing", &self.dir, e))? {
            let entry = entry.map_err(|e| io("listing", &self.dir, e))?;
            if let Some(name) = entry.file_name().to_str() {
                names.push(name.to_string());
            }
        }
        Ok(names)
    }

    fn delete_folder(&self, folder: &str) -> Result<()> {
        let path = self.dir.join(folder);
        fs::remove_dir_all(&path).map_err(|e| io("deleting", &path, e))
    }
}

impl Storage {
    /// The storage of `location`: a local directory is created if missing
    /// and locked.
    ///
    /// # Errors
    /// A directory that cannot be created or is locked by another job.
    pub(crate) fn open(location: &Location) -> Result<Self> {
        let backend: Arc<dyn Backend> = match location {
            Location::Dir(dir) => Arc::new(LocalDir::open(dir)?),
            Location::Store(store) => Arc::new(object::ObjectDir::new(store.clone())?),
        };
        Ok(Storage { backend })
    }

    /// Where the checkpoints are, as a path or URL.
    pub(crate) fn describe(&self) -> String {
        self.backend.describe("")
    }

    /// The folder of checkpoint `id`, relative to the root.
    fn folder(id: CheckpointId) -> String {
        format!("chk-{id:06}")
    }

    /// The full path or URL of checkpoint `id`'s folder.
    pub(crate) fn folder_name(&self, id: CheckpointId) -> String {
        self.backend.describe(&Self::folder(id))
    }

    /// Where a node instance's state goes, relative to the checkpoint's
    /// folder: `<node>/<instance>`.
    pub(crate) fn state_name(node: &str, instance: usize) -> String {
        format!("{}/{instance}", escape(node))
    }

    /// Writes one node instance's state into checkpoint `id`, durably;
    /// returns its name relative to the checkpoint's folder.
    pub(crate) fn write_state(
        &self,
        id: CheckpointId,
        node: &str,
        instance: usize,
        bytes: &[u8],
    ) -> Result<String> {
        let name = Self::state_name(node, instance);
        self.backend
            .put(&format!("{}/{name}", Self::folder(id)), bytes)?;
        Ok(name)
    }

    /// Reads a state file named in checkpoint `id`'s manifest.
    pub(crate) fn read_state(&self, id: CheckpointId, name: &str) -> Result<Vec<u8>> {
        let rel = format!("{}/{name}", Self::folder(id));
        self.backend.get(&rel)?.ok_or_else(|| {
            Error::Config(format!(
                "checkpoints: {} is missing",
                self.backend.describe(&rel)
            ))
        })
    }

    /// Completes checkpoint `id`: writes its manifest atomically, after
    /// everything else in its folder is durable.
    pub(crate) fn write_manifest(&self, manifest: &Manifest) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(manifest)
            .map_err(|e| Error::Internal(format!("encoding a checkpoint manifest: {e}")))?;
        self.backend
            .put_manifest(&Self::folder(manifest.id), &bytes)
    }

    /// The ids of the folders that look like checkpoints, oldest first.
    fn ids(&self) -> Result<Vec<CheckpointId>> {
        let mut ids: Vec<CheckpointId> = self
            .backend
            .list_root()?
            .iter()
            .filter_map(|n| n.strip_prefix("chk-")?.parse().ok())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }

    /// Whether checkpoint `id` has a manifest.
    fn is_complete(&self, id: CheckpointId) -> Result<bool> {
        Ok(self
            .backend
            .size(&format!("{}/{MANIFEST}", Self::folder(id)))?
            .is_some())
    }

    /// Reads checkpoint `id`'s manifest, checking that every state file it
    /// names is there with its recorded size.
    pub(crate) fn read_manifest(&self, id: CheckpointId) -> std::result::Result<Manifest, String> {
        let folder = Self::folder(id);
        let bytes = match self.backend.get(&format!("{folder}/{MANIFEST}")) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Err("no manifest: the checkpoint never completed".into()),
            Err(e) => return Err(format!("reading its manifest: {e}")),
        };
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| format!("its manifest is corrupt: {e}"))?;
        if manifest.id != id {
            return Err(format!("its manifest names checkpoint {}", manifest.id));
        }
        for (name, size) in manifest.state_files() {
            let rel = format!("{folder}/{name}");
            let file = self.backend.describe(&rel);
            match self.backend.size(&rel) {
                Ok(Some(len)) if len == size => {}
                Ok(Some(len)) => {
                    return Err(format!(
                        "{file} holds {len} bytes, its manifest says {size}"
                    ));
                }
                Ok(None) => return Err(format!("{file} is missing")),
                Err(e) => return Err(format!("{file}: {e}")),
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
                        self.folder_name(id),
                        m.version
                    )));
                }
                Ok(m) => return Ok((Some(m), skipped)),
                Err(reason) => skipped.push(Skipped {
                    path: self.folder_name(id),
                    reason,
                }),
            }
        }
        Ok((None, skipped))
    }

    /// The id the next checkpoint takes: past every folder there, and
    /// past every checkpoint the directory ever had.
    pub(crate) fn next_id(&self) -> Result<CheckpointId> {
        let newest = self.ids()?.last().copied().unwrap_or(0);
        Ok(newest.max(self.last_cleared()?) + 1)
    }

    /// The newest number of the checkpoints cleared so far (0: none).
    fn last_cleared(&self) -> Result<CheckpointId> {
        Ok(self
            .backend
            .get(LAST_ID)?
            .and_then(|b| String::from_utf8(b).ok()?.trim().parse().ok())
            .unwrap_or(0))
    }

    /// Keeps the newest `retain` complete checkpoints (at least one) and
    /// deletes older folders, complete or not. Folders newer than the
    /// newest complete one are left alone: one may be in progress.
    pub(crate) fn retain(&self, retain: usize) -> Result<()> {
        let ids = self.ids()?;
        let mut complete = Vec::new();
        for &id in &ids {
            if self.is_complete(id)? {
                complete.push(id);
            }
        }
        let keep = retain.max(1);
        let Some(&oldest_kept) = complete.iter().rev().take(keep).next_back() else {
            return Ok(());
        };
        for id in ids.into_iter().filter(|&id| id < oldest_kept) {
            if let Err(e) = self.backend.delete_folder(&Self::folder(id)) {
                tracing::warn!(folder = %self.folder_name(id), error = %e, "Could not delete an old checkpoint.");
            }
        }
        Ok(())
    }

    /// Deletes every checkpoint folder (a job that completed has nothing
    /// to resume); other files stay. The newest number is kept, so the
    /// next checkpoint's is higher.
    pub(crate) fn clear(&self) -> Result<()> {
        let ids = self.ids()?;
        if let Some(&last) = ids.last()
            && last > self.last_cleared()?
        {
            self.backend.put(LAST_ID, last.to_string().as_bytes())?;
        }
        for id in ids {
            self.backend.delete_folder(&Self::folder(id))?;
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

/// The object-store backend.
mod object {
    use std::sync::Arc;

    use futures::TryStreamExt;
    use object_store::path::Path as StorePath;
    use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

    use super::{Backend, MANIFEST};
    use crate::checkpoint::StoreLocation;
    use crate::error::{Error, Result};

    /// Checkpoints under a prefix of an object store. Its calls run on a
    /// small runtime of its own, so they work from any thread, inside a
    /// runtime or not.
    #[derive(Debug)]
    pub(super) struct ObjectDir {
        location: StoreLocation,
        runtime: Runtime,
    }

    /// A one-thread tokio runtime, shut down without blocking when
    /// dropped (it may be dropped inside another runtime).
    #[derive(Debug)]
    struct Runtime(Option<tokio::runtime::Runtime>);

    impl Drop for Runtime {
        fn drop(&mut self) {
            if let Some(rt) = self.0.take() {
                rt.shutdown_background();
            }
        }
    }

    fn store_err(what: String, e: object_store::Error) -> Error {
        Error::External {
            source: format!("checkpoints: {what}: {e}").into(),
            retry: crate::RetryHint::Fatal,
        }
    }

    impl ObjectDir {
        pub(super) fn new(location: StoreLocation) -> Result<Self> {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("brook-checkpoint-store")
                .enable_all()
                .build()
                .map_err(|e| Error::io("checkpoints: starting the object store's runtime", e))?;
            Ok(ObjectDir {
                location,
                runtime: Runtime(Some(rt)),
            })
        }

        fn path(&self, rel: &str) -> StorePath {
            let mut parts: Vec<String> = self
                .location
                .prefix
                .parts()
                .map(|p| p.as_ref().to_string())
                .collect();
            parts.extend(rel.split('/').filter(|p| !p.is_empty()).map(String::from));
            StorePath::from_iter(parts)
        }

        fn store(&self) -> Arc<dyn ObjectStore> {
            self.location.store.clone()
        }

        /// Runs `f` on the backend's runtime and waits for it.
        fn run<T: Send + 'static>(
            &self,
            f: impl std::future::Future<Output = Result<T>> + Send + 'static,
        ) -> Result<T> {
            let rt = self
                .runtime
                .0
                .as_ref()
                .ok_or_else(|| Error::Internal("checkpoint store runtime gone".into()))?;
            let handle = rt.spawn(f);
            futures::executor::block_on(handle)
                .map_err(|e| Error::Internal(format!("a checkpoint store call: {e}")))?
        }
    }

    impl Backend for ObjectDir {
        fn describe(&self, rel: &str) -> String {
            let base = self.location.url.trim_end_matches('/');
            if rel.is_empty() {
                base.to_string()
            } else {
                format!("{base}/{rel}")
            }
        }

        fn put(&self, rel: &str, bytes: &[u8]) -> Result<()> {
            let (store, path, what) = (self.store(), self.path(rel), self.describe(rel));
            let payload = PutPayload::from(bytes.to_vec());
            self.run(async move {
                store
                    .put(&path, payload)
                    .await
                    .map(|_| ())
                    .map_err(|e| store_err(format!("writing {what}"), e))
            })
        }

        /// One `put`: atomic in an object store, after every state file's
        /// `put` returned.
        fn put_manifest(&self, folder: &str, bytes: &[u8]) -> Result<()> {
            self.put(&format!("{folder}/{MANIFEST}"), bytes)
        }

        fn get(&self, rel: &str) -> Result<Option<Vec<u8>>> {
            let (store, path, what) = (self.store(), self.path(rel), self.describe(rel));
            self.run(async move {
                match store.get(&path).await {
                    Ok(got) => got
                        .bytes()
                        .await
                        .map(|b| Some(b.to_vec()))
                        .map_err(|e| store_err(format!("reading {what}"), e)),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(store_err(format!("reading {what}"), e)),
                }
            })
        }

        fn size(&self, rel: &str) -> Result<Option<u64>> {
            let (store, path, what) = (self.store(), self.path(rel), self.describe(rel));
            self.run(async move {
                match store.head(&path).await {
                    Ok(meta) => Ok(Some(meta.size)),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(store_err(format!("reading the size of {what}"), e)),
                }
            })
        }

        fn list_root(&self) -> Result<Vec<String>> {
            let (store, prefix, what) = (self.store(), self.path(""), self.describe(""));
            self.run(async move {
                let listed = store
                    .list_with_delimiter(Some(&prefix))
                    .await
                    .map_err(|e| store_err(format!("listing {what}"), e))?;
                Ok(listed
                    .common_prefixes
                    .iter()
                    .chain(listed.objects.iter().map(|o| &o.location))
                    .filter_map(|p| p.filename().map(String::from))
                    .collect())
            })
        }

        fn delete_folder(&self, folder: &str) -> Result<()> {
            let (store, prefix, what) = (self.store(), self.path(folder), self.describe(folder));
            self.run(async move {
                let objects: Vec<_> = store
                    .list(Some(&prefix))
                    .map_ok(|o| o.location)
                    .try_collect()
                    .await
                    .map_err(|e| store_err(format!("listing {what}"), e))?;
                for path in objects {
                    store
                        .delete(&path)
                        .await
                        .map_err(|e| store_err(format!("deleting {what}"), e))?;
                }
                Ok(())
            })
        }
    }
}
