//! The local file system as SQL sees it: in a sink directory that has a
//! commit record (`_brook_output.json`, written by a Parquet sink that
//! replaces its earlier output), only the files the record lists.
//!
//! Listing tables list their files again for every query; this store reads
//! the record at each listing, so a query sees the run committed when it
//! started, whole: the files of a run being written, or of one being
//! replaced, never both. Directories without a record are listed as they
//! are.

use std::collections::HashSet;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;
use brook_connectors::output::CommitRecord;
use datafusion::object_store::local::LocalFileSystem;
use datafusion::object_store::path::Path;
use datafusion::object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};
use futures::stream::{BoxStream, StreamExt};

/// A registered sink directory: its path, and its object-store prefix.
#[derive(Debug, Clone)]
struct Watched {
    dir: PathBuf,
    prefix: Path,
}

/// The local file system, filtered by the commit records of the
/// directories registered with [`watch`](Self::watch).
#[derive(Debug)]
pub(crate) struct CommittedFiles {
    inner: LocalFileSystem,
    watched: RwLock<Vec<Watched>>,
}

impl CommittedFiles {
    pub(crate) fn new() -> Self {
        CommittedFiles {
            inner: LocalFileSystem::new(),
            watched: RwLock::default(),
        }
    }

    /// Filters listings under `dir` (an absolute directory) by its commit
    /// record, whenever it has one.
    pub(crate) fn watch(&self, dir: PathBuf) {
        let Ok(prefix) = Path::from_absolute_path(&dir) else {
            return;
        };
        self.watched
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Watched { dir, prefix });
    }

    /// What a listing now shows: per watched directory with a commit
    /// record, its prefix and the full paths of its committed files.
    fn visible(&self) -> Arc<Vec<(Path, HashSet<Path>)>> {
        let watched = self
            .watched
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let filters = watched
            .into_iter()
            .filter_map(|w| {
                // An unreadable record hides nothing; the sink reports it.
                let record = CommitRecord::read(&w.dir).ok().flatten()?;
                let files = record
                    .files
                    .iter()
                    .filter_map(|f| Path::from_absolute_path(w.dir.join(f)).ok())
                    .collect();
                Some((w.prefix, files))
            })
            .collect();
        Arc::new(filters)
    }
}

/// Whether `location` may be listed under `filters`.
fn shown(filters: &[(Path, HashSet<Path>)], location: &Path) -> bool {
    filters
        .iter()
        .filter(|(prefix, _)| location.prefix_matches(prefix))
        .all(|(_, files)| files.contains(location) || !is_parquet(location))
}

fn is_parquet(location: &Path) -> bool {
    location.extension() == Some("parquet")
}

impl fmt::Display for CommittedFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CommittedFiles({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for CommittedFiles {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let filters = self.visible();
        self.inner
            .list(prefix)
            .filter(move |meta| {
                let keep = match meta {
                    Ok(meta) => shown(&filters, &meta.location),
                    Err(_) => true,
                };
                futures::future::ready(keep)
            })
            .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let filters = self.visible();
        let mut result = self.inner.list_with_delimiter(prefix).await?;
        result
            .objects
            .retain(|meta| shown(&filters, &meta.location));
        Ok(result)
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}
