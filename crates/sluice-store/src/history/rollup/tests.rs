use super::*;

#[test]
fn sums_round_trip() {
    let moves = |n, cpu, mem, off: f64| Moves {
        n,
        cpu,
        mem,
        off_n: off,
        off_cpu: off * 3.0,
        off_mem: off * 5.0,
    };
    let queue = |n, off| Moves {
        n,
        off_n: off,
        ..Default::default()
    };
    let a = UnitAgg {
        enq: queue(3, 7.0),
        left: queue(2, 11.0),
        adm: moves(2, 1500, 4096, 13.0),
        waits: vec![-5, 0, 120_000],
        fin_n: 4,
        finished: [1, 2, 0],
        rel: moves(3, 2500, 1024, 3_599_999.0),
        ..Default::default()
    };
    let b = UnitAgg {
        enq: queue(1, 0.0),
        ..Default::default()
    };
    let text = format!("{};{}", encode(491_000, &a), encode(491_001, &b));
    let mut sums = Sums {
        text: text.as_bytes(),
        at: 0,
    };
    let (h, got) = sums.row().unwrap();
    assert_eq!(h, 491_000);
    assert_eq!(
        (got.enq, got.left, got.adm, got.rel),
        (a.enq, a.left, a.adm, a.rel)
    );
    assert_eq!((got.fin_n, got.finished), (4, [1, 2, 0]));
    assert_eq!(got.waits, a.waits);
    let (h, got) = sums.row().unwrap();
    assert_eq!((h, got.enq, got.waits.len()), (491_001, b.enq, 0));
    assert_eq!(sums.at, text.len());
    for bad in [
        "1:2",
        "x",
        "1:2:3:4:5:6:7:8:9:10:11:12:13:14:15:16:17:18:19:20:21:3,,4",
    ] {
        let mut sums = Sums {
            text: bad.as_bytes(),
            at: 0,
        };
        assert!(sums.row().is_none(), "{bad}");
    }
}

#[test]
fn sums_follow_terminal_states() {
    // The counts by state in `sums` (numbers 12 to 14) are in this order.
    let order: Vec<&str> = super::super::scan::TERMINAL
        .iter()
        .map(|s| s.as_str())
        .collect();
    assert_eq!(order, ["succeeded", "failed", "cancelled"]);
}

#[test]
fn targets_leave_the_margin() {
    // 10:04 is within the margin of 10:00: hour 9 (9:00-10:00) is not yet due.
    let ten = 10 * HOUR_MS;
    assert_eq!(target(ten + 4 * 60_000), 9);
    assert_eq!(target(ten + ROLL_UP_MARGIN_MS), 10);
}
