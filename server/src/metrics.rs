//! Whether the server is healthy, for the technician's monitoring: `/metrics` in Prometheus'
//! text format, and `/healthz/ready` (the database takes writes, the disk has room).
//!
//! Totals that must survive a restart (requests decided by outcome, notices) are read from the
//! database at each scrape (`store::metrics`); what only this process knows (the decision
//! latency, the kiosks connected, the outboxes waiting for the writer) is kept here. `/metrics`
//! answers only the addresses configured (loopback by default) or a request with the bearer
//! token, since it tells how busy the Questura is.

use std::{net::IpAddr, path::Path, time::Duration};

use axum::{
    extract::{ConnectInfo, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use prometheus_client::{
    encoding::text::encode,
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::{Registry, Unit},
};

use crate::AppState;

/// What the process measures itself.
#[derive(Debug)]
pub struct Metrics {
    /// From a kiosk's outbox reaching the server to its requests decided and committed.
    decision_seconds: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            // 1 ms to 8 s.
            decision_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
        }
    }
}

impl Metrics {
    pub fn observe_decision(&self, took: Duration) {
        self.decision_seconds.observe(took.as_secs_f64());
    }
}

/// Who may read `/metrics` (`[metrics]` in the configuration file).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsAccess {
    /// Addresses allowed without a token (the client as the trusted proxy reports it).
    #[serde(default = "loopback")]
    pub allow: Vec<ipnet::IpNet>,
    /// With `Authorization: Bearer TOKEN`, from anywhere. Better given in the environment
    /// (`COPER_METRICS_TOKEN`) than in the file.
    #[serde(default)]
    pub token: Option<String>,
}

fn loopback() -> Vec<ipnet::IpNet> {
    ["127.0.0.0/8", "::1/128"]
        .iter()
        .map(|net| net.parse().expect("valid network"))
        .collect()
}

impl Default for MetricsAccess {
    fn default() -> Self {
        Self {
            allow: loopback(),
            token: None,
        }
    }
}

impl MetricsAccess {
    /// Whether `client` may read the metrics. `proxies_trusted`: whether the server believes a
    /// proxy's `X-Forwarded-For` (so `client` is the real one). A request forwarded by a proxy
    /// the server was not told to trust (nginx in front, `trusted_proxies` forgotten) comes
    /// from loopback for everyone on the internet: then only the token opens.
    pub fn admits(&self, client: IpAddr, headers: &HeaderMap, proxies_trusted: bool) -> bool {
        let forwarded_blindly = !proxies_trusted && headers.contains_key("x-forwarded-for");
        if !forwarded_blindly && self.allow.iter().any(|net| net.contains(&client)) {
            return true;
        }
        let Some(token) = self.token.as_deref().filter(|t| !t.is_empty()) else {
            return false;
        };
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| {
                crate::accounts::constant_time_eq(given.as_bytes(), token.as_bytes())
            })
    }
}

/// Free bytes on the file system holding `path`, for an unprivileged process.
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a valid C string and `stat` a buffer of the right type for statvfs.
    let done = unsafe { libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) };
    if done != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it filled `stat`.
    let stat = unsafe { stat.assume_init() };
    Ok(stat.f_bavail * stat.f_frsize)
}

/// Seconds since the last successful `coper-server backup` of this data folder, if any.
fn backup_age(data_dir: &Path) -> Option<f64> {
    let modified = std::fs::metadata(data_dir.join(crate::config::LAST_BACKUP_FILE))
        .and_then(|m| m.modified())
        .ok()?;
    Some(modified.elapsed().unwrap_or_default().as_secs_f64())
}

fn gauge(registry: &mut Registry, name: &str, help: &str, value: i64) {
    let g = Gauge::<i64>::default();
    g.set(value);
    registry.register(name, help, g);
}

/// A scrape that failed: the cause in the log, a plain 500 to the scraper.
fn failed(error: &dyn std::fmt::Display) -> Response {
    tracing::error!(%error, "metrics failed");
    (StatusCode::INTERNAL_SERVER_ERROR, "errore interno\n").into_response()
}

/// `GET /metrics`.
pub async fn metrics(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let proxies_trusted = !state.limits.trusted_proxies.is_empty();
    if !state
        .metrics_access
        .admits(peer.ip(), &headers, proxies_trusted)
    {
        return (StatusCode::FORBIDDEN, "metriche non consentite da qui\n").into_response();
    }
    let now = state.clock.now();
    let figures = state
        .db
        .read(move |conn| {
            let figures = crate::store::metrics::figures(conn, now)?;
            let bytes = crate::store::metrics::database_bytes(conn)?;
            Ok::<_, crate::store::StoreError>((figures, bytes))
        })
        .await;
    let (figures, database_bytes) = match figures {
        Ok(figures) => figures,
        Err(e) => return failed(&e),
    };
    let mut registry = Registry::with_prefix("coper");
    let decided = Family::<Vec<(String, String)>, Counter>::default();
    for (outcome, count) in &figures.verdicts {
        decided
            .get_or_create(&vec![("outcome".to_owned(), outcome.clone())])
            .inc_by(u64::try_from(*count).unwrap_or(0));
    }
    registry.register(
        "bookings_decided",
        "Kiosks' booking requests decided, by outcome, since the database was made",
        decided,
    );
    registry.register_with_unit(
        "decision",
        "From a kiosk's outbox reaching the server to its requests decided and committed",
        Unit::Seconds,
        state.sync.metrics.decision_seconds.clone(),
    );
    let sessions = state.sync.connected_kiosks();
    gauge(
        &mut registry,
        "kiosks_connected",
        "Kiosks with a sync session now",
        sessions as i64,
    );
    gauge(
        &mut registry,
        "kiosks_enrolled",
        "Kiosks enrolled and not revoked",
        figures.kiosks_enrolled,
    );
    gauge(
        &mut registry,
        "kiosks_silent",
        "Kiosks not heard from for longer than the settings' kiosk_silent_minutes",
        figures.kiosks_silent,
    );
    gauge(
        &mut registry,
        "kiosks_silent_after_seconds",
        "How long a kiosk may be silent before it counts as silent",
        figures.silent_after_minutes * 60,
    );
    gauge(
        &mut registry,
        "requests_pending",
        "Kiosks' outboxes received and waiting for the writer to decide them",
        state.sync.outboxes_waiting() as i64,
    );
    gauge(
        &mut registry,
        "notices_queued",
        "Messages to people waiting to be sent",
        figures.notices_queued,
    );
    gauge(
        &mut registry,
        "notices_failed",
        "Messages to people given up after their last attempt",
        figures.notices_failed,
    );
    gauge(
        &mut registry,
        "database_bytes",
        "Size of the database (pages in use)",
        database_bytes,
    );
    if let Some(data_dir) = &state.data_dir {
        if let Some(age) = backup_age(data_dir) {
            gauge(
                &mut registry,
                "backup_age_seconds",
                "Seconds since the last successful coper-server backup",
                age as i64,
            );
        }
        if let Ok(free) = free_bytes(data_dir) {
            gauge(
                &mut registry,
                "disk_free_bytes",
                "Free bytes where the data folder is",
                free as i64,
            );
        }
    }
    let mut body = String::new();
    if let Err(e) = encode(&mut body, &registry) {
        return failed(&e);
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// `GET /healthz/ready`: 200 when the database takes a write transaction and the data folder's
/// disk has more than `[limits] ready_min_free_bytes` free; 503 with the reason otherwise. (`GET
/// /healthz` is only "up": the process answers.)
pub async fn ready(State(state): State<AppState>) -> Response {
    let writable = tokio::time::timeout(Duration::from_secs(3), state.db.writable()).await;
    let database = match writable {
        Ok(Ok(())) => "writable",
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready: the database refuses writes");
            "not_writable"
        }
        Err(_) => "busy",
    };
    let free = state.data_dir.as_deref().map(free_bytes).transpose();
    let (disk, free) = match free {
        Ok(Some(free)) if free < state.limits.ready_min_free_bytes => ("low", Some(free)),
        Ok(free) => ("ok", free),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: free space unknown");
            ("unknown", None)
        }
    };
    let ready = database == "writable" && disk == "ok";
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        axum::Json(serde_json::json!({
            "status": if ready { "ready" } else { "not_ready" },
            "database": database,
            "disk": disk,
            "free_bytes": free,
        })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_admit_the_allowed_addresses_or_the_token_only() {
        let access = MetricsAccess {
            token: Some("s3cret-token".into()),
            ..MetricsAccess::default()
        };
        let none = HeaderMap::new();
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(access.admits(loopback, &none, false));
        assert!(access.admits("::1".parse().unwrap(), &none, false));
        let outside: IpAddr = "203.0.113.9".parse().unwrap();
        assert!(!access.admits(outside, &none, false));
        // Through a proxy the server does not trust, loopback is anyone: the token only.
        let mut forwarded = HeaderMap::new();
        forwarded.insert("x-forwarded-for", "203.0.113.9".parse().unwrap());
        assert!(!access.admits(loopback, &forwarded, false));
        assert!(access.admits(loopback, &forwarded, true));
        let mut bearer = HeaderMap::new();
        bearer.insert(
            header::AUTHORIZATION,
            "Bearer s3cret-token".parse().unwrap(),
        );
        assert!(access.admits(outside, &bearer, false));
        bearer.insert(header::AUTHORIZATION, "Bearer wrong".parse().unwrap());
        assert!(!access.admits(outside, &bearer, false));
        let empty = MetricsAccess {
            token: Some(String::new()),
            ..MetricsAccess::default()
        };
        bearer.insert(header::AUTHORIZATION, "Bearer ".parse().unwrap());
        assert!(
            !empty.admits(outside, &bearer, false),
            "an empty token opens nothing"
        );
    }
}
