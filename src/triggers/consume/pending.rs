//! Which records are emitted but not yet confirmed, per partition: an offset is stored (and so committed)
//! only when every earlier record of its partition is confirmed.

use std::collections::{BTreeMap, HashMap};

/// A record's place: topic, partition, offset.
pub(super) type Position = (String, i32, i64);

/// Per-partition bookkeeping of records emitted but not yet stored.
#[derive(Debug, Default)]
pub(super) struct Pending {
    /// topic/partition → offset → confirmed?
    partitions: HashMap<(String, i32), BTreeMap<i64, bool>>,
    pub(super) in_flight: usize,
}

impl Pending {
    pub(super) fn add(&mut self, (topic, partition, offset): &Position) {
        self.partitions
            .entry((topic.clone(), *partition))
            .or_default()
            .insert(*offset, false);
        self.in_flight += 1;
    }

    /// Marks positions confirmed; returns, per partition, the next offset to store (all earlier confirmed).
    pub(super) fn confirm(&mut self, positions: &[Position]) -> Vec<(String, i32, i64)> {
        let mut touched = Vec::new();
        for (topic, partition, offset) in positions {
            let key = (topic.clone(), *partition);
            if let Some(map) = self.partitions.get_mut(&key)
                && let Some(done) = map.get_mut(offset)
                && !*done
            {
                *done = true;
                self.in_flight = self.in_flight.saturating_sub(1);
                if !touched.contains(&key) {
                    touched.push(key);
                }
            }
        }
        let mut store = Vec::new();
        for key in touched {
            let Some(map) = self.partitions.get_mut(&key) else {
                continue;
            };
            let mut last = None;
            while let Some((&offset, &true)) = map.first_key_value() {
                map.pop_first();
                last = Some(offset);
            }
            if let Some(last) = last {
                store.push((key.0.clone(), key.1, last + 1));
            }
        }
        store
    }

    /// Forgets revoked partitions (their unconfirmed records will be read again by the next owner).
    pub(super) fn forget(&mut self, topic: &str, partition: i32) {
        if let Some(map) = self.partitions.remove(&(topic.to_owned(), partition)) {
            let unconfirmed = map.values().filter(|c| !**c).count();
            self.in_flight = self.in_flight.saturating_sub(unconfirmed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(p: i32, o: i64) -> Position {
        ("t".to_owned(), p, o)
    }

    #[test]
    fn offsets_are_stored_only_when_every_earlier_record_is_confirmed() {
        let mut pending = Pending::default();
        for o in 0..4 {
            pending.add(&pos(0, o));
        }
        pending.add(&pos(1, 10));
        assert!(
            pending.confirm(&[pos(0, 2)]).is_empty(),
            "0 and 1 still in flight"
        );
        assert!(pending.confirm(&[pos(0, 1)]).is_empty());
        assert_eq!(pending.confirm(&[pos(0, 0)]), vec![("t".to_owned(), 0, 3)]);
        assert_eq!(pending.confirm(&[pos(1, 10), pos(0, 3)]).len(), 2);
        assert_eq!(pending.in_flight, 0);
        pending.add(&pos(2, 5));
        pending.forget("t", 2);
        assert_eq!(pending.in_flight, 0);
        assert!(
            pending.confirm(&[pos(2, 5)]).is_empty(),
            "late confirm of a revoked partition is ignored"
        );
    }
}
