//! The built-in web UI: a small single-page app (plain HTML, CSS and JavaScript modules, no
//! external resources) compiled into the binary with `include_str!` and served at `/`.
//!
//! | path | what |
//! | --- | --- |
//! | `/` | the page (`ui/index.html`) |
//! | `/ui/js/{file}` | its ES modules (`ui/js/*.js`; `main.js` imports the others) |
//! | `/ui/style.css` | its style |
//!
//! The pages (overview with the waiting jobs, jobs, job, history, schedules and a schedule's
//! runs, workflow runs and a run's DAG, dead letters, cost) are drawn in the browser from the
//! JSON API: `/v1/cluster`, `/v1/queues`, `/v1/jobs` (and a job's log, followed with `tail` then
//! `offset`), `/v1/history`, `/v1/schedules`, `/v1/workflows`, `/v1/workflow-runs`, `/v1/dlq`,
//! `/v1/cost`, `/v1/cost/runs`, `/v1/advice`, and `/v1/choices` for the pick-lists. Every call carries the token the user signed in with.

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::state::AppState;

const INDEX_HTML: &str = include_str!("../ui/index.html");
const STYLE_CSS: &str = include_str!("../ui/style.css");

/// The UI's JavaScript modules, by file name.
const MODULES: &[(&str, &str)] = &[
    ("main.js", include_str!("../ui/js/main.js")),
    ("util.js", include_str!("../ui/js/util.js")),
    ("api.js", include_str!("../ui/js/api.js")),
    ("forms.js", include_str!("../ui/js/forms.js")),
    ("charts.js", include_str!("../ui/js/charts.js")),
    ("overview.js", include_str!("../ui/js/overview.js")),
    ("jobs.js", include_str!("../ui/js/jobs.js")),
    ("job.js", include_str!("../ui/js/job.js")),
    ("history.js", include_str!("../ui/js/history.js")),
    ("schedules.js", include_str!("../ui/js/schedules.js")),
    ("dlq.js", include_str!("../ui/js/dlq.js")),
    ("cost.js", include_str!("../ui/js/cost.js")),
    ("dag.js", include_str!("../ui/js/dag.js")),
    ("workflows.js", include_str!("../ui/js/workflows.js")),
];

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // Small files that change with the binary: always revalidate.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn module(Path(file): Path<String>) -> Response {
    match MODULES.iter().find(|(name, _)| *name == file) {
        Some((_, body)) => asset("text/javascript; charset=utf-8", body),
        None => (
            StatusCode::NOT_FOUND,
            format!("the web UI has no module {file:?}"),
        )
            .into_response(),
    }
}

async fn style_css() -> Response {
    asset("text/css; charset=utf-8", STYLE_CSS)
}

/// The routes of the UI.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/ui/js/{file}", get(module))
        .route("/ui/style.css", get(style_css))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_load_nothing_from_elsewhere() {
        let files = [("index.html", INDEX_HTML), ("style.css", STYLE_CSS)];
        for (name, text) in files.iter().chain(MODULES) {
            for needle in ["http://", "https://", "//cdn", "@import"] {
                assert!(!text.contains(needle), "{name} mentions {needle}");
            }
        }
        assert!(INDEX_HTML.contains("/ui/js/main.js") && INDEX_HTML.contains("/ui/style.css"));
    }

    #[test]
    fn every_module_imported_is_served_and_none_is_too_long() {
        for (name, text) in MODULES {
            for line in text.lines() {
                let Some(rest) = line.split(" from \"./").nth(1) else {
                    continue;
                };
                let imported = rest.split('"').next().unwrap_or_default();
                assert!(
                    MODULES.iter().any(|(n, _)| *n == imported),
                    "{name} imports {imported}, which ui.rs does not serve"
                );
            }
            assert!(text.lines().count() <= 900, "{name} is over 900 lines");
        }
    }
}
