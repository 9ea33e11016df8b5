//! An overdue head that does not fit, in its own namespace (Kueue's TestSchedule style, as
//! `backfill_table`): in a backfill namespace the later jobs go on beside its hard
//! reservation, or in its room when their `maxRuntime` ends them before the reserved start;
//! in a strict namespace an aged head still blocks its namespace; aged heads go before heads
//! overdue only by backfill's wait bound.

use std::collections::BTreeMap;

use super::{Case, MIN, Q, check_case, q, running};
use crate::cycle::{BackfillSettings, HeadPolicy};

/// Levels 0 (high) and 1 (normal); normal rises after 60 min. No backfill wait bound, so only
/// aging makes a head overdue.
fn aging_only() -> (Vec<Option<i64>>, BackfillSettings) {
    (
        vec![None, Some(60 * MIN)],
        BackfillSettings {
            max_head_wait_ms: None,
            ..Case::default().settings
        },
    )
}

#[test]
fn overdue_head_table() {
    let (aging, no_wait_bound) = aging_only();
    let cases = vec![
        Case {
            name: "backfill: a later job of the overdue head's namespace starts beside its \
                   reservation",
            nodes: vec![4, 2],
            running: vec![running(0, 3, 200)],
            queued: vec![
                q("head", 4, 30),
                Q {
                    at: 1,
                    ..q("small", 1, 500)
                },
            ],
            now: 121,
            want_admitted: vec!["small"],
            want_left: BTreeMap::from([("head", "no-room")]),
            want_reserved: vec![("head", 200)],
            // First fit would take the head's node; node 1 is beside the reserved room.
            want_nodes: vec![("small", 1)],
            ..Case::default()
        },
        Case {
            name: "backfill: a later job that would take the reserved room waits, and says \
                   which reservation",
            nodes: vec![4],
            running: vec![running(0, 3, 200)],
            queued: vec![
                q("head", 4, 30),
                // Expected to end at 126, long before 200: estimates do not count here.
                Q {
                    at: 1,
                    ..q("short", 1, 5)
                },
            ],
            now: 121,
            want_left: BTreeMap::from([
                ("head", "no-room"),
                (
                    "short",
                    "reserved | fits now, but would delay job head at the head of namespace ns, \
                     reserved to start in 1h 19m",
                ),
            ]),
            want_reserved: vec![("head", 200)],
            ..Case::default()
        },
        Case {
            name: "backfill: a later job whose maxRuntime ends it before the reserved start \
                   starts in the reserved room; one whose maxRuntime does not, waits",
            nodes: vec![5],
            running: vec![running(0, 3, 200)],
            queued: vec![
                q("head", 5, 30),
                // 121 + 10 + the 5-minute margin = 136, before 200.
                Q {
                    at: 1,
                    max: Some(10),
                    ..q("bounded", 1, 5)
                },
                // 121 + 75 + 5 = 201, after 200 (expected to end at 126).
                Q {
                    at: 2,
                    max: Some(75),
                    ..q("too-long", 1, 5)
                },
            ],
            now: 121,
            want_admitted: vec!["bounded"],
            want_left: BTreeMap::from([
                ("head", "no-room"),
                (
                    "too-long",
                    "would delay job head at the head of namespace ns",
                ),
            ]),
            want_reserved: vec![("head", 200)],
            ..Case::default()
        },
        Case {
            name: "backfill: a second job past the bound gets a hard reservation in turn, and \
                   the namespace goes on beside it",
            nodes: vec![4, 2],
            running: vec![running(0, 2, 200)],
            queued: vec![
                // Overdue and fits: admitted first, to end at 151.
                q("first", 2, 30),
                Q {
                    at: 1,
                    ..q("second", 4, 30)
                },
                Q {
                    at: 2,
                    ..q("small", 1, 500)
                },
            ],
            now: 121,
            want_admitted: vec!["first", "small"],
            want_left: BTreeMap::from([("second", "no-room")]),
            want_reserved: vec![("second", 200)],
            want_nodes: vec![("first", 0), ("small", 1)],
            ..Case::default()
        },
        Case {
            name: "backfill: an aged head's namespace goes on beside its reservation",
            nodes: vec![4, 2],
            running: vec![running(0, 3, 200)],
            queued: vec![
                Q {
                    level: 1,
                    ..q("aged", 4, 30)
                },
                Q {
                    level: 1,
                    at: 100,
                    ..q("small", 1, 500)
                },
            ],
            now: 121,
            aging: aging.clone(),
            settings: no_wait_bound,
            want_admitted: vec!["small"],
            want_left: BTreeMap::from([("aged", "no-room")]),
            want_reserved: vec![("aged", 200)],
            want_nodes: vec![("small", 1)],
            ..Case::default()
        },
        Case {
            name: "strict: an aged head that does not fit still blocks its namespace",
            nodes: vec![4, 2],
            running: vec![running(0, 3, 200)],
            queued: vec![
                Q {
                    level: 1,
                    ..q("aged", 4, 30)
                },
                // Would fit beside the reservation on node 1, and its maxRuntime ends it in
                // time: strict blocks it all the same.
                Q {
                    level: 1,
                    at: 100,
                    max: Some(10),
                    ..q("small", 1, 5)
                },
            ],
            policies: vec![("ns", HeadPolicy::Strict)],
            now: 121,
            aging: aging.clone(),
            settings: no_wait_bound,
            want_left: BTreeMap::from([("aged", "no-room"), ("small", "blocked")]),
            want_reserved: vec![("aged", 200)],
            ..Case::default()
        },
        Case {
            name: "strict: the same small job of another namespace passes beside the aged \
                   head's reservation",
            nodes: vec![4, 2],
            running: vec![running(0, 3, 200)],
            queued: vec![
                Q {
                    ns: "a",
                    level: 1,
                    ..q("aged", 4, 30)
                },
                Q {
                    ns: "b",
                    level: 1,
                    at: 100,
                    ..q("small", 1, 500)
                },
            ],
            policies: vec![("a", HeadPolicy::Strict), ("b", HeadPolicy::Strict)],
            now: 121,
            aging,
            settings: no_wait_bound,
            want_admitted: vec!["small"],
            want_left: BTreeMap::from([("aged", "no-room")]),
            want_reserved: vec![("aged", 200)],
            want_nodes: vec![("small", 1)],
        },
        Case {
            name: "an aged head goes before an older head overdue only by the backfill wait \
                   bound, which fair share alone would take first",
            nodes: vec![4],
            queued: vec![
                // Waited 121 min >= 120: overdue by backfill's bound, at level 0 from the start.
                Q {
                    ns: "a",
                    ..q("a-overdue", 4, 30)
                },
                // Waited 71 min >= 60: aged to level 0, enqueued later (the fair-share tie-break
                // would take a-overdue first).
                Q {
                    ns: "b",
                    level: 1,
                    at: 50,
                    ..q("b-aged", 4, 30)
                },
            ],
            now: 121,
            aging: aging_only().0,
            want_admitted: vec!["b-aged"],
            want_left: BTreeMap::from([("a-overdue", "no-room")]),
            want_reserved: vec![("a-overdue", 151)],
            ..Case::default()
        },
    ];
    for c in &cases {
        check_case(c);
    }
}
