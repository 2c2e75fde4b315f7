//! The Nexmark oracle: events written as three Parquet files (`person`,
//! `auction`, `bid`), and the standard Nexmark SQL of each query run over
//! them by DataFusion, an engine independent of Brook.
//!
//! The SQL is Flink's (nexmark-flink) and RisingWave's, adapted to
//! DataFusion, which has no `TUMBLE` or `HOP` table functions: a tumbling
//! window's start is `date_time - date_time % size` (event times are
//! positive), and a hopping window's starts come from a cross join with
//! the offsets `VALUES (0), (2000), …`. Every window is half-open,
//! `[start, start + size)`, as Brook's are: q7's standard SQL picks the
//! window's bids with `BETWEEN end - 10 s AND end`, closed at both ends,
//! which would also count a bid at exactly `end` in two windows; here it is
//! `date_time >= start AND date_time < end`. Times are `Int64`
//! milliseconds.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Int64Builder, RecordBatch, StringBuilder,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema};
use datafusion::error::{DataFusionError, Result};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::prelude::{ParquetReadOptions, SessionContext};

use super::event::Event;
use super::value::{Row, Value, sort_rows};

/// q0, pass-through.
pub const Q0: &str = "SELECT auction, bidder, price, date_time, extra FROM bid";

/// q1, currency conversion: the price in euros, as a double.
pub const Q1: &str =
    "SELECT auction, bidder, 0.908 * CAST(price AS DOUBLE) AS price, date_time, extra FROM bid";

/// q2, selection.
pub const Q2: &str = "SELECT auction, price FROM bid WHERE auction % 123 = 0";

/// q3, local item suggestion: auctions of category 10 by sellers in
/// Oregon, Idaho or California.
pub const Q3: &str = "\
SELECT P.name, P.city, P.state, A.id
FROM auction AS A INNER JOIN person AS P ON A.seller = P.id
WHERE A.category = 10 AND (P.state = 'OR' OR P.state = 'ID' OR P.state = 'CA')";

/// q4, average price per category: the mean over a category's auctions of
/// the winning (highest) bid, counting the bids made while the auction was
/// open (`A.date_time <= B.date_time <= A.expires`).
pub const Q4: &str = "\
SELECT Q.category, AVG(Q.final) AS avg_price
FROM (
    SELECT MAX(B.price) AS final, A.category
    FROM auction A, bid B
    WHERE A.id = B.auction AND B.date_time BETWEEN A.date_time AND A.expires
    GROUP BY A.id, A.category
) Q
GROUP BY Q.category";

/// q5, hot items: per hopping window of 10 s every 2 s, the auctions with
/// the most bids.
pub const Q5: &str = "\
WITH hops AS (
    SELECT B.auction, B.date_time - B.date_time % 2000 - O.offset_ms AS window_start
    FROM bid B CROSS JOIN (VALUES (0), (2000), (4000), (6000), (8000)) AS O(offset_ms)
),
counts AS (
    SELECT auction, window_start, COUNT(*) AS num FROM hops GROUP BY auction, window_start
),
maxes AS (
    SELECT window_start, MAX(num) AS maxn FROM counts GROUP BY window_start
)
SELECT C.auction, C.num, C.window_start
FROM counts C JOIN maxes M ON C.window_start = M.window_start AND C.num >= M.maxn";

/// q7, highest bid: per tumbling window of 10 s, the bids at the window's
/// highest price (the window half-open, see the module docs).
pub const Q7: &str = "\
WITH windows AS (
    SELECT date_time - date_time % 10000 AS window_start, MAX(price) AS maxprice
    FROM bid GROUP BY date_time - date_time % 10000
)
SELECT B.auction, B.price, B.bidder, B.date_time, B.extra
FROM bid B JOIN windows W
  ON B.price = W.maxprice
 AND B.date_time >= W.window_start AND B.date_time < W.window_start + 10000";

/// q8, monitor new users: persons who opened an auction in the same 10 s
/// tumbling window as they registered, with the window's start.
pub const Q8: &str = "\
SELECT P.id, P.name, P.starttime
FROM (
    SELECT id, name, date_time - date_time % 10000 AS starttime
    FROM person GROUP BY id, name, date_time - date_time % 10000
) P
JOIN (
    SELECT seller, date_time - date_time % 10000 AS starttime
    FROM auction GROUP BY seller, date_time - date_time % 10000
) A
ON P.id = A.seller AND P.starttime = A.starttime";

/// Rows per record batch written.
const BATCH_ROWS: usize = 65_536;

/// The column builders of one table, flushed into a Parquet file.
struct Table {
    schema: Arc<Schema>,
    ints: Vec<Int64Builder>,
    strings: Vec<StringBuilder>,
    /// For each column, in schema order: whether it is an int, and its
    /// index among the ints or strings.
    columns: Vec<(bool, usize)>,
    writer: ArrowWriter<File>,
    rows: usize,
}

impl Table {
    /// A table of `columns` (name, whether an `Int64`; else `Utf8`) at
    /// `dir/<name>.parquet`.
    fn create(dir: &Path, name: &str, columns: &[(&str, bool)]) -> Result<Table> {
        let fields: Vec<Field> = columns
            .iter()
            .map(|(n, int)| {
                let t = if *int {
                    DataType::Int64
                } else {
                    DataType::Utf8
                };
                Field::new(*n, t, false)
            })
            .collect();
        let schema = Arc::new(Schema::new(fields));
        let path = dir.join(format!("{name}.parquet"));
        let file = File::create(&path)
            .map_err(|e| DataFusionError::Execution(format!("creating {}: {e}", path.display())))?;
        let writer = ArrowWriter::try_new(file, schema.clone(), None)?;
        let (mut ints, mut strings, mut index) = (0, 0, Vec::new());
        for (_, int) in columns {
            let counter = if *int { &mut ints } else { &mut strings };
            index.push((*int, *counter));
            *counter += 1;
        }
        Ok(Table {
            schema,
            ints: (0..ints).map(|_| Int64Builder::new()).collect(),
            strings: (0..strings).map(|_| StringBuilder::new()).collect(),
            columns: index,
            writer,
            rows: 0,
        })
    }

    /// Ends a row; writes a batch when enough are buffered.
    fn end_row(&mut self) -> Result<()> {
        self.rows += 1;
        if self.rows >= BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let arrays: Vec<ArrayRef> = self
            .columns
            .iter()
            .map(|&(int, i)| -> ArrayRef {
                if int {
                    Arc::new(self.ints[i].finish())
                } else {
                    Arc::new(self.strings[i].finish())
                }
            })
            .collect();
        let batch = RecordBatch::try_new(self.schema.clone(), arrays)?;
        self.writer.write(&batch)?;
        self.rows = 0;
        Ok(())
    }

    fn close(mut self) -> Result<()> {
        self.flush()?;
        self.writer.close()?;
        Ok(())
    }
}

/// Writes `events` as `person.parquet`, `auction.parquet` and
/// `bid.parquet` in `dir` (which must exist), one row per event, with the
/// columns of [`Person`](super::Person), [`Auction`](super::Auction) and
/// [`Bid`](super::Bid) in their declared order (times and ids `Int64`,
/// text `Utf8`).
///
/// # Errors
/// When a file cannot be created or written.
pub fn write_parquet<'a>(events: impl IntoIterator<Item = &'a Event>, dir: &Path) -> Result<()> {
    const S: bool = false;
    const I: bool = true;
    let mut person = Table::create(
        dir,
        "person",
        &[
            ("id", I),
            ("name", S),
            ("email_address", S),
            ("credit_card", S),
            ("city", S),
            ("state", S),
            ("date_time", I),
            ("extra", S),
        ],
    )?;
    let mut auction = Table::create(
        dir,
        "auction",
        &[
            ("id", I),
            ("item_name", S),
            ("description", S),
            ("initial_bid", I),
            ("reserve", I),
            ("date_time", I),
            ("expires", I),
            ("seller", I),
            ("category", I),
            ("extra", S),
        ],
    )?;
    let mut bid = Table::create(
        dir,
        "bid",
        &[
            ("auction", I),
            ("bidder", I),
            ("price", I),
            ("channel", S),
            ("url", S),
            ("date_time", I),
            ("extra", S),
        ],
    )?;
    for event in events {
        match event {
            Event::Person(p) => {
                let t = &mut person;
                t.ints[0].append_value(p.id);
                for (i, s) in [&p.name, &p.email_address, &p.credit_card, &p.city, &p.state]
                    .into_iter()
                    .enumerate()
                {
                    t.strings[i].append_value(s);
                }
                t.ints[1].append_value(p.date_time);
                t.strings[5].append_value(&p.extra);
                t.end_row()?;
            }
            Event::Auction(a) => {
                let t = &mut auction;
                t.strings[0].append_value(&a.item_name);
                t.strings[1].append_value(&a.description);
                t.strings[2].append_value(&a.extra);
                let ints = [
                    a.id,
                    a.initial_bid,
                    a.reserve,
                    a.date_time,
                    a.expires,
                    a.seller,
                    a.category,
                ];
                for (i, v) in ints.into_iter().enumerate() {
                    t.ints[i].append_value(v);
                }
                t.end_row()?;
            }
            Event::Bid(b) => {
                let t = &mut bid;
                for (i, v) in [b.auction, b.bidder, b.price, b.date_time]
                    .into_iter()
                    .enumerate()
                {
                    t.ints[i].append_value(v);
                }
                t.strings[0].append_value(&b.channel);
                t.strings[1].append_value(&b.url);
                t.strings[2].append_value(&b.extra);
                t.end_row()?;
            }
        }
    }
    person.close()?;
    auction.close()?;
    bid.close()
}

/// Runs `sql` with DataFusion over the tables `person`, `auction` and
/// `bid` that [`write_parquet`] wrote in `dir`, and returns its rows
/// normalized (integers as `Int`, floats as `Float`, strings as `Str`) and
/// sorted ([`sort_rows`]).
///
/// # Errors
/// DataFusion's: a file that cannot be read, SQL that does not plan.
pub async fn answer(dir: &Path, sql: &str) -> Result<Vec<Row>> {
    let ctx = SessionContext::new();
    for table in ["person", "auction", "bid"] {
        let path = dir.join(format!("{table}.parquet"));
        let path = path
            .to_str()
            .ok_or_else(|| DataFusionError::Plan(format!("{}: not UTF-8", path.display())))?;
        ctx.register_parquet(table, path, ParquetReadOptions::default())
            .await?;
    }
    let batches = ctx.sql(sql).await?.collect().await?;
    let mut rows = Vec::new();
    for batch in &batches {
        let columns: Vec<Vec<Value>> = batch
            .columns()
            .iter()
            .map(column_values)
            .collect::<Result<_>>()?;
        for r in 0..batch.num_rows() {
            rows.push(columns.iter().map(|c| c[r].clone()).collect());
        }
    }
    Ok(sort_rows(rows))
}

/// A column's values, normalized.
fn column_values(column: &ArrayRef) -> Result<Vec<Value>> {
    let t = column.data_type();
    let values = if t.is_integer() {
        let c = cast(column, &DataType::Int64)?;
        let c = c.as_primitive::<Int64Type>();
        (0..c.len())
            .map(|i| {
                if c.is_null(i) {
                    Value::Null
                } else {
                    Value::Int(c.value(i))
                }
            })
            .collect()
    } else if t.is_floating() || matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..)) {
        let c = cast(column, &DataType::Float64)?;
        let c = c.as_primitive::<Float64Type>();
        (0..c.len())
            .map(|i| {
                if c.is_null(i) {
                    Value::Null
                } else {
                    Value::Float(c.value(i))
                }
            })
            .collect()
    } else {
        let c = cast(column, &DataType::Utf8)?;
        let c = c.as_string::<i32>();
        (0..c.len())
            .map(|i| {
                if c.is_null(i) {
                    Value::Null
                } else {
                    Value::Str(c.value(i).to_string())
                }
            })
            .collect()
    };
    Ok(values)
}
