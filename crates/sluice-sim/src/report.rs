//! The report: a plain-text table (for a terminal) and a self-contained HTML page with inline
//! SVG charts (no script, nothing fetched), comparing the policies side by side.

mod svg;

use std::fmt::Write;

use crate::stats::{Summary, Waits};
use svg::esc;

/// A duration for people: "0s", "45s", "12m 05s", "3h 02m", "2d 04h".
pub fn fmt_ms(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else if s < 86_400 {
        format!("{}h {:02}m", s / 3600, (s % 3600) / 60)
    } else {
        format!("{}d {:02}h", s / 86_400, (s % 86_400) / 3600)
    }
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// One column of the comparison: its header and the value of one summary.
type Column = (&'static str, fn(&Summary) -> String);

/// The comparison's columns.
fn columns() -> Vec<Column> {
    vec![
        ("policy", |s| s.policy.to_string()),
        ("ran", |s| s.ran.to_string()),
        ("refused", |s| s.refused.to_string()),
        ("never ran", |s| s.never_ran.to_string()),
        ("half-started", |s| s.half_started.to_string()),
        ("restarts", |s| s.restarts.to_string()),
        ("preempted", |s| s.preempted.to_string()),
        ("idle core-h", |s| format!("{:.1}", s.idle_core_hours)),
        ("utilisation", |s| pct(s.utilisation)),
        ("held", |s| pct(s.held_utilisation)),
        ("util. when waiting", |s| pct(s.contended_utilisation)),
        ("util. in window", |s| {
            s.window_utilisation.map_or("-".to_string(), pct)
        }),
        ("wait p50", |s| fmt_ms(s.waits.p50_ms)),
        ("wait p95", |s| fmt_ms(s.waits.p95_ms)),
        ("wait max", |s| fmt_ms(s.waits.max_ms)),
        ("starvation", |s| fmt_ms(s.starvation_ms)),
        ("makespan", |s| fmt_ms(s.makespan_ms)),
        ("ETA error (mean)", |s| {
            s.eta
                .as_ref()
                .map_or("-".to_string(), |e| fmt_ms(e.mean_abs_error_ms))
        }),
        ("ETA within 20%", |s| {
            s.eta
                .as_ref()
                .map_or("-".to_string(), |e| pct(e.within_20pct))
        }),
        ("aged over bound", |s| {
            s.aging.as_ref().map_or("-".to_string(), |a| {
                format!(
                    "{}/{}, {} past A+L (max {} after aging)",
                    a.over_bound,
                    a.aged,
                    a.over_a_plus_l,
                    fmt_ms(a.max_after_aging_ms)
                )
            })
        }),
        ("extra wait vs strict", |s| {
            s.vs_strict
                .as_ref()
                .map_or("-".to_string(), |v| fmt_ms(v.max_extra_wait_ms))
        }),
    ]
}

fn table(header: &[String], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let line = |cells: &[String]| -> String {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = width[i]))
            .collect();
        parts.join("  ").trim_end().to_string()
    };
    let mut out = line(header);
    out.push('\n');
    for r in rows {
        out.push_str(&line(r));
        out.push('\n');
    }
    out
}

fn waits_row(name: &str, w: &Waits) -> Vec<String> {
    vec![
        name.to_string(),
        w.count.to_string(),
        fmt_ms(w.p50_ms),
        fmt_ms(w.p95_ms),
        fmt_ms(w.max_ms),
    ]
}

/// The plain-text report: the comparison, then each policy's waits and shares.
pub fn text(summaries: &[Summary]) -> String {
    let cols = columns();
    let header: Vec<String> = cols.iter().map(|c| c.0.to_string()).collect();
    let rows: Vec<Vec<String>> = summaries
        .iter()
        .map(|s| cols.iter().map(|c| (c.1)(s)).collect())
        .collect();
    let mut out = table(&header, &rows);
    let wh: Vec<String> = ["", "jobs", "p50", "p95", "max"].map(String::from).to_vec();
    for s in summaries {
        let _ = writeln!(out, "\n== {} ({} cycles)", s.policy, s.cycles);
        let mut rows = Vec::new();
        for (l, w) in &s.by_level {
            rows.push(waits_row(&format!("level {l}"), w));
        }
        for (n, w) in &s.by_namespace {
            rows.push(waits_row(&format!("namespace {n}"), w));
        }
        out.push_str(&table(&wh, &rows));
        let sh: Vec<String> = [
            "namespace",
            "weight",
            "weight share",
            "share when contended",
        ]
        .map(String::from)
        .to_vec();
        let rows: Vec<Vec<String>> = s
            .shares
            .iter()
            .map(|x| {
                vec![
                    x.namespace.clone(),
                    x.weight.to_string(),
                    pct(x.weight_share),
                    pct(x.contended_share),
                ]
            })
            .collect();
        out.push_str(&table(&sh, &rows));
    }
    out
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;max-width:1100px}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;\
text-align:right}th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}\
svg{display:block;margin:1em 0}";

fn html_table(header: &[String], rows: &[Vec<String>]) -> String {
    let mut out = String::from("<table><tr>");
    for h in header {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("</tr>");
    for r in rows {
        out.push_str("<tr>");
        for c in r {
            let _ = write!(out, "<td>{}</td>", esc(c));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
    out
}

/// The HTML report: one self-contained page.
pub fn html(title: &str, summaries: &[Summary]) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title><style>{STYLE}</style></head><body><h1>{t}</h1>",
        t = esc(title)
    );
    let cols = columns();
    let header: Vec<String> = cols.iter().map(|c| c.0.to_string()).collect();
    let rows: Vec<Vec<String>> = summaries
        .iter()
        .map(|s| cols.iter().map(|c| (c.1)(s)).collect())
        .collect();
    out.push_str("<h2>Side by side</h2>");
    out.push_str(&html_table(&header, &rows));
    out.push_str(
        "<p><b>half-started</b>: jobs that held some pods while others could not be placed. \
         <b>utilisation</b>: mean dominant share of the cluster held by jobs whose every pod \
         runs, from the first submit to the makespan's end; <b>util. when waiting</b>: the same \
         over the time some job was waiting; <b>util. in window</b>: over the hours of the \
         daily batch window (<code>--window</code>) within the makespan. <b>held</b>: by any \
         pod, half-started ones included. <b>starvation</b>: the \
         longest wait of a job that fit the empty cluster. See docs/scheduling.md.</p>",
    );
    let names: Vec<String> = summaries.iter().map(|s| s.policy.to_string()).collect();
    let x_max = summaries
        .iter()
        .map(|s| s.makespan_ms)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let hours = |x: f64| fmt_ms(x as i64);
    let series = |f: fn(&crate::stats::Bucket) -> f64| -> Vec<(String, Vec<(f64, f64)>)> {
        summaries
            .iter()
            .zip(&names)
            .map(|(s, n)| {
                let pts = s
                    .series
                    .iter()
                    .map(|b| ((b.at_ms as f64).min(x_max), f(b)))
                    .collect();
                (n.clone(), pts)
            })
            .collect()
    };
    out.push_str("<h2>Over time</h2>");
    out.push_str(&svg::lines(
        "Utilisation (doing work)",
        &series(|b| b.busy),
        x_max,
        &hours,
        &|y| pct(y),
    ));
    out.push_str(&svg::lines(
        "Held by pods (doing work or half-started)",
        &series(|b| b.held),
        x_max,
        &hours,
        &|y| pct(y),
    ));
    out.push_str(&svg::lines(
        "Jobs waiting",
        &series(|b| b.waiting),
        x_max,
        &hours,
        &|y| format!("{y:.0}"),
    ));
    out.push_str("<h2>Waits</h2>");
    if let Some(first) = summaries.first() {
        let levels: Vec<String> = first.by_level.iter().map(|l| l.0.clone()).collect();
        let p95: Vec<(String, Vec<f64>)> = summaries
            .iter()
            .map(|s| {
                (
                    s.policy.to_string(),
                    s.by_level.iter().map(|l| l.1.p95_ms as f64).collect(),
                )
            })
            .collect();
        out.push_str(&svg::bars("Wait p95 by level", &levels, &p95, &|y| {
            fmt_ms(y as i64)
        }));
        let ns: Vec<String> = first.by_namespace.iter().map(|l| l.0.clone()).collect();
        let p95: Vec<(String, Vec<f64>)> = summaries
            .iter()
            .map(|s| {
                (
                    s.policy.to_string(),
                    s.by_namespace.iter().map(|l| l.1.p95_ms as f64).collect(),
                )
            })
            .collect();
        out.push_str(&svg::bars("Wait p95 by namespace", &ns, &p95, &|y| {
            fmt_ms(y as i64)
        }));
        // The policies keep their colours; the weight comes last.
        let mut share: Vec<(String, Vec<f64>)> = summaries
            .iter()
            .map(|s| {
                (
                    s.policy.to_string(),
                    s.shares.iter().map(|x| x.contended_share).collect(),
                )
            })
            .collect();
        share.push((
            "weight".to_string(),
            first.shares.iter().map(|x| x.weight_share).collect(),
        ));
        out.push_str("<h2>Share against weight</h2>");
        out.push_str(&svg::bars(
            "Share of the cluster while jobs waited, against weight",
            &ns,
            &share,
            &|y| pct(y),
        ));
    }
    out.push_str("<h2>Half-started jobs</h2>");
    out.push_str(&svg::bars(
        "Jobs that held pods while others waited",
        &names,
        &[(
            "half-started".to_string(),
            summaries.iter().map(|s| s.half_started as f64).collect(),
        )],
        &|y| format!("{y:.0}"),
    ));
    for s in summaries {
        let _ = write!(out, "<h2>Policy {}</h2>", esc(s.policy.as_str()));
        let wh: Vec<String> = ["", "jobs", "p50", "p95", "max"].map(String::from).to_vec();
        let mut rows = Vec::new();
        for (l, w) in &s.by_level {
            rows.push(waits_row(&format!("level {l}"), w));
        }
        for (n, w) in &s.by_namespace {
            rows.push(waits_row(&format!("namespace {n}"), w));
        }
        out.push_str(&html_table(&wh, &rows));
        let outcomes: Vec<String> = s.outcomes.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = write!(
            out,
            "<p>{} cycles; runs by outcome: {}</p>",
            s.cycles,
            esc(&outcomes.join(", "))
        );
    }
    out.push_str("</body></html>\n");
    out
}
