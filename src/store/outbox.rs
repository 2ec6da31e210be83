//! Store side of the governance outbox: rows the tag actions queue for MDE, read and marked
//! by the pusher (`sync::push`).
use super::{Result, Store};
use crate::actions::indicators::OutboxOp;
use crate::domain::AppId;
use rusqlite::params;
use std::collections::HashMap;

/// One pending (or previously failed) outbox row, payload decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub app_id: AppId,
    pub indicator_value: String,
    pub op: OutboxOp,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created: i64,
}

/// Outbox rows (or indicators) by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    pub pending: u64,
    pub pushed: u64,
    pub failed: u64,
}

impl std::fmt::Display for OutboxCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} pending · {} pushed · {} failed", self.pending, self.pushed, self.failed)
    }
}

impl OutboxCounts {
    /// Counts `n` rows in `status`; superseded rows are history, not state.
    pub fn add(&mut self, status: &str, n: i64) {
        let n = u64::try_from(n).unwrap_or(0);
        match status {
            "pending" => self.pending += n,
            "pushed" => self.pushed += n,
            "failed" => self.failed += n,
            _ => {}
        }
    }
}

/// Error text stored for people: sanitised, bearer tokens and secret-looking assignments
/// masked, cut to a readable length.
pub fn redact_error(text: &str) -> String {
    let safe = crate::sanitize::display_safe(text);
    let mut out = String::with_capacity(safe.len().min(600));
    let mut mask_next = false;
    for (i, word) in safe.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let lower = word.to_ascii_lowercase();
        let secretish = ["secret=", "token=", "password=", "client_secret", "access_token", "authorization:"]
            .iter()
            .any(|k| lower.contains(k));
        if mask_next || secretish {
            out.push_str("[redacted]");
        } else {
            out.push_str(word);
        }
        mask_next = lower == "bearer" || lower.ends_with("authorization:");
    }
    if out.chars().count() > 500 {
        out = out.chars().take(500).collect::<String>() + "…";
    }
    out
}

impl Store {
    /// Pending and failed rows in id order. A row whose payload does not decode is marked
    /// failed (it can never be pushed as is) and left out.
    pub fn pending_outbox(&self) -> Result<Vec<OutboxRow>> {
        let raw: Vec<(OutboxRow, std::result::Result<OutboxOp, String>)> = {
            let mut st = self.conn.prepare_cached(
                "SELECT id, app_id, indicator_value, payload, attempts, last_error, created FROM outbox
                 WHERE status IN ('pending', 'failed') ORDER BY id",
            )?;
            st.query_map([], |r| {
                let payload: String = r.get(3)?;
                let op = serde_json::from_str::<OutboxOp>(&payload).map_err(|e| e.to_string());
                // The placeholder op is replaced below; rows whose payload fails are dropped.
                let placeholder = OutboxOp::Delete { indicator_value: String::new(), indicator_type: String::new() };
                Ok((
                    OutboxRow {
                        id: r.get(0)?,
                        app_id: AppId(r.get(1)?),
                        indicator_value: r.get(2)?,
                        op: placeholder,
                        attempts: r.get(4)?,
                        last_error: r.get(5)?,
                        created: r.get(6)?,
                    },
                    op,
                ))
            })?
            .collect::<rusqlite::Result<_>>()?
        };
        let mut out = Vec::with_capacity(raw.len());
        for (mut row, op) in raw {
            match op {
                Ok(op) => {
                    row.op = op;
                    out.push(row);
                }
                Err(e) => {
                    let msg =
                        format!("payload is not a valid outbox operation ({e}); re-apply the tag to queue it again");
                    self.conn.execute(
                        "UPDATE outbox SET status = 'failed', last_error = ?2, attempts = attempts + 1 WHERE id = ?1",
                        params![row.id, msg],
                    )?;
                }
            }
        }
        Ok(out)
    }

    pub fn mark_outbox_pushed(&self, id: i64, now: i64) -> Result<()> {
        self.conn.execute(
            "UPDATE outbox SET status = 'pushed', last_error = NULL, updated = ?2 WHERE id = ?1",
            params![id, now],
        )?;
        Ok(())
    }

    pub fn mark_outbox_failed(&self, id: i64, error: &str, now: i64) -> Result<()> {
        self.conn.execute(
            "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = ?2, updated = ?3 WHERE id = ?1",
            params![id, redact_error(error), now],
        )?;
        Ok(())
    }

    pub fn mark_outbox_superseded(&self, id: i64) -> Result<()> {
        self.conn.execute("UPDATE outbox SET status = 'superseded' WHERE id = ?1", [id])?;
        Ok(())
    }

    /// Marks every pending/failed row that has a newer row for the same indicator value
    /// (whatever that row's state): pushing it would undo the newer decision.
    pub fn supersede_stale_outbox(&self) -> Result<u64> {
        let n = self.conn.execute(
            "UPDATE outbox SET status = 'superseded'
             WHERE status IN ('pending', 'failed') AND EXISTS (
                SELECT 1 FROM outbox n WHERE n.id > outbox.id AND n.status != 'superseded'
                  AND lower(trim(n.indicator_value)) = lower(trim(outbox.indicator_value)))",
            [],
        )?;
        Ok(n as u64)
    }

    pub fn outbox_status_by_app(&self) -> Result<HashMap<AppId, OutboxCounts>> {
        let mut st = self.conn.prepare_cached("SELECT app_id, status, count(*) FROM outbox GROUP BY app_id, status")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)))?;
        let mut out: HashMap<AppId, OutboxCounts> = HashMap::new();
        for row in rows {
            let (app, status, n) = row?;
            out.entry(AppId(app)).or_default().add(&status, n);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::indicators::INDICATOR_TYPE_DOMAIN;

    fn queue(s: &Store, app: i64, value: &str, payload: &str, ts: i64) -> i64 {
        s.conn
            .execute(
                "INSERT INTO outbox(app_id, op, indicator_value, payload, status, created, updated)
                 VALUES (?1, 'delete', ?2, ?3, 'pending', ?4, ?4)",
                params![app, value, payload, ts],
            )
            .unwrap();
        s.conn.last_insert_rowid()
    }

    fn delete_op(value: &str) -> String {
        serde_json::to_string(&OutboxOp::Delete {
            indicator_value: value.into(),
            indicator_type: INDICATOR_TYPE_DOMAIN.into(),
        })
        .unwrap()
    }

    #[test]
    fn pending_rows_marks_and_counts() {
        let s = Store::open_in_memory().unwrap();
        let a = queue(&s, 7, "mega.nz", &delete_op("mega.nz"), 10);
        let bad = queue(&s, 7, "x.example", "{not json", 11);
        let b = queue(&s, 8, "Mega.NZ", &delete_op("Mega.NZ"), 12);
        let rows = s.pending_outbox().unwrap();
        assert_eq!(rows.iter().map(|r| r.id).collect::<Vec<_>>(), vec![a, b]);
        let (status, err): (String, String) = s
            .conn
            .query_row("SELECT status, last_error FROM outbox WHERE id = ?1", [bad], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        assert_eq!(status, "failed");
        assert!(err.contains("not a valid outbox operation"), "{err}");

        assert_eq!(s.supersede_stale_outbox().unwrap(), 1);
        assert_eq!(s.pending_outbox().unwrap().iter().map(|r| r.id).collect::<Vec<_>>(), vec![b]);
        s.mark_outbox_pushed(b, 20).unwrap();
        s.mark_outbox_failed(a, "503 from MDE, Authorization: Bearer eyJabc.def sent", 21).unwrap();
        let err: String = s.conn.query_row("SELECT last_error FROM outbox WHERE id = ?1", [a], |r| r.get(0)).unwrap();
        assert!(!err.contains("eyJabc"), "{err}");
        let counts = s.outbox_status_by_app().unwrap();
        assert_eq!(counts[&AppId(7)], OutboxCounts { pending: 0, pushed: 0, failed: 2 });
        assert_eq!(counts[&AppId(8)], OutboxCounts { pending: 0, pushed: 1, failed: 0 });
    }

    #[test]
    fn redaction_masks_secrets() {
        assert_eq!(redact_error("client_secret=abc failed"), "[redacted] failed");
        assert_eq!(redact_error("Bearer abc.def rejected"), "Bearer [redacted] rejected");
        assert_eq!(redact_error("HTTP 503 after 3 attempts"), "HTTP 503 after 3 attempts");
    }
}
