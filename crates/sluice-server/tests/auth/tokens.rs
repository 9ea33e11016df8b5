//! Tokens over their life (expired, revoked, never stored in plaintext, the bootstrap token),
//! authentication off only on loopback, the audit log, and public metrics.

use super::*;

#[tokio::test]
async fn expired_and_revoked_tokens_get_401_at_once() {
    let e = env().await;
    let r = &e.router;
    let (t, id) = token(&e, &["a=viewer"], Some("1h")).await;
    let (s, _) = as_(r, &t, "GET", "/v1/jobs", "").await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = as_(r, &e.admin, "POST", &format!("/v1/tokens/{id}/revoke"), "").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["active"], false);
    // The very next request is refused: nothing caches the token.
    let (s, v, www) = send(r, "GET", "/v1/jobs", "", Some(&t), &[]).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert!(v["error"].as_str().unwrap().contains("revoked"), "{v}");
    assert!(www.starts_with("Bearer"));
    // Expired: a token whose expiry has passed.
    let now = e.state.now_ms();
    let (_, secret) = create_token(
        &e.state,
        "short-lived",
        vec![Binding::new("a", AccessRole::Viewer).unwrap()],
        Some(now + 200),
        None,
    )
    .await
    .unwrap();
    let (s, _) = as_(r, &secret, "GET", "/v1/jobs", "").await;
    assert_eq!(s, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (s, v) = as_(r, &secret, "GET", "/v1/jobs", "").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert!(v["error"].as_str().unwrap().contains("expired"), "{v}");
    // Unknown, malformed and missing tokens.
    for (h, want) in [
        (Some("sluice_0000"), "unknown token"),
        (Some("not-a-token"), "unknown token"),
        (None, "no bearer token"),
    ] {
        let (s, v, _) = send(r, "GET", "/v1/jobs", "", h, &[]).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{h:?}");
        assert!(v["error"].as_str().unwrap().contains(want), "{h:?}: {v}");
    }
    let (s, v, _) = send(
        r,
        "GET",
        "/v1/jobs",
        "",
        None,
        &[("authorization", "Basic eDp5")],
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    // Bad token requests name the field.
    for (body, word) in [
        (json!({"subject": "x", "bindings": ["a=root"]}), "root"),
        (json!({"subject": "x", "bindings": []}), "bindings"),
        (json!({"subject": "x", "bindings": ["Bad=viewer"]}), "Bad"),
        (
            json!({"subject": "x", "bindings": ["a=viewer"], "expires": "soon"}),
            "expires",
        ),
        (json!({"subject": "", "bindings": ["a=viewer"]}), "subject"),
        (
            json!({"subject": "x", "bindings": ["a=viewer"], "admin": true}),
            "admin",
        ),
    ] {
        let (s, v) = as_(r, &e.admin, "POST", "/v1/tokens", &body.to_string()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert!(v["error"].as_str().unwrap().contains(word), "{body}: {v}");
    }
}

#[tokio::test]
async fn tokens_are_not_stored_in_plaintext() {
    let e = env().await;
    let (secret, id) = token(&e, &["a=viewer"], None).await;
    let hex = &secret["sluice_".len()..];
    // The list shows neither the secret nor its hash.
    let (s, v) = as_(&e.router, &e.admin, "GET", "/v1/tokens", "").await;
    assert_eq!(s, StatusCode::OK);
    let listed = v.to_string();
    assert!(listed.contains(&id));
    let hash = sluice_server::auth::token::secret_hash(&secret);
    for needle in [hex, hash.as_str(), common::admin_token(&e.state).as_str()] {
        assert!(!listed.contains(needle), "the token list shows {needle}");
    }
    // Every byte the database keeps (the file and its write-ahead log): no secret anywhere, the
    // hash is there.
    e.state.store.close().await;
    let mut bytes = Vec::new();
    for f in std::fs::read_dir(e.dir.path()).unwrap() {
        let p = f.unwrap().path();
        if p.file_name().unwrap().to_string_lossy().starts_with("s.db") {
            bytes.extend(std::fs::read(&p).unwrap());
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains(&hash), "the hash is stored");
    assert!(!text.contains(hex), "the secret is stored in plaintext");
    let admin_hex = common::admin_token(&e.state)["sluice_".len()..].to_string();
    assert!(
        !text.contains(&admin_hex),
        "the admin secret is stored in plaintext"
    );
}

#[tokio::test]
async fn authentication_off_only_on_loopback_and_never_for_other_sites() {
    let mut c = Config {
        listen: "0.0.0.0:7467".into(),
        ..Config::default()
    };
    c.auth.enabled = false;
    let err = c.validate().unwrap_err().to_string();
    assert!(
        err.contains("auth.enabled") && err.contains("loopback"),
        "{err}"
    );
    c.listen = "[::1]:7467".into();
    c.validate().unwrap();
    let e = env_with(|c| c.auth.enabled = false).await;
    let r = &e.router;
    // No token needed; the caller is anonymous.
    let (s, v, _) = send(r, "POST", "/v1/jobs", &job("j", "a"), None, &[]).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (_, v, _) = send(
        r,
        "GET",
        "/v1/whoami",
        "",
        None,
        &[("host", "127.0.0.1:7467")],
    )
    .await;
    assert_eq!(v["actor"], "anonymous");
    assert_eq!(v["auth_enabled"], false);
    // A name that resolves to this host (DNS rebinding), and other sites: refused.
    for headers in [
        vec![("host", "attacker.example:7467")],
        vec![
            ("host", "127.0.0.1:7467"),
            ("origin", "http://attacker.example"),
        ],
        vec![("host", "127.0.0.1:7467"), ("sec-fetch-site", "cross-site")],
    ] {
        for (m, uri, body) in [
            ("GET", "/v1/jobs", ""),
            ("POST", "/v1/jobs", job("x", "a").leak() as &str),
        ] {
            let (s, v, _) = send(r, m, uri, body, None, &headers).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{m} {uri} {headers:?}: {v}");
        }
    }
    let n = e
        .state
        .store
        .list_jobs(&Default::default(), 10, None)
        .await
        .unwrap()
        .jobs
        .len();
    assert_eq!(n, 1, "nothing was submitted by the refused requests");
    // The same checks with authentication on: a stolen admin token used from another site.
    let on = env().await;
    let (s, v, _) = send(
        &on.router,
        "POST",
        "/v1/jobs",
        &job("x", "a"),
        Some(&on.admin),
        &[
            ("host", "127.0.0.1:7467"),
            ("origin", "http://attacker.example"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
}

#[tokio::test]
async fn the_audit_log_records_who_did_what_where_and_from_where() {
    let e = env().await;
    let r = &e.router;
    let (t, tid) = token(&e, &["a=submitter"], None).await;
    // A submit from a known peer address.
    let peer: SocketAddr = "10.1.2.3:40000".parse().unwrap();
    let mut req = Request::builder()
        .method("POST")
        .uri("/v1/jobs")
        .header("authorization", format!("Bearer {t}"))
        .header("content-type", "application/yaml")
        .body(Body::from(job("audited", "a")))
        .unwrap();
    req.extensions_mut().insert(ConnectInfo(peer));
    let resp = r.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let id = serde_json::from_slice::<Value>(&bytes).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, _) = as_(r, &t, "POST", &format!("/v1/jobs/{id}/cancel"), "").await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = as_(r, &e.admin, "GET", "/v1/audit", "").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let entries = v.as_array().unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .map(|x| x["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["job.cancel", "job.submit", "token.create"], "{v}");
    let submit = &entries[1];
    assert_eq!(submit["actor"], tid.as_str());
    assert_eq!(submit["namespace"], "a");
    assert_eq!(submit["target"], id.as_str());
    assert_eq!(submit["peer"], "10.1.2.3:40000");
    assert!(submit["at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        entries[2]["target"],
        tid.as_str(),
        "the token change is audited"
    );
    // Filters.
    let (_, v) = as_(
        r,
        &e.admin,
        "GET",
        &format!("/v1/audit?actor={tid}&action=job.cancel"),
        "",
    )
    .await;
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
    let (s, _) = as_(r, &e.admin, "GET", "/v1/audit?limit=0", "").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // Retention: the roll-up step of a tick drops entries older than audit_retention_days.
    let (_, v) = as_(r, &e.admin, "GET", "/v1/audit", "").await;
    assert_eq!(v.as_array().unwrap().len(), 3);
    let old = sluice_store::AuditEntry {
        id: "00000000000000000000000000".into(),
        at_ms: e.state.now_ms() - 91 * 86_400_000,
        actor: "tok_old".into(),
        subject: "old".into(),
        action: "job.submit".into(),
        namespace: Some("a".into()),
        target: None,
        detail: None,
        peer: None,
    };
    e.state.store.record_audit(&old).await.unwrap();
    tick(&e.state).await.unwrap();
    let (_, v) = as_(r, &e.admin, "GET", "/v1/audit?actor=tok_old", "").await;
    assert!(v.as_array().unwrap().is_empty(), "{v}");
    let (_, v) = as_(r, &e.admin, "GET", "/v1/audit", "").await;
    assert_eq!(v.as_array().unwrap().len(), 3, "{v}");
    // At most one purge a minute (AUDIT_PURGE_EVERY_MS): a tick right after leaves the next
    // old entry for a later one.
    let again = sluice_store::AuditEntry {
        id: "00000000000000000000000001".into(),
        actor: "tok_old2".into(),
        ..old
    };
    e.state.store.record_audit(&again).await.unwrap();
    tick(&e.state).await.unwrap();
    let (_, v) = as_(r, &e.admin, "GET", "/v1/audit?actor=tok_old2", "").await;
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
}

#[tokio::test]
async fn the_bootstrap_token_is_written_once_and_private() {
    let e = env().await;
    let path = e.state.config.auth.token_path(&e.state.config.data_dir);
    assert_eq!(path, e.dir.path().join("admin.token"));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let (s, v) = as_(&e.router, &e.admin, "GET", "/v1/whoami", "").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["admin"], true);
    assert_eq!(v["subject"], "bootstrap-admin");
    // A restart does not make another token, nor touch the file.
    assert_eq!(bootstrap(&e.state).await.unwrap(), None);
    assert_eq!(common::admin_token(&e.state), e.admin);
    // A token file removed on purpose stays removed.
    std::fs::remove_file(&path).unwrap();
    assert_eq!(bootstrap(&e.state).await.unwrap(), None);
    assert!(!path.exists());
    assert_eq!(e.state.store.count_tokens().await.unwrap(), 1);
}

#[tokio::test]
async fn metrics_can_be_made_public() {
    let e = env_with(|c| c.auth.metrics_public = true).await;
    let (s, _, _) = send(&e.router, "GET", "/metrics", "", None, &[]).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = send(&e.router, "GET", "/v1/cluster", "", None, &[]).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}
