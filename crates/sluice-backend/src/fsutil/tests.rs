use std::sync::{Arc, Mutex};

use super::*;

#[test]
fn job_ids_as_directory_names() {
    assert!(valid_job_id("01JABC"));
    assert!(valid_job_id("a-b.c"));
    for bad in ["", ".", "..", "a/b", "/abs", "a\0b"] {
        assert!(!valid_job_id(bad), "{bad:?}");
    }
}

#[test]
fn job_ids_are_checked_strictly() {
    // What either of the two earlier checks refused, and more.
    for bad in [
        "./a",
        "a/..",
        "a/",
        "a\nb",
        "tab\there",
        "\u{7f}",
        "a\u{85}b",
    ] {
        assert!(!valid_job_id(bad), "{bad:?}");
    }
    assert!(valid_job_id(&"x".repeat(255)));
    assert!(!valid_job_id(&"x".repeat(256)));
    assert!(valid_job_id("01KBM9ZB6W0F8Y5S1Q4G1H2J3K"));
    assert!(valid_job_id("é-ü"));
}

#[tokio::test]
async fn write_atomic_replaces_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f");
    write_atomic(&p, b"one").await.unwrap();
    write_atomic(&p, b"two").await.unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), b"two");
    assert!(!dir.path().join("f.tmp").exists());
    let e = write_atomic(&dir.path().join("no/such/f"), b"x")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("writing") && e.contains("no/such/f"), "{e}");
}

#[test]
fn lock_survives_a_poisoned_mutex() {
    let m = Arc::new(Mutex::new(1));
    let m2 = Arc::clone(&m);
    let _ = std::thread::spawn(move || {
        let _g = m2.lock().unwrap();
        panic!("poison it");
    })
    .join();
    assert!(m.is_poisoned());
    *lock(&m) += 1;
    assert_eq!(*lock(&m), 2);
}

#[test]
fn now_ms_is_after_2020() {
    assert!(now_ms() > 1_577_836_800_000);
}
