//! Produce retries, recognised where Kafka itself recognises them: an idempotent (or
//! transactional) producer numbers the batches it sends to each partition, and a retry re-sends a
//! batch under the same producer id, epoch and base sequence. A batch whose base sequence is not
//! beyond the last one seen for its producer and partition is a retry (a duplicate the broker
//! will deduplicate). Producers without idempotence give batches no identity: their retries are
//! indistinguishable from new data and are not counted.
//!
//! The table is per Wasm VM (Envoy worker): a retry sent on a connection handled by another
//! worker is not recognised. It is bounded: past [`MAX_PRODUCER_PARTITIONS`] entries it starts
//! over.

use std::collections::HashMap;

use crate::topics::TopicRef;

/// Producer-partition pairs remembered per VM before the table starts over.
pub const MAX_PRODUCER_PARTITIONS: usize = 50_000;

/// The last base sequence seen per producer (id, epoch) and partition.
#[derive(Debug, Default, Clone)]
pub struct ProducerSequences {
    last: HashMap<(i64, i16, TopicRef, i32), i32>,
}

impl ProducerSequences {
    /// Records a batch; returns whether it re-sends one already seen.
    pub fn is_retry(&mut self, producer_id: i64, epoch: i16, topic: &TopicRef, partition: i32, base_sequence: i32) -> bool {
        if producer_id < 0 || base_sequence < 0 {
            return false;
        }
        let key = (producer_id, epoch, topic.clone(), partition);
        match self.last.get_mut(&key) {
            // Sequences wrap at i32::MAX to 0: a much smaller sequence is the wrap, not a retry.
            Some(last) if base_sequence <= *last && last.saturating_sub(base_sequence) < i32::MAX / 2 => true,
            Some(last) => {
                *last = base_sequence;
                false
            }
            None => {
                if self.last.len() >= MAX_PRODUCER_PARTITIONS {
                    self.last.clear();
                }
                self.last.insert(key, base_sequence);
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_sent_again_is_a_retry() {
        let mut table = ProducerSequences::default();
        let orders = TopicRef::Name("orders".into());
        assert!(!table.is_retry(7, 0, &orders, 0, 0));
        assert!(!table.is_retry(7, 0, &orders, 0, 5));
        assert!(table.is_retry(7, 0, &orders, 0, 5)); // the same batch again
        assert!(table.is_retry(7, 0, &orders, 0, 0)); // an older one
        assert!(!table.is_retry(7, 0, &orders, 1, 5)); // another partition
        assert!(!table.is_retry(7, 1, &orders, 0, 0)); // a new epoch restarts the sequence
        assert!(!table.is_retry(8, 0, &orders, 0, 5)); // another producer
        assert!(!table.is_retry(-1, -1, &orders, 0, -1)); // not idempotent: never a retry
        assert!(!table.is_retry(-1, -1, &orders, 0, -1));
        assert!(!table.is_retry(7, 0, &orders, 0, i32::MAX - 3));
        assert!(!table.is_retry(7, 0, &orders, 0, 2)); // wrapped
    }
}
