//! The simulated cluster's runs, in memory or in a ledger file shared by several processes.
//!
//! The ledger ([`SimulatedConfig::ledger`](super::SimulatedConfig::ledger)) is one JSON
//! object per line: every submission with its placement and timing, every refusal (a submit
//! that found no room) and every cancel. Each operation takes an exclusive lock on the file
//! (`flock`), reads the lines other processes appended since its last read, acts, appends its
//! own line and releases the lock: replicas of sluice sharing the file see one cluster. The
//! file is also what a test reads to check that nothing was submitted twice and that no
//! admission over-committed a node (a refusal).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Run;
use crate::BackendError;

/// The runs by (job id, attempt).
pub(super) type RunMap = BTreeMap<(String, u32), Run>;

/// One line of the ledger.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Entry {
    /// A run started.
    Submit {
        /// The job.
        job: String,
        /// The attempt.
        attempt: u32,
        /// The process that submitted it.
        by: u32,
        /// The run.
        #[serde(flatten)]
        run: Run,
    },
    /// A submit found no room: sluice admitted onto room that was not there.
    Refuse {
        /// The job.
        job: String,
        /// The attempt.
        attempt: u32,
        /// The process.
        by: u32,
        /// Why.
        reason: String,
    },
    /// A run was cancelled.
    Cancel {
        /// The job.
        job: String,
        /// The attempt.
        attempt: u32,
        /// The process.
        by: u32,
        /// When.
        at_ms: i64,
    },
}

impl Entry {
    fn apply(self, runs: &mut RunMap) {
        match self {
            Entry::Submit {
                job, attempt, run, ..
            } => {
                runs.entry((job, attempt)).or_insert(run);
            }
            Entry::Cancel {
                job,
                attempt,
                at_ms,
                ..
            } => {
                if let Some(r) = runs.get_mut(&(job, attempt))
                    && r.cancelled_ms.is_none()
                    && at_ms < r.end_ms
                {
                    r.cancelled_ms = Some(at_ms);
                }
            }
            Entry::Refuse { .. } => {}
        }
    }
}

/// Reads every entry of a ledger file (for tests and tools).
pub fn read_ledger(path: &Path) -> Result<Vec<Entry>, BackendError> {
    let file = File::open(path).map_err(io(path, "opening the simulated cluster's ledger"))?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io(path, "reading the simulated cluster's ledger"))?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(serde_json::from_str(&line).map_err(|e| {
            BackendError::Config(format!("{} line {}: {e}", path.display(), i + 1))
        })?);
    }
    Ok(out)
}

fn io<'a>(path: &'a Path, what: &'static str) -> impl Fn(std::io::Error) -> BackendError + 'a {
    move |source| BackendError::Io {
        context: format!("{what} {}", path.display()),
        source,
    }
}

/// The runs, and the ledger file if there is one.
#[derive(Debug)]
pub(super) struct Runs {
    pub(super) map: RunMap,
    ledger: Option<Ledger>,
}

#[derive(Debug)]
struct Ledger {
    path: PathBuf,
    file: File,
    /// How far this process has read.
    read_to: u64,
}

impl Runs {
    /// In memory, or in the ledger at `path` (created if missing).
    pub(super) fn new(path: Option<&Path>) -> Result<Runs, BackendError> {
        let ledger = match path {
            None => None,
            Some(path) => {
                let file = OpenOptions::new()
                    .create(true)
                    .read(true)
                    .append(true)
                    .open(path)
                    .map_err(io(path, "opening the simulated cluster's ledger"))?;
                Some(Ledger {
                    path: path.to_path_buf(),
                    file,
                    read_to: 0,
                })
            }
        };
        Ok(Runs {
            map: RunMap::new(),
            ledger,
        })
    }

    /// Runs `f` over the current runs (brought up to date from the ledger, under its lock);
    /// the entries `f` returns are applied and appended to the ledger.
    pub(super) fn with<T>(
        &mut self,
        f: impl FnOnce(&RunMap) -> (T, Vec<Entry>),
    ) -> Result<T, BackendError> {
        let Some(ledger) = &mut self.ledger else {
            let (out, entries) = f(&self.map);
            for e in entries {
                e.apply(&mut self.map);
            }
            return Ok(out);
        };
        let path = ledger.path.clone();
        ledger
            .file
            .lock()
            .map_err(io(&path, "locking the simulated cluster's ledger"))?;
        let result = (|| {
            // Read what the other processes appended.
            ledger
                .file
                .seek(SeekFrom::Start(ledger.read_to))
                .map_err(io(&path, "reading the simulated cluster's ledger"))?;
            let mut reader = BufReader::new(&ledger.file);
            let mut line = String::new();
            loop {
                line.clear();
                let n = reader
                    .read_line(&mut line)
                    .map_err(io(&path, "reading the simulated cluster's ledger"))?;
                if n == 0 || !line.ends_with('\n') {
                    break;
                }
                ledger.read_to += n as u64;
                let entry: Entry = serde_json::from_str(&line).map_err(|e| {
                    BackendError::Config(format!("{}: a bad line: {e}", path.display()))
                })?;
                entry.apply(&mut self.map);
            }
            let (out, entries) = f(&self.map);
            let mut text = String::new();
            for e in &entries {
                let json = serde_json::to_string(e)
                    .map_err(|e| BackendError::Config(format!("encoding a ledger entry: {e}")))?;
                text.push_str(&json);
                text.push('\n');
            }
            if !text.is_empty() {
                ledger
                    .file
                    .write_all(text.as_bytes())
                    .map_err(io(&path, "writing the simulated cluster's ledger"))?;
                ledger.read_to += text.len() as u64;
            }
            for e in entries {
                e.apply(&mut self.map);
            }
            Ok(out)
        })();
        let unlocked = ledger.file.unlock();
        let out = result?;
        unlocked.map_err(io(&path, "unlocking the simulated cluster's ledger"))?;
        Ok(out)
    }
}
