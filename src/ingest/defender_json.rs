//! Microsoft Defender XDR streaming API (Event Hub / storage) JSON lines (`defender-json`):
//! `{"time":..,"category":"AdvancedHunting-<Table>","properties":{..}}`, one per line, or an
//! Event Hub batch `{"records":[..]}` on one line.
//!
//! Zone rule: `Timestamp` (else the envelope `time`) is ISO 8601 with `Z`; 0-7 fraction digits.
//! Tables: DeviceNetworkEvents and CloudAppEvents → Traffic; DeviceLogonEvents and
//! IdentityLogonEvents (successful only) → Logon; DeviceInfo → one Logon per `LoggedOnUsers`
//! entry; everything else is counted as irrelevant.
use std::borrow::Cow;
use std::io::{self, BufRead};

use serde_json::{Map, Value};

use super::util_b::{self, DefenderRow, Fields, account};
use super::{Line, LogFormat, Parser, Record, RecordKind, RecordSink, SkipReason, for_each_line};

pub static FORMATS: &[&dyn LogFormat] = &[&DefenderJson];

pub struct DefenderJson;

impl LogFormat for DefenderJson {
    fn name(&self) -> &'static str {
        "defender-json"
    }
    fn description(&self) -> &'static str {
        "Microsoft Defender XDR streaming API JSON (category AdvancedHunting-<Table>)"
    }
    fn sniff(&self, lines: &[&str]) -> u8 {
        let Some(first) = lines.first() else { return 0 };
        let t = first.trim_start();
        if t.starts_with('{') && t.contains("\"AdvancedHunting-") && t.contains("\"properties\"") { 95 } else { 0 }
    }
    fn parser(&self) -> Box<dyn Parser> {
        Box::new(JsonParser)
    }
}

struct JsonParser;

impl Parser for JsonParser {
    fn parse(&mut self, input: &mut dyn BufRead, sink: &mut dyn RecordSink) -> io::Result<()> {
        for_each_line(input, |pos, line| match line {
            Line::Text(text) => match serde_json::from_str::<Value>(text) {
                Ok(v) => {
                    let batch: Vec<&Value> = match v.get("records") {
                        Some(Value::Array(items)) => items.iter().collect(),
                        _ => vec![&v],
                    };
                    if batch.is_empty() {
                        sink.skip(pos, SkipReason::Irrelevant("empty batch"), text.as_bytes());
                    }
                    for ev in batch {
                        match event(ev) {
                            DefenderRow::Records(recs) => recs.into_iter().for_each(|r| sink.record(pos, r)),
                            DefenderRow::Skip(reason) => sink.skip(pos, reason, text.as_bytes()),
                        }
                    }
                }
                Err(_) => sink.skip(pos, SkipReason::Malformed("not json"), text.as_bytes()),
            },
            Line::TooLong(prefix) => sink.skip(pos, SkipReason::TooLong, prefix),
            Line::NotUtf8(raw) => sink.skip(pos, SkipReason::NotUtf8, raw),
        })
    }
}

/// Maps one streaming event (envelope with `category` and `properties`).
pub fn event(ev: &Value) -> DefenderRow {
    let Some(table) = ev.get("category").and_then(Value::as_str).and_then(|c| c.strip_prefix("AdvancedHunting-"))
    else {
        return DefenderRow::Skip(SkipReason::Malformed("no AdvancedHunting category"));
    };
    let Some(Value::Object(props)) = ev.get("properties") else {
        return DefenderRow::Skip(SkipReason::Malformed("no properties object"));
    };
    let ts = props
        .get("Timestamp")
        .and_then(Value::as_str)
        .and_then(util_b::parse_iso)
        .or_else(|| ev.get("time").and_then(Value::as_str).and_then(util_b::parse_iso));
    let Some(ts) = ts else {
        return DefenderRow::Skip(SkipReason::BadTimestamp);
    };
    match table {
        "DeviceNetworkEvents" => util_b::defender_network(props, ts),
        "DeviceLogonEvents" | "IdentityLogonEvents" => util_b::defender_logon(props, ts),
        "DeviceInfo" => device_info(props, ts),
        "CloudAppEvents" => cloud_app(props, ts),
        _ => DefenderRow::Skip(SkipReason::Irrelevant("table without discovery data")),
    }
}

fn owned(c: Option<Cow<'_, str>>) -> Option<Cow<'static, str>> {
    c.map(|v| Cow::Owned(v.into_owned()))
}

/// `LoggedOnUsers` is a JSON-encoded array of `{"UserName","DomainName","Sid"}`.
fn device_info(props: &Map<String, Value>, ts: i64) -> DefenderRow {
    let Some(device) = owned(Fields::get(props, "DeviceName")) else {
        return DefenderRow::Skip(SkipReason::Irrelevant("device info without logged-on users"));
    };
    let users: Vec<Value> = match props.get("LoggedOnUsers") {
        Some(Value::Array(a)) => a.clone(),
        Some(Value::String(s)) => serde_json::from_str::<Vec<Value>>(s).unwrap_or_default(),
        _ => Vec::new(),
    };
    let recs: Vec<Record<'static>> = users
        .iter()
        .filter_map(|u| {
            let m = u.as_object()?;
            account(None, m.get("DomainName").and_then(util_b::json_str), m.get("UserName").and_then(util_b::json_str))
        })
        .map(|user| Record {
            kind: RecordKind::Logon,
            ts,
            user: Some(user),
            device: Some(device.clone()),
            ..Default::default()
        })
        .collect();
    if recs.is_empty() {
        DefenderRow::Skip(SkipReason::Irrelevant("device info without logged-on users"))
    } else {
        DefenderRow::Records(recs)
    }
}

/// CloudAppEvents: the application itself is the destination; the user is the UPN-looking
/// account field when there is one.
fn cloud_app(props: &Map<String, Value>, ts: i64) -> DefenderRow {
    let Some(app) = owned(Fields::get(props, "Application")) else {
        return DefenderRow::Skip(SkipReason::Irrelevant("cloud app event without application"));
    };
    let keys = ["AccountUpn", "AccountId", "AccountDisplayName", "AccountObjectId"];
    let user = keys
        .iter()
        .filter_map(|k| Fields::get(props, k))
        .find(|v| v.contains('@'))
        .or_else(|| Fields::get(props, "AccountDisplayName"))
        .or_else(|| Fields::get(props, "AccountObjectId"))
        .or_else(|| Fields::get(props, "AccountId"));
    DefenderRow::Records(vec![Record {
        kind: RecordKind::Traffic,
        ts,
        user: owned(user),
        src_ip: owned(Fields::get(props, "IPAddress")),
        vendor_app: Some(app),
        ..Default::default()
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{Action, CollectSink, parse_all, registry};

    const DEVICE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/elastic-integrations/m365_defender/test-device.extract-a.ndjson"
    );
    const IDENTITY: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/elastic-integrations/m365_defender/test-app-and-identity.log"
    );

    fn reasons(out: &CollectSink) -> Vec<(u64, SkipReason)> {
        out.skips.iter().map(|(p, r, _)| (p.line, r.clone())).collect()
    }

    #[test]
    fn device_sample() {
        let out = parse_all(&DefenderJson, &std::fs::read(DEVICE).unwrap()).unwrap();
        assert_eq!(out.records.len(), 5);
        assert_eq!(
            reasons(&out),
            vec![
                (2, SkipReason::Irrelevant("logon not successful")),
                (4, SkipReason::Irrelevant("table without discovery data"))
            ]
        );
        // DeviceInfo: two logged-on users → two Logon edges on the same line.
        let logons: Vec<_> = out.records.iter().filter(|(_, r)| r.kind == RecordKind::Logon).collect();
        assert_eq!(logons.len(), 2);
        assert!(logons.iter().all(|(p, r)| p.line == 1 && r.device.as_deref() == Some("testmachine6")));
        assert_eq!(logons[1].1.user.as_deref(), Some("administrator2"));
        assert_eq!(logons[0].1.ts, 1_667_886_985); // 2022-11-08T05:56:25.88Z
        let r = &out.records[2].1;
        assert_eq!(
            (r.ts, r.dest_ip.as_deref(), r.dest_port, r.dest_host.as_deref()),
            (1_668_015_808, Some("81.2.69.142"), Some(50094), None)
        );
        let r = &out.records[3].1;
        assert_eq!(r.ts, 1_689_769_062);
        assert_eq!(
            (r.dest_host.as_deref(), r.dest_ip.as_deref(), r.dest_port),
            (Some("subdomain.domain.tld"), Some("175.16.199.0"), Some(80))
        );
        assert_eq!(
            (r.user.as_deref(), r.device.as_deref()),
            (Some("email@domain"), Some("janeslaptop1.corporatedomain"))
        );
        assert_eq!((r.src_ip.as_deref(), r.action), (Some("89.160.20.112"), Action::Blocked));
        let r = &out.records[4].1;
        assert_eq!((r.dest_ip.as_deref(), r.dest_port, r.user.as_deref()), (Some("175.16.199.0"), Some(53), None));
    }

    #[test]
    fn identity_and_cloud_app_sample() {
        let out = parse_all(&DefenderJson, &std::fs::read(IDENTITY).unwrap()).unwrap();
        assert_eq!(out.records.len(), 2);
        let irrelevant = SkipReason::Irrelevant("table without discovery data");
        assert_eq!(reasons(&out), [2, 3, 5, 6, 7, 8].iter().map(|l| (*l, irrelevant.clone())).collect::<Vec<_>>());
        let r = &out.records[0].1;
        assert_eq!(r.kind, RecordKind::Logon);
        assert_eq!(r.ts, 1_669_097_977);
        assert_eq!((r.user.as_deref(), r.device.as_deref()), (Some("administrator1"), Some("testmachine5")));
        assert_eq!((r.src_ip.as_deref(), r.vendor_app.as_deref()), (Some("89.160.20.112"), Some("Office 365")));
        let r = &out.records[1].1;
        assert_eq!(r.kind, RecordKind::Traffic);
        assert_eq!(r.ts, 1_670_503_725); // 2022-12-08T12:48:45.833Z
        assert_eq!(
            (r.vendor_app.as_deref(), r.src_ip.as_deref(), r.user.as_deref()),
            (Some("Microsoft Azure"), Some("81.2.69.142"), Some("name"))
        );
    }

    #[test]
    fn additional_fields_host_as_object_or_string() {
        let obj = r#"{"time":"2024-01-01T00:00:01Z","category":"AdvancedHunting-DeviceNetworkEvents","properties":{"Timestamp":"2024-01-01T00:00:00.1234567Z","ActionType":"HttpConnectionInspected","RemoteIP":"142.250.74.35","RemotePort":80,"RemoteUrl":null,"DeviceName":"pc1","AdditionalFields":{"direction":"Out","host":"www.gstatic.com","method":"GET"}}}"#;
        let string = r#"{"records":[{"time":"2024-01-01T00:00:01Z","category":"AdvancedHunting-DeviceNetworkEvents","properties":{"Timestamp":"2024-01-01T00:00:00Z","ActionType":"SslConnectionInspected","RemoteIP":"::ffff:142.250.74.36","RemotePort":"443","DeviceName":"pc1","AdditionalFields":"{\"direction\":\"Out\",\"server_name\":\"fonts.gstatic.com\"}"}},{"category":"AdvancedHunting-DeviceNetworkEvents","properties":{"Timestamp":"2024-01-01T00:00:02Z","ActionType":"InboundConnectionAccepted","RemoteIP":"1.2.3.4"}}]}"#;
        let data = format!("{obj}\n{string}\nnot json\n");
        let out = parse_all(&DefenderJson, data.as_bytes()).unwrap();
        assert_eq!(out.records.len(), 2);
        assert_eq!(out.records[0].1.dest_host.as_deref(), Some("www.gstatic.com"));
        assert_eq!(out.records[0].1.ts, 1_704_067_200);
        assert_eq!(out.records[1].1.dest_host.as_deref(), Some("fonts.gstatic.com"));
        assert_eq!(
            (out.records[1].1.dest_ip.as_deref(), out.records[1].1.dest_port),
            (Some("142.250.74.36"), Some(443))
        );
        assert_eq!(
            reasons(&out),
            vec![(2, SkipReason::Irrelevant("inbound connection")), (3, SkipReason::Malformed("not json"))]
        );
    }

    #[test]
    fn samples_are_detected() {
        for path in [DEVICE, IDENTITY] {
            let text = std::fs::read_to_string(path).unwrap();
            let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).take(10).collect();
            assert_eq!(registry::detect(&lines).map(|f| f.name()), Some("defender-json"), "{path}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
                        table in "(DeviceNetworkEvents|DeviceInfo|CloudAppEvents|DeviceLogonEvents|X)",
                        v in "[ -~]{0,40}") {
            let _ = parse_all(&DefenderJson, &data);
            let line = format!(r#"{{"category":"AdvancedHunting-{table}","properties":{{"Timestamp":"{v}","RemoteUrl":"{v}","RemoteIP":"{v}","LoggedOnUsers":"{v}","AdditionalFields":"{v}","Application":"x"}}}}"#);
            let _ = parse_all(&DefenderJson, line.as_bytes());
        }
    }
}
