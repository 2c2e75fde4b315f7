//! The admin server's SQL box: read-only queries over a job's Parquet
//! sinks, through `brook::sql` (queries only, within its memory and time
//! limits).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use crate::sql::{OutputFormat, SqlEngine};

/// The engine and the tables it may register.
pub(crate) struct Tables {
    engine: SqlEngine,
    tables: Vec<(String, PathBuf)>,
    registered: Mutex<HashSet<String>>,
}

impl Tables {
    pub(crate) fn new(engine: SqlEngine, tables: Vec<(String, PathBuf)>) -> Self {
        Tables {
            engine,
            tables,
            registered: Mutex::new(HashSet::new()),
        }
    }

    /// The tables' names.
    pub(crate) fn names(&self) -> Vec<String> {
        self.tables.iter().map(|(n, _)| n.clone()).collect()
    }

    /// Registers the tables whose sinks have written a file by now.
    async fn register(&self) {
        for (name, dir) in &self.tables {
            if self
                .registered
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(name)
            {
                continue;
            }
            if self.engine.register_parquet(name, dir).await.is_ok() {
                self.registered
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(name.clone());
            }
        }
    }

    /// Runs `sql`; at most `max_rows` rows come back.
    pub(crate) async fn query(
        &self,
        sql: &str,
        max_rows: usize,
    ) -> Result<serde_json::Value, String> {
        self.register().await;
        let started = Instant::now();
        let result = self.engine.query(sql).await.map_err(|e| e.to_string())?;
        let columns: Vec<String> = result
            .schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let text = result
            .format(OutputFormat::Json)
            .map_err(|e| e.to_string())?;
        let mut rows: Vec<serde_json::Value> = if text.trim().is_empty() {
            Vec::new()
        } else {
            serde_json::from_str(&text).map_err(|e| e.to_string())?
        };
        let truncated = rows.len() > max_rows;
        rows.truncate(max_rows);
        Ok(serde_json::json!({
            "columns": columns,
            "rows": rows,
            "truncated": truncated,
            "elapsed_ms": started.elapsed().as_secs_f64() * 1e3,
        }))
    }
}
