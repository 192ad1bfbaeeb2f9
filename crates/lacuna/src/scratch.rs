//! Scratch environments for tests and benchmarks: a fresh data dir, and for PostgreSQL a fresh
//! database, both removed when dropped.

use crate::Config;
use lacuna_storage::scratch::{ScratchDatabase, admin_url};
use std::path::{Path, PathBuf};

/// The storage backend a scratch environment uses.
pub use lacuna_storage::Backend;

/// A data dir (and PostgreSQL database) that exist until dropped.
pub struct Scratch {
    dir: PathBuf,
    pub db: Option<ScratchDatabase>,
    pub config: Config,
}

impl Scratch {
    pub async fn new(backend: Backend) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("lacuna-scratch-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        let mut config = Config::local(dir.clone());
        let db = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => {
                let db = ScratchDatabase::create(&admin_url()).await?;
                config.database_url = Some(db.url.clone());
                Some(db)
            }
        };
        Ok(Self { dir, db, config })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
