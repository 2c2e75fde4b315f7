//! [`QueryStream`]: a query running on its own threads, its rows sent
//! batch by batch, within the engine's time limit and memory guard.

#[allow(clippy::wildcard_imports)]
use super::*;

/// What the task running a query sends: the schema, then batches; an
/// error ends it.
enum Message {
    /// The tables the query reads, once planned.
    Tables(Vec<String>),
    Schema(SchemaRef),
    Batch(RecordBatch),
}

/// Plans and runs `sql` on the engine's threads, sending its schema and
/// batches to `sender` until the receiver is gone.
async fn produce(
    ctx: SessionContext,
    sql: String,
    sender: mpsc::Sender<Result<Message, SqlError>>,
) {
    let started = async {
        let plan = ctx.state().create_logical_plan(&sql).await?;
        read_only()
            .verify_plan(&plan)
            .map_err(|e| SqlError::Refused {
                reason: e.message().to_string(),
            })?;
        let mut tables = Vec::new();
        plan.apply_with_subqueries(|node| {
            if let LogicalPlan::TableScan(scan) = node {
                tables.push(scan.table_name.table().to_string());
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        if sender.send(Ok(Message::Tables(tables))).await.is_err() {
            return Ok(None);
        }
        let frame = ctx.execute_logical_plan(plan).await?;
        let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
        let stream = frame.execute_stream().await?;
        Ok::<_, SqlError>(Some((schema, stream)))
    }
    .await;
    let mut stream = match started {
        Ok(None) => return,
        Ok(Some((schema, stream))) => {
            if sender.send(Ok(Message::Schema(schema))).await.is_err() {
                return;
            }
            stream
        }
        Err(e) => {
            let _ = sender.send(Err(e)).await;
            return;
        }
    };
    while let Some(batch) = stream.next().await {
        let message = batch.map(Message::Batch).map_err(SqlError::from);
        let failed = message.is_err();
        if sender.send(message).await.is_err() || failed {
            return;
        }
    }
}

/// A query's rows, batch by batch, from [`SqlEngine::query_stream`].
/// Dropping it cancels the query.
pub struct QueryStream {
    schema: SchemaRef,
    receiver: mpsc::Receiver<Result<Message, SqlError>>,
    /// The task running the query, until it ended.
    task: Option<AbortOnDrop<()>>,
    /// The query's threads, let go (after the task is aborted) when the
    /// stream is dropped.
    _workers: Workers,
    /// The time the query has left.
    left: Option<Duration>,
    /// The tables the query reads, once it is planned.
    tables: Option<Vec<String>>,
    /// The process's resident memory past which the query is cancelled.
    memory_ceiling: Option<usize>,
    engine: SqlEngine,
}

impl std::fmt::Debug for QueryStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryStream")
            .field("schema", &self.schema)
            .field("running", &self.task.is_some())
            .field("time_left", &self.left)
            .finish()
    }
}

impl QueryStream {
    /// The result's columns.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The next batch of rows; `None` after the last, or after an error.
    ///
    /// # Errors
    /// As [`SqlEngine::query_stream`], and "Resources exhausted" past the
    /// memory limit.
    pub async fn next_batch(&mut self) -> Option<Result<RecordBatch, SqlError>> {
        match self.receive().await? {
            Ok(Message::Batch(batch)) => Some(Ok(batch)),
            Ok(Message::Schema(_) | Message::Tables(_)) => self.fail(SqlError::Panicked {
                message: "the query sent its schema twice".to_string(),
            }),
            Err(e) => Some(Err(e)),
        }
    }

    /// The next schema or batch, within the time left; an error ends the
    /// stream.
    async fn receive(&mut self) -> Option<Result<Message, SqlError>> {
        loop {
            match self.receive_one().await {
                Some(Ok(Message::Tables(tables))) => self.tables = Some(tables),
                other => return other,
            }
        }
    }

    /// The next message, within the time left; an error ends the stream.
    async fn receive_one(&mut self) -> Option<Result<Message, SqlError>> {
        let started = Instant::now();
        let ceiling = self.memory_ceiling;
        let next = async {
            match self.receiver.recv().await {
                Some(message) => Some(message),
                // The task ended: after its last batch, or by a panic.
                None => {
                    let task = self.task.take()?;
                    workers::joined(task.join().await.map(Ok)).err().map(Err)
                }
            }
        };
        let next = async {
            let Some(ceiling) = ceiling else {
                return next.await;
            };
            tokio::pin!(next);
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            loop {
                tokio::select! {
                    message = &mut next => return message,
                    _ = tick.tick() => {
                        if resident_memory().is_some_and(|rss| rss > ceiling) {
                            return Some(Err(SqlError::Query(Box::new(
                                DataFusionError::ResourcesExhausted(format!(
                                    "the query took more memory than DataFusion accounts for: the process passed {} MiB, its ceiling for a memory limit of {} MiB",
                                    ceiling >> 20,
                                    self.engine.memory_limit >> 20
                                )),
                            ))));
                        }
                    }
                }
            }
        };
        let message = match self.left {
            None => next.await,
            Some(left) => match tokio::time::timeout(left, next).await {
                Ok(message) => message,
                Err(_) => {
                    let limit = self.engine.timeout.unwrap_or(left);
                    return self.fail(SqlError::Timeout { limit });
                }
            },
        };
        if let Some(left) = &mut self.left {
            *left = left.saturating_sub(started.elapsed());
        }
        match message? {
            Ok(message) => Some(Ok(message)),
            Err(e) => {
                // The tables the query reads, or all when it failed before
                // it was planned.
                let tables: Vec<(String, PathBuf)> = self
                    .engine
                    .parquet_tables
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .iter()
                    .filter(|(name, _)| self.tables.as_ref().is_none_or(|t| t.contains(name)))
                    .cloned()
                    .collect();
                let e = self.engine.explain(e, &tables).await;
                self.fail(e)
            }
        }
    }

    /// Ends the stream with `error`: the query stops.
    fn fail<T>(&mut self, error: SqlError) -> Option<Result<T, SqlError>> {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        self.receiver.close();
        Some(Err(error))
    }
}

/// The process's resident memory in bytes, from `/proc/self/status`.
fn resident_memory() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

impl QueryStream {
    /// Starts `sql` on its own threads and waits for its schema.
    pub(super) async fn start(engine: &SqlEngine, sql: &str) -> Result<QueryStream, SqlError> {
        limits::check_query_size(sql)?;
        let (sender, receiver) = mpsc::channel(1);
        let workers = workers()?;
        let task = AbortOnDrop(workers.spawn(produce(engine.ctx.clone(), sql.to_string(), sender)));
        let mut stream = QueryStream {
            schema: Arc::new(arrow::datatypes::Schema::empty()),
            receiver,
            task: Some(task),
            _workers: workers,
            left: engine.timeout,
            tables: None,
            memory_ceiling: engine
                .rss_allowance
                .and_then(|allowance| Some(resident_memory()?.saturating_add(allowance))),
            engine: engine.clone(),
        };
        match stream.receive().await {
            Some(Ok(Message::Schema(schema))) => {
                stream.schema = schema;
                Ok(stream)
            }
            Some(Ok(Message::Batch(_) | Message::Tables(_))) => Err(SqlError::Panicked {
                message: "the query sent rows before its schema".to_string(),
            }),
            Some(Err(e)) => Err(e),
            None => Err(SqlError::Panicked {
                message: "the query ended before its schema".to_string(),
            }),
        }
    }
}
