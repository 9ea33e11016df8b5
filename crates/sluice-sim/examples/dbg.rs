use sluice_sim::*;
fn main() {
    let cluster = Cluster::parse(&std::fs::read_to_string("examples/sim/cluster.toml").unwrap()).unwrap();
    let jobs = trace::parse(&std::fs::read_to_string("examples/sim/trace.csv").unwrap()).unwrap();
    let w = Workload::new(&jobs, &cluster).unwrap();
    let b = BaselineConfig { hang_timeout_ms: 600_000, restarts: 3 };
    let pol: Policy = std::env::args().nth(1).unwrap().parse().unwrap();
    let s = replay(&w, &cluster, Policy::Strict, b);
    let f = replay(&w, &cluster, pol, b);
    let mut v: Vec<(i64, usize)> = w.jobs.iter().enumerate().map(|(i, j)| (f.jobs[i].start_ms.unwrap() - s.jobs[i].start_ms.unwrap(), i)).collect();
    v.sort();
    v.reverse();
    for (d, i) in v.iter().take(15) {
        let j = &w.jobs[*i];
        println!("{} extra {}m ns {} lvl {} cpu {} dur {}m wait strict {}m wait bf {}m", j.id, d / 60000, w.namespaces[j.ns], j.level, j.demand.total().cpu_milli / 1000, j.duration_ms / 60000, (s.jobs[*i].start_ms.unwrap() - j.submit_ms) / 60000, (f.jobs[*i].start_ms.unwrap() - j.submit_ms) / 60000);
    }
}
