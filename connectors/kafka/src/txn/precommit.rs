//! What a writer pre-commits at a checkpoint ([`PreCommit`]): which
//! transaction, and a write-ahead copy of its messages, in a compact
//! binary form.

use brook_core::{CheckpointId, Error, Result};

/// One message of a transaction, kept to be written again by a restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Copied {
    pub(crate) partition: i32,
    pub(crate) timestamp: Option<i64>,
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) value: Option<Vec<u8>>,
    pub(crate) headers: Vec<(String, Vec<u8>)>,
}

/// What a writer pre-commits for a checkpoint: which transaction, and a
/// write-ahead copy of its messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PreCommit {
    pub(crate) head: Head,
    pub(crate) messages: Vec<Copied>,
}

/// Which transaction a [`PreCommit`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) transactional_id: String,
    pub(crate) checkpoint: CheckpointId,
    /// Unique to this transaction (with `checkpoint`): the marker's
    /// metadata.
    pub(crate) token: String,
    pub(crate) topic: String,
    /// The parallelism of the writer's node, to fence the ids of instances
    /// a restore at a lower parallelism no longer runs.
    pub(crate) parallelism: usize,
}

/// The first bytes of an encoded [`PreCommit`], and its version.
const MAGIC: &[u8; 5] = b"BKTX1";

impl PreCommit {
    /// A compact binary encoding (JSON would triple the size of the
    /// copy): the head, then each message, lengths as `u32`, integers
    /// big-endian.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let size: usize = self
            .messages
            .iter()
            .map(|m| {
                32 + m.key.as_ref().map_or(0, Vec::len)
                    + m.value.as_ref().map_or(0, Vec::len)
                    + m.headers
                        .iter()
                        .map(|(k, v)| 8 + k.len() + v.len())
                        .sum::<usize>()
            })
            .sum();
        let mut w = Vec::with_capacity(size + 128);
        w.extend_from_slice(MAGIC);
        let h = &self.head;
        put_bytes(&mut w, Some(h.transactional_id.as_bytes()));
        w.extend_from_slice(&h.checkpoint.to_be_bytes());
        put_bytes(&mut w, Some(h.token.as_bytes()));
        put_bytes(&mut w, Some(h.topic.as_bytes()));
        w.extend_from_slice(&(h.parallelism as u64).to_be_bytes());
        w.extend_from_slice(&(self.messages.len() as u64).to_be_bytes());
        for m in &self.messages {
            w.extend_from_slice(&m.partition.to_be_bytes());
            match m.timestamp {
                Some(t) => {
                    w.push(1);
                    w.extend_from_slice(&t.to_be_bytes());
                }
                None => w.push(0),
            }
            put_bytes(&mut w, m.key.as_deref());
            put_bytes(&mut w, m.value.as_deref());
            w.extend_from_slice(&(m.headers.len() as u32).to_be_bytes());
            for (k, v) in &m.headers {
                put_bytes(&mut w, Some(k.as_bytes()));
                put_bytes(&mut w, Some(v));
            }
        }
        w
    }

    /// Decodes only the head.
    ///
    /// # Errors
    /// [`Error::State`] for bytes that are not a pre-commit of this sink.
    pub(crate) fn decode_head(bytes: &[u8]) -> Result<Head> {
        Reader::new(bytes)?.head()
    }

    /// Decodes the whole pre-commit.
    ///
    /// # Errors
    /// [`Error::State`] for bytes that are not a pre-commit of this sink.
    pub(crate) fn decode(bytes: &[u8]) -> Result<PreCommit> {
        let mut r = Reader::new(bytes)?;
        let head = r.head()?;
        let n = r.u64()?;
        let mut messages = Vec::with_capacity(usize::try_from(n).unwrap_or(0).min(1 << 20));
        for _ in 0..n {
            let partition = i32::from_be_bytes(r.array()?);
            let timestamp = match r.take(1)?[0] {
                0 => None,
                _ => Some(i64::from_be_bytes(r.array()?)),
            };
            let key = r.bytes()?;
            let value = r.bytes()?;
            let count = u32::from_be_bytes(r.array()?);
            let mut headers = Vec::new();
            for _ in 0..count {
                let k = r.string()?;
                let v = r.bytes()?.unwrap_or_default();
                headers.push((k, v));
            }
            messages.push(Copied {
                partition,
                timestamp,
                key,
                value,
                headers,
            });
        }
        if r.at < r.bytes.len() {
            return Err(bad("trailing bytes"));
        }
        Ok(PreCommit { head, messages })
    }
}

/// Writes optional bytes: `u32::MAX` for none, else the length and them.
fn put_bytes(w: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => w.extend_from_slice(&u32::MAX.to_be_bytes()),
        Some(b) => {
            w.extend_from_slice(&(b.len() as u32).to_be_bytes());
            w.extend_from_slice(b);
        }
    }
}

fn bad(what: &str) -> Error {
    Error::State(format!(
        "a kafka sink's pre-commit does not parse ({what}): the checkpoint was written by \
         another version or is damaged"
    ))
}

/// Reads what [`PreCommit::encode`] wrote.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Result<Self> {
        if !bytes.starts_with(MAGIC) {
            return Err(bad("no header"));
        }
        Ok(Reader {
            bytes,
            at: MAGIC.len(),
        })
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.at.checked_add(n).ok_or_else(|| bad("length"))?;
        let out = self
            .bytes
            .get(self.at..end)
            .ok_or_else(|| bad("truncated"))?;
        self.at = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        self.take(N)?.try_into().map_err(|_| bad("truncated"))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn bytes(&mut self) -> Result<Option<Vec<u8>>> {
        let n = u32::from_be_bytes(self.array()?);
        if n == u32::MAX {
            return Ok(None);
        }
        Ok(Some(self.take(n as usize)?.to_vec()))
    }

    fn string(&mut self) -> Result<String> {
        let b = self.bytes()?.ok_or_else(|| bad("missing text"))?;
        String::from_utf8(b).map_err(|_| bad("text is not UTF-8"))
    }

    fn head(&mut self) -> Result<Head> {
        Ok(Head {
            transactional_id: self.string()?,
            checkpoint: self.u64()?,
            token: self.string()?,
            topic: self.string()?,
            parallelism: usize::try_from(self.u64()?).map_err(|_| bad("parallelism"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::run_token;

    #[test]
    fn a_pre_commit_reads_back_whole() {
        let pre = PreCommit {
            head: Head {
                transactional_id: "brook-job-out-1".into(),
                checkpoint: 42,
                token: run_token(),
                topic: "alerts".into(),
                parallelism: 3,
            },
            messages: vec![
                Copied {
                    partition: 2,
                    timestamp: Some(-5),
                    key: Some(b"k".to_vec()),
                    value: None,
                    headers: vec![("h".into(), vec![]), ("i".into(), b"\xff".to_vec())],
                },
                Copied {
                    partition: 0,
                    timestamp: None,
                    key: None,
                    value: Some(Vec::new()),
                    headers: vec![],
                },
            ],
        };
        let bytes = pre.encode();
        assert_eq!(PreCommit::decode(&bytes).expect("decodes"), pre);
        assert_eq!(PreCommit::decode_head(&bytes).expect("head"), pre.head);
        for cut in [0, 3, 6, bytes.len() - 1] {
            assert!(
                matches!(PreCommit::decode(&bytes[..cut]), Err(Error::State(_))),
                "cut at {cut}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(PreCommit::decode(&longer).is_err());
        assert_ne!(run_token(), run_token());
    }
}
