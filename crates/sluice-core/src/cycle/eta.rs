//! Start-time estimates (ETA) for queued jobs: the cycle run forward in virtual time from the
//! current state, with every job taking its expected run time. Pure, like the cycle: `now` and
//! the expected ends are inputs. The estimate is as good as the run-time estimates and assumes
//! nothing new is submitted.

use std::collections::BTreeMap;

use crate::capacity::Snapshot;
use crate::cycle::backfill::{RunningJob, expected_end};
use crate::cycle::{Candidate, CycleInput, Timing, schedule_at};
use crate::job::Resources;

/// The estimated start of each candidate (by index into [`CycleInput::candidates`]), ms; `None`
/// for a job that does not start within `max_cycles` forward cycles, or never (its room is held
/// by something not expected to end, or the backend is unavailable).
///
/// Each step runs [`schedule_at`] at the current virtual time over the jobs not yet started,
/// starts what it admits (their expected ends join the running jobs), then moves to the next
/// expected end and gives that job's room back. Running jobs already past their expected end
/// are taken to end `overrun_margin_ms` after `now`, as backfill does.
pub fn estimate_starts(
    input: &CycleInput<'_>,
    timing: &Timing<'_>,
    max_cycles: usize,
) -> Vec<Option<i64>> {
    let n = input.candidates.len();
    let mut eta: Vec<Option<i64>> = vec![None; n];
    if !input.snapshot.available {
        return eta;
    }
    let now = timing.now_ms;
    let margin = timing.backfill.overrun_margin_ms;
    let mut running: Vec<RunningJob> = timing
        .running
        .iter()
        .map(|r| RunningJob {
            end_ms: expected_end(r.end_ms, now, margin),
            ..r.clone()
        })
        .collect();
    let mut snapshot: Snapshot = input.snapshot.clone();
    let mut held: BTreeMap<String, Resources> = input.held.clone();
    let mut left: Vec<usize> = (0..n).collect();
    let mut t = now;
    for _ in 0..max_cycles {
        if left.is_empty() {
            break;
        }
        let cands: Vec<Candidate> = left.iter().map(|&i| input.candidates[i].clone()).collect();
        let expected: Vec<Option<i64>> = left
            .iter()
            .map(|&i| timing.expected_ms.get(i).copied().flatten())
            .collect();
        let max_runtime: Vec<Option<i64>> = left
            .iter()
            .map(|&i| timing.max_runtime_ms.get(i).copied().flatten())
            .collect();
        let out = schedule_at(
            &CycleInput {
                candidates: &cands,
                snapshot: &snapshot,
                held: &held,
                ..*input
            },
            &Timing {
                now_ms: t,
                expected_ms: &expected,
                max_runtime_ms: &max_runtime,
                running: &running,
                ..*timing
            },
        );
        let mut started = vec![false; left.len()];
        for a in &out.admitted {
            let i = left[a.index];
            let job = &input.candidates[i];
            eta[i] = Some(t);
            started[a.index] = true;
            let run_ms = expected[a.index]
                .unwrap_or(timing.backfill.default_runtime_ms)
                .max(0);
            let mut run = RunningJob::placed(t.saturating_add(run_ms), &job.demand, &a.placement);
            run.namespace = job.namespace.clone();
            for (node, pod) in &run.pods {
                if let Some(nd) = snapshot.nodes.get_mut(*node) {
                    nd.cpu_milli = nd.cpu_milli.saturating_sub(pod.cpu_milli);
                    nd.mem_mib = nd.mem_mib.saturating_sub(pod.mem_mib);
                    nd.pods = nd.pods.map(|p| p.saturating_sub(1));
                }
            }
            let h = held.entry(job.namespace.clone()).or_default();
            *h = h.plus(&job.demand.total());
            running.push(run);
        }
        let mut k = 0;
        left.retain(|_| {
            k += 1;
            !started[k - 1]
        });
        // The next expected end: its room comes back.
        let Some(next) = running.iter().map(|r| r.end_ms).min() else {
            break;
        };
        t = next.max(t.saturating_add(1));
        let (ended, still): (Vec<RunningJob>, Vec<RunningJob>) =
            running.into_iter().partition(|r| r.end_ms <= t);
        running = still;
        for r in ended {
            let mut total = Resources::default();
            for (node, pod) in &r.pods {
                total = total.plus(pod);
                if let Some(nd) = snapshot.nodes.get_mut(*node) {
                    nd.cpu_milli = nd.cpu_milli.saturating_add(pod.cpu_milli);
                    nd.mem_mib = nd.mem_mib.saturating_add(pod.mem_mib);
                    nd.pods = nd.pods.map(|p| p.saturating_add(1));
                }
            }
            if let Some(h) = held.get_mut(&r.namespace) {
                *h = h.minus(&total);
            }
        }
    }
    eta
}

#[cfg(test)]
mod tests;
