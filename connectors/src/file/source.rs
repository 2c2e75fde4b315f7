//! [`FileSource`]: the source over files, directories and globs that
//! [`JsonLinesSource`] and [`CsvSource`] are.

use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use brook_core::{
    BoxedSourceStream, Error, PlanContext, Result, Source, SourceContext, SourceSplit, SplitId,
};
use tokio::sync::mpsc;

use super::bad_line::Mode;
use super::follow::follow_files_on;
use super::plan::{Plan, Split, list_files};
use super::reader::{
    BufferPool, CHANNEL_CAPACITY, MAX_CHUNK_SIZE, ReadOptions, chunk_for, read_splits,
};
use super::stream::LineStream;
use crate::bad_record::BadRecordPolicy;
use crate::codec::{Csv, Decoder, Json};

/// The default [`FileSource::split_size`]: 8 MiB.
pub const DEFAULT_SPLIT_SIZE: u64 = 8 << 20;
/// The default [`FileSource::poll_interval`]: 100 ms.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// The default [`FileSource::max_line_length`]: 16 MiB.
pub const DEFAULT_MAX_LINE_LENGTH: usize = 16 << 20;

/// A source of JSON lines: one JSON value per line.
///
/// ```no_run
/// use brook_connectors::file::JsonLinesSource;
///
/// #[derive(serde::Deserialize)]
/// struct Event { user: String, bytes: u64 }
///
/// let source = JsonLinesSource::<Event>::new("logs/*.jsonl");
/// ```
pub type JsonLinesSource<T> = FileSource<T, Json>;

/// A source of CSV rows: one row per line, by default with a header row
/// that names the fields. A row must fit on one line (see [`Csv`]).
///
/// ```no_run
/// use brook_connectors::file::CsvSource;
///
/// #[derive(serde::Deserialize)]
/// struct Trip { city: String, km: f64 }
///
/// let source = CsvSource::<Trip>::new("trips.csv").delimiter(b';');
/// ```
pub type CsvSource<T> = FileSource<T, Csv>;

/// A source that reads lines from files and parses each non-blank one into a
/// value of type `T` with a [`Decoder`] (a [codec](crate::codec)). Records carry no event time
/// ([`NO_TIMESTAMP`](brook_core::NO_TIMESTAMP)).
///
/// The path is a file, a directory (its regular, non-hidden files, sorted by
/// name) or a glob pattern (`logs/*.jsonl`).
///
/// # Parallelism
/// When the dataflow is built, the files are listed and cut into byte
/// ranges of at least [`split_size`](FileSource::split_size) bytes (the
/// source's [`FileSplit`]s), which the instances share, balanced by bytes. Each line is read exactly once, by the
/// instance whose range it starts in; each instance emits its lines in file
/// order. In [follow mode](FileSource::follow) files are not cut: they are
/// given to the instances whole, round-robin.
pub struct FileSource<T, F> {
    path: PathBuf,
    format: Arc<F>,
    follow: bool,
    poll_interval: Duration,
    split_size: u64,
    max_line: usize,
    /// How much a reader reads at once, when set (otherwise it follows
    /// the parallelism: see `chunk_for`).
    chunk_size: Option<usize>,
    on_bad_line: BadRecordPolicy,
    /// The splits of the last plan, for tests that look at them.
    #[cfg(test)]
    planned: Vec<FileSplit>,
    _t: PhantomData<fn() -> T>,
}

/// A split of a [`FileSource`]: a byte range of one file (a whole file in
/// follow mode). Its reader owns every line that starts in the range.
#[derive(Debug, Clone)]
pub struct FileSplit {
    split: Split,
    /// The instance the plan gave the range to, for the parallelism it was
    /// planned at.
    owner: usize,
    planned_for: usize,
}

impl FileSplit {
    /// The file.
    pub fn path(&self) -> &std::path::Path {
        &self.split.file.path
    }

    /// The byte range, `start..end`; `end` is `u64::MAX` for a followed file.
    pub fn range(&self) -> std::ops::Range<u64> {
        self.split.start..self.split.end
    }
}

impl SourceSplit for FileSplit {
    /// The byte offset of the next line to read.
    type Position = u64;

    fn id(&self) -> SplitId {
        let path = self.split.file.path.display();
        if self.split.end == u64::MAX {
            SplitId::new(format!("{path}"))
        } else {
            SplitId::new(format!("{path}@{}..{}", self.split.start, self.split.end))
        }
    }

    fn start(&self) -> u64 {
        self.split.start
    }

    const RESUMABLE: bool = true;

    /// Resumes at a line start a reader of this split reported; a
    /// position at or past the range's end reads nothing.
    fn resume(&mut self, position: u64) {
        if position != self.split.start {
            self.split.resume = Some(position);
        }
    }
}

impl<T> FileSource<T, Json> {
    /// A JSON-lines source over a file, a directory or a glob pattern.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self::with_codec(path, Json)
    }
}

impl<T> FileSource<T, Csv> {
    /// A CSV source over a file, a directory or a glob pattern; comma
    /// separated, with a header row.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self::with_codec(path, Csv::new())
    }

    /// Whether each file starts with a header row (default: true). Every
    /// reader of a file reads its first line for the header.
    pub fn has_headers(mut self, yes: bool) -> Self {
        self.format = Arc::new(self.format.has_headers(yes));
        self
    }

    /// The field delimiter (default: `b','`).
    pub fn delimiter(mut self, delimiter: u8) -> Self {
        self.format = Arc::new(self.format.delimiter(delimiter));
        self
    }
}

impl<T, F> FileSource<T, F> {
    /// A source over a file, a directory or a glob pattern, with any line
    /// format.
    pub fn with_codec(path: impl Into<PathBuf>, format: F) -> Self {
        FileSource {
            path: path.into(),
            format: Arc::new(format),
            follow: false,
            poll_interval: DEFAULT_POLL_INTERVAL,
            split_size: DEFAULT_SPLIT_SIZE,
            max_line: DEFAULT_MAX_LINE_LENGTH,
            chunk_size: None,
            on_bad_line: BadRecordPolicy::Fail,
            #[cfg(test)]
            planned: Vec::new(),
            _t: PhantomData,
        }
    }

    /// Whether to follow the files as they grow, like `tail -F` (default:
    /// false). A followed file is read to its end, then polled every
    /// [`poll_interval`](Self::poll_interval); an unfinished last line waits
    /// for its `\n`; a file that shrinks is read again from its start. The
    /// source then never ends by itself: the job stops it at shutdown. Files
    /// are listed once, when the source opens.
    pub fn follow(mut self, follow: bool) -> Self {
        self.follow = follow;
        self
    }

    /// How often a followed file is checked for new lines (default: 100 ms).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// The smallest byte range a file is cut into for parallel readers
    /// (default: [`DEFAULT_SPLIT_SIZE`]). Ranges are larger when the input
    /// divided by the parallelism is.
    pub fn split_size(mut self, bytes: u64) -> Self {
        self.split_size = bytes;
        self
    }

    /// The longest line, in bytes before its `\n`, that the source reads
    /// (default: [`DEFAULT_MAX_LINE_LENGTH`], 16 MiB). It bounds the memory a
    /// line can take, whether or not it ever ends.
    ///
    /// A longer line is not buffered: the reader keeps its first bytes (at
    /// most 1 KiB), skips the rest through its `\n`, and the line is a bad
    /// line, whatever it holds, for the [`on_bad_line`](Self::on_bad_line)
    /// policy: the job fails naming `path:line`, the line is dropped and
    /// counted, or its first bytes go to the dead-letter sink. A CSV header
    /// longer than this fails the job naming the file.
    pub fn max_line_length(mut self, bytes: usize) -> Self {
        self.max_line = bytes;
        self
    }

    /// What to do with a line that cannot be parsed (default:
    /// [`BadRecordPolicy::Fail`]).
    pub fn on_bad_line(mut self, policy: BadRecordPolicy) -> Self {
        self.on_bad_line = policy;
        self
    }

    /// How many bytes each instance reads from its files at once (from 1
    /// byte to 64 MiB). By default 1 MiB each up to parallelism 4, then
    /// 4 MiB shared by the instances, down to 256 KiB each at 16 and above.
    ///
    /// Up to five chunks per instance are in memory at once. Larger
    /// chunks cost less CPU (fewer hand-overs between the reading thread
    /// and the task that parses, each a wake-up) and more memory: at 16
    /// instances, 1 MiB chunks held about 60 MiB more than the default.
    pub fn chunk_size(mut self, bytes: usize) -> Self {
        self.chunk_size = Some(bytes.clamp(1, MAX_CHUNK_SIZE));
        self
    }

    /// The ranges or files the last plan gave instance `instance`.
    #[cfg(test)]
    pub(crate) fn planned_share(&self, instance: usize) -> Vec<Split> {
        self.planned
            .iter()
            .filter(|s| s.owner == instance)
            .map(|s| s.split.clone())
            .collect()
    }

    fn validate(&self) -> Result<()> {
        if self.split_size == 0 {
            return Err(Error::Config(
                "file source: split_size must be at least 1".into(),
            ));
        }
        if self.max_line == 0 {
            return Err(Error::Config(
                "file source: max_line_length must be at least 1".into(),
            ));
        }
        if self.follow && self.poll_interval.is_zero() {
            return Err(Error::Config(
                "file source: poll_interval must not be zero".into(),
            ));
        }
        Ok(())
    }
}

impl<T, F> Source<T> for FileSource<T, F>
where
    T: Send + 'static,
    F: Decoder<T>,
{
    type Split = FileSplit;

    /// Lists the files (a little blocking I/O) and cuts them into byte
    /// ranges balanced over the instances; in follow mode, whole files.
    ///
    /// # Errors
    /// [`Error::Config`] when no file matches the path or a setting is
    /// invalid; [`Error::Io`] when the files cannot be listed; any error
    /// of the dead-letter sink's `plan`.
    fn plan(&mut self, ctx: &PlanContext) -> Result<Vec<FileSplit>> {
        self.validate()?;
        if self.follow && ctx.checkpoints_enabled() {
            return Err(Error::Config(
                "file source: follow mode cannot resume from a checkpoint yet, so it cannot run \
                 in a job with checkpoints"
                    .into(),
            ));
        }
        if let BadRecordPolicy::DeadLetter(target) = &self.on_bad_line {
            target.plan(ctx)?;
        }
        let p = ctx.parallelism().max(1);
        let files = list_files(&self.path)?;
        let plan = if self.follow {
            Plan::round_robin(files, p)
        } else {
            Plan::split(files, p, self.split_size)
        };
        let splits: Vec<FileSplit> = (0..p)
            .flat_map(|owner| {
                plan.share(owner).into_iter().map(move |split| FileSplit {
                    split,
                    owner,
                    planned_for: p,
                })
            })
            .collect();
        #[cfg(test)]
        {
            self.planned = splits.clone();
        }
        Ok(splits)
    }

    /// Gives each instance the ranges the plan balanced for it (round-robin
    /// at another parallelism).
    fn assign(&self, splits: Vec<FileSplit>, parallelism: usize) -> Vec<Vec<FileSplit>> {
        if splits.iter().all(|s| s.planned_for == parallelism) {
            let mut shares = vec![Vec::new(); parallelism];
            for s in splits {
                let owner = s.owner.min(parallelism.saturating_sub(1));
                shares[owner].push(s);
            }
            shares
        } else {
            brook_core::round_robin(splits, parallelism)
        }
    }

    /// Opens one instance: a stream whose reader starts on tokio's
    /// blocking pool when first polled.
    ///
    /// # Errors
    /// Any error of the dead-letter sink's `open`.
    ///
    /// # Cancellation
    /// Dropping the stream stops its reader (in follow mode within about one
    /// poll interval) and drops the dead-letter writer without closing it.
    fn open(
        &mut self,
        ctx: &SourceContext,
        splits: Vec<FileSplit>,
    ) -> Result<BoxedSourceStream<T>> {
        let share: Vec<Split> = splits.into_iter().map(|s| s.split).collect();
        let mode = match &self.on_bad_line {
            BadRecordPolicy::Fail => Mode::Fail,
            BadRecordPolicy::Drop => Mode::Drop,
            BadRecordPolicy::DeadLetter(target) => Mode::DeadLetter(target.open(ctx)?),
        };
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let chunk = self
            .chunk_size
            .unwrap_or_else(|| chunk_for(ctx.parallelism()));
        let pool = BufferPool::new(chunk);
        let opts = ReadOptions {
            has_header: self.format.has_header(),
            max_line: self.max_line,
            chunk,
        };
        let reader: Box<dyn FnOnce() + Send> = if self.follow {
            let (poll, pool) = (self.poll_interval, pool.clone());
            // The task's clock: the system's, or one a test drives.
            let clock = ctx.clock().clone();
            Box::new(move || follow_files_on(share, opts, poll, &clock, tx, pool))
        } else {
            let pool = pool.clone();
            Box::new(move || read_splits(share, opts, tx, pool))
        };
        let format = self.format.clone();
        let stream = LineStream::new(format, ctx.clone(), mode, self.max_line, reader, rx, pool);
        Ok(stream.into_stream())
    }
}
