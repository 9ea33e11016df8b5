//! [`strict_cut`] changes no decision: a cycle over strict queues cut there admits the same
//! jobs with the same reasons and positions as over the whole queues, and every job left out
//! waits, in the whole cycle, behind the job the server names for it.

use super::*;

/// The world with each strict namespace's queue cut after its [`strict_cut`] job; the ids
/// left out, each with the job the server says it waits behind.
fn cut(w: &World) -> (World, Vec<(String, String)>) {
    let fitter = Fitter::new(&w.nodes);
    let mut keep = vec![true; w.candidates.len()];
    let mut cut_at: BTreeMap<String, usize> = BTreeMap::new();
    for ns in ["a", "b", "c"] {
        if w.policy(ns).policy != HeadPolicy::Strict {
            continue;
        }
        let q = w.queue(ns);
        if let Some(k) = strict_cut(&fitter, q.iter().map(|&i| &w.candidates[i].demand)) {
            cut_at.insert(ns.to_string(), q[k]);
            for &i in &q[k + 1..] {
                keep[i] = false;
            }
        }
    }
    let mut kept = w.clone();
    kept.candidates = w
        .candidates
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|(c, _)| c.clone())
        .collect();
    let out = kept.input(&kept.snapshot());
    let mut left = Vec::new();
    for (c, k) in w.candidates.iter().zip(&keep) {
        if *k {
            continue;
        }
        let at = &w.candidates[cut_at[&c.namespace]];
        // The cut job's own reason names a head before it, else it is the head.
        let head = out
            .waiting
            .iter()
            .find(|x| kept.candidates[x.index].id == at.id)
            .and_then(|x| match &x.reason {
                WaitReason::BlockedBehind { head_id, .. } => Some(head_id.clone()),
                _ => None,
            })
            .unwrap_or_else(|| at.id.clone());
        left.push((c.id.clone(), head));
    }
    (kept, left)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn a_cut_queue_decides_the_same(w in arb_world()) {
        let snapshot = w.snapshot();
        prop_assume!(snapshot.available);
        let whole = w.input(&snapshot);
        let (kept, left) = cut(&w);
        let part = kept.input(&snapshot);
        let (admitted, waiting) = summary(&w, &whole);
        let (admitted_part, waiting_part) = summary(&kept, &part);
        prop_assert_eq!(&admitted, &admitted_part);
        for x in &waiting_part {
            prop_assert!(waiting.contains(x), "{:?} not in the whole cycle's {:?}", x, waiting);
        }
        for (id, head) in &left {
            let reason = whole
                .waiting
                .iter()
                .find(|x| &w.candidates[x.index].id == id)
                .map(|x| x.reason.clone());
            let ok = matches!(&reason, Some(WaitReason::BlockedBehind { head_id, .. }) if head_id == head);
            prop_assert!(ok, "{} left out: whole cycle says {:?}, server would say behind {}", id, reason, head);
        }
    }
}
