//! Prometheus metrics, as `/metrics` serves them.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `bosun_passes_total` | counter | `result` (`success`, `failed`, `invalid`) |
//! | `bosun_pass_duration_seconds` | histogram | |
//! | `bosun_managed_objects` | gauge | `kind` |
//! | `bosun_drift_corrections_total` | counter | `kind` |
//! | `bosun_last_success_timestamp_seconds` | gauge | |
//! | `bosun_lease_held` | gauge (0/1) | |
//! | `bosun_api_requests_total` | counter | `method`, `endpoint`, `status` |
//! | `bosun_rollouts` | gauge | `state` (`progressing`, `failed`) |
//! | `bosun_rollout_duration_seconds` | histogram | `outcome` (`ready`, `failed`, `superseded`) |
//!
//! Docker API requests are already counted by the client
//! ([`swarm::RequestCounter`]); rather than count twice, they are read from
//! it at scrape time. `endpoint` is the path template (`/services/{id}`), so
//! the label set stays small.
//!
//! `prometheus-client` writes `OpenMetrics` text; [`Metrics::encode`] turns it
//! into the classic Prometheus text format (0.0.4), which every scraper
//! reads: `HELP`/`TYPE` lines of counters name the `_total` series, and the
//! `# EOF` marker is dropped.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::status::PassResult;
use crate::swarm::{self, Kind};

/// The content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds of the pass duration buckets, in seconds: a no-op pass takes
/// tens of milliseconds, a rolling update with `wait` minutes.
const DURATION_BUCKETS: [f64; 12] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

/// Upper bounds of the rollout duration buckets, in seconds: from a
/// service that starts at once to the longest `wait.timeout` people set.
const ROLLOUT_BUCKETS: [f64; 10] = [1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0];

fn rollout_histogram() -> Histogram {
    Histogram::new(ROLLOUT_BUCKETS)
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

/// The registry and handles on its metrics; cheap to clone.
#[derive(Debug, Clone)]
pub struct Metrics(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    registry: Registry,
    passes: Family<ResultLabel, Counter>,
    pass_duration: Histogram,
    objects: Family<KindLabel, Gauge>,
    drift_corrections: Family<KindLabel, Counter>,
    last_success: Gauge<f64, AtomicU64>,
    lease_held: Gauge,
    rollouts: Family<StateLabel, Gauge>,
    rollout_duration: Family<OutcomeLabel, Histogram, fn() -> Histogram>,
}

impl Metrics {
    /// A registry with every bosun metric, exporting the API requests that
    /// `requests` counts.
    #[must_use]
    pub fn new(requests: Arc<swarm::RequestCounter>) -> Self {
        let mut registry = Registry::default();
        let passes = Family::<ResultLabel, Counter>::default();
        registry.register(
            "bosun_passes",
            "Reconcile passes, by result",
            passes.clone(),
        );
        // Every result from the start, so rate() works before the first failure.
        for result in [PassResult::Success, PassResult::Failed, PassResult::Invalid] {
            let _ = passes.get_or_create(&ResultLabel {
                result: result.as_str(),
            });
        }
        let pass_duration = Histogram::new(DURATION_BUCKETS);
        registry.register(
            "bosun_pass_duration_seconds",
            "How long reconcile passes take",
            pass_duration.clone(),
        );
        let objects = Family::<KindLabel, Gauge>::default();
        registry.register(
            "bosun_managed_objects",
            "Swarm objects bosun manages, by kind",
            objects.clone(),
        );
        let drift_corrections = Family::<KindLabel, Counter>::default();
        registry.register(
            "bosun_drift_corrections",
            "Objects found different from the manifests and corrected, by kind",
            drift_corrections.clone(),
        );
        let last_success = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "bosun_last_success_timestamp_seconds",
            "Unix time of the end of the last successful pass",
            last_success.clone(),
        );
        let lease_held = Gauge::default();
        registry.register(
            "bosun_lease_held",
            "1 while this instance holds the single-writer lease",
            lease_held.clone(),
        );
        let rollouts = Family::<StateLabel, Gauge>::default();
        registry.register(
            "bosun_rollouts",
            "Stack rollouts now in progress or failed, by state",
            rollouts.clone(),
        );
        for state in ["progressing", "failed"] {
            let _ = rollouts.get_or_create(&StateLabel { state });
        }
        let rollout_duration: Family<OutcomeLabel, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(rollout_histogram);
        registry.register(
            "bosun_rollout_duration_seconds",
            "How long finished stack rollouts took, by outcome",
            rollout_duration.clone(),
        );
        registry.register_collector(Box::new(ApiRequests(requests)));
        Self(Arc::new(Inner {
            registry,
            passes,
            pass_duration,
            objects,
            drift_corrections,
            last_success,
            lease_held,
            rollouts,
            rollout_duration,
        }))
    }

    /// Rollouts now in each state.
    pub fn set_rollouts(&self, progressing: usize, failed: usize) {
        for (state, n) in [("progressing", progressing), ("failed", failed)] {
            self.0
                .rollouts
                .get_or_create(&StateLabel { state })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// A rollout ended: `ready`, `failed` or `superseded`.
    pub fn rollout_finished(&self, outcome: &'static str, took: Duration) {
        self.0
            .rollout_duration
            .get_or_create(&OutcomeLabel { outcome })
            .observe(took.as_secs_f64());
    }

    /// Count a finished pass and observe its duration.
    pub fn pass_finished(&self, result: PassResult, duration: Duration) {
        self.0
            .passes
            .get_or_create(&ResultLabel {
                result: result.as_str(),
            })
            .inc();
        self.0.pass_duration.observe(duration.as_secs_f64());
    }

    /// Set how many objects of `kind` bosun manages.
    pub fn set_objects(&self, kind: Kind, n: u64) {
        self.0
            .objects
            .get_or_create(&KindLabel {
                kind: kind.as_str().into(),
            })
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Count `n` drift corrections of objects of `kind`.
    pub fn drift_corrected(&self, kind: Kind, n: u64) {
        self.0
            .drift_corrections
            .get_or_create(&KindLabel {
                kind: kind.as_str().into(),
            })
            .inc_by(n);
    }

    /// Set the Unix time of the last successful pass.
    pub fn set_last_success(&self, unix_seconds: f64) {
        self.0.last_success.set(unix_seconds);
    }

    /// Set whether this instance holds the lease.
    pub fn set_lease_held(&self, held: bool) {
        self.0.lease_held.set(i64::from(held));
    }

    /// Everything in the Prometheus text format ([`CONTENT_TYPE`]).
    #[must_use]
    pub fn encode(&self) -> String {
        let mut openmetrics = String::new();
        // Writing to a String cannot fail, and our collectors do not fail.
        if let Err(e) =
            prometheus_client::encoding::text::encode_registry(&mut openmetrics, &self.0.registry)
        {
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        to_prometheus_text(&openmetrics)
    }
}

/// Exports a [`swarm::RequestCounter`] at scrape time.
#[derive(Debug)]
struct ApiRequests(Arc<swarm::RequestCounter>);

impl Collector for ApiRequests {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let requests = self.0.snapshot();
        let mut metric = encoder.encode_descriptor(
            "bosun_api_requests",
            "Docker API requests, by method, endpoint template and HTTP status (0: no response)",
            None,
            MetricType::Counter,
        )?;
        for ((method, endpoint, status), count) in &requests.0 {
            let labels = [
                ("method", method.clone()),
                ("endpoint", endpoint.clone()),
                ("status", status.to_string()),
            ];
            let family = metric.encode_family(&labels)?;
            ConstCounter::new(*count).encode(family)?;
        }
        Ok(())
    }
}

/// `OpenMetrics` text to Prometheus text 0.0.4: counters' `HELP` and `TYPE`
/// lines name the family without `_total` in `OpenMetrics`, with it in
/// Prometheus; `# EOF` and `# UNIT` do not exist there.
fn to_prometheus_text(openmetrics: &str) -> String {
    let counters: HashSet<&str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + 64);
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let comment = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
        if let Some((prefix, rest)) = comment {
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            if counters.contains(name) && !name.ends_with("_total") {
                let _ = writeln!(out, "{prefix}{name}_total {tail}");
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_named_with_total_in_help_and_type() {
        let counter = Arc::new(swarm::RequestCounter::new());
        counter.record("GET", "/services", 200);
        counter.record("GET", "/services", 200);
        counter.record("POST", "/services/{id}/update", 500);
        let metrics = Metrics::new(counter);
        metrics.pass_finished(PassResult::Success, Duration::from_millis(80));
        metrics.drift_corrected(Kind::Service, 2);
        metrics.set_objects(Kind::Service, 7);
        metrics.set_lease_held(true);
        metrics.set_last_success(1_700_000_000.5);
        let text = metrics.encode();
        assert!(!text.contains("# EOF"), "{text}");
        for line in [
            "# TYPE bosun_passes_total counter",
            "# HELP bosun_passes_total Reconcile passes, by result.",
            "bosun_passes_total{result=\"success\"} 1",
            "bosun_passes_total{result=\"invalid\"} 0",
            "# TYPE bosun_pass_duration_seconds histogram",
            "bosun_pass_duration_seconds_bucket{le=\"0.1\"} 1",
            "bosun_pass_duration_seconds_count 1",
            "bosun_managed_objects{kind=\"service\"} 7",
            "# TYPE bosun_drift_corrections_total counter",
            "bosun_drift_corrections_total{kind=\"service\"} 2",
            "bosun_lease_held 1",
            "bosun_last_success_timestamp_seconds 1700000000.5",
            "# TYPE bosun_api_requests_total counter",
            "bosun_api_requests_total{method=\"GET\",endpoint=\"/services\",status=\"200\"} 2",
            "bosun_api_requests_total{method=\"POST\",endpoint=\"/services/{id}/update\",status=\"500\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }

    #[test]
    fn api_requests_are_read_at_encode_time() {
        let counter = Arc::new(swarm::RequestCounter::new());
        let metrics = Metrics::new(counter.clone());
        assert!(!metrics.encode().contains("bosun_api_requests_total{"));
        counter.record("GET", "/info", 200);
        assert!(metrics.encode().contains(
            "bosun_api_requests_total{method=\"GET\",endpoint=\"/info\",status=\"200\"} 1"
        ));
    }
}
