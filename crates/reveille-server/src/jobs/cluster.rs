//! This node in a cluster (a job): every second it reports that it is alive, which acknowledge-link keys
//! it accepts (fingerprints), and its device connections, and keeps what every node reported for
//! the worker (deafness counts a device on any node). With SQLite the node is the whole cluster,
//! and the report costs nothing.
//!
//! Two nodes whose keys do not accept each other's links would hand out links the other refuses.
//! Only the odd one fails its health check, saying why: the node that disagrees with more live
//! nodes than agree with it (itself counted), or, when they are as many, the one that started
//! later. So a node started with a wrong key file never takes the others out of the balancer,
//! and a rotation that goes step by step (`reveille link-key`) never makes any node odd.

use std::time::Duration;

use jiff::Timestamp;
use reveille_store::{ClusterView, NodeInfo};

use crate::AppState;
use crate::oncall::presence::NODE_TIMEOUT;

/// How often a node reports.
pub const EVERY: Duration = Duration::from_secs(1);

/// A name for this process, unique across the cluster and across restarts.
pub fn node_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "node".into());
    let suffix: String =
        crate::http::auth::random::<2>().iter().map(|b| format!("{b:02x}")).collect();
    format!("{host}-{}-{suffix}", std::process::id())
}

/// Reports every [`EVERY`], as a job.
pub struct Report;

#[async_trait::async_trait]
impl crate::jobs::Job for Report {
    fn name(&self) -> &'static str {
        "cluster"
    }

    async fn step(&mut self, state: &AppState) -> Result<(), String> {
        report(state).await;
        Ok(())
    }

    async fn until_due(&mut self, _state: &AppState) {
        tokio::time::sleep(EVERY).await;
    }
}

/// One report; keeps the cluster's answer, or the last one when the store cannot answer.
pub async fn report(state: &AppState) {
    let link_keys = match crate::http::links::keys(state).await {
        Ok(keys) => keys.fingerprints(),
        Err(_) => Vec::new(),
    };
    let node = NodeInfo {
        name: state.node.to_string(),
        seen: state.clock.now(),
        started: state.started,
        link_keys,
    };
    match state.store.report_node(node.clone(), state.presence.snapshot()).await {
        Ok(view) => {
            let problem = odd_one_out(&node, &view, state.clock.now());
            let mut current = state.cluster_problem.write().unwrap_or_else(|p| p.into_inner());
            if *current != problem {
                match &problem {
                    Some(message) => tracing::error!(%message, "this node is the odd one out"),
                    None if current.is_some() => {
                        tracing::info!("this node agrees with the cluster again")
                    }
                    None => {}
                }
                *current = problem;
            }
            drop(current);
            *state.cluster.write().unwrap_or_else(|p| p.into_inner()) = view;
        }
        Err(e) => tracing::warn!(error = %e, "cannot report this node to the cluster"),
    }
}

/// Whether each of two nodes accepts the links the other signs.
fn agree(a: &NodeInfo, b: &NodeInfo) -> bool {
    let signs = |n: &NodeInfo| n.link_keys.first().cloned().unwrap_or_default();
    a.link_keys.contains(&signs(b)) && b.link_keys.contains(&signs(a))
}

/// Why this node is the odd one out on link keys, if it is.
pub fn odd_one_out(me: &NodeInfo, view: &ClusterView, now: Timestamp) -> Option<String> {
    if me.link_keys.is_empty() {
        return None;
    }
    let peers = view.nodes.iter().filter(|n| {
        n.name != me.name && now.duration_since(n.seen) < NODE_TIMEOUT && !n.link_keys.is_empty()
    });
    let (with, against): (Vec<&NodeInfo>, Vec<&NodeInfo>) = peers.partition(|n| agree(me, n));
    let (agreeing, disagreeing) = (with.len() + 1, against.len());
    let joined_later = |n: &&NodeInfo| (n.started, &n.name) < (me.started, &me.name);
    let odd =
        disagreeing > agreeing || (disagreeing == agreeing && against.iter().any(joined_later));
    if disagreeing == 0 || !odd {
        return None;
    }
    let names: Vec<&str> = against.iter().map(|n| n.name.as_str()).collect();
    Some(format!(
        "this node's acknowledge-link keys ({}) do not accept the links of {} of the other live \
         nodes ({}), or theirs its own: copy the same database.link_key_file to every node \
         (to change keys without downtime, use `reveille link-key stage|promote|retire`)",
        me.link_keys.join(", "),
        disagreeing,
        names.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    fn node(name: &str, started: i64, keys: &[&str]) -> NodeInfo {
        NodeInfo {
            name: name.into(),
            seen: at(100),
            started: at(started),
            link_keys: keys.iter().map(|k| (*k).to_owned()).collect(),
        }
    }

    fn odd(me: &NodeInfo, others: &[NodeInfo]) -> bool {
        let mut nodes = others.to_vec();
        nodes.push(me.clone());
        odd_one_out(me, &ClusterView { nodes, presence: Vec::new() }, at(101)).is_some()
    }

    #[test]
    fn only_the_odd_node_fails_never_the_ones_that_agree() {
        let (a, b, c) = (node("a", 0, &["k1"]), node("b", 0, &["k1"]), node("c", 5, &["k2"]));
        assert!(odd(&c, &[a.clone(), b.clone()]), "the node with another key");
        assert!(!odd(&a, &[b.clone(), c.clone()]), "a agrees with b: two against one");
        assert!(!odd(&b, &[a.clone(), c.clone()]));
    }

    #[test]
    fn with_no_majority_the_node_that_joined_later_is_the_odd_one() {
        let (old, new) = (node("old", 0, &["k1"]), node("new", 5, &["k2"]));
        assert!(odd(&new, std::slice::from_ref(&old)));
        assert!(!odd(&old, std::slice::from_ref(&new)), "the cluster that was there keeps serving");
    }

    #[test]
    fn every_step_of_a_rotation_keeps_every_node_healthy() {
        let old = &["k1"][..];
        let staged = &["k1", "k2"][..];
        let promoted = &["k2", "k1"][..];
        let retired = &["k2"][..];
        // The file goes to the nodes one at a time at each step.
        for (before, after) in [(old, staged), (staged, promoted), (promoted, retired)] {
            for changed in 0..=3 {
                let nodes: Vec<NodeInfo> = (0..3)
                    .map(|n| node(&format!("n{n}"), n, if n < changed { after } else { before }))
                    .collect();
                for (n, me) in nodes.iter().enumerate() {
                    let others: Vec<NodeInfo> = nodes
                        .iter()
                        .enumerate()
                        .filter(|(o, _)| *o != n)
                        .map(|(_, x)| x.clone())
                        .collect();
                    assert!(!odd(me, &others), "{before:?} → {after:?}, {changed} changed: {me:?}");
                }
            }
        }
    }

    #[test]
    fn nodes_not_seen_lately_do_not_count() {
        let me = node("me", 5, &["k2"]);
        let mut gone = node("gone", 0, &["k1"]);
        gone.seen = at(0);
        assert!(!odd(&me, &[gone]));
    }
}
