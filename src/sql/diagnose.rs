//! Which file a failed query or registration tripped on: errors about
//! files, and panics, are traced to the table's first file that is not
//! readable Parquet, so that the error names it.

#[allow(clippy::wildcard_imports)]
use super::*;

impl SqlEngine {
    /// `error`, or, when it may come from a file of `tables` that is not
    /// readable Parquet (a DataFusion error about files, or a panic), an
    /// error naming that file.
    pub(super) async fn explain(&self, error: SqlError, tables: &[(String, PathBuf)]) -> SqlError {
        if let Some(bad) = bad_file_in(&error) {
            return self.bad_file(bad, tables);
        }
        // Errors about the query itself or its limits come from no file.
        let suspect = match &error {
            SqlError::Panicked { .. } => true,
            SqlError::Query(e) => !matches!(
                e.find_root(),
                DataFusionError::Plan(_)
                    | DataFusionError::SQL(..)
                    | DataFusionError::SchemaError(..)
                    | DataFusionError::NotImplemented(_)
                    | DataFusionError::Configuration(_)
                    | DataFusionError::ResourcesExhausted(_)
            ),
            _ => false,
        };
        if !suspect {
            return error;
        }
        for (table, dir) in tables {
            let Ok(workers) = workers() else {
                return error;
            };
            let check = self.limited(workers.run(first_bad_file(
                self.ctx.clone(),
                self.files.clone(),
                dir.clone(),
            )));
            if let Ok(Some(bad)) = check.await {
                return self.bad_file(bad, &[(table.clone(), dir.clone())]);
            }
        }
        error
    }

    /// [`SqlError::BadFile`] for `bad`, named with the table of `tables`
    /// whose directory holds it.
    pub(super) fn bad_file(&self, bad: BadParquetFile, tables: &[(String, PathBuf)]) -> SqlError {
        let table = tables
            .iter()
            .find(|(_, dir)| bad.path.starts_with(dir))
            .map(|(name, _)| name.clone())
            .unwrap_or_else(|| "?".to_string());
        SqlError::BadFile {
            table,
            file: bad.path,
            reason: bad.reason,
        }
    }
}

/// The first file under `dir` that is not readable Parquet, if any: each
/// file's footer read by itself, then each file read whole, with panics
/// caught.
async fn first_bad_file(
    ctx: SessionContext,
    files: Arc<committed::CommittedFiles>,
    dir: PathBuf,
) -> Result<Option<BadParquetFile>, SqlError> {
    let mut location = dir.to_string_lossy().into_owned();
    if dir.is_dir() && !location.ends_with('/') {
        location.push('/');
    }
    let url = ListingTableUrl::parse(&location)?;
    let state = ctx.state();
    let store: Arc<dyn ObjectStore> = files;
    let mut listing = url
        .list_all_files(&state, store.as_ref(), ".parquet")
        .await?;
    let mut metas = Vec::new();
    while let Some(meta) = listing.next().await {
        match meta {
            Ok(meta) => metas.push(meta),
            Err(e) => {
                if let Some(bad) = bad_file_in(&SqlError::from(e)) {
                    return Ok(Some(bad));
                }
            }
        }
    }
    drop(listing);
    let whole: Vec<PathBuf> = metas
        .iter()
        .map(|meta| committed::file_path(&meta.location))
        .collect();
    for meta in metas {
        let state = ctx.state();
        let store = store.clone();
        let one = vec![meta.clone()];
        // A task of its own, so that a panic ends only it.
        let mut read = tokio::task::JoinSet::new();
        read.spawn(async move {
            ParquetFormat::default()
                .infer_schema(&state, &store, &one)
                .await
        });
        let Some(read) = read.join_next().await else {
            continue;
        };
        let reason = match read {
            Ok(Ok(_)) => continue,
            Ok(Err(e)) => format!("not a readable Parquet file: {}", e.strip_backtrace()),
            Err(e) if e.is_panic() => format!(
                "not a readable Parquet file (reading it panicked: {})",
                workers::panic_message(e.into_panic().as_ref())
            ),
            Err(_) => continue,
        };
        return Ok(Some(BadParquetFile {
            path: committed::file_path(&meta.location),
            reason,
        }));
    }
    for path in whole {
        let read = tokio::task::spawn_blocking({
            let path = path.clone();
            move || read_whole(&path)
        });
        let reason = match read.await {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => format!("not a readable Parquet file: {e}"),
            Err(e) if e.is_panic() => format!(
                "not a readable Parquet file (reading it panicked: {})",
                workers::panic_message(e.into_panic().as_ref())
            ),
            Err(_) => continue,
        };
        return Ok(Some(BadParquetFile { path, reason }));
    }
    Ok(None)
}

/// Reads every row of the Parquet file at `path`.
fn read_whole(path: &Path) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let file = std::fs::File::open(path)?;
    for batch in ParquetRecordBatchReaderBuilder::try_new(file)?.build()? {
        batch?;
    }
    Ok(())
}

/// The [`BadParquetFile`] behind `error`, if any.
fn bad_file_in(error: &SqlError) -> Option<BadParquetFile> {
    let SqlError::Query(e) = error else {
        return None;
    };
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e.as_ref());
    while let Some(e) = source {
        if let Some(bad) = e.downcast_ref::<BadParquetFile>() {
            return Some(bad.clone());
        }
        source = e.source();
    }
    None
}
