//! One server per SQLite database: the server holds an exclusive lock on `<database>.lock`
//! (an advisory `flock`, released by the kernel when the process ends however it ends), and a
//! second server on the same file refuses to start. A SQLite database has no leader election
//! (several replicas need PostgreSQL), so two servers on one file would both admit onto the
//! same room.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    /// Another process holds the lock.
    #[error(
        "another sluice server already uses the SQLite database {db} (it holds {lock}); \
         SQLite serves one server: stop the other one, or use PostgreSQL for several replicas"
    )]
    InUse {
        /// The database file.
        db: PathBuf,
        /// The lock file.
        lock: PathBuf,
    },
    /// The lock file could not be opened or locked.
    #[error("locking {path}: {source}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// The held lock; dropping it releases it.
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
    path: PathBuf,
}

impl InstanceLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Makes the SQLite database at `url` and its journal files readable by the server's user only
/// (mode 0600): runs started as another user (`backend.run_as`) cannot read it.
pub fn protect(url: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let Some(db) = sqlite_path(url) else {
        return Ok(());
    };
    for suffix in ["", "-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        match std::fs::set_permissions(&name, std::fs::Permissions::from_mode(0o600)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// The database file of a `sqlite://PATH[?query]` URL; none for other stores and for memory.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite://")?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Some(PathBuf::from(path))
}

/// Takes the lock for the store at `url` if it is a SQLite file; none otherwise.
pub fn lock(url: &str) -> Result<Option<InstanceLock>, InstanceError> {
    let Some(db) = sqlite_path(url) else {
        return Ok(None);
    };
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    let path = PathBuf::from(name);
    let io = |source| InstanceError::Io {
        path: path.clone(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(InstanceLock { _file: file, path })),
        Err(TryLockError::WouldBlock) => Err(InstanceError::InUse { db, lock: path }),
        Err(TryLockError::Error(e)) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_database_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("s.db").display());
        let first = lock(&url).unwrap().expect("a file database is locked");
        assert!(first.path().ends_with("s.db.lock"));
        let err = lock(&url).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, InstanceError::InUse { .. }), "{err:?}");
        assert!(
            text.contains("s.db") && text.contains("PostgreSQL"),
            "{text}"
        );
        drop(first);
        assert!(lock(&url).unwrap().is_some());
        // The database is the server's only.
        let db = dir.path().join("s.db");
        std::fs::write(&db, b"x").unwrap();
        protect(&url).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&db).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // Other stores take no lock.
        assert!(lock("sqlite::memory:").unwrap().is_none());
        assert!(lock("postgres://u@127.0.0.1/db").unwrap().is_none());
    }
}
