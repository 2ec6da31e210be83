//! Injected faults: 429 + Retry-After (seconds and HTTP date), 401 refresh-once, 403 naming
//! the permission, 5xx retried then surfaced, slow answers, bad secret.
use shadowscope::sync::fake_tenant::{
    FakeTenantHandle, FakeTenantOptions, FaultKind, FaultRule, RetryAfter, serve_fake_tenant,
};
use shadowscope::sync::memory_sink::MemorySink;
use shadowscope::sync::{SourceKind, SourcesConfig, SyncConfig, SyncError, SyncProgress, run_sync};
use std::io::Write;
use std::time::{Duration, Instant};

fn secret_file(secret: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    write!(f, "{secret}").unwrap();
    f
}

async fn setup(only: fn(&mut SourcesConfig)) -> (FakeTenantHandle, tempfile::NamedTempFile, SyncConfig) {
    let o = FakeTenantOptions {
        devices: 12,
        users: 30,
        days: 1,
        page_size: 2,
        now_unix: Some(1_750_000_000),
        ..FakeTenantOptions::default()
    };
    let fake = serve_fake_tenant(o.clone()).await.unwrap();
    let sf = secret_file(&o.client_secret);
    let mut cfg = fake.sync_config(sf.path());
    cfg.windows.mde_page_size = 5;
    cfg.sources = SourcesConfig::none();
    only(&mut cfg.sources);
    (fake, sf, cfg)
}

fn quiet(_: SyncProgress) {}

fn times_of(fake: &FakeTenantHandle, needle: &str) -> Vec<(u16, Instant)> {
    fake.requests().into_iter().filter(|r| r.path.contains(needle)).map(|r| (r.status, r.at)).collect()
}

#[tokio::test]
async fn retry_after_seconds_is_honoured_and_timed() {
    let (fake, _sf, cfg) = setup(|s| s.devices = true).await;
    fake.add_fault(FaultRule::new(
        "/mde/api/machines",
        FaultKind::TooManyRequests(Some(RetryAfter::Seconds(1))),
        Some(1),
    ));
    let mut sink = MemorySink::default();
    let report = run_sync(&cfg, &mut sink, &quiet).await;
    assert!(report.is_ok(), "{:?}", report.errors());
    assert_eq!(sink.devices.len(), 12);
    let t = times_of(&fake, "/mde/api/machines");
    assert_eq!(t[0].0, 429);
    assert_eq!(t[1].0, 200);
    let waited = t[1].1 - t[0].1;
    // Backoff alone would be ≤ 50 ms here; the header says 1 s. Arrival times at the fake
    // server jitter by a few ms under load, hence the margin.
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    assert!(waited < Duration::from_millis(1_800), "{waited:?}");
    assert_eq!(report.api_stats[&shadowscope::sync::ApiKind::Mde].throttled, 1);
}

#[tokio::test]
async fn retry_after_http_date_is_honoured() {
    let (fake, _sf, cfg) = setup(|s| s.mdca_alerts = true).await;
    fake.add_fault(FaultRule::new(
        "/mdca/api/v1/alerts",
        FaultKind::TooManyRequests(Some(RetryAfter::HttpDate { secs_from_now: 2 })),
        Some(1),
    ));
    let mut sink = MemorySink::default();
    let report = run_sync(&cfg, &mut sink, &quiet).await;
    assert!(report.is_ok(), "{:?}", report.errors());
    let t = times_of(&fake, "/mdca/api/v1/alerts");
    let waited = t[1].1 - t[0].1;
    // HTTP dates have 1 s resolution: the wait lands in (1 s, 2 s].
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    assert!(waited <= Duration::from_millis(2_500), "{waited:?}");
    assert_eq!(sink.mdca_alerts.len(), 25);
}

#[tokio::test]
async fn risky_users_429_without_retry_after_backs_off_and_pacing_applies() {
    let (fake, _sf, mut cfg) = setup(|s| s.risky_users = true).await;
    cfg.pacing.risky_users_interval_ms = 100;
    fake.add_fault(FaultRule::new("riskyUsers", FaultKind::TooManyRequests(None), Some(2)));
    let mut sink = MemorySink::default();
    let t0 = Instant::now();
    let report = run_sync(&cfg, &mut sink, &quiet).await;
    assert!(report.is_ok(), "{:?}", report.errors());
    // 30 users → 3 risky → 2 pages; plus 2 throttled attempts = 4 calls ≥ 3 gaps of 100 ms.
    // The times are arrivals at the fake server: a request delivered a few ms late (both cores
    // busy with other tests) shortens the next gap by as much, so each gap gets a margin and
    // the whole span a smaller one. Unpaced, the gaps would be about a millisecond.
    let t = times_of(&fake, "riskyUsers");
    assert_eq!(t.len(), 4);
    for w in t.windows(2) {
        assert!(w[1].1 - w[0].1 >= Duration::from_millis(70), "{:?}", w[1].1 - w[0].1);
    }
    assert!(t[3].1 - t[0].1 >= Duration::from_millis(280), "{:?}", t[3].1 - t[0].1);
    assert!(t0.elapsed() >= Duration::from_millis(300));
    assert_eq!(sink.risky_users.len(), 3);
}

#[tokio::test]
async fn persistent_429_surfaces_as_throttled() {
    let (fake, _sf, cfg) = setup(|s| s.discovered_apps = true).await;
    fake.add_fault(FaultRule::new("uploadedStreams", FaultKind::TooManyRequests(None), None));
    let mut sink = MemorySink::default();
    let report = run_sync(&cfg, &mut sink, &quiet).await;
    let e = report.error_for(SourceKind::DiscoveredApps).unwrap();
    assert!(matches!(e, SyncError::Throttled { attempts: 4, .. }), "{e:?}");
    assert!(e.to_string().contains("resumes from its watermark"));
}

#[tokio::test]
async fn expired_token_is_refreshed_once_and_the_call_succeeds() {
    let (fake, _sf, cfg) = setup(|s| s.devices = true).await;
    // The 2nd page's request revokes every token: that request answers 401.
    let mut cfg = cfg;
    cfg.windows.mde_page_size = 5;
    fake.add_fault(FaultRule::new("$skip=5", FaultKind::ExpireTokens, Some(1)));
    let mut sink = MemorySink::default();
    let report = run_sync(&cfg, &mut sink, &quiet).await;
    assert!(report.is_ok(), "{:?}", report.errors());
    assert_eq!(sink.devices.len(), 12);
    assert_eq!(fake.tokens_issued(), 2);
    let statuses: Vec<u16> = times_of(&fake, "/mde/api/machines").iter().map(|t| t.0).collect();
    assert_eq!(statuses, vec![200, 401, 200, 200]);
}

#[tokio::test]
async fn second_401_fails_after_exactly_one_refresh() {
    let (fake, _sf, cfg) = setup(|s| s.devices = true).await;
    fake.add_fault(FaultRule::new("/mde/", FaultKind::Unauthorized, None));
    let mut sink = MemorySink::default();
    let report = run_sync(&cfg, &mut sink, &quiet).await;
    let e = report.error_for(SourceKind::Devices).unwrap();
    assert!(matches!(e, SyncError::Unauthorized { .. }), "{e:?}");
    assert!(e.to_string().contains("admin consent"));
    assert_eq!(times_of(&fake, "/mde/").len(), 2);
    assert_eq!(fake.tokens_issued(), 2);
}

#[tokio::test]
async fn forbidden_names_the_permission_and_stops_only_that_source() {
    let (fake, _sf, cfg) = setup(|s| {
        s.devices = true;
        s.hunting_traffic = true;
        s.risky_users = true;
    })
    .await;
    fake.add_fault(FaultRule::new("runHuntingQuery", FaultKind::Forbidden, None));
    let mut sink = MemorySink::default();
    let report = run_sync(&cfg, &mut sink, &quiet).await;
    let e = report.error_for(SourceKind::HuntingTraffic).unwrap();
    let msg = e.to_string();
    assert!(msg.contains("ThreatHunting.Read.All"), "{msg}");
    assert!(msg.contains("grant admin consent"), "{msg}");
    // Not retried.
    assert_eq!(times_of(&fake, "runHuntingQuery").len(), 1);
    // The other sources ran.
    assert_eq!(report.rows(SourceKind::Devices), 12);
    assert_eq!(report.rows(SourceKind::RiskyUsers), 3);
    assert_eq!(report.errors().len(), 1);

    // Each source names its own permission.
    fake.clear_faults();
    fake.add_fault(FaultRule::new("/mde/", FaultKind::Forbidden, None));
    let report = run_sync(&cfg, &mut MemorySink::default(), &quiet).await;
    assert!(report.error_for(SourceKind::Devices).unwrap().to_string().contains("Machine.Read.All"));
}

#[tokio::test]
async fn server_errors_are_retried_then_surfaced() {
    let (fake, _sf, cfg) = setup(|s| s.log_analytics_traffic = true).await;
    fake.add_fault(FaultRule::new("/la/", FaultKind::ServerError(503), Some(2)));
    let mut sink = MemorySink::default();
    let report = run_sync(&cfg, &mut sink, &quiet).await;
    assert!(report.is_ok(), "{:?}", report.errors());
    assert!(!sink.traffic.is_empty());
    let statuses: Vec<u16> = times_of(&fake, "/la/").iter().map(|t| t.0).collect();
    assert_eq!(&statuses[..3], &[503, 503, 200]);

    fake.clear_faults();
    fake.clear_requests();
    fake.add_fault(FaultRule::new("/la/", FaultKind::ServerError(500), None));
    let mut sink = MemorySink::default();
    sink.watermarks.clear();
    let report = run_sync(&cfg, &mut sink, &quiet).await;
    let e = report.error_for(SourceKind::LogAnalyticsTraffic).unwrap();
    assert!(matches!(e, SyncError::Server { status: 500, attempts: 4, .. }), "{e:?}");
    // 1 try + max_retries (3).
    assert_eq!(times_of(&fake, "/la/").len(), 4);
}

#[tokio::test]
async fn slow_answer_times_out_and_is_retried() {
    let (fake, _sf, mut cfg) = setup(|s| s.devices = true).await;
    cfg.pacing.request_timeout_secs = 1;
    fake.add_fault(FaultRule::new("/mde/api/machines", FaultKind::Slow(Duration::from_millis(1_500)), Some(1)));
    let mut sink = MemorySink::default();
    let report = run_sync(&cfg, &mut sink, &quiet).await;
    assert!(report.is_ok(), "{:?}", report.errors());
    assert_eq!(sink.devices.len(), 12);
    // A slow answer within the timeout is simply waited for.
    fake.add_fault(FaultRule::new("/mde/api/machines", FaultKind::Slow(Duration::from_millis(200)), Some(1)));
    let report = run_sync(&cfg, &mut MemorySink::default(), &quiet).await;
    assert!(report.is_ok());
    assert_eq!(report.api_stats[&shadowscope::sync::ApiKind::Mde].retries, 0);
}

#[tokio::test]
async fn wrong_secret_is_a_token_error_and_every_source_reports_it() {
    let (_fake, _sf, mut cfg) = setup(|s| {
        s.devices = true;
        s.risky_users = true;
    })
    .await;
    let wrong = secret_file("not-the-secret");
    cfg.secret_file = Some(wrong.path().to_path_buf());
    let report = run_sync(&cfg, &mut MemorySink::default(), &quiet).await;
    assert_eq!(report.errors().len(), 2);
    for e in report.errors() {
        let m = e.to_string();
        assert!(m.contains("AADSTS7000215") && m.contains("client secret"), "{m}");
        assert!(!m.contains("not-the-secret"));
    }
}

#[tokio::test]
async fn token_endpoint_throttling_is_not_fatal_to_the_config() {
    // Unknown tenant → clear token error naming the endpoint.
    let (_fake, _sf, mut cfg) = setup(|s| s.devices = true).await;
    cfg.tenant = "other-tenant".into();
    let report = run_sync(&cfg, &mut MemorySink::default(), &quiet).await;
    let m = report.error_for(SourceKind::Devices).unwrap().to_string();
    assert!(m.contains("other-tenant/oauth2/v2.0/token") && m.contains("AADSTS90002"), "{m}");
}
