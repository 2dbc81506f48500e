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
    /// Where a record that cannot become a data message is written (with its position and the reason)
    /// before its offset may be committed; `None`: such a record is reported and skipped.
    pub dead_letter_topic: Option<String>,
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
    dead_letter_topic: Text,
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
        let dead_letter_topic = dead_letter_topic(&f, &topics)?;
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
            dead_letter_topic,
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

/// `deadLetterTopic`: a valid topic name that this step does not consume (a dead-lettered record written to a
/// consumed topic would be read again, and dead-lettered again, forever).
fn dead_letter_topic(f: &Fields, topics: &[String]) -> Result<Option<String>, ConfigError> {
    let Some(name) = f.dead_letter_topic.get() else {
        return Ok(None);
    };
    let valid = name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !valid {
        return Err(ConfigError::new(
            "deadLetterTopic",
            format!(
                "`{name}` is not a valid topic name; use letters, digits, `.`, `_` and `-` (at most 249)"
            ),
        ));
    }
    // Patterns were checked by `topics` already; librdkafka matches them unanchored at the end, as here.
    let consumed = topics.iter().any(|t| {
        t == name || (t.starts_with('^') && regex::Regex::new(t).is_ok_and(|re| re.is_match(name)))
    });
    if consumed {
        return Err(ConfigError::new(
            "deadLetterTopic",
            format!(
                "`{name}` is consumed by this step (field `topic`), so a dead-lettered record would be read again; use a topic the step does not consume"
            ),
        ));
    }
    Ok(Some(name.to_owned()))
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
mod tests;
