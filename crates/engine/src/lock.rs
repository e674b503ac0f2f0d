//! Advisory file locks that serialise kernel changes to one network across processes.

use crate::error::KernelContext;
use crate::Result;
use std::fs::{File, OpenOptions};
use std::path::Path;

/// Holds an exclusive `flock` until dropped.
pub(crate) struct Lock {
    _file: File,
}

impl Lock {
    /// Blocks until the lock at `path` is ours.
    pub(crate) fn exclusive(path: &Path) -> Result<Lock> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .op(|| format!("create lock directory {}", dir.display()))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .op(|| format!("open lock {}", path.display()))?;
        file.lock().op(|| format!("lock {}", path.display()))?;
        Ok(Lock { _file: file })
    }
}
