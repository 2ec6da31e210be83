//! Append-only audit log of analyst actions (who — the OS user —, when, what, old → new).
//! The schema's triggers refuse deletes and edits; an undo is a new entry that points back.
use super::{Result, Store};
use rusqlite::params;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub ts: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub old_value: String,
    pub new_value: String,
    pub detail: String,
    pub undone_by: Option<i64>,
}

impl Store {
    #[allow(clippy::too_many_arguments)]
    pub fn append_audit(
        &self,
        ts: i64,
        actor: &str,
        action: &str,
        target: &str,
        old: &str,
        new: &str,
        detail: &str,
    ) -> Result<i64> {
        let mut st = self.conn.prepare_cached(
            "INSERT INTO audit(ts, actor, action, target, old_value, new_value, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        st.execute(params![ts, actor, action, target, old, new, detail])?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn mark_undone(&self, entry: i64, by: i64) -> Result<()> {
        self.conn.execute("UPDATE audit SET undone_by = ?2 WHERE id = ?1 AND undone_by IS NULL", params![entry, by])?;
        Ok(())
    }

    /// Newest first. `target` narrows to one app key / setting.
    pub fn audit_entries(&self, target: Option<&str>, limit: usize) -> Result<Vec<AuditEntry>> {
        // Two statements, not `?1 IS NULL OR target = ?1`: only a plain equality lets SQLite use
        // the `audit_by_target` index.
        let mut st = self.conn.prepare_cached(if target.is_some() {
            "SELECT id, ts, actor, action, target, old_value, new_value, detail, undone_by FROM audit
             WHERE target = ?1 ORDER BY id DESC LIMIT ?2"
        } else {
            "SELECT id, ts, actor, action, target, old_value, new_value, detail, undone_by FROM audit
             WHERE ?1 IS NULL ORDER BY id DESC LIMIT ?2"
        })?;
        let rows = st.query_map(params![target, limit as i64], |r| {
            Ok(AuditEntry {
                id: r.get(0)?,
                ts: r.get(1)?,
                actor: r.get(2)?,
                action: r.get(3)?,
                target: r.get(4)?,
                old_value: r.get(5)?,
                new_value: r.get(6)?,
                detail: r.get(7)?,
                undone_by: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_is_append_only() {
        let s = Store::open_in_memory().unwrap();
        let id = s.append_audit(1, "alice", "tag", "dropbox", "none", "unsanctioned", "").unwrap();
        assert!(s.conn.execute("DELETE FROM audit", []).is_err());
        assert!(s.conn.execute("UPDATE audit SET new_value = 'x'", []).is_err());
        let undo = s.append_audit(2, "alice", "undo", "dropbox", "unsanctioned", "none", "").unwrap();
        s.mark_undone(id, undo).unwrap();
        // Once undone, the mark itself cannot be changed.
        assert!(s.conn.execute("UPDATE audit SET undone_by = 99 WHERE id = ?1", [id]).is_err());
        let all = s.audit_entries(None, 10).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].undone_by, Some(undo));
    }
}
