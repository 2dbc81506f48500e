//! The Consume trigger's fields.

use serde::Deserialize;
use serde_json::Value;

use crate::kafka::config::{ConfigError, Count, Flag, Text, read};

/// Default for records emitted but not yet confirmed, across all partitions, before fetching pauses.
const DEFAULT_MAX_IN_FLIGHT: usize = 1024;
/// Default for how often a pattern subscription looks for new matching topics (librdkafka's own default,
/// 5 minutes, would leave a new topic unread that long).
pub const DEFAULT_PATTERN_REFRESH_MS: u64 = 30_000;
/// Default for how often a member logs its progress line (seconds).
pub const DEFAULT_PROGRESS_INTERVAL_SEC: u64 = 30;
/// Default for how long a member with lag may receive nothing before the watchdog recovers it (seconds).
pub const DEFAULT_STALL_TIMEOUT_SEC: u64 = 300;

/// The consumer group protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupProtocol {
    /// The classic protocol: JoinGroup/SyncGroup, client-side assignment (cooperative-sticky).
    Classic,
    /// KIP-848 (`group.protocol=consumer`): the broker assigns; session timeout and heartbeat interval are
    /// the broker's group settings.
    Consumer,
}

/// Where a new group starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    /// Oldest retained record.
    Earliest,
    /// Only records written from now on.
    Latest,
    /// First record at or after this time (ms since the epoch).
    Timestamp(i64),
}

/// The trigger's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumeConfig {
    /// Topics to subscribe to; an entry starting with `^` is a pattern (librdkafka's regex syntax).
    pub topics: Vec<String>,
    /// Consumer group.
    pub group_id: String,
    /// Start position when the group has no committed offset.
    pub start_from: StartFrom,
    /// Records per data message.
    pub batch_size: usize,
    /// Emit JSON values as JSON instead of strings.
    pub parse_json: bool,
    /// How long the group waits for a silent member before reassigning its partitions.
    pub session_timeout_ms: u64,
    /// Records emitted but not yet confirmed before fetching pauses (back-pressure).
    pub max_in_flight: usize,
    /// How often a pattern subscription looks for new matching topics (ms); used only with a pattern.
    pub pattern_refresh_ms: u64,
    /// The consumer group protocol.
    pub group_protocol: GroupProtocol,
    /// How often the member logs its progress line (seconds; 0: only at assignment changes).
    pub progress_interval_sec: u64,
    /// How long a member with lag may receive nothing before the watchdog recovers it (seconds; 0: off).
    pub stall_timeout_sec: u64,
}

/// The trigger's fields (component.json ids); every other key of `cfg` is ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Fields {
    topic: Text,
    group_id: Text,
    start_from: Text,
    batch_size: Count,
    parse_json: Flag,
    session_timeout_ms: Count,
    max_in_flight: Count,
    pattern_refresh_ms: Count,
    group_protocol: Text,
    progress_interval_sec: Count,
    stall_timeout_sec: Count,
}

impl ConsumeConfig {
    /// Parses the trigger's fields, checking them in a fixed order (the first problem is reported).
    ///
    /// # Errors
    /// [`ConfigError`] naming the field.
    pub fn from_cfg(cfg: &Value) -> Result<Self, ConfigError> {
        let f: Fields = read(cfg);
        let topics = topics(&f)?;
        let group_id = f
            .group_id
            .get()
            .ok_or_else(|| {
                ConfigError::new("groupId", "no consumer group given; enter a group id")
            })?
            .to_owned();
        let start_from = start_from(&f)?;
        let session_timeout_ms = f
            .session_timeout_ms
            .get("sessionTimeoutMs")?
            .unwrap_or(45_000);
        if !(1_000..=3_600_000).contains(&session_timeout_ms) {
            return Err(ConfigError::new(
                "sessionTimeoutMs",
                "must be between 1000 and 3600000",
            ));
        }
        let batch_size = f.batch_size.get("batchSize")?.unwrap_or(1);
        if !(1..=10_000).contains(&batch_size) {
            return Err(ConfigError::new("batchSize", "must be between 1 and 10000"));
        }
        Ok(Self {
            topics,
            group_id,
            start_from,
            batch_size: usize::try_from(batch_size).unwrap_or(1),
            parse_json: f.parse_json.get("parseJson", false)?,
            session_timeout_ms,
            max_in_flight: max_in_flight(&f)?,
            pattern_refresh_ms: pattern_refresh_ms(&f)?,
            group_protocol: group_protocol(&f)?,
            progress_interval_sec: seconds(
                &f.progress_interval_sec,
                "progressIntervalSec",
                DEFAULT_PROGRESS_INTERVAL_SEC,
            )?,
            stall_timeout_sec: seconds(
                &f.stall_timeout_sec,
                "stallTimeoutSec",
                DEFAULT_STALL_TIMEOUT_SEC,
            )?,
        })
    }

    /// Whether any `topic` entry is a pattern.
    pub fn has_pattern(&self) -> bool {
        self.topics.iter().any(|t| t.starts_with('^'))
    }
}

/// `topic`: names and `^` patterns separated by commas (so a pattern cannot contain a comma). Patterns are
/// checked here because librdkafka never reports a pattern it cannot compile: it only matches nothing.
fn topics(f: &Fields) -> Result<Vec<String>, ConfigError> {
    let topics: Vec<String> = f
        .topic
        .get()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    if topics.is_empty() {
        return Err(ConfigError::new(
            "topic",
            "no topic given; enter one topic or several separated by commas",
        ));
    }
    for t in topics.iter().filter(|t| t.starts_with('^')) {
        if let Err(e) = regex::Regex::new(t) {
            let reason = e.to_string();
            let reason = reason.lines().last().unwrap_or("").trim();
            return Err(ConfigError::new(
                "topic",
                format!(
                    "`{t}` is not a valid pattern ({reason}); an entry starting with ^ is a regular expression"
                ),
            ));
        }
    }
    Ok(topics)
}

/// `patternRefreshMs`: 1000 to 3600000, [`DEFAULT_PATTERN_REFRESH_MS`] when not given.
fn pattern_refresh_ms(f: &Fields) -> Result<u64, ConfigError> {
    match f.pattern_refresh_ms.get("patternRefreshMs")? {
        None => Ok(DEFAULT_PATTERN_REFRESH_MS),
        Some(v) if (1_000..=3_600_000).contains(&v) => Ok(v),
        Some(_) => Err(ConfigError::new(
            "patternRefreshMs",
            "must be between 1000 and 3600000",
        )),
    }
}

/// `progressIntervalSec`, `stallTimeoutSec`: 0 (off) to 86400 seconds, `default` when not given.
fn seconds(value: &Count, field: &'static str, default: u64) -> Result<u64, ConfigError> {
    match value.get(field)? {
        None => Ok(default),
        Some(v) if v <= 86_400 => Ok(v),
        Some(_) => Err(ConfigError::new(
            field,
            "must be between 0 (off) and 86400 seconds",
        )),
    }
}

/// `groupProtocol`: `classic` (when not given) or `consumer`.
fn group_protocol(f: &Fields) -> Result<GroupProtocol, ConfigError> {
    match f
        .group_protocol
        .get()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("classic") => Ok(GroupProtocol::Classic),
        Some("consumer") => Ok(GroupProtocol::Consumer),
        Some(other) => Err(ConfigError::new(
            "groupProtocol",
            format!("`{other}` is not valid; use classic or consumer"),
        )),
    }
}

/// `startFrom`: earliest (when not given), latest, or a time in ms since the epoch.
fn start_from(f: &Fields) -> Result<StartFrom, ConfigError> {
    Ok(
        match f.start_from.get().map(str::to_ascii_lowercase).as_deref() {
            None | Some("earliest") => StartFrom::Earliest,
            Some("latest") => StartFrom::Latest,
            Some(other) => match other.parse::<i64>() {
                Ok(ts) if ts >= 0 => StartFrom::Timestamp(ts),
                _ => {
                    return Err(ConfigError::new(
                        "startFrom",
                        format!(
                            "`{other}` is not valid; use earliest, latest or a time in ms since the epoch"
                        ),
                    ));
                }
            },
        },
    )
}

/// `maxInFlight`: 1 to 100000, [`DEFAULT_MAX_IN_FLIGHT`] when not given.
fn max_in_flight(f: &Fields) -> Result<usize, ConfigError> {
    match f.max_in_flight.get("maxInFlight")? {
        None => Ok(DEFAULT_MAX_IN_FLIGHT),
        Some(v) if (1..=100_000).contains(&v) => {
            Ok(usize::try_from(v).unwrap_or(DEFAULT_MAX_IN_FLIGHT))
        }
        Some(_) => Err(ConfigError::new(
            "maxInFlight",
            "must be between 1 and 100000",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn config_parsing() {
        let c = ConsumeConfig::from_cfg(&json!({"topic": "a, b", "groupId": "g"})).unwrap();
        assert_eq!(c.topics, vec!["a", "b"]);
        assert_eq!(
            (c.start_from, c.batch_size, c.parse_json),
            (StartFrom::Earliest, 1, false)
        );
        let c = ConsumeConfig::from_cfg(&json!({"topic": "a", "groupId": "g", "startFrom": "1700000000000", "batchSize": "100"})).unwrap();
        assert_eq!(
            (c.start_from, c.batch_size),
            (StartFrom::Timestamp(1_700_000_000_000), 100)
        );
        assert_eq!(
            ConsumeConfig::from_cfg(&json!({"topic": "a"}))
                .unwrap_err()
                .field,
            "groupId"
        );
        assert_eq!(
            ConsumeConfig::from_cfg(&json!({"topic": "a", "groupId": "g", "startFrom": "soon"}))
                .unwrap_err()
                .field,
            "startFrom"
        );
        assert_eq!(
            ConsumeConfig::from_cfg(&json!({"topic": " , ", "groupId": "g"}))
                .unwrap_err()
                .field,
            "topic"
        );
    }

    #[test]
    fn patterns_and_names_mix_and_an_invalid_pattern_names_the_field() {
        let c = ConsumeConfig::from_cfg(&json!({"topic": "^orders-.*, audit", "groupId": "g"}))
            .unwrap();
        assert_eq!(c.topics, vec!["^orders-.*", "audit"]);
        assert!(c.has_pattern());
        assert_eq!(c.pattern_refresh_ms, DEFAULT_PATTERN_REFRESH_MS);
        let plain = ConsumeConfig::from_cfg(&json!({"topic": "a.b", "groupId": "g"})).unwrap();
        assert!(!plain.has_pattern(), "a dot in a name is no pattern");
        let e =
            ConsumeConfig::from_cfg(&json!({"topic": "a, ^orders-(", "groupId": "g"})).unwrap_err();
        assert_eq!(e.field, "topic");
        assert!(
            e.to_string().contains("`^orders-(` is not a valid pattern"),
            "{e}"
        );
        let c = ConsumeConfig::from_cfg(
            &json!({"topic": "^a", "groupId": "g", "patternRefreshMs": "2000"}),
        )
        .unwrap();
        assert_eq!(c.pattern_refresh_ms, 2000);
        for bad in ["999", "x", "3600001"] {
            let e = ConsumeConfig::from_cfg(
                &json!({"topic": "^a", "groupId": "g", "patternRefreshMs": bad}),
            )
            .unwrap_err();
            assert_eq!(e.field, "patternRefreshMs", "{bad}");
        }
    }

    #[test]
    fn group_protocol_is_classic_unless_consumer_is_chosen() {
        let base = json!({"topic": "a", "groupId": "g"});
        assert_eq!(
            ConsumeConfig::from_cfg(&base).unwrap().group_protocol,
            GroupProtocol::Classic
        );
        for (v, want) in [
            ("classic", GroupProtocol::Classic),
            ("Consumer", GroupProtocol::Consumer),
        ] {
            let c = ConsumeConfig::from_cfg(&merge(&base, "groupProtocol", v)).unwrap();
            assert_eq!(c.group_protocol, want);
        }
        let e = ConsumeConfig::from_cfg(&merge(&base, "groupProtocol", "kip848")).unwrap_err();
        assert_eq!(e.field, "groupProtocol");
    }

    #[test]
    fn progress_interval_and_stall_timeout_default_and_zero_turns_them_off() {
        let base = json!({"topic": "a", "groupId": "g"});
        let c = ConsumeConfig::from_cfg(&base).unwrap();
        assert_eq!((c.progress_interval_sec, c.stall_timeout_sec), (30, 300));
        let c = ConsumeConfig::from_cfg(&merge(
            &merge(&base, "progressIntervalSec", "0"),
            "stallTimeoutSec",
            "5",
        ))
        .unwrap();
        assert_eq!((c.progress_interval_sec, c.stall_timeout_sec), (0, 5));
        for (field, bad) in [("progressIntervalSec", "86401"), ("stallTimeoutSec", "-1")] {
            let e = ConsumeConfig::from_cfg(&merge(&base, field, bad)).unwrap_err();
            assert_eq!(e.field, field, "{bad}");
        }
    }

    fn merge(base: &Value, k: &str, v: &str) -> Value {
        let mut c = base.clone();
        c[k] = json!(v);
        c
    }

    #[test]
    fn the_fields_struct_reads_exactly_the_component_json_fields() {
        let (read, declared) = crate::kafka::config::testing::struct_and_component_fields::<Fields>(
            "/triggers/consume/fields",
        );
        assert_eq!(read, declared);
    }
}
