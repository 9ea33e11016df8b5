use axum::http::StatusCode;
use axum::response::IntoResponse;
use http_body_util::BodyExt;
use sluice_core::job::JobState;
use sluice_store::StoreError;

use super::*;

async fn answer(e: StoreError) -> (StatusCode, Option<String>, String) {
    let resp = ApiError::from(e).into_response();
    let status = resp.status();
    let retry = resp
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, retry, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn store_errors_map_to_one_status_each() {
    let (s, retry, body) = answer(StoreError::NotFound("j1".into())).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(retry.is_none());
    assert!(body.contains("no job with id \\\"j1\\\""), "{body}");
    let (s, _, _) = answer(StoreError::NoSchedule {
        namespace: "ns".into(),
        name: "n".into(),
    })
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    for e in [
        StoreError::Conflict {
            id: "j1".into(),
            expected: JobState::Queued,
            actual: JobState::Running,
        },
        StoreError::Stale("schedule ns/n".into()),
        StoreError::NotDeadLettered("j1".into()),
        StoreError::Duplicate("j1".into()),
        StoreError::DuplicateSchedule {
            namespace: "ns".into(),
            name: "n".into(),
        },
    ] {
        assert_eq!(answer(e).await.0, StatusCode::CONFLICT);
    }
    let (s, _, body) = answer(StoreError::BadCursor("zz".into())).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body.contains("`cursor`"), "{body}");
    let (s, _, body) = answer(StoreError::BadQuery("`step` = 0 is too small".into())).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body.contains("`step`"), "{body}");
}

#[tokio::test]
async fn other_store_errors_are_a_generic_500_without_their_text() {
    let (s, retry, body) = answer(StoreError::Corrupt(
        "jobs.spec of job j1: SECRET-DRIVER-TEXT".into(),
    ))
    .await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(retry.is_none());
    assert!(!body.contains("SECRET-DRIVER-TEXT"), "{body}");
    assert!(body.contains(STORE_FAILED), "{body}");
}

#[tokio::test]
async fn unavailable_is_a_503_with_retry_after() {
    let resp = ApiError::Unavailable("backend unavailable: down".into()).into_response();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        resp.headers().get(header::RETRY_AFTER).unwrap(),
        &RETRY_AFTER_SECS.to_string()
    );
}
