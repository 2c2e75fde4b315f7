//! [`LiveTableSink`] and [`LiveTable`]: the latest row per key, in memory,
//! queryable with SQL while the job runs.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

use arrow::array::RecordBatch;
use arrow::datatypes::{FieldRef, Schema, SchemaRef};
use arrow::error::ArrowError;
use async_trait::async_trait;
use brook_core::{Batch, Sink, SinkContext, SinkWriter};
use datafusion::catalog::{MemTable, Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_arrow::schema::{SchemaLike, TracingOptions};

use super::SqlError;

/// A sink keeping the latest value per key in memory, as a table SQL can
/// query while the job runs ([`SqlEngine::register_live`]).
///
/// Each value replaces the one of the same key; the table holds one row
/// per key seen. The key function decides what "latest" means: keying
/// window results by `(service, level)` gives the latest window of each,
/// keying them by `(window_start, service, level)` keeps every window.
/// Memory grows with the number of keys.
///
/// ```
/// use brook::prelude::*;
/// use brook::sql::{LiveTableSink, SqlEngine};
///
/// #[derive(Clone, serde::Serialize, serde::Deserialize)]
/// struct Reading { sensor: String, value: f64 }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let live = LiveTableSink::new(|r: &Reading| r.sensor.clone())?;
/// let engine = SqlEngine::new()?;
/// engine.register_live("readings", &live.table())?;
///
/// let flow = Dataflow::new("sensors");
/// let readings = vec![
///     Reading { sensor: "a".into(), value: 1.0 },
///     Reading { sensor: "a".into(), value: 2.0 },
///     Reading { sensor: "b".into(), value: 5.0 },
/// ];
/// flow.source("readings", MemorySource::new(readings))
///     .sink("live", live);
/// flow.build()?.run(CancellationToken::new()).await?;
///
/// let result = engine.query("SELECT sensor, value FROM readings ORDER BY sensor").await?;
/// assert_eq!(result.num_rows(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
///
/// [`SqlEngine::register_live`]: super::SqlEngine::register_live
pub struct LiveTableSink<T, K> {
    table: LiveTable<T, K>,
}

/// A handle to a [`LiveTableSink`]'s rows: register it with
/// [`SqlEngine::register_live`](super::SqlEngine::register_live), or read
/// the rows directly.
pub struct LiveTable<T, K> {
    shared: Arc<Shared<T, K>>,
}

struct Shared<T, K> {
    rows: Mutex<HashMap<K, T>>,
    key: Box<dyn Fn(&T) -> K + Send + Sync>,
    fields: Vec<FieldRef>,
    schema: SchemaRef,
}

impl<T, K> Clone for LiveTable<T, K> {
    fn clone(&self) -> Self {
        LiveTable {
            shared: self.shared.clone(),
        }
    }
}

impl<T, K> LiveTableSink<T, K>
where
    T: Serialize + DeserializeOwned + Send + 'static,
    K: Eq + Hash + Send + 'static,
{
    /// A live table keeping the latest value per `key(value)`, with the
    /// Arrow schema derived from `T`: structs become columns, `Option`s
    /// nullable columns, enums without data
    /// dictionary-encoded strings.
    ///
    /// # Errors
    /// [`SqlError::Table`] when `T` has no Arrow schema (it is not a
    /// struct, or holds a type serde_arrow cannot trace).
    pub fn new(key: impl Fn(&T) -> K + Send + Sync + 'static) -> Result<Self, SqlError> {
        let options = TracingOptions::default()
            .allow_null_fields(true)
            .strings_as_large_utf8(false)
            .enums_without_data_as_strings(true);
        let fields = Vec::<FieldRef>::from_type::<T>(options).map_err(|e| SqlError::Table {
            name: std::any::type_name::<T>().to_string(),
            reason: format!("no Arrow schema for this type: {e}"),
        })?;
        let schema = Arc::new(Schema::new(fields.clone()));
        Ok(LiveTableSink {
            table: LiveTable {
                shared: Arc::new(Shared {
                    rows: Mutex::new(HashMap::new()),
                    key: Box::new(key),
                    fields,
                    schema,
                }),
            },
        })
    }

    /// A handle to the table, to register or read; take it before giving
    /// the sink to the dataflow.
    pub fn table(&self) -> LiveTable<T, K> {
        self.table.clone()
    }
}

impl<T, K> LiveTable<T, K> {
    /// The table's Arrow schema.
    pub fn schema(&self) -> SchemaRef {
        self.shared.schema.clone()
    }

    /// How many keys the table holds.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of the rows, in no particular order.
    pub fn rows(&self) -> Vec<T>
    where
        T: Clone,
    {
        self.lock().values().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, T>> {
        self.shared
            .rows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T: Serialize + Send + 'static, K: Send + 'static> LiveTable<T, K> {
    /// The rows now, as one Arrow batch.
    ///
    /// # Errors
    /// A value serde_arrow cannot convert to the schema.
    pub fn snapshot(&self) -> Result<RecordBatch, ArrowError> {
        let rows = self.lock();
        let values: Vec<&T> = rows.values().collect();
        serde_arrow::to_record_batch(&self.shared.fields, &values)
            .map_err(|e| ArrowError::ExternalError(Box::new(e)))
    }

    /// The DataFusion table: each scan takes a snapshot.
    pub(super) fn provider(&self) -> Arc<dyn TableProvider> {
        let table = self.clone();
        Arc::new(LiveProvider {
            schema: self.schema(),
            snapshot: Arc::new(move || table.snapshot()),
        })
    }
}

impl<T, K> Sink<T> for LiveTableSink<T, K>
where
    T: Send + 'static,
    K: Eq + Hash + Send + 'static,
{
    type Writer = LiveTableWriter<T, K>;

    fn open(&mut self, _ctx: &SinkContext) -> brook_core::Result<Self::Writer> {
        Ok(LiveTableWriter {
            shared: self.table.shared.clone(),
        })
    }
}

/// One instance of a [`LiveTableSink`]. Instances share the table: a key's
/// latest value is the last one any instance wrote, which is well defined
/// when the stream is keyed by the same key (one instance per key).
pub struct LiveTableWriter<T, K> {
    shared: Arc<Shared<T, K>>,
}

impl<T, K> SinkWriter<T> for LiveTableWriter<T, K>
where
    T: Send + 'static,
    K: Eq + Hash + Send + 'static,
{
    async fn write(&mut self, batch: Batch<T>) -> brook_core::Result<()> {
        // Keys are computed before taking the lock, which queries share.
        let keyed: Vec<(K, T)> = batch
            .into_iter()
            .map(|record| ((self.shared.key)(&record.value), record.value))
            .collect();
        let mut rows = self
            .shared
            .rows
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        rows.extend(keyed);
        Ok(())
    }
}

/// Snapshots a live table into a memory table for each scan.
struct LiveProvider {
    schema: SchemaRef,
    snapshot: Arc<dyn Fn() -> Result<RecordBatch, ArrowError> + Send + Sync>,
}

impl fmt::Debug for LiveProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveProvider")
            .field("schema", &self.schema)
            .finish()
    }
}

#[async_trait]
impl TableProvider for LiveProvider {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>, DataFusionError> {
        let batch = (self.snapshot)()?;
        MemTable::try_new(self.schema.clone(), vec![vec![batch]])?
            .scan(state, projection, filters, limit)
            .await
    }
}
