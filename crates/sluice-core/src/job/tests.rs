use super::*;

#[test]
fn state_names_round_trip() {
    for st in JobState::ALL {
        assert_eq!(st.as_str().parse::<JobState>(), Ok(st));
    }
    assert!("done".parse::<JobState>().is_err());
}

#[test]
fn transitions() {
    use JobState::*;
    assert!(Queued.can_move_to(Admitted));
    assert!(Queued.can_move_to(Cancelled));
    assert!(!Queued.can_move_to(Running));
    assert!(Admitted.can_move_to(Queued));
    assert!(Running.can_move_to(Failed));
    assert!(Running.can_move_to(Queued));
    assert!(Submitted.can_move_to(Queued));
    assert!(!Succeeded.can_move_to(Cancelled));
    assert!(!Running.can_move_to(Running));
}

#[test]
fn demand_totals() {
    let d = Demand {
        pods: vec![
            PodDemand {
                role: Role::Driver,
                count: 1,
                cpu_milli: 1000,
                mem_mib: 1408,
            },
            PodDemand {
                role: Role::Executor,
                count: 3,
                cpu_milli: 2000,
                mem_mib: 2432,
            },
        ],
    };
    assert_eq!(d.total(), Resources::new(7000, 1408 + 3 * 2432));
    assert_eq!(d.pod_count(), 4);
    assert_eq!(d.largest_pod(), Resources::new(2000, 2432));
}
