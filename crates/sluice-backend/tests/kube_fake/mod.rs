//! An in-process fake of the Kubernetes API server on 127.0.0.1, for the kube-rs client: list
//! and watch (newline-delimited watch events, resource versions, `410 Gone` for a watch that
//! resumes from a compacted version), create (with `generateName`, `dryRun=All`, 409 on a
//! duplicate), get, delete and pod logs, for nodes, pods, resourcequotas and
//! sparkapplications. Every JSON body has the real API's shape (`*List` kinds with
//! `metadata.resourceVersion`, `Status` errors with reason and code, `{"type", "object"}` watch
//! events).
//!
//! Objects get a `creationTimestamp` of the time they are created (whole seconds, as the real
//! API server writes it) unless they come with one.
//!
//! Tests change the world directly ([`FakeApi::put`], [`FakeApi::update`]) to play the parts
//! of the scheduler, the kubelet and the Spark Operator.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Method, Response, StatusCode, Uri};
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// One change, as a watch sends it.
#[derive(Debug, Clone)]
struct Ev {
    rv: u64,
    kind: &'static str,
    ns: String,
    type_: &'static str,
    object: Value,
}

/// A message to open watch streams.
#[derive(Debug, Clone)]
enum Msg {
    Event(Ev),
    /// Close every open watch (as an API server restart or a compaction would).
    CloseAll,
}

/// Decides on a create before it happens: `Some((code, reason, message))` refuses it.
pub type CreateHook = Box<dyn Fn(&str, &Value, bool) -> Option<(u16, String, String)> + Send>;

#[derive(Default)]
struct World {
    rv: u64,
    /// Watches that resume from a version below this get `410 Gone`.
    min_rv: u64,
    objects: BTreeMap<(&'static str, String, String), Value>,
    log: Vec<Ev>,
    logs: BTreeMap<(String, String), String>,
    requests: Vec<String>,
    hook: Option<CreateHook>,
    generated: u64,
    /// The operator's CRD is not installed: its API group is not served.
    no_crd: bool,
}

/// The fake API server.
pub struct FakeApi {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    world: Arc<Mutex<World>>,
    tx: broadcast::Sender<Msg>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn kind_name(kind: &str) -> (&'static str, &'static str) {
    match kind {
        "nodes" => ("v1", "Node"),
        "pods" => ("v1", "Pod"),
        "resourcequotas" => ("v1", "ResourceQuota"),
        "events" => ("events.k8s.io/v1", "Event"),
        _ => ("sparkoperator.k8s.io/v1beta2", "SparkApplication"),
    }
}

fn static_kind(kind: &str) -> Option<&'static str> {
    match kind {
        "nodes" => Some("nodes"),
        "pods" => Some("pods"),
        "resourcequotas" => Some("resourcequotas"),
        "sparkapplications" => Some("sparkapplications"),
        "events" => Some("events"),
        _ => None,
    }
}

/// A `Status` error body, as the API server sends it.
pub fn status_body(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code
    })
}

fn respond(code: u16, body: &Value) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// Whether an object's labels satisfy a selector like `a=b,c!=d,e`.
fn selector_matches(selector: &str, obj: &Value) -> bool {
    let labels = obj.pointer("/metadata/labels");
    let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    selector.split(',').filter(|s| !s.is_empty()).all(|term| {
        if let Some((k, v)) = term.split_once("!=") {
            get(k.trim()) != Some(v.trim())
        } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            get(k.trim()) == Some(v.trim())
        } else if let Some(k) = term.strip_prefix('!') {
            get(k.trim()).is_none()
        } else {
            get(term.trim()).is_some()
        }
    })
}

fn query_map(uri: &Uri) -> BTreeMap<String, String> {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let h = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(h, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What a request path names: kind, namespace, name, subresource.
type Target = (&'static str, Option<String>, Option<String>, Option<String>);

/// (kind, namespace, name, subresource) from a request path.
fn parse_path(path: &str) -> Option<Target> {
    let rest = path
        .strip_prefix("/api/v1/")
        .or_else(|| path.strip_prefix("/apis/sparkoperator.k8s.io/v1beta2/"))
        .or_else(|| path.strip_prefix("/apis/events.k8s.io/v1/"))?;
    let parts: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    match parts.as_slice() {
        [kind] => Some((static_kind(kind)?, None, None, None)),
        ["namespaces", ns, kind] => Some((static_kind(kind)?, Some(ns.to_string()), None, None)),
        ["namespaces", ns, kind, name] => Some((
            static_kind(kind)?,
            Some(ns.to_string()),
            Some(name.to_string()),
            None,
        )),
        ["namespaces", ns, kind, name, sub] => Some((
            static_kind(kind)?,
            Some(ns.to_string()),
            Some(name.to_string()),
            Some(sub.to_string()),
        )),
        _ => None,
    }
}

/// The time now as the API server writes it (RFC 3339, whole seconds, UTC).
pub fn rfc3339_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days since 1970-01-01 to a civil date (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

impl World {
    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn stamp(&mut self, kind: &'static str, ns: &str, obj: &mut Value) -> u64 {
        let rv = self.next_rv();
        let (api, k) = kind_name(kind);
        let m = obj.as_object_mut().expect("an object");
        m.insert("apiVersion".into(), json!(api));
        m.insert("kind".into(), json!(k));
        let meta = m.entry("metadata").or_insert(json!({}));
        let meta = meta.as_object_mut().expect("metadata object");
        meta.insert("resourceVersion".into(), json!(rv.to_string()));
        meta.entry("uid").or_insert(json!(format!("uid-{rv}")));
        meta.entry("creationTimestamp")
            .or_insert(json!(rfc3339_now()));
        if kind != "nodes" {
            meta.insert("namespace".into(), json!(ns));
        }
        rv
    }

    fn record(&mut self, tx: &broadcast::Sender<Msg>, ev: Ev) {
        self.log.push(ev.clone());
        let _ = tx.send(Msg::Event(ev));
    }
}

impl FakeApi {
    /// Starts the fake on a free port of 127.0.0.1.
    pub async fn start() -> FakeApi {
        let world = Arc::new(Mutex::new(World::default()));
        let (tx, _) = broadcast::channel(4096);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (w, t) = (world.clone(), tx.clone());
        let app = Router::new().fallback(move |method: Method, uri: Uri, body: Bytes| {
            let (w, t) = (w.clone(), t.clone());
            async move { handle(w, t, method, uri, body).await }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeApi {
            url,
            world,
            tx,
            task,
        }
    }

    /// A kube client talking to this fake.
    pub fn client(&self) -> kube::Client {
        sluice_backend::kubernetes::install_crypto_provider();
        let config = kube::Config::new(self.url.parse().unwrap());
        sluice_backend::kubernetes::client_from_config(config).unwrap()
    }

    /// Creates or replaces an object (namespace "" for nodes), sending the watch event.
    pub fn put(&self, kind: &'static str, ns: &str, mut obj: Value) {
        let mut w = self.world.lock().unwrap();
        let name = obj["metadata"]["name"].as_str().unwrap().to_string();
        let key = (kind, ns.to_string(), name);
        let type_ = if w.objects.contains_key(&key) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        let rv = w.stamp(kind, ns, &mut obj);
        w.objects.insert(key, obj.clone());
        let ev = Ev {
            rv,
            kind,
            ns: ns.to_string(),
            type_,
            object: obj,
        };
        w.record(&self.tx, ev);
    }

    /// Changes an object in place, sending a MODIFIED event; false if there is no such object.
    pub fn update(
        &self,
        kind: &'static str,
        ns: &str,
        name: &str,
        f: impl FnOnce(&mut Value),
    ) -> bool {
        let obj = {
            let w = self.world.lock().unwrap();
            w.objects
                .get(&(kind, ns.to_string(), name.to_string()))
                .cloned()
        };
        let Some(mut obj) = obj else { return false };
        f(&mut obj);
        self.put(kind, ns, obj);
        true
    }

    /// Removes an object, sending a DELETED event.
    pub fn remove(&self, kind: &'static str, ns: &str, name: &str) -> bool {
        let mut w = self.world.lock().unwrap();
        let Some(mut obj) = w.objects.remove(&(kind, ns.to_string(), name.to_string())) else {
            return false;
        };
        let rv = w.next_rv();
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        let ev = Ev {
            rv,
            kind,
            ns: ns.to_string(),
            type_: "DELETED",
            object: obj,
        };
        w.record(&self.tx, ev);
        true
    }

    /// Removes an object without any watch event, then compacts the history and closes every
    /// watch: resuming watches get `410 Gone` and only a fresh list shows the change.
    pub fn remove_during_compaction(&self, kind: &'static str, ns: &str, name: &str) {
        let mut w = self.world.lock().unwrap();
        w.objects.remove(&(kind, ns.to_string(), name.to_string()));
        let rv = w.next_rv();
        w.min_rv = rv;
        w.log.clear();
        let _ = self.tx.send(Msg::CloseAll);
    }

    /// The object, if it exists.
    pub fn get(&self, kind: &'static str, ns: &str, name: &str) -> Option<Value> {
        let w = self.world.lock().unwrap();
        w.objects
            .get(&(kind, ns.to_string(), name.to_string()))
            .cloned()
    }

    /// Every object of a kind in a namespace.
    pub fn list(&self, kind: &'static str, ns: &str) -> Vec<Value> {
        let w = self.world.lock().unwrap();
        w.objects
            .iter()
            .filter(|((k, n, _), _)| *k == kind && n == ns)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Sets the text of a pod's log.
    pub fn set_log(&self, ns: &str, pod: &str, text: &str) {
        let mut w = self.world.lock().unwrap();
        w.logs
            .insert((ns.to_string(), pod.to_string()), text.to_string());
    }

    /// Installs a hook that may refuse creates.
    pub fn on_create(&self, hook: CreateHook) {
        self.world.lock().unwrap().hook = Some(hook);
    }

    /// Stops serving the SparkApplication API (as a cluster without the operator's CRD).
    pub fn uninstall_crd(&self) {
        self.world.lock().unwrap().no_crd = true;
    }

    /// Every request so far, as "METHOD path?query".
    pub fn requests(&self) -> Vec<String> {
        self.world.lock().unwrap().requests.clone()
    }
}

async fn handle(
    world: Arc<Mutex<World>>,
    tx: broadcast::Sender<Msg>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response<Body> {
    world.lock().unwrap().requests.push(format!(
        "{method} {}",
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("")
    ));
    let q = query_map(&uri);
    let no_crd = world.lock().unwrap().no_crd;
    if no_crd && uri.path().starts_with("/apis/sparkoperator.k8s.io/") {
        return respond(
            404,
            &status_body(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ),
        );
    }
    if method == Method::GET
        && uri.path().trim_end_matches('/') == "/apis/sparkoperator.k8s.io/v1beta2"
    {
        // Discovery: the resources of the group version.
        return respond(
            200,
            &json!({
                "kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": "sparkoperator.k8s.io/v1beta2",
                "resources": [{
                    "name": "sparkapplications", "singularName": "sparkapplication",
                    "namespaced": true, "kind": "SparkApplication",
                    "verbs": ["create", "delete", "get", "list", "watch"]
                }]
            }),
        );
    }
    let Some((kind, ns, name, sub)) = parse_path(uri.path()) else {
        return respond(
            404,
            &status_body(404, "NotFound", &format!("no route {}", uri.path())),
        );
    };
    let selector = q.get("labelSelector").cloned().unwrap_or_default();
    match (method, name, sub) {
        (Method::GET, None, None) if q.get("watch").map(String::as_str) == Some("true") => {
            let from: u64 = q
                .get("resourceVersion")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            watch(world, tx, kind, ns, selector, from)
        }
        (Method::GET, None, None) => {
            let w = world.lock().unwrap();
            let items: Vec<Value> = w
                .objects
                .iter()
                .filter(|((k, n, _), v)| {
                    *k == kind
                        && ns.as_ref().is_none_or(|ns| ns == n)
                        && selector_matches(&selector, v)
                })
                .map(|(_, v)| v.clone())
                .collect();
            let (api, k) = kind_name(kind);
            respond(
                200,
                &json!({
                    "apiVersion": api, "kind": format!("{k}List"),
                    "metadata": {"resourceVersion": w.rv.to_string()},
                    "items": items
                }),
            )
        }
        (Method::GET, Some(name), None) => {
            let w = world.lock().unwrap();
            match w.objects.get(&(kind, ns.unwrap_or_default(), name.clone())) {
                Some(v) => respond(200, v),
                None => respond(
                    404,
                    &status_body(404, "NotFound", &format!("{kind} \"{name}\" not found")),
                ),
            }
        }
        (Method::GET, Some(name), Some(sub)) if sub == "log" => {
            let w = world.lock().unwrap();
            let ns = ns.unwrap_or_default();
            if !w.objects.contains_key(&("pods", ns.clone(), name.clone())) {
                return respond(
                    404,
                    &status_body(404, "NotFound", &format!("pods \"{name}\" not found")),
                );
            }
            let mut text = w.logs.get(&(ns, name)).cloned().unwrap_or_default();
            if let Some(limit) = q.get("limitBytes").and_then(|l| l.parse::<usize>().ok()) {
                text.truncate(limit);
            }
            Response::builder()
                .status(200)
                .header("content-type", "text/plain")
                .body(Body::from(text))
                .unwrap()
        }
        (Method::POST, None, None) => {
            let ns = ns.unwrap_or_default();
            let mut obj: Value = match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(e) => return respond(400, &status_body(400, "BadRequest", &e.to_string())),
            };
            let dry_run = q.get("dryRun").map(String::as_str) == Some("All");
            let mut w = world.lock().unwrap();
            if let Some(hook) = &w.hook
                && let Some((code, reason, message)) = hook(kind, &obj, dry_run)
            {
                return respond(code, &status_body(code, &reason, &message));
            }
            let name = match obj.pointer("/metadata/name").and_then(Value::as_str) {
                Some(n) => n.to_string(),
                None => match obj
                    .pointer("/metadata/generateName")
                    .and_then(Value::as_str)
                {
                    Some(g) => {
                        w.generated += 1;
                        let n = format!("{g}{:05x}", w.generated);
                        obj["metadata"]["name"] = json!(n);
                        n
                    }
                    None => {
                        return respond(
                            422,
                            &status_body(422, "Invalid", "metadata.name: Required value"),
                        );
                    }
                },
            };
            let key = (kind, ns.clone(), name.clone());
            if w.objects.contains_key(&key) {
                return respond(
                    409,
                    &status_body(
                        409,
                        "AlreadyExists",
                        &format!("{kind}.{} \"{name}\" already exists", kind_name(kind).1),
                    ),
                );
            }
            if dry_run {
                w.stamp(kind, &ns, &mut obj);
                return respond(201, &obj);
            }
            let rv = w.stamp(kind, &ns, &mut obj);
            w.objects.insert(key, obj.clone());
            let ev = Ev {
                rv,
                kind,
                ns,
                type_: "ADDED",
                object: obj.clone(),
            };
            w.record(&tx, ev);
            respond(201, &obj)
        }
        (Method::DELETE, Some(name), None) => {
            let ns = ns.unwrap_or_default();
            let mut w = world.lock().unwrap();
            match w.objects.remove(&(kind, ns.clone(), name.clone())) {
                Some(mut obj) => {
                    let rv = w.next_rv();
                    obj["metadata"]["resourceVersion"] = json!(rv.to_string());
                    let ev = Ev {
                        rv,
                        kind,
                        ns,
                        type_: "DELETED",
                        object: obj.clone(),
                    };
                    w.record(&tx, ev);
                    respond(200, &obj)
                }
                None => respond(
                    404,
                    &status_body(404, "NotFound", &format!("{kind} \"{name}\" not found")),
                ),
            }
        }
        _ => respond(
            405,
            &status_body(405, "MethodNotAllowed", "not supported by the fake"),
        ),
    }
}

fn watch(
    world: Arc<Mutex<World>>,
    tx: broadcast::Sender<Msg>,
    kind: &'static str,
    ns: Option<String>,
    selector: String,
    from: u64,
) -> Response<Body> {
    let wants = {
        let ns = ns.clone();
        let selector = selector.clone();
        move |ev: &Ev| {
            ev.kind == kind
                && ns.as_ref().is_none_or(|n| *n == ev.ns)
                && selector_matches(&selector, &ev.object)
        }
    };
    let line = |ev: &Ev| {
        Bytes::from(format!(
            "{}\n",
            json!({"type": ev.type_, "object": ev.object})
        ))
    };
    let (backlog, rx, gone) = {
        let w = world.lock().unwrap();
        let rx = tx.subscribe();
        if from < w.min_rv {
            (Vec::new(), rx, Some(w.min_rv))
        } else {
            let backlog: Vec<Ev> = w
                .log
                .iter()
                .filter(|e| e.rv > from && wants(e))
                .cloned()
                .collect();
            (backlog, rx, None)
        }
    };
    if let Some(min) = gone {
        let ev = json!({"type": "ERROR", "object": status_body(
            410, "Expired", &format!("too old resource version: {from} ({min})"))});
        return Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(Body::from(format!("{ev}\n")))
            .unwrap();
    }
    let last = backlog.last().map(|e| e.rv).unwrap_or(from);
    let first: Vec<Result<Bytes, Infallible>> = backlog.iter().map(|e| Ok(line(e))).collect();
    let live = futures::stream::unfold((rx, last), move |(mut rx, last)| {
        let wants = wants.clone();
        async move {
            loop {
                match rx.recv().await {
                    Ok(Msg::Event(ev)) if ev.rv > last && wants(&ev) => {
                        let rv = ev.rv;
                        let bytes = Bytes::from(format!(
                            "{}\n",
                            json!({"type": ev.type_, "object": ev.object})
                        ));
                        return Some((Ok::<Bytes, Infallible>(bytes), (rx, rv)));
                    }
                    Ok(Msg::Event(_)) => continue,
                    Ok(Msg::CloseAll) | Err(broadcast::error::RecvError::Closed) => return None,
                    Err(broadcast::error::RecvError::Lagged(_)) => return None,
                }
            }
        }
    });
    let stream = futures::stream::iter(first).chain(live);
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .unwrap()
}

use futures::StreamExt as _;

/// A Ready node with allocatable cpu, memory and pods, labels and taints.
pub fn node(name: &str, cpu: &str, memory: &str, pods: u32, labels: Value, taints: Value) -> Value {
    json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {"taints": taints},
        "status": {
            "allocatable": {"cpu": cpu, "memory": memory, "pods": pods.to_string()},
            "capacity": {"cpu": cpu, "memory": memory, "pods": pods.to_string()},
            "conditions": [{"type": "Ready", "status": "True"}]
        }
    })
}

/// A pod bound to `node` (or pending when `None`) with one container's requests.
pub fn pod(
    name: &str,
    node: Option<&str>,
    phase: &str,
    cpu: &str,
    memory: &str,
    labels: Value,
) -> Value {
    let mut spec = json!({
        "containers": [{"name": "c", "image": "busybox",
                        "resources": {"requests": {"cpu": cpu, "memory": memory}}}]
    });
    if let Some(n) = node {
        spec["nodeName"] = json!(n);
    }
    json!({
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
        "status": {"phase": phase}
    })
}
