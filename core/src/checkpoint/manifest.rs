//! A checkpoint's manifest: what it holds, readable by a person
//! (`chk-000042/_manifest.json`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::message::CheckpointId;
use crate::metrics::NodeKind;

/// The checkpoint format's version: 2 since operator state is kept by
/// key group.
pub(crate) const VERSION: u32 = 2;

/// What a complete checkpoint holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    /// The manifest format's version.
    pub(crate) version: u32,
    /// The checkpoint's number.
    pub(crate) id: CheckpointId,
    /// The job that took it.
    pub(crate) job: String,
    /// When it completed, in milliseconds since the epoch.
    pub(crate) completed_ms: i64,
    /// How long it took from trigger to manifest, in milliseconds.
    pub(crate) duration_ms: u64,
    /// Whether it is the job's final checkpoint, taken once every source
    /// had read all its input: a job restored from it has nothing left to
    /// run, only its sinks to commit.
    #[serde(default, rename = "final", skip_serializing_if = "std::ops::Not::not")]
    pub(crate) last: bool,
    /// Every node of the job, by name.
    pub(crate) nodes: BTreeMap<String, NodeState>,
}

/// One node's part of a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct NodeState {
    pub(crate) kind: NodeKind,
    /// The node's parallelism when the checkpoint was taken.
    pub(crate) parallelism: usize,
    /// A source's position in each split, by split id: where reading
    /// resumes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) positions: BTreeMap<String, serde_json::Value>,
    /// Each instance's state file (operators, sinks), `None` for an
    /// instance with no state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) instances: Vec<Option<StateFile>>,
}

/// A state file of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StateFile {
    /// Its path relative to the checkpoint's folder: `<node>/<instance>`.
    pub(crate) file: String,
    /// Its size in bytes, checked on restore.
    pub(crate) bytes: u64,
}

impl Manifest {
    /// Every state file it names, with its size.
    pub(crate) fn state_files(&self) -> impl Iterator<Item = (&str, u64)> {
        self.nodes
            .values()
            .flat_map(|n| n.instances.iter().flatten())
            .map(|f| (f.file.as_str(), f.bytes))
    }

    /// The total size of its state files.
    pub(crate) fn state_bytes(&self) -> u64 {
        self.state_files().map(|(_, b)| b).sum()
    }
}
