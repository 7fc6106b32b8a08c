//! Where an unreadable row is noted: a line on its incident's timeline (see
//! [`reveille_store::quarantine`]).

use jiff::Timestamp;
use reveille_store::Result;
use reveille_store::quarantine::{Unreadable, timeline_line};

use crate::json;
use crate::session::Session;

/// Writes a timeline line on the incident each row belongs to, when that can be found.
pub(crate) fn record(session: &mut Session, rows: &[Unreadable], now: Timestamp) -> Result<()> {
    for row in rows {
        let incident: Option<i64> = match row.table {
            "feed" => session
                .query("SELECT incident_id FROM feed WHERE id = $1", &[&row.id])?
                .first()
                .and_then(|r| r.get(0)),
            _ => Some(row.id),
        };
        let Some(incident) = incident else { continue };
        session.query(
            "INSERT INTO timeline (incident_id, body)
             SELECT $1, $2 WHERE EXISTS (SELECT 1 FROM incidents WHERE id = $1)",
            &[&incident, &json(&timeline_line(row, now))?],
        )?;
    }
    Ok(())
}
