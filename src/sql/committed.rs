//! The local file system as SQL sees it: in a sink directory that has a
//! commit record (`_brook_output.json`, written by a Parquet sink that
//! replaces its earlier output), only the files the record lists.
//!
//! Listing tables list their files again for every query; this store reads
//! the record at each listing, so a query sees the run committed when it
//! started, whole: the files of a run being written, or of one being
//! replaced, never both. Directories without a record are listed as they
//! are.
//!
//! Every Parquet file listed (or looked up on its own) has its last eight
//! bytes checked first: the magic `PAR1`, and a footer length that fits in
//! the file. A file that fails is listed as an error naming it
//! ([`BadParquetFile`]), so that Parquet's reader never meets a footer that
//! claims more bytes than the file holds.

use std::collections::HashSet;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;
use brook_connectors::output::CommitRecord;
use datafusion::object_store::local::LocalFileSystem;
use datafusion::object_store::path::Path;
use datafusion::object_store::{
    CopyOptions, GetOptions, GetRange, GetResult, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
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

/// A file named `*.parquet` that is not a readable Parquet file.
#[derive(Debug, Clone)]
pub(crate) struct BadParquetFile {
    /// The file.
    pub(crate) path: PathBuf,
    /// What is wrong with it.
    pub(crate) reason: String,
}

impl fmt::Display for BadParquetFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

impl std::error::Error for BadParquetFile {}

/// The file system path of an object-store location.
pub(crate) fn file_path(location: &Path) -> PathBuf {
    PathBuf::from(format!("/{location}"))
}

/// The magic bytes that end (and start) a Parquet file.
const MAGIC: &[u8; 4] = b"PAR1";

/// Why a Parquet file of `size` bytes whose last 8 bytes are `tail` cannot
/// be read, if it cannot: too short, no magic, or a footer longer than the
/// file.
pub(crate) fn footer_problem(size: u64, tail: &[u8]) -> Option<String> {
    // Magic, footer, length and magic: 12 bytes at the least.
    if size < 12 || tail.len() < 8 {
        return Some(format!(
            "not a Parquet file: {size} bytes, too short for a Parquet file's header and footer"
        ));
    }
    let tail = &tail[tail.len() - 8..];
    if &tail[4..] != MAGIC {
        return Some(
            "not a Parquet file: it does not end with the magic bytes PAR1 (truncated, or another format)"
                .to_string(),
        );
    }
    let footer = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
    if footer + 12 > size {
        return Some(format!(
            "not a readable Parquet file: its footer claims {footer} bytes of metadata, but the file has {size} bytes (truncated or corrupt)"
        ));
    }
    None
}

/// `meta` if its file may be read as Parquet (or is no Parquet file), else
/// an error naming it.
async fn checked(store: &LocalFileSystem, meta: ObjectMeta) -> Result<ObjectMeta> {
    if !is_parquet(&meta.location) {
        return Ok(meta);
    }
    let tail = if meta.size < 12 {
        Vec::new()
    } else {
        let options = GetOptions {
            range: Some(GetRange::Suffix(8)),
            ..GetOptions::default()
        };
        store
            .get_opts(&meta.location, options)
            .await?
            .bytes()
            .await?
            .to_vec()
    };
    match footer_problem(meta.size, &tail) {
        None => Ok(meta),
        Some(reason) => Err(datafusion::object_store::Error::Generic {
            store: "brook",
            source: Box::new(BadParquetFile {
                path: file_path(&meta.location),
                reason,
            }),
        }),
    }
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
        let head = options.head;
        let result = self.inner.get_opts(location, options).await?;
        // `head` looks up a table registered as one file.
        if head {
            checked(&self.inner, result.meta.clone()).await?;
        }
        Ok(result)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let filters = self.visible();
        let store = self.inner.clone();
        self.inner
            .list(prefix)
            .filter(move |meta| {
                let keep = match meta {
                    Ok(meta) => shown(&filters, &meta.location),
                    Err(_) => true,
                };
                futures::future::ready(keep)
            })
            .then(move |meta| {
                let store = store.clone();
                async move {
                    match meta {
                        Ok(meta) => checked(&store, meta).await,
                        Err(e) => Err(e),
                    }
                }
            })
            .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let filters = self.visible();
        let mut result = self.inner.list_with_delimiter(prefix).await?;
        result
            .objects
            .retain(|meta| shown(&filters, &meta.location));
        let mut objects = Vec::with_capacity(result.objects.len());
        for meta in std::mem::take(&mut result.objects) {
            objects.push(checked(&self.inner, meta).await?);
        }
        result.objects = objects;
        Ok(result)
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}
