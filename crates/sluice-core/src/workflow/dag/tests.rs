use proptest::prelude::*;

use super::*;
use StepStatus::{Active, Cancelled, Failed, Skipped, Succeeded, Waiting};

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// A DAG from (name, dependsOn, trigger) rows.
fn dag(rows: &[(&str, &[&str], Trigger)]) -> Result<Dag, DagError> {
    let deps: Vec<Vec<String>> = rows.iter().map(|(_, d, _)| names(d)).collect();
    Dag::new(
        rows.iter()
            .zip(&deps)
            .map(|((n, _, t), d)| (*n, d.as_slice(), *t)),
    )
}

/// extract -> (clean, enrich) -> report; alert (anyFailed) after report; tidy (always).
fn diamond() -> Dag {
    use Trigger::*;
    dag(&[
        ("extract", &[], AllSucceeded),
        ("clean", &["extract"], AllSucceeded),
        ("enrich", &["extract"], AllSucceeded),
        ("report", &["clean", "enrich"], AllSucceeded),
        ("alert", &["report"], AnyFailed),
        ("tidy", &["report"], Always),
    ])
    .expect("a valid DAG")
}

#[test]
fn bad_dags_are_refused_naming_the_steps() {
    use Trigger::AllSucceeded as A;
    type Rows<'a> = Vec<(&'a str, &'a [&'a str], Trigger)>;
    let cases: Vec<(Rows, DagError)> = vec![
        (
            vec![("a", &[], A), ("a", &[], A)],
            DagError::Duplicate("a".into()),
        ),
        (
            vec![("a", &["ghost"], A)],
            DagError::UnknownDependency {
                step: "a".into(),
                missing: "ghost".into(),
            },
        ),
        (
            vec![("a", &["c"], A), ("b", &["a"], A), ("c", &["b"], A)],
            DagError::Cycle(names(&["a", "c", "b", "a"])),
        ),
        (vec![("a", &["a"], A)], DagError::Cycle(names(&["a", "a"]))),
        (
            vec![("a", &[], Trigger::AnyFailed)],
            DagError::NeverTriggered("a".into()),
        ),
    ];
    for (rows, want) in cases {
        assert_eq!(dag(&rows), Err(want.clone()), "{rows:?}");
        assert!(!want.to_string().is_empty());
    }
    let cycle = DagError::Cycle(names(&["a", "c", "b", "a"])).to_string();
    assert!(cycle.contains("a -> c -> b -> a"), "{cycle}");
}

#[test]
fn the_diamond_advances_step_by_step() {
    let d = diamond();
    // (statuses, cancelling) -> (start, skip, cancel, outcome)
    type Row = (
        [StepStatus; 6],
        bool,
        Vec<usize>,
        Vec<usize>,
        Vec<usize>,
        Option<RunOutcome>,
    );
    let rows: Vec<Row> = vec![
        // Nothing started: only the root.
        ([Waiting; 6], false, vec![0], vec![], vec![], None),
        // The root runs: nothing else.
        (
            [Active, Waiting, Waiting, Waiting, Waiting, Waiting],
            false,
            vec![],
            vec![],
            vec![],
            None,
        ),
        // The root succeeded: both middle steps at once.
        (
            [Succeeded, Waiting, Waiting, Waiting, Waiting, Waiting],
            false,
            vec![1, 2],
            vec![],
            vec![],
            None,
        ),
        // One middle step done, the other running: report waits.
        (
            [Succeeded, Succeeded, Active, Waiting, Waiting, Waiting],
            false,
            vec![],
            vec![],
            vec![],
            None,
        ),
        // One middle step failed while the other runs: report is skipped at once; alert and
        // tidy can decide too (report is terminal: skipped).
        (
            [Succeeded, Failed, Active, Waiting, Waiting, Waiting],
            false,
            vec![5],
            vec![3, 4],
            vec![],
            None,
        ),
        // Report failed: alert (anyFailed) and tidy (always) start.
        (
            [Succeeded, Succeeded, Succeeded, Failed, Waiting, Waiting],
            false,
            vec![4, 5],
            vec![],
            vec![],
            None,
        ),
        // Report succeeded: alert is skipped, tidy starts.
        (
            [Succeeded, Succeeded, Succeeded, Succeeded, Waiting, Waiting],
            false,
            vec![5],
            vec![4],
            vec![],
            None,
        ),
        // Everything ended well (alert skipped): succeeded.
        (
            [
                Succeeded, Succeeded, Succeeded, Succeeded, Skipped, Succeeded,
            ],
            false,
            vec![],
            vec![],
            vec![],
            Some(RunOutcome::Succeeded),
        ),
        // A failure handled by alert still fails the run.
        (
            [
                Succeeded, Succeeded, Succeeded, Failed, Succeeded, Succeeded,
            ],
            false,
            vec![],
            vec![],
            vec![],
            Some(RunOutcome::Failed),
        ),
        // Cancelling: waiting steps are cancelled, running ones are left to the server.
        (
            [Succeeded, Active, Waiting, Waiting, Waiting, Waiting],
            true,
            vec![],
            vec![],
            vec![2, 3, 4, 5],
            None,
        ),
        // Cancelled once the last one ended.
        (
            [
                Succeeded, Cancelled, Cancelled, Cancelled, Cancelled, Cancelled,
            ],
            true,
            vec![],
            vec![],
            vec![],
            Some(RunOutcome::Cancelled),
        ),
    ];
    for (status, cancelling, start, skip, cancel, outcome) in rows {
        let got = advance(&d, &status, cancelling);
        let skipped: Vec<usize> = got.skip.iter().map(|(i, _)| *i).collect();
        assert_eq!(
            (&got.start, &skipped, &got.cancel, got.outcome),
            (&start, &skip, &cancel, outcome),
            "{status:?} cancelling={cancelling}"
        );
    }
}

#[test]
fn a_skip_names_the_upstream_step_and_why() {
    let d = diamond();
    let got = advance(
        &d,
        &[Succeeded, Failed, Active, Waiting, Waiting, Waiting],
        false,
    );
    assert_eq!(
        got.skip[0].1,
        "upstream step clean failed: trigger allSucceeded cannot hold"
    );
    assert!(
        got.skip[1].1.contains("anyFailed"),
        "alert: {:?}",
        got.skip[1]
    );
    let why = waiting_for(
        &d,
        &[Succeeded, Succeeded, Active, Waiting, Waiting, Waiting],
        3,
    );
    assert_eq!(why, "waits for enrich (allSucceeded)");
}

/// A random DAG: each step depends on some earlier ones.
fn random_dag() -> impl Strategy<Value = Dag> {
    (1usize..9)
        .prop_flat_map(|n| {
            (
                Just(n),
                proptest::collection::vec(proptest::collection::vec(any::<bool>(), 8), n),
                proptest::collection::vec(0u8..3, n),
            )
        })
        .prop_map(|(n, edges, triggers)| {
            let names: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
            let deps: Vec<Vec<String>> = (0..n)
                .map(|i| {
                    (0..i)
                        .filter(|&j| edges[i][j])
                        .map(|j| names[j].clone())
                        .collect()
                })
                .collect();
            let trig: Vec<Trigger> = (0..n)
                .map(|i| match (triggers[i], deps[i].is_empty()) {
                    (1, false) => Trigger::AnyFailed,
                    (2, _) => Trigger::Always,
                    _ => Trigger::AllSucceeded,
                })
                .collect();
            Dag::new((0..n).map(|i| (names[i].as_str(), deps[i].as_slice(), trig[i])))
                .expect("edges only go to earlier steps")
        })
}

proptest! {
    /// Run to the end with random outcomes (and maybe a cancel): every step ends in exactly
    /// one terminal state, none starts before its dependencies ended, a started step obeys its
    /// trigger, and the outcome follows the steps.
    #[test]
    fn every_step_ends_once_and_never_before_its_dependencies(
        d in random_dag(),
        outcomes in proptest::collection::vec(0u8..3, 9),
        picks in proptest::collection::vec(any::<usize>(), 40),
        cancel_at in proptest::option::of(0usize..12),
    ) {
        let n = d.nodes().len();
        let mut status = vec![Waiting; n];
        let mut ended_once = vec![0u32; n];
        let mut cancelling = false;
        for (round, pick) in picks.iter().enumerate() {
            if cancel_at == Some(round) {
                cancelling = true;
            }
            let dec = advance(&d, &status, cancelling);
            // Skips and cancels decided in the same pass come first (upstream of any start).
            for (i, _) in &dec.skip {
                prop_assert_eq!(status[*i], Waiting);
                status[*i] = Skipped;
                ended_once[*i] += 1;
            }
            for &i in &dec.cancel {
                prop_assert_eq!(status[i], Waiting);
                status[i] = Cancelled;
                ended_once[i] += 1;
            }
            for &i in &dec.start {
                prop_assert_eq!(status[i], Waiting);
                for &j in &d.nodes()[i].depends_on {
                    prop_assert!(status[j].is_terminal(), "{} started before {}", i, j);
                }
                let deps: Vec<StepStatus> = d.nodes()[i].depends_on.iter().map(|&j| status[j]).collect();
                match d.nodes()[i].trigger {
                    Trigger::AllSucceeded => prop_assert!(deps.iter().all(|s| *s == Succeeded)),
                    Trigger::AnyFailed => prop_assert!(deps.contains(&Failed)),
                    Trigger::Always => {}
                }
                status[i] = Active;
            }
            if let Some(outcome) = dec.outcome {
                prop_assert!(status.iter().all(|s| s.is_terminal()));
                let failed = status.iter().any(|s| matches!(s, Failed | Cancelled));
                match outcome {
                    RunOutcome::Succeeded => prop_assert!(!failed),
                    RunOutcome::Failed => prop_assert!(failed),
                    RunOutcome::Cancelled => prop_assert!(cancelling),
                }
                prop_assert!(ended_once.iter().all(|&c| c == 1), "{:?}", ended_once);
                return Ok(());
            }
            // One active step ends (succeeded, failed or cancelled).
            let active: Vec<usize> = (0..n).filter(|&i| status[i] == Active).collect();
            if let Some(&i) = active.get(pick % active.len().max(1)) {
                status[i] = match outcomes[i] { 0 => Failed, 1 if cancelling => Cancelled, _ => Succeeded };
                ended_once[i] += 1;
            } else {
                // Nothing active and no outcome: the machine would be stuck.
                prop_assert!(false, "stuck with {:?}", status);
            }
        }
        prop_assert!(false, "did not finish in 40 rounds: {:?}", status);
    }
}
