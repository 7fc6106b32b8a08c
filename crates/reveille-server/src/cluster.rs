//! This node in a cluster: every second it reports that it is alive, which acknowledge-link key
//! it signs with, and its device connections, and keeps what every node reported for the worker
//! (deafness counts a device on any node). A node whose link key differs from a live peer's would
//! hand out links the others refuse: its health check fails, saying so. With SQLite the node is
//! the whole cluster, and the report costs nothing.

use std::time::Duration;

use reveille_store::{ClusterView, NodeInfo};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::presence::NODE_TIMEOUT;

/// How often a node reports.
pub const EVERY: Duration = Duration::from_secs(1);

/// A name for this process, unique across the cluster and across restarts.
pub fn node_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "node".into());
    let suffix: String = crate::auth::random::<2>().iter().map(|b| format!("{b:02x}")).collect();
    format!("{host}-{}-{suffix}", std::process::id())
}

/// Reports every [`EVERY`] until aborted.
pub async fn run(state: AppState) {
    loop {
        report(&state).await;
        tokio::time::sleep(EVERY).await;
    }
}

/// One report; keeps the cluster's answer, or the last one when the store cannot answer.
pub async fn report(state: &AppState) {
    let key_id = match crate::links::secret(state).await {
        Ok(key) => Sha256::digest(&key).iter().take(8).map(|b| format!("{b:02x}")).collect(),
        Err(_) => String::new(),
    };
    let node = NodeInfo { name: state.node.to_string(), seen: state.clock.now(), key_id };
    match state.store.report_node(node.clone(), state.presence.snapshot()).await {
        Ok(view) => {
            *state.cluster_problem.write().unwrap_or_else(|p| p.into_inner()) =
                key_mismatch(&node, &view, state.clock.now());
            *state.cluster.write().unwrap_or_else(|p| p.into_inner()) = view;
        }
        Err(e) => tracing::warn!(error = %e, "cannot report this node to the cluster"),
    }
}

/// Why this node disagrees with a live peer on the link key, if it does.
fn key_mismatch(me: &NodeInfo, view: &ClusterView, now: jiff::Timestamp) -> Option<String> {
    let other = view.nodes.iter().find(|n| {
        n.name != me.name
            && now.duration_since(n.seen) < NODE_TIMEOUT
            && !n.key_id.is_empty()
            && n.key_id != me.key_id
    })?;
    let message = format!(
        "this node signs acknowledge links with a different key ({}) than node {} ({}): copy the \
         same database.link_key_file to every node",
        me.key_id, other.name, other.key_id
    );
    tracing::error!(%message);
    Some(message)
}
