//! Live views in the terminal: `sluice top` (queues, running and waiting jobs, cluster
//! utilisation) and the progress `sluice submit --wait` prints while it follows a job.
//!
//! Both only read the API. Rendering is split from fetching so that frames and progress lines
//! are plain functions of what the server said.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::time::{Duration, SystemTime};

use anyhow::Result;
use sluice_api::cluster::ClusterView;
use sluice_api::{JobList, JobView, QueueView};

use crate::{Client, fmt_cpu, fmt_mem, is_terminal};

/// How many waiting jobs `top` lists.
const TOP_WAITING: usize = 10;

/// Everything one frame of `top` shows.
pub struct TopData {
    /// Queues by namespace and level.
    pub queues: Vec<QueueView>,
    /// Capacity and allocation.
    pub cluster: ClusterView,
    /// Admitted, submitted and running jobs.
    pub active: Vec<JobView>,
    /// Queued jobs (with their positions when a cycle has seen them).
    pub queued: Vec<JobView>,
}

async fn fetch_top(c: &Client) -> Result<TopData> {
    let active_q = [
        ("state", "admitted,submitted,running".to_string()),
        ("limit", "1000".to_string()),
    ];
    let queued_q = [
        ("state", "queued".to_string()),
        ("limit", "1000".to_string()),
    ];
    let (queues, cluster, active, queued) = tokio::try_join!(
        c.get::<Vec<QueueView>>("/v1/queues", &[]),
        c.get::<ClusterView>("/v1/cluster", &[]),
        c.get::<JobList>("/v1/jobs", &active_q),
        c.get::<JobList>("/v1/jobs", &queued_q),
    )?;
    Ok(TopData {
        queues,
        cluster,
        active: active.jobs,
        queued: queued.jobs,
    })
}

/// `sluice top`: prints a frame every `interval` (clearing the screen on a terminal), or one
/// frame with `once`.
pub async fn top(c: &Client, server: &str, interval: Duration, once: bool) -> Result<()> {
    let tty = std::io::stdout().is_terminal();
    loop {
        let data = fetch_top(c).await?;
        let frame = render_top(&data, server, SystemTime::now());
        let mut out = std::io::stdout();
        if tty && !once {
            // Home the cursor and clear the screen, then draw.
            out.write_all(b"\x1b[H\x1b[2J")?;
        }
        out.write_all(frame.as_bytes())?;
        if !once {
            writeln!(
                out,
                "\nrefreshing every {}; ctrl-c to quit",
                fmt_secs(interval.as_secs_f64())
            )?;
        }
        out.flush()?;
        if once {
            return Ok(());
        }
        tokio::time::sleep(interval).await;
    }
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".to_string()
    } else {
        format!("{:.0}%", part as f64 * 100.0 / whole as f64)
    }
}

fn secs_since(rfc: &str, now: SystemTime) -> Option<f64> {
    let t = humantime::parse_rfc3339_weak(rfc).ok()?;
    Some(
        now.duration_since(t)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0),
    )
}

/// Seconds from `now` until an RFC 3339 time (0 once it has passed).
fn secs_until(rfc: &str, now: SystemTime) -> Option<f64> {
    let t = humantime::parse_rfc3339_weak(rfc).ok()?;
    Some(
        t.duration_since(now)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0),
    )
}

fn secs_between(from: &str, to: &str) -> Option<f64> {
    let a = humantime::parse_rfc3339_weak(from).ok()?;
    let b = humantime::parse_rfc3339_weak(to).ok()?;
    Some(b.duration_since(a).map(|d| d.as_secs_f64()).unwrap_or(0.0))
}

/// "0.4s", "12.3s", "2m03s", "1h02m", "3d04h".
pub fn fmt_secs(s: f64) -> String {
    let s = s.max(0.0);
    if s < 60.0 {
        return format!("{s:.1}s");
    }
    let whole = s as u64;
    match whole {
        w if w < 3600 => format!("{}m{:02}s", w / 60, w % 60),
        w if w < 86_400 => format!("{}h{:02}m", w / 3600, (w % 3600) / 60),
        w => format!("{}d{:02}h", w / 86_400, (w % 86_400) / 3600),
    }
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// One frame of `sluice top` as text.
pub fn render_top(d: &TopData, server: &str, now: SystemTime) -> String {
    let mut o = String::new();
    let c = &d.cluster;
    let _ = writeln!(
        o,
        "sluice top  {server}  {}",
        humantime::format_rfc3339_seconds(now)
    );
    let _ = writeln!(
        o,
        "backend {}: {}   cpu {} of {} cores ({})   memory {} of {} ({})   reservations {}",
        c.backend,
        if c.backend_available { "up" } else { "DOWN" },
        fmt_cpu(c.allocated_cpu_milli),
        fmt_cpu(c.capacity_cpu_milli),
        pct(c.allocated_cpu_milli, c.capacity_cpu_milli),
        fmt_mem(c.allocated_memory_mib),
        fmt_mem(c.capacity_memory_mib),
        pct(c.allocated_memory_mib, c.capacity_memory_mib),
        c.reservations
    );

    // Per namespace: what it holds and what it has waiting.
    let mut queued_by_ns: BTreeMap<&str, u64> = BTreeMap::new();
    for q in &d.queues {
        *queued_by_ns.entry(q.namespace.as_str()).or_default() += q.queued;
    }
    let mut namespaces: Vec<&str> = queued_by_ns.keys().copied().collect();
    for n in &c.namespaces {
        if !namespaces.contains(&n.namespace.as_str()) {
            namespaces.push(&n.namespace);
        }
    }
    namespaces.sort_unstable();
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "{:<20}  {:>12}  {:>16}  {:>7}  {:>7}  {:>6}",
        "NAMESPACE", "CPU", "MEMORY", "RUNNING", "STARTING", "QUEUED"
    );
    if namespaces.is_empty() {
        let _ = writeln!(o, "(no jobs running or waiting)");
    }
    for ns in &namespaces {
        let u = c.namespaces.iter().find(|n| n.namespace == *ns);
        let (cpu, mem, running, starting) = u
            .map(|u| {
                (
                    u.cpu_milli,
                    u.memory_mib,
                    u.running,
                    u.admitted + u.submitted,
                )
            })
            .unwrap_or((0, 0, 0, 0));
        let _ = writeln!(
            o,
            "{:<20}  {:>12}  {:>16}  {:>7}  {:>7}  {:>6}",
            clip(ns, 20),
            format!("{} ({})", fmt_cpu(cpu), pct(cpu, c.capacity_cpu_milli)),
            format!("{} ({})", fmt_mem(mem), pct(mem, c.capacity_memory_mib)),
            running,
            starting,
            queued_by_ns.get(ns).copied().unwrap_or(0)
        );
    }

    let _ = writeln!(o);
    let _ = writeln!(o, "QUEUES");
    let _ = writeln!(
        o,
        "{:<20}  {:<10}  {:>6}  {:>11}",
        "NAMESPACE", "LEVEL", "QUEUED", "OLDEST WAIT"
    );
    if d.queues.is_empty() {
        let _ = writeln!(o, "(all queues empty)");
    }
    for q in &d.queues {
        let _ = writeln!(
            o,
            "{:<20}  {:<10}  {:>6}  {:>11}",
            clip(&q.namespace, 20),
            clip(&q.level, 10),
            q.queued,
            fmt_secs(q.oldest_wait_seconds)
        );
    }

    let _ = writeln!(o);
    let _ = writeln!(o, "RUNNING ({})", d.active.len());
    let _ = writeln!(
        o,
        "{:<26}  {:<16}  {:<20}  {:<8}  {:<9}  {:>6}  {:>9}  {:>8}",
        "ID", "NAMESPACE", "NAME", "LEVEL", "STATE", "CPU", "MEMORY", "ELAPSED"
    );
    let mut active: Vec<&JobView> = d.active.iter().collect();
    active.sort_by(|a, b| (&a.namespace, &a.id).cmp(&(&b.namespace, &b.id)));
    for j in active {
        let since = j.started_at.as_deref().unwrap_or(&j.updated_at);
        let _ = writeln!(
            o,
            "{:<26}  {:<16}  {:<20}  {:<8}  {:<9}  {:>6}  {:>9}  {:>8}",
            j.id,
            clip(&j.namespace, 16),
            clip(&j.name, 20),
            clip(&j.level, 8),
            j.state,
            fmt_cpu(j.demand.total_cpu_milli),
            fmt_mem(j.demand.total_memory_mib),
            secs_since(since, now).map(fmt_secs).unwrap_or_default()
        );
    }

    // Waiting jobs in the order they will be considered: by namespace, then position.
    let mut queued: Vec<&JobView> = d.queued.iter().collect();
    queued.sort_by(|a, b| {
        let pa = a.wait.as_ref().map(|w| w.position).unwrap_or(u32::MAX);
        let pb = b.wait.as_ref().map(|w| w.position).unwrap_or(u32::MAX);
        (pa, &a.namespace, &a.enqueued_at).cmp(&(pb, &b.namespace, &b.enqueued_at))
    });
    let _ = writeln!(o);
    let shown = queued.len().min(TOP_WAITING);
    if queued.len() > shown {
        let _ = writeln!(o, "WAITING ({}, first {shown})", queued.len());
    } else {
        let _ = writeln!(o, "WAITING ({})", queued.len());
    }
    let _ = writeln!(
        o,
        "{:>4}  {:<26}  {:<16}  {:<20}  {:<8}  {:>7}  {:>8}  REASON",
        "POS", "ID", "NAMESPACE", "NAME", "LEVEL", "WAITED", "STARTS"
    );
    for j in queued.into_iter().take(shown) {
        let (pos, reason) = match &j.wait {
            Some(w) => (w.position.to_string(), w.reason.clone()),
            None => ("-".to_string(), "not yet considered by a cycle".to_string()),
        };
        // The estimated start, from now ("-": no estimate).
        let starts = j
            .wait
            .as_ref()
            .and_then(|w| w.estimated_start.as_deref())
            .and_then(|t| secs_until(t, now))
            .map(|s| format!("in {}", fmt_secs(s)))
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(
            o,
            "{:>4}  {:<26}  {:<16}  {:<20}  {:<8}  {:>7}  {:>8}  {}",
            pos,
            j.id,
            clip(&j.namespace, 16),
            clip(&j.name, 20),
            clip(&j.level, 8),
            secs_since(&j.enqueued_at, now)
                .map(fmt_secs)
                .unwrap_or_default(),
            starts,
            clip(&reason, 100)
        );
    }
    o
}

/// What the follower has already printed about a job.
#[derive(Default)]
pub struct Progress {
    /// Timeline entries printed so far.
    events_seen: usize,
    /// The last queue position and reason printed.
    last_wait: Option<(u32, u32, String)>,
}

impl Progress {
    /// The lines to print for this new look at the job: new timeline entries (state changes
    /// with the time since submission), and for a queued job its position and reason when they
    /// change.
    pub fn lines(&mut self, j: &JobView) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(tl) = &j.timeline {
            for e in tl.iter().skip(self.events_seen) {
                let at = secs_between(&j.created_at, &e.at).unwrap_or(0.0);
                out.push(format!("[{:>7}] {:<9}  {}", fmt_secs(at), e.to, e.message));
            }
            self.events_seen = self.events_seen.max(tl.len());
        }
        if j.state == "queued" {
            if let Some(w) = &j.wait {
                let key = (w.position, w.level_position, w.reason.clone());
                if self.last_wait.as_ref() != Some(&key) {
                    let at = secs_since(&j.created_at, SystemTime::now()).unwrap_or(0.0);
                    out.push(format!(
                        "[{:>7}] {:<9}  position {} in namespace {} ({} in level {}): {}",
                        fmt_secs(at),
                        "waiting",
                        w.position,
                        j.namespace,
                        w.level_position,
                        j.level,
                        w.reason
                    ));
                    self.last_wait = Some(key);
                }
            }
        } else {
            self.last_wait = None;
        }
        out
    }
}

/// Whether the job has ended for good: a terminal state and, for a failed job, its failure
/// settled by the server (a retried job goes back to `queued`; one that is not retried gets a
/// failure class, and lands in the dead-letter queue).
pub fn ended(j: &JobView) -> bool {
    if !is_terminal(&j.state) {
        return false;
    }
    match &j.orchestration {
        Some(o) if j.state == "failed" => o.failure_class.is_some() || o.dead_lettered_at.is_some(),
        _ => true,
    }
}

/// The closing line: outcome, total time, time queued and time run; the attempt when it was
/// not the first, and the reason when the job went to the dead-letter queue.
pub fn summary(j: &JobView) -> String {
    let end = j.finished_at.as_deref().unwrap_or(&j.updated_at);
    let total = secs_between(&j.created_at, end).unwrap_or(0.0);
    let admitted_at = j
        .timeline
        .as_ref()
        .and_then(|tl| tl.iter().find(|e| e.to == "admitted").map(|e| e.at.clone()));
    let mut parts = Vec::new();
    if let Some(a) = &admitted_at {
        parts.push(format!(
            "queued {}",
            fmt_secs(secs_between(&j.created_at, a).unwrap_or(0.0))
        ));
    }
    if let Some(s) = &j.started_at {
        parts.push(format!(
            "ran {}",
            fmt_secs(secs_between(s, end).unwrap_or(0.0))
        ));
    }
    let mut line = format!("{} {} after {}", j.id, j.state, fmt_secs(total));
    if j.attempt > 1 {
        let _ = write!(line, " on attempt {}", j.attempt);
    }
    if !parts.is_empty() {
        let _ = write!(line, " ({})", parts.join(", "));
    }
    if j.state != "succeeded"
        && let Some(m) = &j.message
    {
        let _ = write!(line, ": {m}");
    }
    if let Some(o) = &j.orchestration
        && o.dead_lettered_at.is_some()
    {
        let why = o
            .dead_letter_reason
            .as_deref()
            .unwrap_or("no reason recorded");
        let _ = write!(line, "; dead-lettered ({why})");
    }
    line
}

/// Follows a job to its end, printing progress on standard error: every state change with the
/// time since submission, the queue position and reason while it waits, and on a terminal a
/// status line with the elapsed time. Returns the final view.
pub async fn follow(c: &Client, id: &str) -> Result<JobView> {
    let tty = std::io::stderr().is_terminal();
    let mut progress = Progress::default();
    let spinner = ['|', '/', '-', '\\'];
    let mut tick = 0usize;
    // A failed job the server has not settled yet (retry or dead letter) is looked at again,
    // for at most this many polls, before its failure is taken as the end.
    let mut unsettled_polls = 0u32;
    let mut err = std::io::stderr();
    loop {
        let j: JobView = c.get(&format!("/v1/jobs/{id}"), &[]).await?;
        let lines = progress.lines(&j);
        if tty {
            // Clear the status line before printing permanent lines.
            err.write_all(b"\r\x1b[2K")?;
        }
        for l in lines {
            writeln!(err, "{l}")?;
        }
        if is_terminal(&j.state) && !ended(&j) {
            unsettled_polls += 1;
        }
        if ended(&j) || (is_terminal(&j.state) && unsettled_polls > 60) {
            writeln!(err, "{}", summary(&j))?;
            err.flush()?;
            return Ok(j);
        }
        if tty {
            let elapsed = secs_since(&j.created_at, SystemTime::now()).unwrap_or(0.0);
            let detail = match &j.wait {
                Some(w) if j.state == "queued" => format!(
                    " · position {} in {} · {}",
                    w.position,
                    j.namespace,
                    clip(&w.reason, 60)
                ),
                _ => String::new(),
            };
            write!(
                err,
                "{} {} {}{}",
                spinner[tick % spinner.len()],
                j.state,
                fmt_secs(elapsed),
                detail
            )?;
            tick += 1;
        }
        err.flush()?;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_api::OrchView;
    use sluice_api::WaitInfo;
    use sluice_api::cluster::NamespaceUsage;
    use sluice_api::{DemandView, EventView};

    fn job(id: &str, state: &str, wait: Option<WaitInfo>) -> JobView {
        JobView {
            id: id.into(),
            namespace: "analytics".into(),
            name: format!("job-{id}"),
            level: "high".into(),
            state: state.into(),
            attempt: 1,
            labels: BTreeMap::new(),
            created_at: "2026-01-01T00:00:00.000Z".into(),
            enqueued_at: "2026-01-01T00:00:00.000Z".into(),
            updated_at: "2026-01-01T00:00:05.000Z".into(),
            started_at: None,
            finished_at: None,
            backend_ref: None,
            exit_code: None,
            message: None,
            demand: DemandView {
                pods: vec![],
                total_cpu_milli: 1500,
                total_memory_mib: 2048,
            },
            spec: serde_json::Value::Null,
            wait,
            timeline: None,
            orchestration: None,
            set_aside: None,
            results: None,
        }
    }

    fn ev(at: &str, from: Option<&str>, to: &str, msg: &str) -> EventView {
        EventView {
            at: at.into(),
            from: from.map(String::from),
            to: to.into(),
            message: msg.into(),
        }
    }

    #[test]
    fn secs_format() {
        assert_eq!(fmt_secs(0.42), "0.4s");
        assert_eq!(fmt_secs(59.94), "59.9s");
        assert_eq!(fmt_secs(123.0), "2m03s");
        assert_eq!(fmt_secs(3720.0), "1h02m");
        assert_eq!(fmt_secs(90_000.0), "1d01h");
        assert_eq!(fmt_secs(-3.0), "0.0s");
    }

    #[test]
    fn top_frame_shows_cluster_queues_running_and_waiting() {
        let now = humantime::parse_rfc3339_weak("2026-01-01T00:01:00Z").unwrap();
        let mut running = job("r1", "running", None);
        running.started_at = Some("2026-01-01T00:00:30.000Z".into());
        let waiting = job(
            "q1",
            "queued",
            Some(WaitInfo {
                reason: "needs 2 cores".into(),
                reason_kind: "no-room".into(),
                position: 1,
                level_position: 1,
                estimated_start: Some("2026-01-01T00:26:00.000Z".into()),
            }),
        );
        let d = TopData {
            queues: vec![QueueView {
                namespace: "analytics".into(),
                level: "high".into(),
                queued: 1,
                oldest_enqueued_at: "2026-01-01T00:00:00.000Z".into(),
                oldest_wait_seconds: 60.0,
            }],
            cluster: ClusterView {
                backend: "local".into(),
                backend_available: true,
                capacity_cpu_milli: 4000,
                capacity_memory_mib: 8192,
                allocated_cpu_milli: 1500,
                allocated_memory_mib: 2048,
                reservations: 0,
                namespaces: vec![NamespaceUsage {
                    namespace: "analytics".into(),
                    cpu_milli: 1500,
                    memory_mib: 2048,
                    admitted: 0,
                    submitted: 0,
                    running: 1,
                }],
            },
            active: vec![running],
            queued: vec![waiting],
        };
        let f = render_top(&d, "http://x", now);
        assert!(f.contains("backend local: up"), "{f}");
        assert!(f.contains("(38%)"), "{f}");
        assert!(f.contains("RUNNING (1)"), "{f}");
        let run_line = f.lines().find(|l| l.starts_with("r1")).expect(&f);
        assert!(
            run_line.contains("running") && run_line.contains("30.0s"),
            "{f}"
        );
        let wait_line = f.lines().find(|l| l.contains("q1 ")).expect(&f);
        assert!(wait_line.contains("needs 2 cores"), "{f}");
        assert!(wait_line.contains("in 25m00s"), "{f}");
        assert!(wait_line.trim_start().starts_with('1'), "{f}");
        assert!(f.contains("WAITING (1)"), "{f}");
        let q_line = f.lines().skip_while(|l| *l != "QUEUES").nth(2).expect(&f);
        assert!(
            q_line.contains("analytics") && q_line.contains("1m00s"),
            "{f}"
        );
    }

    #[test]
    fn progress_prints_each_event_once_and_wait_changes() {
        let mut p = Progress::default();
        let w = |pos| WaitInfo {
            reason: "needs 2 cores".into(),
            reason_kind: "no-room".into(),
            position: pos,
            level_position: pos,
            estimated_start: None,
        };
        let mut j = job("a", "queued", Some(w(2)));
        j.timeline = Some(vec![ev(
            "2026-01-01T00:00:00.000Z",
            None,
            "queued",
            "queued",
        )]);
        let l = p.lines(&j);
        assert_eq!(l.len(), 2, "{l:?}");
        assert!(l[0].contains("queued"), "{l:?}");
        assert!(l[1].contains("position 2 in namespace analytics"), "{l:?}");
        // Nothing new: nothing printed.
        assert!(p.lines(&j).is_empty());
        j.wait = Some(w(1));
        let l = p.lines(&j);
        assert_eq!(l.len(), 1);
        assert!(l[0].contains("position 1"), "{l:?}");
        j.state = "running".into();
        j.wait = None;
        if let Some(tl) = j.timeline.as_mut() {
            tl.push(ev(
                "2026-01-01T00:00:02.500Z",
                Some("queued"),
                "admitted",
                "admitted: placed",
            ));
        }
        let l = p.lines(&j);
        assert_eq!(l, vec!["[   2.5s] admitted   admitted: placed".to_string()]);
    }

    #[test]
    fn summary_names_outcome_and_times() {
        let mut j = job("a", "failed", None);
        j.started_at = Some("2026-01-01T00:00:02.000Z".into());
        j.finished_at = Some("2026-01-01T00:00:05.000Z".into());
        j.message = Some("failed: exit code 3".into());
        j.exit_code = Some(3);
        j.timeline = Some(vec![ev(
            "2026-01-01T00:00:01.000Z",
            Some("queued"),
            "admitted",
            "x",
        )]);
        assert_eq!(
            summary(&j),
            "a failed after 5.0s (queued 1.0s, ran 3.0s): failed: exit code 3"
        );
        // Unsettled without an orchestration view: ended; with one, only once settled.
        assert!(ended(&j));
        let mut o = OrchView {
            schedule: None,
            scheduled_for: None,
            attempt_in_round: 2,
            max_attempts: 2,
            retry_at: None,
            failure_class: None,
            dead_lettered_at: None,
            dead_letter_reason: None,
            max_queue_wait_seconds: None,
            preemptions: 0,
        };
        j.orchestration = Some(o.clone());
        assert!(!ended(&j));
        o.failure_class = Some("application".into());
        o.dead_lettered_at = Some("2026-01-01T00:00:05.000Z".into());
        o.dead_letter_reason = Some("no retry left, after 2 attempt(s)".into());
        j.orchestration = Some(o);
        j.attempt = 2;
        assert!(ended(&j));
        assert_eq!(
            summary(&j),
            "a failed after 5.0s on attempt 2 (queued 1.0s, ran 3.0s): failed: exit code 3; \
             dead-lettered (no retry left, after 2 attempt(s))"
        );
        j.state = "running".into();
        assert!(!ended(&j));
    }
}
