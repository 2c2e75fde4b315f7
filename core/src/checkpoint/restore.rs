//! What a job restores from: the checkpoint chosen at build, and the
//! state it gives each node instance.

use std::collections::BTreeMap;

use crate::checkpoint::manifest::Manifest;
use crate::checkpoint::storage::Storage;
use crate::checkpoint::{CheckpointConfig, Restore};
use crate::error::{Error, Result};
use crate::message::CheckpointId;
use crate::metrics::NodeKind;
use crate::state::{RestoredState, Snapshot, redistribute};

/// The checkpoint a job restores from.
#[derive(Debug)]
pub(crate) struct Restored {
    pub(crate) storage: Storage,
    pub(crate) manifest: Manifest,
}

/// Finds the checkpoint to restore from, warning about each newer folder
/// skipped.
///
/// # Errors
/// A named checkpoint that is missing or damaged, or a directory that
/// cannot be read.
pub(crate) fn choose(config: &CheckpointConfig, storage: &Storage) -> Result<Option<Restored>> {
    let wanted = match config.restore_mode() {
        Restore::Fresh => {
            // Left there, they could be restored by a later run that
            // found none of this run's.
            storage.clear()?;
            return Ok(None);
        }
        Restore::Latest => None,
        Restore::Checkpoint(id) => Some(id),
    };
    let (manifest, skipped) = storage.latest(wanted)?;
    for s in &skipped {
        tracing::warn!(checkpoint = %s.path, reason = %s.reason, "Skipping a checkpoint that cannot be restored.");
    }
    match (manifest, wanted) {
        (Some(manifest), _) => Ok(Some(Restored {
            storage: storage.clone(),
            manifest,
        })),
        (None, Some(id)) => Err(Error::Config(format!(
            "checkpoint {id} cannot be restored: {}",
            skipped.first().map_or_else(
                || format!("{} has no such checkpoint", storage.describe()),
                |s| s.reason.clone()
            )
        ))),
        (None, None) => Ok(None),
    }
}

impl Restored {
    /// The checkpoint's number.
    pub(crate) fn id(&self) -> CheckpointId {
        self.manifest.id
    }

    /// Whether it is a job's final checkpoint (see
    /// [`Manifest::last`]).
    pub(crate) fn is_final(&self) -> bool {
        self.manifest.last
    }

    /// Checks that every node the checkpoint has state for is in the job,
    /// as the same kind of node.
    pub(crate) fn check_nodes(&self, nodes: &BTreeMap<String, NodeKind>) -> Result<()> {
        for (name, state) in &self.manifest.nodes {
            let has_state =
                !state.positions.is_empty() || state.instances.iter().any(Option::is_some);
            match nodes.get(name) {
                Some(&kind) if kind == state.kind => {}
                Some(&kind) => {
                    return Err(Error::Config(format!(
                        "node '{name}': checkpoint {} has it as a {}, the job as a {}",
                        self.id(),
                        state.kind.name(),
                        kind.name()
                    )));
                }
                None if has_state => {
                    return Err(Error::Config(format!(
                        "checkpoint {} has state for node '{name}', which this job does not have \
                         (restore with the job that took it, or start fresh)",
                        self.id()
                    )));
                }
                None => {}
            }
        }
        Ok(())
    }

    /// A source's recorded positions, by split id.
    pub(crate) fn positions(&self, node: &str) -> Option<&BTreeMap<String, serde_json::Value>> {
        self.manifest.nodes.get(node).map(|n| &n.positions)
    }

    /// What a sink's writers pre-committed for the checkpoint, whatever the
    /// parallelism.
    ///
    /// # Errors
    /// A state file that cannot be read.
    pub(crate) fn pre_committed(&self, node: &str) -> Result<Vec<Vec<u8>>> {
        let Some(state) = self.manifest.nodes.get(node) else {
            return Ok(Vec::new());
        };
        state
            .instances
            .iter()
            .flatten()
            .map(|f| self.storage.read_state(self.id(), &f.file))
            .collect()
    }

    /// Each instance's state for an operator at `parallelism` instances,
    /// `None` for an instance with nothing to restore. State taken at
    /// another parallelism is redistributed: keyed state by key group,
    /// instance state to every instance (see [`RestoredState`]).
    ///
    /// # Errors
    /// A state file that cannot be read or decoded.
    pub(crate) fn states(
        &self,
        node: &str,
        parallelism: usize,
    ) -> Result<Vec<Option<RestoredState>>> {
        let Some(state) = self.manifest.nodes.get(node) else {
            return Ok(vec![None; parallelism]);
        };
        let snapshots = state
            .instances
            .iter()
            .map(|f| {
                f.as_ref()
                    .map(|f| {
                        let bytes = self.storage.read_state(self.id(), &f.file)?;
                        Snapshot::from_bytes(&bytes).map_err(|e| {
                            Error::Config(format!(
                                "node '{node}': checkpoint {} has a state file {} it cannot read: {e}",
                                self.id(),
                                f.file
                            ))
                        })
                    })
                    .transpose()
            })
            .collect::<Result<Vec<_>>>()?;
        let restored = redistribute(snapshots, parallelism)
            .map_err(|e| Error::Config(format!("node '{node}': checkpoint {}: {e}", self.id())))?;
        if state.parallelism != parallelism {
            tracing::info!(
                node,
                from = state.parallelism,
                to = parallelism,
                checkpoint = self.id(),
                "Restoring state at another parallelism, by key group."
            );
        }
        Ok(restored
            .into_iter()
            .map(|r| (!r.is_empty()).then_some(r))
            .collect())
    }

    /// The parallelism a node had when the checkpoint was taken.
    pub(crate) fn parallelism(&self, node: &str) -> Option<usize> {
        self.manifest.nodes.get(node).map(|n| n.parallelism)
    }
}
