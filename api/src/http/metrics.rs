//! Prometheus metrics (`GET /v1/metrics`, text exposition format): request counts and
//! latencies per route and status, identification decisions, model-stage occupancy.
//! Counts only: no logins, ids or anything personal is ever a label.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::AppState;

type Labels = Vec<(&'static str, String)>;

fn latency_histogram() -> Histogram {
    // 1 ms .. ~16 s
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// The registry and the metrics the server updates.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    latency: Family<Labels, Histogram, fn() -> Histogram>,
    identifications: Family<Labels, Counter>,
    model_free: Gauge,
    model_capacity: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("epatrol");
        let requests = Family::<Labels, Counter>::default();
        let latency = Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        let identifications = Family::<Labels, Counter>::default();
        let (model_free, model_capacity) = (Gauge::default(), Gauge::default());
        registry.register("http_requests", "HTTP requests by route, method and status", requests.clone());
        registry.register("http_request_duration_seconds", "Time to the response head, by route", latency.clone());
        registry.register(
            "identifications",
            "Identification answers by decision and modality",
            identifications.clone(),
        );
        registry.register("model_slots_free", "Model-stage admission slots free (workers + queue)", model_free.clone());
        registry.register("model_slots", "Model-stage admission slots in all", model_capacity.clone());
        Self { registry, requests, latency, identifications, model_free, model_capacity }
    }
}

impl Metrics {
    /// Counts one identification answer.
    pub fn identification(&self, decision: &str, modality: &str) {
        self.identifications.get_or_create(&vec![("decision", decision.into()), ("modality", modality.into())]).inc();
    }
}

/// Middleware: counts and times every routed request.
pub async fn track(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_string(), |p| p.as_str().into());
    let method = req.method().to_string();
    let started = Instant::now();
    let res = next.run(req).await;
    let m = &state.metrics;
    m.latency.get_or_create(&vec![("route", route.clone())]).observe(started.elapsed().as_secs_f64());
    m.requests
        .get_or_create(&vec![("route", route), ("method", method), ("status", res.status().as_u16().to_string())])
        .inc();
    res
}

/// `GET /v1/metrics`: Prometheus text format, no login (counts only, nothing personal).
#[utoipa::path(get, path = "/v1/metrics", tag = "health",
    responses((status = 200, description = "Prometheus/OpenMetrics text", content_type = "text/plain")))]
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let m = &state.metrics;
    let (free, capacity) = state.gate.slots();
    m.model_free.set(free as i64);
    m.model_capacity.set(capacity as i64);
    let mut text = String::new();
    if encode(&mut text, &m.registry).is_err() {
        return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response()
}
