//! `GET /v1/events`: the durable outbox as Server-Sent Events. Each event's SSE `id` is
//! its outbox sequence number; a subscriber that reconnects with `Last-Event-ID` (or
//! `?after=N`) gets everything written since, so no event is lost while no one listens.
//! New events arrive at once when this server wrote them, and within a poll interval
//! when another process did (the CLI, another node).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::{ApiError, Result};
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::http::problem::Problem;
use crate::service::accounts::Role;

/// How often the outbox is re-read when nothing was signalled in this process.
const POLL: Duration = Duration::from_millis(500);
/// Events read per catalog query.
const BATCH: i64 = 100;

/// Query of `GET /v1/events`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Deliver events after this sequence number (default: the `Last-Event-ID` header,
    /// else only events from now on).
    pub after: Option<i64>,
}

/// Subscribes to `identification.registered` events (supervisor: the duty unit; admin).
#[utoipa::path(
    get, path = "/v1/events", tag = "events", params(EventsQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "resume after this event id")),
    responses(
        (status = 200, content_type = "text/event-stream",
         description = "`event: identification.registered`, `id: <seq>`, `data: {officer, device, decision, modality, subject_id, external_id, flags, escort_to_station, escort_reason, audit_id, at}`"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn events(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    query: std::result::Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = std::result::Result<Event, Infallible>>>> {
    caller.require(&[Role::Supervisor, Role::Admin])?;
    let Query(q) = query.map_err(|_| ApiError::BadRequest("`after` must be an integer".into()))?;
    let last_id = headers.get("last-event-id").map(|v| {
        v.to_str()
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .ok_or(ApiError::BadRequest("Last-Event-ID must be an event id".into()))
    });
    let after = match (q.after, last_id) {
        (Some(a), _) => Some(a),
        (None, Some(id)) => Some(id?),
        (None, None) => None,
    };
    let after = state.audit_trail.subscribe(caller.actor(), after).await?;
    let stream = futures::stream::unfold((state, after), |(state, mut after)| async move {
        loop {
            let mut shutdown = state.shutdown.clone();
            if *shutdown.borrow() {
                return None;
            }
            match state.catalog.events_after(after, BATCH).await {
                Ok(batch) if !batch.is_empty() => {
                    after = batch.last().map_or(after, |e| e.seq);
                    let events: Vec<_> = batch
                        .into_iter()
                        .map(|e| Ok(Event::default().id(e.seq.to_string()).event(e.kind).data(e.payload.to_string())))
                        .collect();
                    return Some((futures::stream::iter(events), (state, after)));
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "reading the outbox failed; retrying"),
            }
            let notified = state.events.notified();
            tokio::select! {
                () = notified => {}
                () = tokio::time::sleep(POLL) => {}
                _ = shutdown.changed() => return None,
            }
        }
    });
    Ok(Sse::new(futures::StreamExt::flatten(stream)).keep_alive(KeepAlive::default()))
}
