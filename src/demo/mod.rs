//! The built-in demo organisation: a deterministic synthetic tenant with a realistic shape
//! (power-law app popularity, departments, laptops / phones / kiosks) and three planted stories
//! an analyst can find:
//! 1. a high-risk user uploading gigabytes to an unsanctioned file-sharing app from two devices;
//! 2. a shared kiosk used by many users;
//! 3. a sudden spike of a generative-AI app nobody used before.
use crate::actions::apply::{Actor, AlertRun, TagContext, evaluate_alerts, tag_app_tx};
use crate::catalog::{AppIdx, Catalog, Category};
use crate::domain::{AppId, Day, DeviceId, DomainId, IdentityRisk, Tag, UserId};
use crate::store::write::{Counters, EdgeKey, FactBatch, FactKey};
use crate::store::{Result, Store};
use rusqlite::params;

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub users: u32,
    pub days: u32,
    pub seed: u64,
    /// Last day of generated traffic. Fixed by default so the demo is reproducible.
    pub end: Day,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions { users: 500, days: 60, seed: 7, end: Day(20_416) } // 2025-11-24
    }
}

/// What the generator planted, so tests and the README can point at it.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoSummary {
    pub users: u32,
    pub devices: u32,
    pub apps: u32,
    pub facts: u64,
    pub exfil_user: String,
    pub exfil_app: String,
    pub exfil_devices: [String; 2],
    pub kiosk: String,
    pub kiosk_users: u32,
    pub genai_app: String,
    pub genai_first_day: Day,
    /// Alerts the built-in policies raised on the generated data.
    pub alerts: AlertRun,
}

/// SplitMix64: tiny, fast and deterministic across platforms.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    /// Zipf-like index in 0..n (exponent ~1.1): a few very popular items, a long tail.
    fn zipf(&mut self, n: usize) -> usize {
        let x = self.unit();
        let idx = ((n as f64 + 1.0).powf(x) - 1.0) as usize;
        idx.min(n.saturating_sub(1))
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const FIRST: &[&str] = &[
    "adele",
    "alex",
    "allan",
    "amir",
    "ana",
    "ben",
    "bianca",
    "carlos",
    "chen",
    "christie",
    "dana",
    "diego",
    "elif",
    "emma",
    "fatima",
    "felix",
    "grace",
    "hana",
    "henrietta",
    "isaiah",
    "ivan",
    "jana",
    "joni",
    "kenji",
    "lara",
    "lee",
    "lidia",
    "lynne",
    "megan",
    "miriam",
    "nestor",
    "nora",
    "omar",
    "patti",
    "pradeep",
    "quinn",
    "raj",
    "sara",
    "sofia",
    "tariq",
    "uma",
    "victor",
    "wei",
    "xena",
    "yara",
    "zoe",
];
const LAST: &[&str] = &[
    "adams",
    "bowen",
    "brown",
    "cho",
    "diaz",
    "evans",
    "fernandez",
    "garcia",
    "gupta",
    "hansen",
    "ito",
    "jones",
    "kim",
    "kowalski",
    "lopez",
    "martin",
    "muller",
    "nguyen",
    "okafor",
    "patel",
    "quist",
    "rossi",
    "sato",
    "schmidt",
    "silva",
    "smith",
    "tanaka",
    "vance",
    "wagner",
    "wilber",
    "yilmaz",
    "zhang",
];
const DEPTS: &[(&str, &str)] = &[
    ("Finance", "FIN"),
    ("Engineering", "ENG"),
    ("Sales", "SAL"),
    ("Marketing", "MKT"),
    ("HR", "HR"),
    ("Legal", "LEG"),
    ("Operations", "OPS"),
    ("Support", "SUP"),
];
const OS_LAPTOP: &[&str] = &["Windows 11", "Windows 11", "Windows 11", "Windows 10", "macOS 14", "Ubuntu 22.04"];
const OS_MOBILE: &[&str] = &["iOS 17", "Android 14"];
const UNKNOWN_DOMAINS: &[&str] = &[
    "filedrop-share.io",
    "quickpaste.cc",
    "anonfiles-mirror.net",
    "pdf-convert-free.com",
    "tinyupload.org",
    "ai-writer-pro.app",
    "sendbig-files.com",
    "cloudnote.xyz",
    "vpn-free-unblock.net",
    "imgshare.cc",
    "tempmail-box.org",
    "snipboard.io",
    "scan2pdf.online",
    "privatebin-host.net",
    "gofile-cdn.net",
];

/// Well-known apps most organisations see; used first so the demo looks familiar.
const CORE_APPS: &[&str] = &[
    "office365",
    "microsoft",
    "teams",
    "outlook",
    "onedrive",
    "google",
    "gmail",
    "slack",
    "zoom",
    "salesforce",
    "github",
    "dropbox",
    "box",
    "atlassian",
    "notion",
    "linkedin",
    "adobe",
    "zoho",
    "youtube",
    "facebook",
];

fn find_app(catalog: &Catalog, names: &[&str]) -> Option<AppIdx> {
    for n in names {
        if let Some(i) = catalog.find_by_id(n) {
            return Some(i);
        }
        let lower = n.to_ascii_lowercase();
        if let Some(i) = catalog.apps().iter().position(|a| a.name.to_ascii_lowercase() == lower) {
            return Some(AppIdx(i as u32));
        }
    }
    None
}

fn first_in_category(catalog: &Catalog, cat: Category, not: &[AppIdx]) -> Option<AppIdx> {
    catalog
        .apps()
        .iter()
        .enumerate()
        .find(|(i, a)| a.category == cat && !a.domains.is_empty() && !not.contains(&AppIdx(*i as u32)))
        .map(|(i, _)| AppIdx(i as u32))
}

struct DemoApp {
    id: AppId,
    domains: Vec<DomainId>,
    upload_heavy: bool,
}

struct DemoUser {
    id: UserId,
    devices: Vec<DeviceId>,
    apps: Vec<usize>,
}

/// Generates the demo organisation into an empty cache.
pub fn generate(store: &Store, catalog: &Catalog, opts: &DemoOptions) -> Result<DemoSummary> {
    let mut rng = Rng(opts.seed ^ 0x005E_ED0F_D3A0);
    let n_users = opts.users.max(10);
    let days = opts.days.max(14);
    let first_day = Day(opts.end.0 - days as i32 + 1);
    let ts_of = |d: Day| d.start_unix() + 9 * 3600;

    store.begin()?;

    // Apps: the familiar core first, then a power-law sample of the rest of the catalog.
    let mut chosen: Vec<AppIdx> = CORE_APPS.iter().filter_map(|n| find_app(catalog, &[n])).collect();
    let mut rest: Vec<AppIdx> = (0..catalog.apps().len() as u32)
        .map(AppIdx)
        .filter(|i| !chosen.contains(i) && !catalog.get(*i).domains.is_empty())
        .collect();
    // Deterministic shuffle (Fisher–Yates).
    for i in (1..rest.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        rest.swap(i, j);
    }
    let exfil_idx = find_app(catalog, &["mega", "MEGA", "wetransfer", "WeTransfer"])
        .or_else(|| first_in_category(catalog, Category::CloudStorage, &chosen));
    let genai_idx = find_app(catalog, &["deepseek", "DeepSeek"])
        .or_else(|| first_in_category(catalog, Category::GenerativeAi, &chosen));
    rest.retain(|i| Some(*i) != exfil_idx && Some(*i) != genai_idx);
    chosen.extend(rest.into_iter().take(280));
    let mut apps: Vec<DemoApp> = Vec::new();
    let mut add_app = |idx: AppIdx| -> Result<usize> {
        let app = catalog.get(idx);
        let id = store.ensure_catalog_app(app)?;
        let mut domains = Vec::new();
        for d in app.domains.iter().filter(|d| !d.contains(['*', '/', ' '])).take(3) {
            domains.push(store.insert_domain(d, id)?);
        }
        if domains.is_empty() {
            domains.push(store.insert_domain(&format!("{}.example", app.id), id)?);
        }
        apps.push(DemoApp {
            id,
            domains,
            upload_heavy: matches!(app.category, Category::CloudStorage | Category::GenerativeAi),
        });
        Ok(apps.len() - 1)
    };
    for idx in &chosen {
        add_app(*idx)?;
    }
    let exfil = exfil_idx.map(&mut add_app).transpose()?;
    let genai = genai_idx.map(&mut add_app).transpose()?;
    let n_regular_apps = chosen.len();
    // Unknown domains go through the catalog like imported traffic would.
    let mut unknown_apps = Vec::new();
    for d in UNKNOWN_DOMAINS {
        let (domain, app) = store.intern_host(d, catalog)?;
        apps.push(DemoApp { id: app, domains: vec![domain], upload_heavy: d.contains("file") || d.contains("upload") });
        unknown_apps.push(apps.len() - 1);
    }

    // Users and their devices.
    let mut users: Vec<DemoUser> = Vec::with_capacity(n_users as usize);
    let mut device_count = 0u32;
    let mut new_device = |name: &str, os: &str, group: &str| -> Result<DeviceId> {
        device_count += 1;
        let id = store.intern_device(name)?;
        store.conn.execute(
            "UPDATE devices SET os = ?2, device_group = ?3, exposure = ?4 WHERE id = ?1",
            params![id.0, os, group, ["Low", "Low", "Medium", "High"][(id.0 % 4) as usize]],
        )?;
        Ok(id)
    };
    for n in 0..n_users {
        let first = FIRST[(n as usize) % FIRST.len()];
        let last = LAST[(n as usize / FIRST.len() + n as usize * 7) % LAST.len()];
        let upn = if n < (FIRST.len() * LAST.len()) as u32 {
            format!("{first}.{last}@contoso.com")
        } else {
            format!("{first}.{last}{n}@contoso.com")
        };
        let (dept, code) = DEPTS[rng.zipf(DEPTS.len())];
        let id = store.intern_user(&upn)?;
        store.conn.execute(
            "UPDATE users SET display_name = ?2, department = ?3 WHERE id = ?1",
            params![id.0, format!("{} {}", capitalise(first), capitalise(last)), dept],
        )?;
        let risk = match rng.below(100) {
            0..=1 => IdentityRisk::High,
            2..=5 => IdentityRisk::Medium,
            6..=14 => IdentityRisk::Low,
            _ => IdentityRisk::None,
        };
        if risk != IdentityRisk::None {
            store.set_identity_risk(id, risk, "atRisk", "unfamiliarFeatures", ts_of(opts.end))?;
        }
        let mut devices = vec![new_device(&format!("LT-{code}-{:05}", n + 1), rng.pick::<&str>(OS_LAPTOP), dept)?];
        if rng.chance(0.33) {
            devices.push(new_device(&format!("MB-{code}-{:05}", n + 1), rng.pick::<&str>(OS_MOBILE), dept)?);
        }
        let mut set: Vec<usize> = (0..5.min(n_regular_apps)).collect();
        for _ in 0..(5 + rng.below(10)) {
            let a = rng.zipf(n_regular_apps);
            if !set.contains(&a) {
                set.push(a);
            }
        }
        if rng.chance(0.15) && !unknown_apps.is_empty() {
            set.push(*rng.pick(&unknown_apps));
        }
        users.push(DemoUser { id, devices, apps: set });
    }

    // Story 2: shared kiosk devices; the lobby kiosk is used by many.
    let kiosk_name = "KIOSK-LOBBY-01";
    let kiosk = new_device(kiosk_name, "Windows 11 IoT", "Kiosks")?;
    let kiosk_users = (n_users / 12).clamp(8, 60);
    for k in 1..=(n_users / 150).max(1) {
        new_device(&format!("KIOSK-FLOOR-{k:02}"), "Windows 11 IoT", "Kiosks")?;
    }

    // Story 1: a high-risk user with a personal second device.
    let exfil_user_n = (7 % n_users) as usize;
    let exfil_user = users[exfil_user_n].id;
    store.set_identity_risk(exfil_user, IdentityRisk::High, "atRisk", "leakedCredentials", ts_of(opts.end))?;
    let second = new_device(&format!("PC-HOME-{:04}", exfil_user_n + 1), "Windows 10", "Unmanaged")?;
    users[exfil_user_n].devices.truncate(1);
    users[exfil_user_n].devices.push(second);

    let mut batch = FactBatch::default();
    let mut facts = 0u64;
    let genai_start = Day(opts.end.0 - 4);
    for d in 0..days {
        let day = Day(first_day.0 + d as i32);
        let weekday = (day.0 + 4).rem_euclid(7); // 0 = Sunday
        let activity = if weekday == 0 || weekday == 6 { 0.12 } else { 0.62 };
        let ts = ts_of(day);
        for (un, user) in users.iter().enumerate() {
            if !rng.chance(activity) {
                continue;
            }
            let on_kiosk = un < kiosk_users as usize * 3 && un % 3 == 0 && rng.chance(0.25);
            for v in 0..3 {
                let app_n = if v == 0 {
                    user.apps[rng.below(user.apps.len().min(5) as u64) as usize]
                } else {
                    *rng.pick(&user.apps)
                };
                let app = &apps[app_n];
                let device = if on_kiosk && v == 0 {
                    kiosk
                } else if user.devices.len() > 1 && rng.chance(0.3) {
                    user.devices[1]
                } else {
                    user.devices[0]
                };
                let tx = 10 + rng.below(200);
                let down = tx * (20_000 + rng.below(80_000));
                let up = if app.upload_heavy { down / 3 } else { down / 12 };
                let domain = *rng.pick(&app.domains);
                let key = FactKey { day, app: app.id, domain, user: user.id, device };
                batch.add_fact(key, &Counters { bytes_up: up, bytes_down: down, transactions: tx, blocked: 0 });
                batch.add_edge(EdgeKey { user: user.id, device, source: "mde-logon" }, ts, 1);
                facts += 1;
            }
            // Story 3: the new gen-AI app spreads fast in the last five days.
            if let Some(g) = genai.filter(|_| day >= genai_start && un % 10 < 3 + (day.0 - genai_start.0) as usize) {
                let app = &apps[g];
                let tx = 5 + rng.below(60);
                let down = tx * 30_000;
                let key = FactKey { day, app: app.id, domain: app.domains[0], user: user.id, device: user.devices[0] };
                batch.add_fact(key, &Counters { bytes_up: down / 2, bytes_down: down, transactions: tx, blocked: 0 });
                facts += 1;
            }
        }
        // Story 1: a few megabytes a day to the unsanctioned file-sharing app for months (the
        // baseline), then gigabytes a day from both devices in the last four days.
        let spike = day.0 > opts.end.0 - 4;
        if let Some(x) = exfil.filter(|_| spike || (day.0 > opts.end.0 - 45 && d % 3 == 0)) {
            let app = &apps[x];
            let u = &users[exfil_user_n];
            for (i, device) in u.devices.iter().enumerate() {
                let up = if spike {
                    900_000_000 + rng.below(2_500_000_000) / (i as u64 + 1)
                } else {
                    2_000_000 + rng.below(18_000_000)
                };
                let key = FactKey { day, app: app.id, domain: app.domains[0], user: u.id, device: *device };
                batch.add_fact(
                    key,
                    &Counters { bytes_up: up, bytes_down: up / 40, transactions: 40 + rng.below(200), blocked: 0 },
                );
                batch.add_edge(EdgeKey { user: u.id, device: *device, source: "mde-logon" }, ts, 1);
                facts += 1;
            }
        }
        // The risky user also logs on at the lobby kiosk now and then: the pivot to its crowd.
        if d % 5 == 2 {
            let u = &users[exfil_user_n];
            let app = &apps[u.apps[0]];
            let key = FactKey { day, app: app.id, domain: app.domains[0], user: u.id, device: kiosk };
            batch.add_fact(key, &Counters { bytes_up: 150_000, bytes_down: 2_000_000, transactions: 20, blocked: 0 });
            batch.add_edge(EdgeKey { user: u.id, device: kiosk, source: "mde-logon" }, ts, 1);
            facts += 1;
        }
        // Story 2: the lobby kiosk sees a different crowd every day.
        for k in 0..kiosk_users as usize {
            if !rng.chance(0.2) {
                continue;
            }
            let user = &users[(k * 11 + 3) % users.len()];
            let app = &apps[user.apps[0]];
            let key = FactKey { day, app: app.id, domain: app.domains[0], user: user.id, device: kiosk };
            batch.add_fact(key, &Counters { bytes_up: 200_000, bytes_down: 3_000_000, transactions: 30, blocked: 0 });
            batch.add_edge(EdgeKey { user: user.id, device: kiosk, source: "mde-logon" }, ts, 1);
            facts += 1;
        }
        if d % 10 == 9 || d + 1 == days {
            store.apply_batch(&batch)?;
            batch = FactBatch::default();
        }
    }

    // Tags an organisation would already have set, through the same path as an analyst's so
    // the outbox holds the indicators they imply.
    let groups = store.device_groups()?;
    let tag_ctx = TagContext {
        catalog,
        profile: None,
        groups: &groups,
        severity: store.global_severity()?,
        reason: "demo baseline",
        actor: Actor { name: "demo", now: ts_of(first_day) },
    };
    let tag = |names: &[&str], t: Tag| -> Result<()> {
        for n in names {
            if let Some(idx) = find_app(catalog, &[n]) {
                let id = store.ensure_catalog_app(catalog.get(idx))?;
                tag_app_tx(store, &tag_ctx, id, t)?;
            }
        }
        Ok(())
    };
    tag(&["office365", "microsoft", "teams", "onedrive", "box", "slack", "salesforce", "github"], Tag::Sanctioned)?;
    tag(&["chatgpt", "openai", "dropbox"], Tag::Monitored)?;
    if let Some(x) = exfil {
        tag_app_tx(store, &tag_ctx, apps[x].id, Tag::Unsanctioned)?;
    }
    store.set_meta("demo.seed", &opts.seed.to_string())?;
    store.commit()?;
    store.refresh_summaries()?;
    let alerts = evaluate_alerts(store, None)?;

    let name_of = |table: &str, id: i64| -> Result<String> {
        let col = if table == "users" { "upn" } else { "name" };
        Ok(store.conn.query_row(&format!("SELECT {col} FROM {table} WHERE id = ?1"), [id], |r| r.get(0))?)
    };
    let exfil_devices = &users[exfil_user_n].devices;
    Ok(DemoSummary {
        users: n_users,
        devices: device_count,
        apps: apps.len() as u32,
        facts,
        exfil_user: name_of("users", exfil_user.0)?,
        exfil_app: exfil.map(|x| name_of("apps", apps[x].id.0)).transpose()?.unwrap_or_default(),
        exfil_devices: [name_of("devices", exfil_devices[0].0)?, name_of("devices", exfil_devices[1].0)?],
        kiosk: kiosk_name.into(),
        kiosk_users,
        genai_app: genai.map(|g| name_of("apps", apps[g].id.0)).transpose()?.unwrap_or_default(),
        genai_first_day: genai_start,
        alerts,
    })
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> (Store, DemoSummary) {
        let store = Store::open_in_memory().unwrap();
        let opts = DemoOptions { users: 60, days: 20, ..Default::default() };
        let s = generate(&store, Catalog::builtin(), &opts).unwrap();
        (store, s)
    }

    #[test]
    fn demo_is_deterministic() {
        let (a, sa) = small();
        let (b, sb) = small();
        assert_eq!(sa, sb);
        assert_eq!(a.counts().unwrap(), b.counts().unwrap());
        let ua: Vec<_> = a.users().unwrap().into_iter().map(|u| (u.upn, u.score, u.bytes_up)).collect();
        let ub: Vec<_> = b.users().unwrap().into_iter().map(|u| (u.upn, u.score, u.bytes_up)).collect();
        assert_eq!(ua, ub);
    }

    #[test]
    fn planted_stories_are_findable() {
        let (store, s) = small();
        // Story 1: the exfiltrating user tops the risk ranking and used two devices.
        let mut users = store.users().unwrap();
        users.sort_by(|a, b| b.score.cmp(&a.score).then(b.unsanctioned_up.cmp(&a.unsanctioned_up)));
        assert_eq!(users[0].upn, s.exfil_user);
        assert_eq!(users[0].identity_risk, IdentityRisk::High);
        assert!(users[0].unsanctioned_up > 5_000_000_000, "{}", users[0].unsanctioned_up);
        let devs = store.devices_of_user(users[0].id).unwrap();
        let names: Vec<_> = devs.iter().map(|d| d.device_name.clone()).collect();
        for d in &s.exfil_devices {
            assert!(names.contains(d), "{names:?} lacks {d}");
        }
        let exfil = store.app_by_key_or_name(&s.exfil_app).unwrap().unwrap();
        assert_eq!(store.app_tag(exfil).unwrap(), Tag::Unsanctioned);
        // Story 2: the kiosk has many users.
        let kiosk = store.device_by_name(&s.kiosk).unwrap().unwrap();
        assert!(store.users_of_device(kiosk).unwrap().len() >= 8);
        // Story 3: the gen-AI app appears only in the last five days.
        let g = store.app_by_key_or_name(&s.genai_app).unwrap().unwrap();
        let trend = store.app_trend(g).unwrap();
        assert_eq!(trend.first().unwrap().day, s.genai_first_day);
        assert!(store.users_of_app(g).unwrap().rows.len() >= 10);
    }
}
