//! Public handles can cross threads where users need them to.

use brook::core::{Job, JobMetrics, MetricsSnapshot, RunningJob};
use brook::prelude::*;

fn is_send<T: Send>() {}
fn is_send_sync<T: Send + Sync>() {}

#[test]
fn handles_are_send_and_sync() {
    is_send::<Job>();
    is_send::<RunningJob>();
    is_send_sync::<JobMetrics>();
    is_send_sync::<MetricsSnapshot>();
    is_send_sync::<Error>();
    is_send_sync::<CancellationToken>();
    is_send::<MemorySource<String>>();
    is_send::<CollectSink<String>>();
}
