//! The built-in web UI: a small single-page app (plain HTML, CSS and JavaScript, no external
//! resources) compiled into the binary with `include_str!` and served at `/`.
//!
//! | path | what |
//! | --- | --- |
//! | `/` | the page (`ui/index.html`) |
//! | `/ui/app.js`, `/ui/style.css` | its script and style |
//!
//! The pages (overview, jobs, job, history, schedules, dead letters) are drawn in the browser
//! from the JSON API: `/v1/cluster`, `/v1/queues`, `/v1/jobs`, `/v1/history`, `/v1/schedules`,
//! `/v1/dlq`. There is no login: the server listens on 127.0.0.1 unless configured otherwise.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::state::AppState;

const INDEX_HTML: &str = include_str!("../ui/index.html");
const APP_JS: &str = include_str!("../ui/app.js");
const STYLE_CSS: &str = include_str!("../ui/style.css");

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // Small files that change with the binary: always revalidate.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

async fn index() -> impl IntoResponse {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn app_js() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", APP_JS)
}

async fn style_css() -> impl IntoResponse {
    asset("text/css; charset=utf-8", STYLE_CSS)
}

/// The routes of the UI.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/ui/app.js", get(app_js))
        .route("/ui/style.css", get(style_css))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_load_nothing_from_elsewhere() {
        for (name, text) in [
            ("index.html", INDEX_HTML),
            ("app.js", APP_JS),
            ("style.css", STYLE_CSS),
        ] {
            for needle in ["http://", "https://", "//cdn", "@import"] {
                assert!(!text.contains(needle), "{name} mentions {needle}");
            }
        }
        assert!(INDEX_HTML.contains("/ui/app.js") && INDEX_HTML.contains("/ui/style.css"));
    }
}
