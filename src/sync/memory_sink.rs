//! In-memory sinks: [`MemorySink`] keeps every committed row (tests, dry runs) and can be told
//! to fail a page; [`CountingSink`] only counts (benchmarks).
use std::collections::{BTreeMap, HashMap};

use super::{
    DiscoveredApp, MdcaAlert, RiskyUser, SinkError, SourceKind, SyncSink, SyncedDevice, SyncedLogon, SyncedTraffic,
    Watermark,
};

/// Key of an additive traffic aggregate.
pub type TrafficKey = (SourceKind, i32, String, String, Option<String>);
/// Summed connections, bytes up, bytes down.
pub type TrafficSum = (u64, u64, u64);

/// Appends every committed page; a page and its watermark commit together or not at all.
#[derive(Debug, Default, Clone)]
pub struct MemorySink {
    pub devices: Vec<SyncedDevice>,
    pub logons: Vec<SyncedLogon>,
    pub traffic: Vec<SyncedTraffic>,
    pub risky_users: Vec<RiskyUser>,
    pub discovered_apps: Vec<DiscoveredApp>,
    pub mdca_alerts: Vec<MdcaAlert>,
    pub watermarks: HashMap<SourceKind, Watermark>,
    /// Committed pages per source.
    pub pages: HashMap<SourceKind, u64>,
    /// Rows committed per source.
    pub rows: HashMap<SourceKind, u64>,
    /// Reject the page commit with this 1-based number (counted over all sources), once.
    pub fail_at_page: Option<u64>,
    attempts: u64,
}

impl MemorySink {
    pub fn failing_at(page: u64) -> MemorySink {
        MemorySink { fail_at_page: Some(page), ..MemorySink::default() }
    }

    fn commit(&mut self, source: SourceKind, rows: usize, wm: &Watermark) -> Result<(), SinkError> {
        self.attempts += 1;
        if self.fail_at_page == Some(self.attempts) {
            self.fail_at_page = None;
            return Err(SinkError::new(format!(
                "simulated failure committing page {} ({})",
                self.attempts,
                source.name()
            )));
        }
        *self.pages.entry(source).or_default() += 1;
        *self.rows.entry(source).or_default() += rows as u64;
        self.watermarks.insert(source, wm.clone());
        Ok(())
    }

    pub fn rows_of(&self, source: SourceKind) -> u64 {
        self.rows.get(&source).copied().unwrap_or(0)
    }

    /// Traffic summed per day × host × device × account (rows from disjoint windows add up).
    pub fn traffic_sums(&self) -> BTreeMap<TrafficKey, TrafficSum> {
        let mut out: BTreeMap<TrafficKey, TrafficSum> = BTreeMap::new();
        for t in &self.traffic {
            let e =
                out.entry((t.source, t.day.0, t.remote_host.clone(), t.device.clone(), t.account.clone())).or_default();
            e.0 += t.connections;
            e.1 += t.bytes_up.unwrap_or(0);
            e.2 += t.bytes_down.unwrap_or(0);
        }
        out
    }

    /// Logon counts summed per source × account × device.
    pub fn logon_sums(&self) -> BTreeMap<(SourceKind, String, String), u64> {
        let mut out = BTreeMap::new();
        for l in &self.logons {
            *out.entry((l.source, l.account.clone(), l.device_name.clone())).or_default() += l.logon_count.unwrap_or(1);
        }
        out
    }
}

impl SyncSink for MemorySink {
    fn devices(&mut self, page: &[SyncedDevice], wm: &Watermark) -> Result<(), SinkError> {
        self.commit(wm.source, page.len(), wm)?;
        self.devices.extend_from_slice(page);
        Ok(())
    }
    fn logons(&mut self, page: &[SyncedLogon], wm: &Watermark) -> Result<(), SinkError> {
        self.commit(wm.source, page.len(), wm)?;
        self.logons.extend_from_slice(page);
        Ok(())
    }
    fn traffic(&mut self, page: &[SyncedTraffic], wm: &Watermark) -> Result<(), SinkError> {
        self.commit(wm.source, page.len(), wm)?;
        self.traffic.extend_from_slice(page);
        Ok(())
    }
    fn risky_users(&mut self, page: &[RiskyUser], wm: &Watermark) -> Result<(), SinkError> {
        self.commit(wm.source, page.len(), wm)?;
        self.risky_users.extend_from_slice(page);
        Ok(())
    }
    fn discovered_apps(&mut self, page: &[DiscoveredApp], wm: &Watermark) -> Result<(), SinkError> {
        self.commit(wm.source, page.len(), wm)?;
        self.discovered_apps.extend_from_slice(page);
        Ok(())
    }
    fn mdca_alerts(&mut self, page: &[MdcaAlert], wm: &Watermark) -> Result<(), SinkError> {
        self.commit(wm.source, page.len(), wm)?;
        self.mdca_alerts.extend_from_slice(page);
        Ok(())
    }
    fn watermark(&self, source: SourceKind) -> Option<Watermark> {
        self.watermarks.get(&source).cloned()
    }
}

/// Counts rows and pages only.
#[derive(Debug, Default, Clone)]
pub struct CountingSink {
    pub rows: BTreeMap<SourceKind, u64>,
    pub pages: BTreeMap<SourceKind, u64>,
    pub watermarks: HashMap<SourceKind, Watermark>,
}

impl CountingSink {
    fn count(&mut self, n: usize, wm: &Watermark) -> Result<(), SinkError> {
        *self.rows.entry(wm.source).or_default() += n as u64;
        *self.pages.entry(wm.source).or_default() += 1;
        self.watermarks.insert(wm.source, wm.clone());
        Ok(())
    }
    pub fn total_rows(&self) -> u64 {
        self.rows.values().sum()
    }
}

impl SyncSink for CountingSink {
    fn devices(&mut self, p: &[SyncedDevice], wm: &Watermark) -> Result<(), SinkError> {
        self.count(p.len(), wm)
    }
    fn logons(&mut self, p: &[SyncedLogon], wm: &Watermark) -> Result<(), SinkError> {
        self.count(p.len(), wm)
    }
    fn traffic(&mut self, p: &[SyncedTraffic], wm: &Watermark) -> Result<(), SinkError> {
        self.count(p.len(), wm)
    }
    fn risky_users(&mut self, p: &[RiskyUser], wm: &Watermark) -> Result<(), SinkError> {
        self.count(p.len(), wm)
    }
    fn discovered_apps(&mut self, p: &[DiscoveredApp], wm: &Watermark) -> Result<(), SinkError> {
        self.count(p.len(), wm)
    }
    fn mdca_alerts(&mut self, p: &[MdcaAlert], wm: &Watermark) -> Result<(), SinkError> {
        self.count(p.len(), wm)
    }
    fn watermark(&self, source: SourceKind) -> Option<Watermark> {
        self.watermarks.get(&source).cloned()
    }
}
