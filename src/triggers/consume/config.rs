//! The Consume trigger's fields.

use serde::Deserialize;
use serde_json::Value;

use crate::kafka::config::{ConfigError, Count, Flag, Text, read};

/// Default for records emitted but not yet confirmed, across all partitions, before fetching pauses.
const DEFAULT_MAX_IN_FLIGHT: usize = 1024;

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
    /// Topics to subscribe to.
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
}

impl ConsumeConfig {
    /// Parses the trigger's fields, checking them in a fixed order (the first problem is reported).
    ///
    /// # Errors
    /// [`ConfigError`] naming the field.
    pub fn from_cfg(cfg: &Value) -> Result<Self, ConfigError> {
        let f: Fields = read(cfg);
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
        })
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
    fn the_fields_struct_reads_exactly_the_component_json_fields() {
        let (read, declared) = crate::kafka::config::testing::struct_and_component_fields::<Fields>(
            "/triggers/consume/fields",
        );
        assert_eq!(read, declared);
    }
}
