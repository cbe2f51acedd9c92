//! `GET /charts/STAT.svg`: a statistic per minute over the last three hours, as an SVG
//! bar chart drawn here (no chart library, no script: the dashboard shows it as an image
//! and its script reloads it every minute).

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use gannet_core::clock::unix_now;

use super::pages::LoggedIn;
use super::{secure, AdminState};

/// Minutes shown.
const MINUTES: usize = 180;
const WIDTH: usize = 540;
const HEIGHT: usize = 120;

/// The statistics with a chart, and their titles.
pub(super) const CHARTS: [(&str, &str); 6] = [
    ("messages_accepted", "Messages accepted"),
    ("messages_refused", "Messages refused after DATA"),
    ("messages_junk", "Copies filed as spam (Junk)"),
    ("messages_quarantined", "Messages quarantined"),
    ("messages_queued", "Messages queued out"),
    ("messages_delivered_remote", "Messages delivered out"),
];

pub(super) async fn chart(
    State(state): State<Arc<AdminState>>,
    LoggedIn(_caller): LoggedIn,
    Path(file): Path<String>,
) -> Response {
    let Some((stat, title)) = file
        .strip_suffix(".svg")
        .and_then(|name| CHARTS.iter().find(|(s, _)| *s == name))
    else {
        return secure((StatusCode::NOT_FOUND, "no such chart").into_response());
    };
    let now = unix_now().div_euclid(60);
    let first = now - MINUTES as i64 + 1;
    let counts = match state.store.stat_per_minute(stat, first, MINUTES) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "chart: store read failed");
            return secure((StatusCode::SERVICE_UNAVAILABLE, "store unavailable").into_response());
        }
    };
    secure(
        (
            [(header::CONTENT_TYPE, "image/svg+xml")],
            svg(title, &counts),
        )
            .into_response(),
    )
}

/// Bars, one a minute, scaled to the largest; its title, total and peak as text.
fn svg(title: &str, counts: &[i64]) -> String {
    let peak = counts.iter().copied().max().unwrap_or(0);
    let scale = peak.max(1) as f64;
    let total: i64 = counts.iter().sum();
    let top = 22;
    let plot = HEIGHT - top - 16;
    let bar = WIDTH as f64 / counts.len().max(1) as f64;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"{title}\">\
         <rect width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"#fff\"/>\
         <text x=\"4\" y=\"15\" font-family=\"sans-serif\" font-size=\"13\" fill=\"#123\">{title}: \
         {total} in 3 h, peak {peak}/min</text>"
    );
    for (i, &n) in counts.iter().enumerate() {
        if n <= 0 {
            continue;
        }
        let h = (n as f64 / scale * plot as f64).max(1.0);
        let _ = write!(
            out,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"#2a6fb0\"/>",
            i as f64 * bar,
            (top + plot) as f64 - h,
            (bar - 0.5).max(0.5)
        );
    }
    let base = top + plot;
    let _ = write!(
        out,
        "<line x1=\"0\" y1=\"{base}\" x2=\"{WIDTH}\" y2=\"{base}\" stroke=\"#889\"/>\
         <text x=\"2\" y=\"{}\" font-family=\"sans-serif\" font-size=\"11\" fill=\"#567\">3 h ago</text>\
         <text x=\"{}\" y=\"{}\" font-family=\"sans-serif\" font-size=\"11\" fill=\"#567\" text-anchor=\"end\">now</text></svg>",
        HEIGHT - 3,
        WIDTH - 2,
        HEIGHT - 3
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_has_a_bar_for_each_busy_minute() {
        let svg = svg("Messages accepted", &[0, 3, 0, 6]);
        assert_eq!(svg.matches("fill=\"#2a6fb0\"").count(), 2);
        assert!(svg.contains("9 in 3 h, peak 6/min"));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }
}
