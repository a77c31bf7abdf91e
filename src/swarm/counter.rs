//! Counting the requests a client sends.
//!
//! "API economy" is a product property: a no-op pass must cost the same
//! number of requests for 10 services as for 200, and changing one object
//! must cost exactly one write. Every request the [`Client`](super::Client)
//! sends is counted here by method, endpoint template (IDs replaced by
//! `{id}`) and HTTP status, so tests can prove it and a future `/metrics`
//! endpoint can export it (the counter is shared through an `Arc`).

use std::collections::BTreeMap;
use std::sync::Mutex;

/// `(method, endpoint template, status)`, e.g. `("GET", "/services", 200)`.
/// Status 0 means no response (connection failure or timeout).
pub type RequestKey = (String, String, u16);

/// A thread-safe request counter, shareable as `Arc<RequestCounter>`.
#[derive(Debug, Default)]
pub struct RequestCounter {
    counts: Mutex<BTreeMap<RequestKey, u64>>,
}

impl RequestCounter {
    /// A counter at zero.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Count one request.
    pub fn record(&self, method: &str, endpoint: &str, status: u16) {
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *counts
            .entry((method.to_string(), endpoint.to_string(), status))
            .or_default() += 1;
    }

    /// A copy of the counts so far.
    #[must_use]
    pub fn snapshot(&self) -> Requests {
        let counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Requests(counts.clone())
    }
}

/// A snapshot of request counts; subtract two with [`Requests::since`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requests(pub BTreeMap<RequestKey, u64>);

impl Requests {
    /// Every request counted.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// Requests that cannot change anything (`GET`, `HEAD`).
    #[must_use]
    pub fn reads(&self) -> u64 {
        self.0
            .iter()
            .filter(|((m, _, _), _)| is_read(m))
            .map(|(_, n)| n)
            .sum()
    }

    /// Requests that may change the swarm (`POST`, `PUT`, `DELETE`, …).
    #[must_use]
    pub fn writes(&self) -> u64 {
        self.total() - self.reads()
    }

    /// Requests of one method and endpoint, whatever their status.
    #[must_use]
    pub fn count(&self, method: &str, endpoint: &str) -> u64 {
        self.0
            .iter()
            .filter(|((m, e, _), _)| m == method && e == endpoint)
            .map(|(_, n)| n)
            .sum()
    }

    /// The requests made after `earlier` was taken.
    #[must_use]
    pub fn since(&self, earlier: &Requests) -> Requests {
        Requests(
            self.0
                .iter()
                .filter_map(|(k, n)| {
                    let d = n - earlier.0.get(k).copied().unwrap_or_default();
                    (d > 0).then(|| (k.clone(), d))
                })
                .collect(),
        )
    }

    /// Counts by `"METHOD /endpoint"`, statuses merged: handy in assertions.
    #[must_use]
    pub fn by_endpoint(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for ((m, e, _), n) in &self.0 {
            *out.entry(format!("{m} {e}")).or_default() += n;
        }
        out
    }
}

fn is_read(method: &str) -> bool {
    method == "GET" || method == "HEAD"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_split_into_reads_and_writes_and_subtract() {
        let c = RequestCounter::new();
        c.record("GET", "/services", 200);
        let before = c.snapshot();
        c.record("GET", "/services", 200);
        c.record("POST", "/services/{id}/update", 200);
        c.record("DELETE", "/configs/{id}", 404);
        let d = c.snapshot().since(&before);
        assert_eq!(d.total(), 3);
        assert_eq!(d.reads(), 1);
        assert_eq!(d.writes(), 2);
        assert_eq!(d.count("GET", "/services"), 1);
        assert_eq!(d.by_endpoint()["DELETE /configs/{id}"], 1);
    }
}
