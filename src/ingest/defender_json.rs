//! Microsoft Defender XDR streaming API (Event Hub / storage) JSON lines (`defender-json`):
//! `{"time":..,"category":"AdvancedHunting-<Table>","properties":{..}}`, one per line, or an
//! Event Hub batch `{"records":[..]}` on one line.
//!
//! Zone rule: `Timestamp` (else the envelope `time`) is ISO 8601 with `Z`; 0-7 fraction digits.
//! Tables: DeviceNetworkEvents and CloudAppEvents → Traffic; DeviceLogonEvents and
//! IdentityLogonEvents (successful only) → Logon; DeviceInfo → one Logon per `LoggedOnUsers`
//! entry; everything else is counted as irrelevant.
use crate::json_visit::scalars_are_empty;
use std::borrow::Cow;
use std::fmt;
use std::io::{self, BufRead};

use serde::Deserializer;
use serde::de::{Deserialize, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::util_b::{self, DefenderRow, Fields, account, clean};
use super::{
    Chunk, ChunkParser, Line, LogFormat, Parser, Position, Record, RecordKind, RecordSink, SkipReason, for_each_line,
};

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
    fn chunk_parser(&self) -> Option<Box<dyn ChunkParser>> {
        Some(Box::new(JsonParser))
    }
}

struct JsonParser;

impl Parser for JsonParser {
    fn parse(&mut self, input: &mut dyn BufRead, sink: &mut dyn RecordSink) -> io::Result<()> {
        for_each_line(input, |pos, line| json_line(pos, line, sink))
    }
}

impl ChunkParser for JsonParser {
    fn parse_chunk(&mut self, chunk: &Chunk, sink: &mut dyn RecordSink) {
        chunk.for_each_line(|pos, line| json_line(pos, line, sink));
    }
}

/// One line: an event, or an Event Hub batch of them.
fn json_line(pos: Position, line: Line<'_>, sink: &mut dyn RecordSink) {
    match line {
        Line::Text(text) => match parse_line(text) {
            Ok(batch) => {
                if batch.is_empty() {
                    sink.skip(pos, SkipReason::Irrelevant("empty batch"), text.as_bytes());
                }
                for ev in &batch {
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
    }
}

// The line is decoded straight into the few fields the mapping reads, borrowing unescaped
// strings from the line; everything else is parsed (so exactly the lines `serde_json::Value`
// rejects are rejected) but not kept. Hand-written visitors rather than derived ones because a
// derived struct fails on a duplicate key where a JSON object keeps the last value, and because
// `IgnoredAny` validates less than `Value` does (it accepts numbers out of `f64` range).

/// The events on one line: the `records` of an Event Hub batch, else the line itself.
pub fn parse_line(text: &str) -> serde_json::Result<Vec<Event<'_>>> {
    let mut de = serde_json::Deserializer::from_str(text);
    let top = de.deserialize_any(EventVisitor { top: true })?;
    de.end()?;
    Ok(match top {
        Event { records: Some(batch), .. } => batch,
        ev => vec![ev],
    })
}

/// A JSON value kept only as far as [`util_b::json_str`] and `as_str` can read it.
#[derive(Debug, Default)]
enum Loose<'a> {
    Str(Cow<'a, str>),
    Num(Number),
    Bool(bool),
    /// Null, array or object.
    #[default]
    Other,
}

impl<'a> Loose<'a> {
    fn as_str(&self) -> Option<&str> {
        match self {
            Loose::Str(s) => Some(s),
            _ => None,
        }
    }

    /// As [`util_b::json_str`] reads the same value.
    fn text(&self) -> Option<Cow<'_, str>> {
        match self {
            Loose::Str(s) => clean(s).map(Cow::Borrowed),
            Loose::Num(n) => Some(Cow::Owned(n.to_string())),
            Loose::Bool(b) => Some(Cow::Owned(b.to_string())),
            Loose::Other => None,
        }
    }
}

/// One streaming event: the envelope fields the mapping reads, or a line or batch item that is
/// not an object (then nothing is set).
#[derive(Debug, Default)]
pub struct Event<'a> {
    category: Loose<'a>,
    time: Loose<'a>,
    /// `None` when absent or not an object.
    properties: Option<Props<'a>>,
    /// `Some` only on the line itself, when `records` is an array.
    records: Option<Vec<Event<'a>>>,
}

/// The `properties` members any table's mapping reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prop {
    Timestamp,
    ActionType,
    RemoteUrl,
    RemoteIp,
    RemotePort,
    LocalIp,
    DeviceName,
    InitiatingProcessAccountUpn,
    InitiatingProcessAccountDomain,
    InitiatingProcessAccountName,
    AccountUpn,
    AccountDomain,
    AccountName,
    AccountId,
    AccountDisplayName,
    AccountObjectId,
    IpAddress,
    Application,
}

const PROPS: usize = Prop::Application as usize + 1;

impl Prop {
    fn of(name: &str) -> Option<Prop> {
        Some(match name {
            "Timestamp" => Prop::Timestamp,
            "ActionType" => Prop::ActionType,
            "RemoteUrl" => Prop::RemoteUrl,
            "RemoteIP" => Prop::RemoteIp,
            "RemotePort" => Prop::RemotePort,
            "LocalIP" => Prop::LocalIp,
            "DeviceName" => Prop::DeviceName,
            "InitiatingProcessAccountUpn" => Prop::InitiatingProcessAccountUpn,
            "InitiatingProcessAccountDomain" => Prop::InitiatingProcessAccountDomain,
            "InitiatingProcessAccountName" => Prop::InitiatingProcessAccountName,
            "AccountUpn" => Prop::AccountUpn,
            "AccountDomain" => Prop::AccountDomain,
            "AccountName" => Prop::AccountName,
            "AccountId" => Prop::AccountId,
            "AccountDisplayName" => Prop::AccountDisplayName,
            "AccountObjectId" => Prop::AccountObjectId,
            "IPAddress" => Prop::IpAddress,
            "Application" => Prop::Application,
            _ => return None,
        })
    }
}

/// The `properties` object. `AdditionalFields` and `LoggedOnUsers` may be JSON held in a
/// string, so they are kept whole as [`Value`]: they are rare or null on the busy tables.
#[derive(Debug, Default)]
pub struct Props<'a> {
    fields: [Loose<'a>; PROPS],
    additional_fields: Option<Value>,
    logged_on_users: Option<Value>,
}

impl Props<'_> {
    fn loose(&self, p: Prop) -> Option<&Loose<'_>> {
        self.fields.get(p as usize)
    }
    fn text(&self, p: Prop) -> Option<Cow<'_, str>> {
        self.loose(p).and_then(Loose::text)
    }
}

impl Fields for Props<'_> {
    fn get(&self, key: &str) -> Option<Cow<'_, str>> {
        Prop::of(key).and_then(|p| self.text(p))
    }
    fn additional(&self) -> Option<Map<String, Value>> {
        self.additional_fields.as_ref().and_then(util_b::json_object)
    }
}

/// Parses and drops one value of any shape.
struct Skip;

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(SkipVisitor)
    }
}

struct SkipVisitor;

impl<'de> Visitor<'de> for SkipVisitor {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    scalars_are_empty!(Self::Value);
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(KeySeed)?.is_some() {
            map.next_value_seed(Skip)?;
        }
        Ok(())
    }
}

/// An object key, borrowed unless it has escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v))
    }
}

struct LooseVisitor;

impl<'de> Deserialize<'de> for Loose<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LooseVisitor)
    }
}

impl<'de> Visitor<'de> for LooseVisitor {
    type Value = Loose<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Loose::Bool(v))
    }
    // Numbers are built as `Value` builds them, so they print the same.
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Loose::Num(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Loose::Num(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Number::from_f64(v).map_or(Loose::Other, Loose::Num))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Loose::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Loose::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Loose::Str(Cow::Owned(v)))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Loose::Other)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Loose::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        SkipVisitor.visit_seq(seq).map(|()| Loose::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        SkipVisitor.visit_map(map).map(|()| Loose::Other)
    }
}

/// `properties`: `Some` for an object, `None` for any other value.
struct PropsSeed;

impl<'de> DeserializeSeed<'de> for PropsSeed {
    type Value = Option<Props<'de>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(PropsVisitor)
    }
}

struct PropsVisitor;

impl<'de> Visitor<'de> for PropsVisitor {
    type Value = Option<Props<'de>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut props = Props::default();
        // A repeated key keeps its last value, as in a JSON object.
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match key.as_ref() {
                "AdditionalFields" => props.additional_fields = Some(map.next_value()?),
                "LoggedOnUsers" => props.logged_on_users = Some(map.next_value()?),
                k => match Prop::of(k).and_then(|p| props.fields.get_mut(p as usize)) {
                    Some(slot) => *slot = map.next_value()?,
                    None => map.next_value_seed(Skip)?,
                },
            }
        }
        Ok(Some(props))
    }
    scalars_are_empty!(Self::Value);
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        SkipVisitor.visit_seq(seq).map(|()| None)
    }
}

/// `records`: the batch's events when it is an array, else `None`.
struct RecordsSeed;

impl<'de> DeserializeSeed<'de> for RecordsSeed {
    type Value = Option<Vec<Event<'de>>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(RecordsVisitor)
    }
}

struct RecordsVisitor;

impl<'de> Visitor<'de> for RecordsVisitor {
    type Value = Option<Vec<Event<'de>>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut events = Vec::new();
        while let Some(ev) = seq.next_element_seed(EventSeed)? {
            events.push(ev);
        }
        Ok(Some(events))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        SkipVisitor.visit_map(map).map(|()| None)
    }
    scalars_are_empty!(Self::Value);
}

/// A batch item: its own `records` mean nothing.
struct EventSeed;

impl<'de> DeserializeSeed<'de> for EventSeed {
    type Value = Event<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Event<'de>, D::Error> {
        d.deserialize_any(EventVisitor { top: false })
    }
}

struct EventVisitor {
    top: bool,
}

impl<'de> Visitor<'de> for EventVisitor {
    type Value = Event<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Event<'de>, A::Error> {
        let mut ev = Event::default();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match key.as_ref() {
                "category" => ev.category = map.next_value()?,
                "time" => ev.time = map.next_value()?,
                "properties" => ev.properties = map.next_value_seed(PropsSeed)?,
                "records" if self.top => ev.records = map.next_value_seed(RecordsSeed)?,
                _ => map.next_value_seed(Skip)?,
            }
        }
        Ok(ev)
    }
    scalars_are_empty!(Self::Value);
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Event<'de>, A::Error> {
        SkipVisitor.visit_seq(seq).map(|()| Event::default())
    }
}

/// Maps one streaming event (envelope with `category` and `properties`).
pub fn event(ev: &Event<'_>) -> DefenderRow {
    let Some(table) = ev.category.as_str().and_then(|c| c.strip_prefix("AdvancedHunting-")) else {
        return DefenderRow::Skip(SkipReason::Malformed("no AdvancedHunting category"));
    };
    let Some(props) = &ev.properties else {
        return DefenderRow::Skip(SkipReason::Malformed("no properties object"));
    };
    let ts = props
        .loose(Prop::Timestamp)
        .and_then(Loose::as_str)
        .and_then(util_b::parse_iso)
        .or_else(|| ev.time.as_str().and_then(util_b::parse_iso));
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
fn device_info(props: &Props<'_>, ts: i64) -> DefenderRow {
    let Some(device) = owned(props.text(Prop::DeviceName)) else {
        return DefenderRow::Skip(SkipReason::Irrelevant("device info without logged-on users"));
    };
    let parsed;
    let users: &[Value] = match &props.logged_on_users {
        Some(Value::Array(a)) => a,
        Some(Value::String(s)) => {
            parsed = serde_json::from_str::<Vec<Value>>(s).unwrap_or_default();
            &parsed
        }
        _ => &[],
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
fn cloud_app(props: &Props<'_>, ts: i64) -> DefenderRow {
    let Some(app) = owned(props.text(Prop::Application)) else {
        return DefenderRow::Skip(SkipReason::Irrelevant("cloud app event without application"));
    };
    let keys = [Prop::AccountUpn, Prop::AccountId, Prop::AccountDisplayName, Prop::AccountObjectId];
    let user = keys
        .iter()
        .filter_map(|k| props.text(*k))
        .find(|v| v.contains('@'))
        .or_else(|| props.text(Prop::AccountDisplayName))
        .or_else(|| props.text(Prop::AccountObjectId))
        .or_else(|| props.text(Prop::AccountId));
    DefenderRow::Records(vec![Record {
        kind: RecordKind::Traffic,
        ts,
        user: owned(user),
        src_ip: owned(props.text(Prop::IpAddress)),
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

    /// The parser as it was before the typed decode: every line through `serde_json::Value`.
    mod reference {
        use crate::ingest::util_b::{self, DefenderRow, Fields, account};
        use crate::ingest::{Record, RecordKind, SkipReason};
        use serde_json::{Map, Value};
        use std::borrow::Cow;

        /// Records and skip reasons of one line, in the order they were reported.
        pub fn line(text: &str) -> (Vec<Record<'static>>, Vec<SkipReason>) {
            let (mut recs, mut skips) = (Vec::new(), Vec::new());
            match serde_json::from_str::<Value>(text) {
                Ok(v) => {
                    let batch: Vec<&Value> = match v.get("records") {
                        Some(Value::Array(items)) => items.iter().collect(),
                        _ => vec![&v],
                    };
                    if batch.is_empty() {
                        skips.push(SkipReason::Irrelevant("empty batch"));
                    }
                    for ev in batch {
                        match event(ev) {
                            DefenderRow::Records(r) => recs.extend(r),
                            DefenderRow::Skip(reason) => skips.push(reason),
                        }
                    }
                }
                Err(_) => skips.push(SkipReason::Malformed("not json")),
            }
            (recs, skips)
        }

        fn event(ev: &Value) -> DefenderRow {
            let Some(table) =
                ev.get("category").and_then(Value::as_str).and_then(|c| c.strip_prefix("AdvancedHunting-"))
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
                    account(
                        None,
                        m.get("DomainName").and_then(util_b::json_str),
                        m.get("UserName").and_then(util_b::json_str),
                    )
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
    }

    /// What the streaming parser reports for one line, in the reference's shape.
    fn new_line(text: &str) -> (Vec<Record<'static>>, Vec<SkipReason>) {
        let out = parse_all(&DefenderJson, text.as_bytes()).unwrap();
        (out.records.into_iter().map(|(_, r)| r).collect(), out.skips.into_iter().map(|(_, r, _)| r).collect())
    }

    mod inputs {
        use proptest::prelude::*;

        pub const PROP_KEYS: &[&str] = &[
            "Timestamp",
            "ActionType",
            "RemoteUrl",
            "RemoteIP",
            "RemotePort",
            "LocalIP",
            "DeviceName",
            "InitiatingProcessAccountUpn",
            "InitiatingProcessAccountDomain",
            "InitiatingProcessAccountName",
            "AccountUpn",
            "AccountDomain",
            "AccountName",
            "AccountId",
            "AccountDisplayName",
            "AccountObjectId",
            "IPAddress",
            "Application",
            "AdditionalFields",
            "LoggedOnUsers",
            "Remote\\u0049P",
            "Other",
            "timestamp",
        ];

        /// JSON fragments of every shape the fields are read from, valid or not.
        pub fn value() -> impl Strategy<Value = String> {
            let scalars = prop::sample::select(
                &[
                    r#""2024-01-01T00:00:00.1234567Z""#,
                    r#""2022-11-09 17:43:28""#,
                    r#""not a time""#,
                    r#""http://www.example.com:8080/x""#,
                    r#""www.example.com""#,
                    r#""C:\\x.lnk""#,
                    r#""142.250.74.35""#,
                    r#""::ffff:1.2.3.4""#,
                    r#""2001:db8::1""#,
                    r#""""#,
                    r#"" ""#,
                    r#""-""#,
                    r#""null""#,
                    r#""LogonSuccess""#,
                    r#""ConnectionSuccess""#,
                    r#""ConnectionFailed""#,
                    r#""InboundConnectionAccepted""#,
                    r#""FirewallOutboundConnectionBlocked""#,
                    r#""a@b.com""#,
                    r#""x\"y""#,
                    r#""\u0041bc""#,
                    r#""\ud83d\ude00""#,
                    r#""\ud800""#,
                    r#""Office 365""#,
                    "443",
                    "0",
                    "-1",
                    "1.5",
                    "1e3",
                    "18446744073709551615",
                    "-9223372036854775809",
                    "1e400",
                    "true",
                    "false",
                    "null",
                    "[]",
                    r#"[1,"a",{"b":null}]"#,
                    "{}",
                    r#"{"a":[1,2,{"c":"d"}]}"#,
                    r#"{"direction":"In"}"#,
                    r#"{"host":"www.gstatic.com","ApplicationName":"Chrome"}"#,
                    r#"{"server_name":"fonts.gstatic.com","Upn":"u@corp.com","direction":"Out"}"#,
                    r#""{\"host\":\"x.example.org\",\"Upn\":\"v@corp.com\"}""#,
                    r#""{\"direction\":\"in\"}""#,
                    r#"[{"UserName":"alice","DomainName":"corp"},{"UserName":"bob"},{"DomainName":"x"},3]"#,
                    r#""[{\"UserName\":\"carol\",\"DomainName\":null}]""#,
                    r#""[not json""#,
                    "01",
                    "[1,]",
                    "\"\t\"",
                ][..],
            );
            prop_oneof![8 => scalars.prop_map(str::to_string), 1 => "[ -~]{0,12}".prop_map(|s| format!("{s:?}"))]
        }

        pub fn props() -> impl Strategy<Value = String> {
            // Most events start from a row every table maps, so that the random members that
            // follow (and override it) are read by the mapping rather than skipped early.
            let base = prop::sample::select(
                &[
                    "",
                    r#""Timestamp":"2024-01-01T00:00:00Z","RemoteIP":"1.2.3.4","DeviceName":"pc1","ActionType":"LogonSuccess","AccountName":"al","Application":"App","LoggedOnUsers":[{"UserName":"u"}],"#,
                    r#""Timestamp":"2024-01-01T00:00:00.5Z","RemoteUrl":"www.example.com","DeviceName":"pc2","ActionType":"ConnectionSuccess","AccountUpn":"u@x.com","Application":"App","#,
                ][..],
            );
            let pairs = prop::collection::vec((prop::sample::select(PROP_KEYS), value()), 0..10);
            (base, pairs).prop_map(|(base, p)| {
                let body: Vec<String> = p.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                let body = body.join(",");
                format!("{{{base}{body}}}").replace(",}", "}")
            })
        }

        pub fn event() -> impl Strategy<Value = String> {
            let category = prop::sample::select(
                &[
                    r#""AdvancedHunting-DeviceNetworkEvents""#,
                    r#""AdvancedHunting-DeviceLogonEvents""#,
                    r#""AdvancedHunting-IdentityLogonEvents""#,
                    r#""AdvancedHunting-DeviceInfo""#,
                    r#""AdvancedHunting-CloudAppEvents""#,
                    r#""AdvancedHunting-DeviceEvents""#,
                    r#""AdvancedHunting-DeviceNetworkEvents""#,
                    r#""AdvancedHunting-CloudAppEvents""#,
                    r#""AdvancedHunting-DeviceNetworkEvents""#,
                    r#""AdvancedHunting-DeviceLogonEvents""#,
                    r#""AdvancedHunting-Device\u004eetworkEvents""#,
                    r#""DeviceNetworkEvents""#,
                    "7",
                    "null",
                ][..],
            );
            let time = prop::sample::select(&[r#""2024-01-01T00:00:01Z""#, r#""junk""#, "1704067201", "null"][..]);
            let extra = prop::collection::vec(
                (prop::sample::select(&["category", "time", "properties", "Tenant", "records"][..]), value()),
                0..2,
            );
            (category, time, props(), extra, 0u8..8).prop_map(|(c, t, p, extra, order)| {
                let mut members =
                    vec![format!("\"category\":{c}"), format!("\"time\":{t}"), format!("\"properties\":{p}")];
                // Drop or reorder the envelope members sometimes; duplicates come from `extra`.
                match order {
                    0 => drop(members.remove(0)),
                    1 => drop(members.remove(1)),
                    2 => drop(members.remove(2)),
                    3 => members.reverse(),
                    _ => {}
                }
                members.extend(extra.iter().map(|(k, v)| format!("\"{k}\":{v}")));
                format!("{{{}}}", members.join(","))
            })
        }

        pub fn line() -> impl Strategy<Value = String> {
            prop_oneof![
                6 => event(),
                2 => prop::collection::vec(event(), 0..4).prop_map(|evs| format!("{{\"records\":[{}]}}", evs.join(","))),
                1 => (prop::collection::vec(event(), 0..3), value())
                    .prop_map(|(evs, v)| format!("{{\"records\":[{},{v}],\"category\":\"AdvancedHunting-DeviceInfo\"}}", evs.join(","))),
                1 => (event(), 0usize..200).prop_map(|(ev, cut)| ev.chars().take(cut).collect()),
                1 => value(),
            ]
        }
    }

    #[test]
    fn every_mapped_property_has_a_slot() {
        for (i, name) in inputs::PROP_KEYS.iter().take(PROPS).enumerate() {
            assert_eq!(Prop::of(name).map(|p| p as usize), Some(i), "{name}");
        }
    }

    #[test]
    fn samples_match_the_reference() {
        for path in [DEVICE, IDENTITY] {
            for line in std::fs::read_to_string(path).unwrap().lines().filter(|l| !l.trim().is_empty()) {
                assert_eq!(new_line(line), reference::line(line), "{line}");
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1500))]
        #[test]
        fn typed_decode_matches_the_reference(line in inputs::line()) {
            // Blank lines never reach a parser.
            proptest::prop_assume!(!line.trim().is_empty());
            proptest::prop_assert_eq!(new_line(&line), reference::line(&line));
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
