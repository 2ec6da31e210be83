//! Every source against the loopback fake tenant: counts, paging, empty answers, window
//! splitting at the row limit, resume after an interrupted run.
use shadowscope::domain::Tag;
use shadowscope::sync::fake_tenant::{FakeTenantOptions, FaultKind, FaultRule, serve_fake_tenant};
use shadowscope::sync::memory_sink::MemorySink;
use shadowscope::sync::{
    CheckStatus, ProgressPhase, SourceKind, SourcesConfig, SyncConfig, SyncProgress, check_config, run_sync,
};
use std::io::Write;
use std::sync::Mutex;

const NOW: i64 = 1_750_000_000; // fixed anchor: reproducible windows

fn opts() -> FakeTenantOptions {
    FakeTenantOptions {
        users: 50,
        devices: 40,
        days: 2,
        page_size: 2,
        alerts: 25,
        now_unix: Some(NOW),
        ..FakeTenantOptions::default()
    }
}

fn secret_file(secret: &str) -> tempfile::NamedTempFile {
    // NamedTempFile is created 0600.
    let mut f = tempfile::NamedTempFile::new().unwrap();
    writeln!(f, "{secret}").unwrap();
    f
}

fn cfg_for(h: &shadowscope::sync::fake_tenant::FakeTenantHandle, f: &tempfile::NamedTempFile) -> SyncConfig {
    let mut cfg = h.sync_config(f.path());
    cfg.windows.mde_page_size = 7;
    cfg.windows.mdca_page_size = 10;
    cfg.windows.mde_logon_batch = 16;
    cfg
}

fn quiet(_: SyncProgress) {}

#[tokio::test]
async fn full_sync_covers_every_source() {
    let o = opts();
    let fake = serve_fake_tenant(o.clone()).await.unwrap();
    let sf = secret_file(&o.client_secret);
    let cfg = cfg_for(&fake, &sf);
    let mut sink = MemorySink::default();
    let events = Mutex::new(Vec::new());
    let report = run_sync(&cfg, &mut sink, &|p| events.lock().unwrap().push(p)).await;
    assert!(report.is_ok(), "{:?}", report.errors());

    // Devices: 40 over $top=7 pages → 6 pages, the last short.
    assert_eq!(sink.devices.len(), 40);
    assert_eq!(sink.pages[&SourceKind::Devices], 6);
    let d = &sink.devices[0];
    assert_eq!(d.name, "dev-000000.contoso.example");
    assert_eq!(d.id.len(), 40);
    assert!(d.risk_score.is_some() && d.exposure_level.is_some() && d.device_group.is_some());
    assert!(d.last_seen_unix.is_some());

    // Logon users: one call per machine, 2 users each, committed 16 machines at a time.
    assert_eq!(sink.rows_of(SourceKind::LogonUsers), 80);
    assert_eq!(sink.pages[&SourceKind::LogonUsers], 3);
    let calls = fake.requests().iter().filter(|r| r.path.ends_with("/logonusers")).count();
    assert_eq!(calls, 40);

    // Risky users: users 3,13,23,33,43 → 5 over nextLink pages of 2.
    assert_eq!(sink.risky_users.len(), 5);
    assert_eq!(sink.pages[&SourceKind::RiskyUsers], 3);
    assert!(sink.risky_users.iter().any(|u| u.upn == "user000013@contoso.example"));
    let rr: Vec<_> = fake.requests().into_iter().filter(|r| r.path.contains("riskyUsers")).collect();
    assert_eq!(rr.len(), 3);
    assert!(rr[1].path.contains("$skiptoken=2") && rr[2].path.contains("$skiptoken=4"));

    // Discovered apps: 2 streams × 40, tags parsed.
    assert_eq!(sink.discovered_apps.len(), 80);
    assert!(sink.discovered_apps.iter().any(|a| a.tag == Tag::Unsanctioned));
    assert!(sink.discovered_apps.iter().any(|a| a.tag == Tag::Monitored && a.tags.len() == 2));
    assert!(sink.discovered_apps.iter().all(|a| a.risk_score.is_some_and(|s| (0..=10).contains(&s))));

    // Alerts: 25 over skip/limit 10 → 3 pages; epoch ms → s.
    assert_eq!(sink.mdca_alerts.len(), 25);
    assert_eq!(sink.pages[&SourceKind::MdcaAlerts], 3);
    assert!(sink.mdca_alerts.iter().all(|a| a.timestamp_unix > 1_700_000_000 && a.timestamp_unix < NOW));
    assert!(sink.mdca_alerts[0].entities.iter().any(|e| e.kind == "account"));

    // Traffic from hunting (no bytes) and Log Analytics (bytes).
    let hunt: Vec<_> = sink.traffic.iter().filter(|t| t.source == SourceKind::HuntingTraffic).collect();
    let la: Vec<_> = sink.traffic.iter().filter(|t| t.source == SourceKind::LogAnalyticsTraffic).collect();
    assert!(!hunt.is_empty() && !la.is_empty());
    assert!(hunt.iter().all(|t| t.bytes_up.is_none() && t.connections > 0));
    assert!(la.iter().all(|t| t.bytes_up.is_some() && t.bytes_down.is_some()));
    // 40 devices × 2 hosts × 2 days of events; the last day is cut at NOW.
    let conns: u64 = hunt.iter().map(|t| t.connections).sum();
    assert!(conns > 0);
    assert!(hunt.len() <= 160);

    // Logons from hunting: device logons carry domain\name, identity logons a UPN.
    let dl = sink.logons.iter().filter(|l| l.source == SourceKind::HuntingDeviceLogons).count();
    let il: Vec<_> = sink.logons.iter().filter(|l| l.source == SourceKind::HuntingIdentityLogons).collect();
    assert!(dl > 0 && !il.is_empty());
    assert!(il.iter().all(|l| l.upn.as_deref() == Some(l.account.as_str())));

    // Windowed sources end at the as-of instant.
    let wm = &sink.watermarks[&SourceKind::HuntingTraffic];
    assert_eq!(wm.until_unix, Some(NOW));
    // Progress: started + finished per source.
    let ev = events.lock().unwrap();
    for s in SourceKind::ALL {
        assert!(ev.iter().any(|p| p.source == s && p.phase == ProgressPhase::Finished), "{s:?}");
    }
    // Per-resource tokens: MDE, Graph, Log Analytics, MDCA.
    assert_eq!(fake.tokens_issued(), 4);
}

#[tokio::test]
async fn second_run_of_windowed_sources_fetches_nothing_new() {
    let o = opts();
    let fake = serve_fake_tenant(o.clone()).await.unwrap();
    let sf = secret_file(&o.client_secret);
    let mut cfg = cfg_for(&fake, &sf);
    cfg.sources = SourcesConfig::none();
    cfg.sources.hunting_traffic = true;
    let mut sink = MemorySink::default();
    let r1 = run_sync(&cfg, &mut sink, &quiet).await;
    assert!(r1.is_ok());
    let n = sink.traffic.len();
    fake.clear_requests();
    let r2 = run_sync(&cfg, &mut sink, &quiet).await;
    assert!(r2.is_ok());
    assert_eq!(sink.traffic.len(), n);
    assert!(fake.requests().iter().all(|r| !r.path.contains("runHuntingQuery")));
}

#[tokio::test]
async fn empty_mde_answers_404_and_yields_zero_rows() {
    let o = FakeTenantOptions { devices: 0, ..opts() };
    let fake = serve_fake_tenant(o.clone()).await.unwrap();
    let sf = secret_file(&o.client_secret);
    let mut cfg = cfg_for(&fake, &sf);
    cfg.sources = SourcesConfig::none();
    cfg.sources.devices = true;
    cfg.sources.logon_users = true;
    let mut sink = MemorySink::default();
    let report = run_sync(&cfg, &mut sink, &quiet).await;
    assert!(report.is_ok(), "{:?}", report.errors());
    assert_eq!(report.rows(SourceKind::Devices), 0);
    assert_eq!(report.rows(SourceKind::LogonUsers), 0);
    assert!(sink.watermarks[&SourceKind::Devices].complete);
    assert!(fake.requests().iter().any(|r| r.path.starts_with("/mde/api/machines") && r.status == 404));

    // The Empty fault gives the same on a populated tenant.
    let fake2 = serve_fake_tenant(opts()).await.unwrap();
    fake2.add_fault(FaultRule::new("/mde/api/machines", FaultKind::Empty, None));
    let mut cfg2 = cfg_for(&fake2, &sf);
    cfg2.sources = SourcesConfig::none();
    cfg2.sources.devices = true;
    let mut sink2 = MemorySink::default();
    let r2 = run_sync(&cfg2, &mut sink2, &quiet).await;
    assert!(r2.is_ok());
    assert!(sink2.devices.is_empty());
}

#[tokio::test]
async fn hunting_windows_split_at_the_row_limit_without_losing_rows() {
    // Reference: no limit.
    let reference = {
        let fake = serve_fake_tenant(opts()).await.unwrap();
        let sf = secret_file(&opts().client_secret);
        let mut cfg = cfg_for(&fake, &sf);
        cfg.sources = SourcesConfig::none();
        cfg.sources.hunting_traffic = true;
        cfg.sources.hunting_identity_logons = true;
        let mut sink = MemorySink::default();
        assert!(run_sync(&cfg, &mut sink, &quiet).await.is_ok());
        sink
    };
    let o = FakeTenantOptions { hunting_row_limit: 12, ..opts() };
    let fake = serve_fake_tenant(o.clone()).await.unwrap();
    let sf = secret_file(&o.client_secret);
    let mut cfg = cfg_for(&fake, &sf);
    cfg.sources = SourcesConfig::none();
    cfg.sources.hunting_traffic = true;
    cfg.sources.hunting_identity_logons = true;
    cfg.windows.hunting_row_limit = 12;
    let mut sink = MemorySink::default();
    let report = run_sync(&cfg, &mut sink, &quiet).await;
    assert!(report.is_ok(), "{:?}", report.errors());

    // Some answers hit the limit and were re-asked with half the window.
    let hunts: Vec<_> = fake.requests().into_iter().filter(|r| r.path.contains("runHuntingQuery")).collect();
    let spans: Vec<i64> = hunts
        .iter()
        .map(|r| {
            let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            let ts = v["Timespan"].as_str().unwrap().to_string();
            let (a, b) = ts.split_once('/').unwrap();
            chrono::DateTime::parse_from_rfc3339(b).unwrap().timestamp()
                - chrono::DateTime::parse_from_rfc3339(a).unwrap().timestamp()
        })
        .collect();
    assert!(spans.contains(&86_400), "{spans:?}");
    assert!(spans.iter().any(|&s| s < 86_400 / 4), "{spans:?}");
    // Every committed page is under the limit, and the sums equal the unsplit reference.
    assert!(report.sources.iter().all(|s| s.rows > 0));
    assert_eq!(sink.traffic_sums(), reference.traffic_sums());
    assert_eq!(sink.logon_sums(), reference.logon_sums());
    assert!(sink.pages[&SourceKind::HuntingTraffic] > reference.pages[&SourceKind::HuntingTraffic]);
}

#[tokio::test]
async fn window_that_cannot_be_split_further_is_an_error() {
    let o = FakeTenantOptions { hunting_row_limit: 1, ..opts() };
    let fake = serve_fake_tenant(o.clone()).await.unwrap();
    let sf = secret_file(&o.client_secret);
    let mut cfg = cfg_for(&fake, &sf);
    cfg.sources = SourcesConfig::none();
    cfg.sources.hunting_traffic = true;
    cfg.windows.hunting_row_limit = 1;
    cfg.windows.min_window_seconds = 3600;
    let mut sink = MemorySink::default();
    let report = run_sync(&cfg, &mut sink, &quiet).await;
    let err = report.error_for(SourceKind::HuntingTraffic).expect("error").to_string();
    assert!(err.contains("min_window_seconds"), "{err}");
}

/// Interrupt the run at many different pages; a rerun must end with exactly the reference
/// data: snapshot rows committed once per pass, additive sums equal.
#[tokio::test]
async fn resume_after_sink_failure_has_no_gaps_or_duplicates() {
    let o = opts();
    let fake = serve_fake_tenant(o.clone()).await.unwrap();
    let sf = secret_file(&o.client_secret);
    let mut cfg = cfg_for(&fake, &sf);
    cfg.windows.hunting_window_hours = 6;
    let mut reference = MemorySink::default();
    let rr = run_sync(&cfg, &mut reference, &quiet).await;
    assert!(rr.is_ok());
    let total_pages: u64 = reference.pages.values().sum();
    assert!(total_pages > 60, "{total_pages}");

    for fail_at in [1, 3, 6, 9, 30, 47, 50, 55, 58, 60, total_pages - 2, total_pages] {
        let mut sink = MemorySink::failing_at(fail_at);
        let r1 = run_sync(&cfg, &mut sink, &quiet).await;
        assert!(!r1.is_ok(), "page {fail_at} should fail");
        let failed = r1
            .sources
            .iter()
            .find(|s| matches!(s.outcome, shadowscope::sync::SourceOutcome::Failed { .. }))
            .unwrap()
            .source;
        // Later sources were skipped, not run.
        assert!(r1.sources.iter().skip_while(|s| s.source != failed).skip(1).all(|s| s.rows == 0));
        let committed_before = sink.rows_of(failed);
        let r2 = run_sync(&cfg, &mut sink, &quiet).await;
        assert!(r2.is_ok(), "{:?}", r2.errors());
        // The interrupted source continued where it stopped.
        assert_eq!(
            committed_before + r2.rows(failed),
            reference.rows_of(failed),
            "fail_at={fail_at} source={failed:?}"
        );
        for s in SourceKind::ALL.iter().skip_while(|s| **s != failed).skip(1) {
            assert_eq!(r2.rows(*s), reference.rows_of(*s), "{s:?}");
        }
        assert_eq!(sink.traffic_sums(), reference.traffic_sums(), "fail_at={fail_at}");
        let mut ids: Vec<_> = sink.risky_users.iter().map(|u| u.id.clone()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), reference.risky_users.len());
    }
}

#[tokio::test]
async fn check_config_reports_token_and_permission_per_source() {
    let o = opts();
    let fake = serve_fake_tenant(o.clone()).await.unwrap();
    fake.add_fault(FaultRule::new("identityProtection", FaultKind::Forbidden, None));
    let sf = secret_file(&o.client_secret);
    let mut cfg = cfg_for(&fake, &sf);
    cfg.log_analytics_workspace = None;
    let checks = check_config(&cfg).await;
    assert_eq!(checks.len(), SourceKind::ALL.len());
    for c in &checks {
        match (c.source, &c.status) {
            (SourceKind::RiskyUsers, CheckStatus::Failed(e)) => {
                assert!(e.to_string().contains("IdentityRiskyUser.Read.All"), "{e}");
            }
            (SourceKind::LogAnalyticsTraffic, CheckStatus::Skipped(r)) => {
                assert!(r.contains("log_analytics_workspace"));
            }
            (_, CheckStatus::Ok) => {}
            (s, other) => panic!("{s:?}: {other:?}"),
        }
    }
}

#[test]
fn config_rejects_unknown_keys_and_parses_defaults() {
    let ok = SyncConfig::from_toml(
        "tenant = \"t\"\nclient_id = \"c\"\nsecret_env = \"SS_SECRET\"\n[sources]\nlogon_users = true\n[pacing]\nrisky_users_interval_ms = 10\n",
    )
    .unwrap();
    assert!(ok.sources.logon_users && ok.sources.devices);
    assert_eq!(ok.pacing.risky_users_interval_ms, 10);
    assert_eq!(ok.endpoints.graph, "https://graph.microsoft.com");
    let bad = SyncConfig::from_toml("tenant = \"t\"\nclient_id = \"c\"\n[sources]\ndevicez = true\n")
        .unwrap_err()
        .to_string();
    assert!(bad.contains("devicez"), "{bad}");
}
