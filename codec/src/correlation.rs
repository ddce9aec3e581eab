//! Pairing responses with the requests they answer.
//!
//! A Kafka response carries only the correlation id of its request, not the API key or version,
//! so the decoder must remember what it asked for. Kafka answers requests on a connection in the
//! order they were sent, except that a Produce with `acks=0` gets no answer at all, so the table
//! is a FIFO searched by correlation id: a response that matches an entry further back retires the
//! entries before it as unanswered.

use std::collections::VecDeque;

/// Default bound on requests awaiting a response on one connection. Clients pipeline a handful
/// (librdkafka's `max.in.flight` defaults to 1,000,000 in theory, 5 per partition leader in
/// practice); past the bound the oldest entry is dropped and counted.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1024;

/// What the decoder remembers about a request until its response arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight<T> {
    pub correlation_id: i32,
    pub api_key: i16,
    pub api_version: i16,
    /// Caller-defined payload, e.g. the time the request was seen.
    pub extra: T,
}

/// Outcome of looking up a response's correlation id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match<T> {
    /// The response answers this request. `skipped` earlier requests got no response.
    Found { request: InFlight<T>, skipped: usize },
    /// No request with this correlation id is in flight.
    Unknown,
}

/// The per-connection table of requests awaiting a response.
#[derive(Debug, Clone)]
pub struct Correlator<T> {
    pending: VecDeque<InFlight<T>>,
    max_in_flight: usize,
    dropped: u64,
}

impl<T: Clone> Correlator<T> {
    /// An empty table holding at most `max_in_flight` requests.
    pub fn new(max_in_flight: usize) -> Self {
        Correlator { pending: VecDeque::new(), max_in_flight: max_in_flight.max(1), dropped: 0 }
    }

    /// Records a request that expects a response. Returns `true` if the table was full and the
    /// oldest entry was dropped to make room.
    pub fn expect(&mut self, request: InFlight<T>) -> bool {
        let overflow = self.pending.len() >= self.max_in_flight;
        if overflow {
            self.pending.pop_front();
            self.dropped = self.dropped.saturating_add(1);
        }
        self.pending.push_back(request);
        overflow
    }

    /// Finds and removes the request a response with `correlation_id` answers.
    pub fn answer(&mut self, correlation_id: i32) -> Match<T> {
        match self.pending.iter().position(|r| r.correlation_id == correlation_id) {
            Some(skipped) => {
                self.pending.drain(..skipped);
                match self.pending.pop_front() {
                    Some(request) => Match::Found { request, skipped },
                    None => Match::Unknown,
                }
            }
            None => Match::Unknown,
        }
    }

    /// The most recent request in flight with `correlation_id`, to attach what was learned of it
    /// after its start (its decoded body).
    pub fn latest_mut(&mut self, correlation_id: i32) -> Option<&mut InFlight<T>> {
        self.pending.iter_mut().rev().find(|r| r.correlation_id == correlation_id)
    }

    /// Requests awaiting a response.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Entries dropped because the table was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(correlation_id: i32) -> InFlight<()> {
        InFlight { correlation_id, api_key: 0, api_version: 9, extra: () }
    }

    #[test]
    fn in_order_responses_match_in_order() {
        let mut c = Correlator::new(8);
        for id in 1..=3 {
            c.expect(req(id));
        }
        for id in 1..=3 {
            assert_eq!(c.answer(id), Match::Found { request: req(id), skipped: 0 });
        }
        assert_eq!(c.in_flight(), 0);
    }

    #[test]
    fn unanswered_acks0_produce_is_skipped() {
        let mut c = Correlator::new(8);
        c.expect(req(1));
        c.expect(req(2));
        assert_eq!(c.answer(2), Match::Found { request: req(2), skipped: 1 });
        assert_eq!(c.answer(1), Match::Unknown);
    }

    #[test]
    fn bounded() {
        let mut c = Correlator::new(2);
        assert!(!c.expect(req(1)));
        assert!(!c.expect(req(2)));
        assert!(c.expect(req(3)));
        assert_eq!(c.in_flight(), 2);
        assert_eq!(c.dropped(), 1);
        assert_eq!(c.answer(1), Match::Unknown);
    }
}
