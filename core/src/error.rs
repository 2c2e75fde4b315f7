//! Brook's error type.
//!
//! Variants are grouped by fault: the user's configuration ([`Error::Config`]),
//! a misbuilt dataflow ([`Error::Plan`]), a failure while the job runs
//! ([`Error::Node`] wraps any failure with the name of the node it came from),
//! an outside system ([`Error::External`]) and Brook's own bugs
//! ([`Error::Internal`]).

use std::fmt;

/// A boxed error from user code or an outside library.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The result type used throughout Brook.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Whether retrying an operation that failed on an outside system may help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryHint {
    /// The failure is likely transient (a timeout, a broker that is restarting).
    Retriable,
    /// Retrying will fail the same way (bad credentials, a missing topic).
    Fatal,
}

/// Everything that can go wrong in Brook.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// The dataflow is misbuilt; returned by `Dataflow::build`.
    #[error("invalid dataflow: {0}")]
    Plan(String),

    /// A node of a running job failed. `error` says how; it is part of
    /// this error's message, not a separate cause, so that a chain of
    /// causes prints each thing once.
    #[error("node '{node}' failed: {error}")]
    Node {
        /// The name of the failing node, as given to the builder.
        node: String,
        /// What went wrong.
        error: Box<Error>,
    },

    /// User code (a closure or an operator) returned an error.
    #[error("{0}")]
    User(#[source] BoxError),

    /// User code panicked.
    #[error("panicked: {0}")]
    Panic(String),

    /// Bad input data, located as precisely as the source can
    /// (file and line, topic/partition/offset).
    #[error("bad record at {location}: {reason}")]
    BadRecord {
        /// Where the record came from, for example `logs.jsonl:17`.
        location: String,
        /// Why it could not be read.
        reason: String,
    },

    /// An I/O operation failed. The I/O error is part of the message, not
    /// a separate cause, so that it prints once.
    #[error("{context}: {error}")]
    Io {
        /// What was being done, for example `reading /var/log/app.log`.
        context: String,
        /// The underlying error.
        error: std::io::Error,
    },

    /// An outside system failed.
    #[error("{source}")]
    External {
        /// The underlying error.
        #[source]
        source: BoxError,
        /// Whether a retry may help.
        retry: RetryHint,
    },

    /// A downstream task stopped receiving; the job is already failing for
    /// another reason, which the runtime reports instead of this one.
    #[error("downstream task is gone")]
    DownstreamClosed,

    /// An upstream task went away without ending its stream.
    #[error("upstream task ended without end-of-input")]
    UpstreamClosed,

    /// Operator state could not be encoded or decoded (checkpoints).
    #[error("state: {0}")]
    State(String),

    /// A bug in Brook.
    #[error("internal error (this is a bug in Brook): {0}")]
    Internal(String),
}

impl Error {
    /// Wraps this error with the name of the node it happened in, unless it
    /// already names one.
    pub fn in_node(self, node: &str) -> Error {
        match self {
            e @ Error::Node { .. } => e,
            e => Error::Node {
                node: node.to_string(),
                error: Box::new(e),
            },
        }
    }

    /// The name of the node this error came from, if it names one.
    pub fn node(&self) -> Option<&str> {
        match self {
            Error::Node { node, .. } => Some(node),
            _ => None,
        }
    }

    /// The innermost error, below any node wrappers.
    pub fn root(&self) -> &Error {
        match self {
            Error::Node { error, .. } => error.root(),
            e => e,
        }
    }

    /// A user error from anything that converts to a boxed error.
    pub fn user(e: impl Into<BoxError>) -> Error {
        Error::User(e.into())
    }

    /// An I/O error with what was being done.
    pub fn io(context: impl fmt::Display, source: std::io::Error) -> Error {
        Error::Io {
            context: context.to_string(),
            error: source,
        }
    }

    /// Whether this error is only a consequence of another task failing.
    pub(crate) fn is_secondary(&self) -> bool {
        matches!(self.root(), Error::DownstreamClosed | Error::UpstreamClosed)
    }

    /// Builds the error for a caught panic payload.
    pub(crate) fn from_panic(payload: Box<dyn std::any::Any + Send>) -> Error {
        let msg = if let Some(s) = payload.downcast_ref::<&str>() {
            (*s).to_string()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "non-string panic payload".to_string()
        };
        Error::Panic(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_wrapping_is_idempotent_and_displays_the_name() {
        let e = Error::Panic("boom".into())
            .in_node("double")
            .in_node("outer");
        assert_eq!(e.node(), Some("double"));
        assert_eq!(e.to_string(), "node 'double' failed: panicked: boom");
        assert!(matches!(e.root(), Error::Panic(_)));
    }

    #[test]
    fn a_chain_of_causes_says_each_thing_once() {
        let e = Error::io("reading a.jsonl", std::io::Error::other("disk on fire")).in_node("logs");
        let mut chain = vec![e.to_string()];
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            chain.push(c.to_string());
            cause = c.source();
        }
        assert_eq!(chain, ["node 'logs' failed: reading a.jsonl: disk on fire"]);
    }

    #[test]
    fn secondary_errors_are_recognised_through_wrappers() {
        assert!(Error::DownstreamClosed.in_node("x").is_secondary());
        assert!(!Error::Plan("p".into()).is_secondary());
    }
}
