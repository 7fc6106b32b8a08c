//! What every node shares beyond incidents and feeds: claims of timed work, leases, which nodes
//! are alive with their devices, and rate buckets.
//!
//! Claims run on the writer, in the transaction that does the claimed work. The rest run each in
//! a short transaction of its own on a read connection, never inside the writer's groups: a
//! group that locked a shared row (a lease, a rate bucket) beside other work could take its locks
//! in another order than a group on another node, and the two would deadlock.

use jiff::Timestamp;
use postgres::Transaction;
use reveille_store::{Claim, ClusterView, Lease, NodeInfo, Result, UserPresence};

use crate::session::Session;

/// Takes the claim if nobody has: true when this transaction is the one that does the work.
pub(crate) fn claim(s: &mut Session, claim: &Claim) -> Result<bool> {
    let claimed = match claim {
        Claim::HeartbeatMissed { name, last_ping } => s.query(
            "UPDATE heartbeats SET missed = TRUE
             WHERE name = $1 AND NOT missed AND last_ping = $2 RETURNING name",
            &[name, &last_ping.to_string()],
        )?,
        Claim::Handoff { schedule, previous: None, at } => s.query(
            "INSERT INTO handoffs (schedule, last_at) VALUES ($1, $2)
             ON CONFLICT DO NOTHING RETURNING schedule",
            &[schedule, &at.to_string()],
        )?,
        Claim::Handoff { schedule, previous: Some(previous), at } => s.query(
            "UPDATE handoffs SET last_at = $3 WHERE schedule = $1 AND last_at = $2
             RETURNING schedule",
            &[schedule, &previous.to_string(), &at.to_string()],
        )?,
    };
    Ok(!claimed.is_empty())
}

pub(crate) fn lease(
    s: &mut Transaction<'_>,
    name: &str,
    holder: &str,
    now: Timestamp,
    until: Timestamp,
) -> Result<Lease> {
    let current =
        s.query("SELECT holder, until_ms FROM leases WHERE name = $1 FOR UPDATE", &[&name])?;
    let current = current.first().map(|row| (row.get::<_, String>(0), row.get::<_, i64>(1)));
    let took_over = match current {
        Some((other, until_ms)) if other != holder && until_ms >= now.as_millisecond() => {
            return Ok(Lease::Held(other));
        }
        Some((other, _)) if other != holder => Some(other),
        _ => None,
    };
    s.query(
        "INSERT INTO leases (name, holder, until_ms) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms",
        &[&name, &holder, &until.as_millisecond()],
    )?;
    Ok(Lease::Granted { took_over })
}

pub(crate) fn report_node(
    s: &mut Transaction<'_>,
    node: &NodeInfo,
    presence: &[UserPresence],
) -> Result<ClusterView> {
    // The key fingerprints as one comma-separated column: what older nodes wrote (one
    // fingerprint) reads as a list of one.
    s.query(
        "INSERT INTO nodes (name, seen_ms, started_ms, link_key_id) VALUES ($1, $2, $3, $4)
         ON CONFLICT (name) DO UPDATE SET seen_ms = excluded.seen_ms,
             started_ms = excluded.started_ms, link_key_id = excluded.link_key_id",
        &[
            &node.name,
            &node.seen.as_millisecond(),
            &node.started.as_millisecond(),
            &node.link_keys.join(","),
        ],
    )?;
    s.query("DELETE FROM presence WHERE node = $1", &[&node.name])?;
    let users: Vec<&str> = presence.iter().map(|p| p.user.as_str()).collect();
    let open: Vec<i32> = presence.iter().map(|p| p.open as i32).collect();
    let since: Vec<i64> = presence.iter().map(|p| p.since.as_millisecond()).collect();
    // Who is connected where is rebuilt every second: it need not wait for the disk.
    s.batch_execute("SET LOCAL synchronous_commit = off")?;
    s.query(
        "INSERT INTO presence (node, user_name, open, since_ms)
         SELECT $1, * FROM UNNEST($2::TEXT[], $3::INTEGER[], $4::BIGINT[])",
        &[&node.name, &users, &open, &since],
    )?;
    let time = |ms: i64| Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH);
    let nodes = s
        .query("SELECT name, seen_ms, started_ms, link_key_id FROM nodes ORDER BY name", &[])?
        .iter()
        .map(|row| NodeInfo {
            name: row.get(0),
            seen: time(row.get(1)),
            started: time(row.get(2)),
            link_keys: row
                .get::<_, &str>(3)
                .split(',')
                .filter(|k| !k.is_empty())
                .map(str::to_owned)
                .collect(),
        })
        .collect();
    let presence = s
        .query("SELECT node, user_name, open, since_ms FROM presence", &[])?
        .iter()
        .map(|row| {
            let presence = UserPresence {
                user: row.get(1),
                open: row.get::<_, i32>(2).max(0) as u32,
                since: time(row.get(3)),
            };
            (row.get(0), presence)
        })
        .collect();
    Ok(ClusterView { nodes, presence })
}

pub(crate) fn take_tokens(
    s: &mut Transaction<'_>,
    key: &str,
    want: u32,
    per_minute: u32,
    now: Timestamp,
) -> Result<u32> {
    let per_minute = f64::from(per_minute.max(1));
    let row =
        s.query("SELECT tokens, at_ms FROM rate_buckets WHERE key_hash = $1 FOR UPDATE", &[&key])?;
    let (tokens, at) = match row.first() {
        Some(row) => (row.get::<_, f64>(0), Timestamp::from_millisecond(row.get(1)).unwrap_or(now)),
        None => (per_minute, now),
    };
    let (left, granted) = reveille_store::take_tokens(tokens, at, now, per_minute, want);
    s.query(
        "INSERT INTO rate_buckets (key_hash, tokens, at_ms) VALUES ($1, $2, $3)
         ON CONFLICT (key_hash) DO UPDATE SET tokens = excluded.tokens, at_ms = excluded.at_ms",
        &[&key, &left, &now.as_millisecond()],
    )?;
    Ok(granted)
}
