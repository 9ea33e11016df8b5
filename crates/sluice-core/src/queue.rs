//! The waiting jobs, in memory and in queue order: what the server's scheduling cycle reads
//! instead of loading every queued job from the store.
//!
//! [`JobQueue`] keeps, per namespace, its jobs ordered by (level rank, `enqueued_at`, id), the
//! order of [`crate::cycle::schedule`]; namespaces, levels and ids are shared strings
//! ([`JobQueue::intern`]), and each job holds only what the cycle needs (no spec). A job whose
//! `enqueued_at` is in the future (a retry waiting on its backoff) sits at the tail of its level
//! and has a timer ([`JobQueue::take_due`]): the cycle is run again when it becomes eligible.
//!
//! Each entry also carries what its expected run time is computed from (its name and
//! `maxRuntime`), so backfill and the start-time estimate need not read queued jobs from a store.
//!
//! [`JobQueue::heads`] hands the cycle the first `window` eligible jobs of each namespace; the
//! cost of a cycle then grows with the namespaces and the window, not with the queue's length.
//! Pure data: no clock, no I/O; the caller passes `now`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use crate::job::Demand;

/// One waiting job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    /// Job id.
    pub id: Arc<str>,
    /// Namespace (interned).
    pub namespace: Arc<str>,
    /// Priority level name (interned).
    pub level: Arc<str>,
    /// Rank of the level: 0 is the highest; an unknown level sorts last.
    pub rank: usize,
    /// When it joined its queue (its place); in the future for a retry waiting on its backoff.
    pub enqueued_at_ms: i64,
    /// What it needs.
    pub demand: Demand,
    /// Its name: with the namespace, the key of its run-time history.
    pub name: Arc<str>,
    /// Its own bound on its run time (`maxRuntime`), ms, if it has one.
    pub max_runtime_ms: Option<i64>,
    /// The attempt it will run as (from 1; a requeued or retried job waits as its next one).
    pub attempt: u32,
}

type OrderKey = (usize, i64, Arc<str>);

/// The waiting jobs by namespace, in queue order, with timers for jobs not yet eligible.
#[derive(Debug, Default)]
pub struct JobQueue {
    names: HashSet<Arc<str>>,
    jobs: HashMap<Arc<str>, QueueEntry>,
    order: BTreeMap<Arc<str>, BTreeSet<OrderKey>>,
    timers: BTreeSet<(i64, Arc<str>)>,
    /// Jobs waiting per (namespace, level, rank), kept with every insert and remove.
    counts: BTreeMap<(Arc<str>, Arc<str>, usize), u64>,
    version: u64,
}

/// The waiting jobs of one namespace and level ([`JobQueue::stats`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelStat {
    /// Namespace.
    pub namespace: Arc<str>,
    /// Priority level name.
    pub level: Arc<str>,
    /// How many jobs wait (eligible or not).
    pub queued: u64,
    /// The oldest `enqueued_at` among them.
    pub oldest_enqueued_at_ms: i64,
}

/// What [`JobQueue::heads`] returns.
#[derive(Debug, Default)]
pub struct Heads<'a> {
    /// The first eligible jobs of each namespace, namespaces in name order, each in queue
    /// order.
    pub jobs: Vec<&'a QueueEntry>,
    /// Some namespace had more eligible jobs than the window.
    pub truncated: bool,
}

/// One namespace's eligible jobs in queue order ([`JobQueue::eligible`]). Within a level, jobs
/// in the future (retries waiting on their backoff) sort last and the rest of the level waits:
/// the walk jumps to the next level at the first of them.
#[derive(Debug)]
pub struct Eligible<'a> {
    queue: &'a JobQueue,
    set: &'a BTreeSet<OrderKey>,
    now_ms: i64,
    walk: std::collections::btree_set::Range<'a, OrderKey>,
}

impl<'a> Iterator for Eligible<'a> {
    type Item = &'a QueueEntry;

    fn next(&mut self) -> Option<&'a QueueEntry> {
        loop {
            let (rank, enq, id) = self.walk.next()?;
            if *enq > self.now_ms {
                // The rest of this level is later still: on at the next level.
                let next = rank.checked_add(1)?;
                self.walk = self
                    .set
                    .range::<OrderKey, _>((next, i64::MIN, Arc::from(""))..);
                continue;
            }
            if let Some(e) = self.queue.jobs.get(id) {
                return Some(e);
            }
        }
    }
}

impl JobQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// The shared copy of `s` (namespaces and levels are kept once).
    pub fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.names.get(s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        self.names.insert(a.clone());
        a
    }

    /// How many jobs wait (eligible or not).
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// No job waits.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Changes so far: a cycle over an unchanged queue (and unchanged room) decides nothing new.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The job with this id, if it waits.
    pub fn get(&self, id: &str) -> Option<&QueueEntry> {
        self.jobs.get(id)
    }

    /// Adds a job, or moves it if it is there already; a job not yet eligible at `now_ms` gets a
    /// timer.
    pub fn insert(&mut self, entry: QueueEntry, now_ms: i64) {
        self.remove(&entry.id);
        let key = (entry.rank, entry.enqueued_at_ms, entry.id.clone());
        self.order
            .entry(entry.namespace.clone())
            .or_default()
            .insert(key);
        if entry.enqueued_at_ms > now_ms {
            self.timers.insert((entry.enqueued_at_ms, entry.id.clone()));
        }
        *self
            .counts
            .entry((entry.namespace.clone(), entry.level.clone(), entry.rank))
            .or_default() += 1;
        self.jobs.insert(entry.id.clone(), entry);
        self.version = self.version.wrapping_add(1);
    }

    /// Takes a job out (admitted, cancelled, expired, deleted); what it was, if it waited.
    pub fn remove(&mut self, id: &str) -> Option<QueueEntry> {
        let entry = self.jobs.remove(id)?;
        let key = (entry.rank, entry.enqueued_at_ms, entry.id.clone());
        if let Some(set) = self.order.get_mut(&entry.namespace) {
            set.remove(&key);
            if set.is_empty() {
                self.order.remove(&entry.namespace);
            }
        }
        self.timers
            .remove(&(entry.enqueued_at_ms, entry.id.clone()));
        let level_key = (entry.namespace.clone(), entry.level.clone(), entry.rank);
        if let Some(n) = self.counts.get_mut(&level_key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.counts.remove(&level_key);
            }
        }
        self.version = self.version.wrapping_add(1);
        Some(entry)
    }

    /// Drops the timers due at `now_ms`; true if any was (a job became eligible: the queue
    /// changed).
    pub fn take_due(&mut self, now_ms: i64) -> bool {
        let mut any = false;
        while let Some(first) = self.timers.first() {
            if first.0 > now_ms {
                break;
            }
            self.timers.pop_first();
            any = true;
        }
        if any {
            self.version = self.version.wrapping_add(1);
        }
        any
    }

    /// When the next job becomes eligible, if one waits on a timer.
    pub fn next_due(&self) -> Option<i64> {
        self.timers.first().map(|t| t.0)
    }

    /// The first `window` eligible jobs of each namespace at `now_ms` (not in the future, not
    /// `skipped`), in queue order.
    pub fn heads(&self, now_ms: i64, window: usize, skipped: impl Fn(&str) -> bool) -> Heads<'_> {
        let mut out = Heads::default();
        for (_, jobs) in self.eligible(now_ms) {
            for (taken, e) in jobs.filter(|e| !skipped(&e.id)).enumerate() {
                if taken == window {
                    out.truncated = true;
                    break;
                }
                out.jobs.push(e);
            }
        }
        out
    }

    /// The eligible jobs of each namespace at `now_ms` (not in the future), namespaces in name
    /// order, each walked lazily in queue order: for a caller that stops each namespace's walk
    /// where it likes (the admit step stops a strict queue at its cut), so that what it costs
    /// grows with the jobs it takes, not with the queue's length.
    pub fn eligible(&self, now_ms: i64) -> impl Iterator<Item = (&Arc<str>, Eligible<'_>)> {
        self.order.iter().map(move |(ns, set)| {
            (
                ns,
                Eligible {
                    queue: self,
                    set,
                    now_ms,
                    walk: set.range::<OrderKey, _>(..),
                },
            )
        })
    }

    /// The 1-based position of a waiting job among the eligible jobs of its namespace at
    /// `now_ms` (all levels), and within its level; none if it is not eligible or not here.
    /// Walks the namespace up to the job: for `describe`, not for every job of a cycle.
    pub fn position(&self, id: &str, now_ms: i64) -> Option<(u32, u32)> {
        let e = self.jobs.get(id)?;
        if e.enqueued_at_ms > now_ms {
            return None;
        }
        let set = self.order.get(&e.namespace)?;
        let mut all = 0u32;
        let mut level = 0u32;
        for (rank, enq, other) in set {
            if *enq > now_ms {
                continue;
            }
            all = all.saturating_add(1);
            if *rank == e.rank {
                level = level.saturating_add(1);
            }
            if **other == *id {
                return Some((all, level));
            }
        }
        None
    }

    /// [`JobQueue::position`] of each of `ids` that waits and is eligible at `now_ms`, walking
    /// each of their namespaces once (for a page of the jobs list, not per job).
    pub fn positions(&self, ids: &[&str], now_ms: i64) -> HashMap<Arc<str>, (u32, u32)> {
        let mut wanted: BTreeMap<&Arc<str>, HashSet<&str>> = BTreeMap::new();
        for id in ids {
            if let Some(e) = self.jobs.get(*id)
                && e.enqueued_at_ms <= now_ms
            {
                wanted.entry(&e.namespace).or_default().insert(&*e.id);
            }
        }
        let mut out = HashMap::new();
        for (ns, mut left) in wanted {
            let Some(set) = self.order.get(ns) else {
                continue;
            };
            let mut all = 0u32;
            let mut per_rank: HashMap<usize, u32> = HashMap::new();
            for (rank, enq, id) in set {
                if *enq > now_ms {
                    continue;
                }
                all = all.saturating_add(1);
                let level = per_rank.entry(*rank).or_default();
                *level = level.saturating_add(1);
                if left.remove(&**id) {
                    out.insert(id.clone(), (all, *level));
                    if left.is_empty() {
                        break;
                    }
                }
            }
        }
        out
    }

    /// How many jobs wait per namespace and level, and the oldest `enqueued_at` of each, in
    /// (namespace, level) name order: what the store's queue statistics say, without a scan.
    /// Costs the number of (namespace, level) pairs (plus, for levels unknown to the
    /// configuration, which share the last rank, the entries of the others skipped).
    pub fn stats(&self) -> Vec<LevelStat> {
        let mut out: Vec<LevelStat> = Vec::with_capacity(self.counts.len());
        for ((namespace, level, rank), &queued) in &self.counts {
            // The first entry of the level at this rank in queue order is its oldest (order is
            // rank, then enqueued_at).
            let Some(oldest) = self.order.get(namespace).and_then(|set| {
                set.range((*rank, i64::MIN, Arc::from(""))..)
                    .take_while(|(r, _, _)| r == rank)
                    .find(|(_, _, id)| self.jobs.get(id).is_some_and(|e| e.level == *level))
                    .map(|(_, enq, _)| *enq)
            }) else {
                continue;
            };
            // Keys are in (namespace, level, rank) order: one level's ranks are neighbours.
            match out.last_mut() {
                Some(last) if last.namespace == *namespace && last.level == *level => {
                    last.queued += queued;
                    last.oldest_enqueued_at_ms = last.oldest_enqueued_at_ms.min(oldest);
                }
                _ => out.push(LevelStat {
                    namespace: namespace.clone(),
                    level: level.clone(),
                    queued,
                    oldest_enqueued_at_ms: oldest,
                }),
            }
        }
        out
    }

    /// Every waiting job, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &QueueEntry> {
        self.jobs.values()
    }
}

#[cfg(test)]
mod tests;
