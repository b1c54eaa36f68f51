//! Our message headers. The body stays the versioned JSON job; everything about how a
//! delivery went lives here, so a requeue can reset it without touching the job.

use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};

/// How many times the job has been attempted when it arrives; absent means 1.
pub const ATTEMPTS: &str = "x-imgfeat-attempts";
/// Human-readable reason of the last failure.
pub const REASON: &str = "x-imgfeat-reason";
/// `FailureKind` of the last failure (`not_found`, `malformed_message`, ...).
pub const KIND: &str = "x-imgfeat-kind";
/// The work queue (full name) the message came from, for the DLQ reader.
pub const QUEUE: &str = "x-imgfeat-queue";
/// Unix milliseconds when the message was dead-lettered.
pub const DEAD_AT_MS: &str = "x-imgfeat-dead-at-ms";

/// Headers the broker adds when it dead-letters or expires a message; dropped on
/// requeue so that a re-driven message starts clean.
const BROKER_HEADERS: [&str; 5] = [
    "x-death",
    "x-first-death-reason",
    "x-first-death-queue",
    "x-first-death-exchange",
    "x-delivery-count",
];

/// Persistent JSON message properties with the given headers.
pub(crate) fn properties(headers: FieldTable) -> BasicProperties {
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type(ShortString::from("application/json"))
        .with_headers(headers)
}

pub(crate) fn get<'a>(props: &'a BasicProperties, key: &str) -> Option<&'a AMQPValue> {
    props.headers().as_ref()?.inner().get(key)
}

pub(crate) fn get_u64(props: &BasicProperties, key: &str) -> Option<u64> {
    match get(props, key)? {
        AMQPValue::ShortShortUInt(v) => Some(u64::from(*v)),
        AMQPValue::ShortUInt(v) => Some(u64::from(*v)),
        AMQPValue::LongUInt(v) => Some(u64::from(*v)),
        AMQPValue::ShortShortInt(v) => u64::try_from(*v).ok(),
        AMQPValue::ShortInt(v) => u64::try_from(*v).ok(),
        AMQPValue::LongInt(v) => u64::try_from(*v).ok(),
        AMQPValue::LongLongInt(v) => u64::try_from(*v).ok(),
        AMQPValue::Timestamp(v) => Some(*v),
        _ => None,
    }
}

pub(crate) fn get_string(props: &BasicProperties, key: &str) -> Option<String> {
    match get(props, key)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

/// The attempt number of a delivery: 1 unless a retry said otherwise.
pub(crate) fn attempts(props: &BasicProperties) -> u32 {
    get_u64(props, ATTEMPTS)
        .and_then(|a| u32::try_from(a).ok())
        .unwrap_or(1)
        .max(1)
}

/// The delivery's headers, to be carried over into a retry or dead-letter copy.
pub(crate) fn copy(props: &BasicProperties) -> FieldTable {
    props.headers().clone().unwrap_or_default()
}

pub(crate) fn set_u64(table: &mut FieldTable, key: &str, v: u64) {
    table.insert(
        ShortString::from(key),
        AMQPValue::LongLongInt(i64::try_from(v).unwrap_or(i64::MAX)),
    );
}

pub(crate) fn set_string(table: &mut FieldTable, key: &str, v: &str) {
    table.insert(
        ShortString::from(key),
        AMQPValue::LongString(LongString::from(v)),
    );
}

/// Headers of a message re-driven from a DLQ: no trace of its failed attempts.
pub(crate) fn reset(props: &BasicProperties) -> FieldTable {
    let kept = copy(props)
        .inner()
        .iter()
        .filter(|(k, _)| {
            let k = k.as_str();
            ![ATTEMPTS, REASON, KIND, QUEUE, DEAD_AT_MS].contains(&k)
                && !BROKER_HEADERS.contains(&k)
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect::<std::collections::BTreeMap<_, _>>();
    FieldTable::from(kept)
}
