//! Encrypted backups, restore, and the restore rehearsal.
//!
//! A backup file is `LACUNA-BACKUP-1\n`, a length-prefixed JSON header (id, time, backend, the
//! backup's own random key wrapped by the master key, the stream nonce), then the payload
//! encrypted with STREAM/AES-256-GCM, every chunk bound to the header's digest. The payload is a
//! manifest (time, backend, row counts per table, size and SHA-256 of the snapshot) followed by a
//! consistent snapshot: `VACUUM INTO` for SQLite, `pg_dump --snapshot` for PostgreSQL. A sidecar
//! `.manifest.json` repeats the manifest (no personal data) with the SHA-256 of the encrypted file.
//!
//! Keys are never in a backup: the keystore is kept (and backed up) apart, so a deleted tenant's
//! data in an old backup stays unreadable. A corrupted or truncated backup fails authentication
//! before anything is restored; a restore only swaps in data that decrypted and checked out.

use crate::{Config, Services};
use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use lacuna_crypto::{STREAM_NONCE_PREFIX, decrypt_stream, encrypt_stream};
use lacuna_storage::backup::{Counts, PgSnapshot, pg_admin, pg_counts, sqlite_file_counts};
use lacuna_storage::now_unix;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 16] = b"LACUNA-BACKUP-1\n";
/// Daily backups are kept this long.
pub const BACKUP_RETENTION_DAYS: i64 = 30;

#[derive(Serialize, Deserialize, Debug, Clone)]
struct Header {
    id: String,
    created_at: i64,
    backend: String,
    master_fingerprint: String,
    wrapped_key: String,
    nonce_prefix: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Manifest {
    pub id: String,
    pub created_at: i64,
    pub backend: String,
    pub counts: Counts,
    pub snapshot_bytes: u64,
    pub snapshot_sha256: String,
    pub lacuna_version: String,
}

/// One line of `backups/ledger.jsonl`: what happened, when, and whether it worked.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct LedgerEntry {
    pub kind: String,
    pub file: String,
    pub at: i64,
    pub ok: bool,
    pub detail: String,
}

pub fn backups_dir(config: &Config) -> PathBuf {
    config.data_dir.join("backups")
}

fn backup_url(config: &Config) -> Option<String> {
    config.backup_database_url.clone().or_else(|| config.database_url.clone()).filter(|u| u.starts_with("postgres"))
}

fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}

fn sha256_file(path: &Path) -> anyhow::Result<(u64, String)> {
    let mut f = BufReader::new(std::fs::File::open(path)?);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((n, hex::encode(h.finalize())))
}

pub fn append_ledger(config: &Config, e: &LedgerEntry) -> anyhow::Result<()> {
    let dir = backups_dir(config);
    std::fs::create_dir_all(&dir)?;
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("ledger.jsonl"))?;
    writeln!(f, "{}", serde_json::to_string(e)?)?;
    Ok(())
}

pub fn read_ledger(config: &Config) -> Vec<LedgerEntry> {
    std::fs::read_to_string(backups_dir(config).join("ledger.jsonl"))
        .map(|t| t.lines().filter_map(|l| serde_json::from_str(l).ok()).collect())
        .unwrap_or_default()
}

async fn run(cmd: &mut tokio::process::Command, what: &str) -> anyhow::Result<()> {
    let out = cmd.output().await.with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!("{what} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// Takes a consistent, encrypted backup into the backups directory. Returns its path.
pub async fn backup(services: &Services, config: &Config) -> anyhow::Result<(PathBuf, Manifest)> {
    let dir = backups_dir(config);
    std::fs::create_dir_all(&dir)?;
    let created_at = now_unix();
    let id = format!("{}-{}", created_at, &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let plain = dir.join(format!(".{id}.snapshot.tmp"));
    let result = async {
        let (backend, counts) = match backup_url(config) {
            Some(url) => {
                let snap = PgSnapshot::begin(&url).await?;
                run(
                    tokio::process::Command::new("pg_dump")
                        .arg("--format=custom")
                        .arg(format!("--snapshot={}", snap.id))
                        .arg("--file")
                        .arg(&plain)
                        .arg("--dbname")
                        .arg(&url),
                    "pg_dump",
                )
                .await?;
                let counts = snap.counts.clone();
                snap.finish().await?;
                ("postgresql", counts)
            }
            None => {
                services.store.sqlite_snapshot(&plain).await?;
                services.insight.sqlite_snapshot_into(&plain).await?;
                ("sqlite", sqlite_file_counts(&plain).await?)
            }
        };
        let (snapshot_bytes, snapshot_sha256) = sha256_file(&plain)?;
        let manifest = Manifest {
            id: id.clone(),
            created_at,
            backend: backend.into(),
            counts,
            snapshot_bytes,
            snapshot_sha256,
            lacuna_version: env!("CARGO_PKG_VERSION").into(),
        };
        let path = dir.join(format!("lacuna-{id}.lbk"));
        write_encrypted(services, &manifest, &plain, &path)?;
        let (size, file_sha256) = sha256_file(&path)?;
        let sidecar = serde_json::json!({"manifest": manifest, "file_bytes": size, "file_sha256": file_sha256});
        std::fs::write(path.with_extension("manifest.json"), serde_json::to_vec_pretty(&sidecar)?)?;
        anyhow::Ok((path, manifest))
    }
    .await;
    let _ = std::fs::remove_file(&plain);
    let entry = match &result {
        Ok((p, m)) => LedgerEntry {
            kind: "backup".into(),
            file: p.display().to_string(),
            at: created_at,
            ok: true,
            detail: format!("{} rows in {} tables", m.counts.values().sum::<i64>(), m.counts.len()),
        },
        Err(e) => {
            LedgerEntry { kind: "backup".into(), file: String::new(), at: created_at, ok: false, detail: e.to_string() }
        }
    };
    append_ledger(config, &entry)?;
    result
}

fn write_encrypted(services: &Services, manifest: &Manifest, snapshot: &Path, dest: &Path) -> anyhow::Result<()> {
    let mut key = zeroize::Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(key.as_mut());
    let mut nonce = [0u8; STREAM_NONCE_PREFIX];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let header = Header {
        id: manifest.id.clone(),
        created_at: manifest.created_at,
        backend: manifest.backend.clone(),
        master_fingerprint: services.accounts.master_fingerprint(),
        wrapped_key: B64.encode(services.accounts.wrap_backup_key(&manifest.id, &key)),
        nonce_prefix: B64.encode(nonce),
    };
    let header_bytes = serde_json::to_vec(&header)?;
    let aad = Sha256::digest(&header_bytes);
    let tmp = dest.with_extension("lbk.partial");
    let mut out = BufWriter::new(private_file(&tmp)?);
    out.write_all(MAGIC)?;
    out.write_all(&(header_bytes.len() as u32).to_be_bytes())?;
    out.write_all(&header_bytes)?;
    let manifest_bytes = serde_json::to_vec(manifest)?;
    let payload = std::io::Cursor::new((manifest_bytes.len() as u32).to_be_bytes())
        .chain(std::io::Cursor::new(manifest_bytes))
        .chain(BufReader::new(std::fs::File::open(snapshot)?));
    encrypt_stream(&key, &nonce, &aad, payload, &mut out)?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    // Only a complete file gets the final name.
    std::fs::rename(&tmp, dest)?;
    Ok(())
}

/// Decrypts and checks a backup into a private temporary snapshot file. Nothing is restored
/// anywhere; a corrupted or truncated file is an error here.
pub fn open_backup(services: &Services, file: &Path, scratch_dir: &Path) -> anyhow::Result<(Manifest, PathBuf)> {
    let mut f = BufReader::new(std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?);
    let mut magic = [0u8; 16];
    f.read_exact(&mut magic).context("not a Lacuna backup (too short)")?;
    if &magic != MAGIC {
        bail!("not a Lacuna backup (bad magic)");
    }
    let mut len = [0u8; 4];
    f.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > 1 << 20 {
        bail!("backup header is corrupted");
    }
    let mut header_bytes = vec![0u8; len];
    f.read_exact(&mut header_bytes).context("backup header is truncated")?;
    let header: Header = serde_json::from_slice(&header_bytes).context("backup header is corrupted")?;
    let wrapped = B64.decode(&header.wrapped_key).context("backup header is corrupted")?;
    let key = services.accounts.unwrap_backup_key(&header.id, &wrapped).with_context(|| {
        format!("cannot open the backup's key (made with master key {})", header.master_fingerprint)
    })?;
    let nonce: [u8; STREAM_NONCE_PREFIX] =
        B64.decode(&header.nonce_prefix)?.try_into().map_err(|_| anyhow::anyhow!("backup header is corrupted"))?;
    let aad = Sha256::digest(&header_bytes);
    std::fs::create_dir_all(scratch_dir)?;
    let payload_path = scratch_dir.join(format!(".{}.payload.tmp", uuid::Uuid::new_v4().simple()));
    let decrypted = (|| {
        let mut out = BufWriter::new(private_file(&payload_path)?);
        decrypt_stream(&key, &nonce, &aad, &mut f, &mut out).context("backup is corrupted or truncated")?;
        out.flush()?;
        anyhow::Ok(())
    })();
    if let Err(e) = decrypted {
        let _ = std::fs::remove_file(&payload_path);
        return Err(e);
    }
    // Split the payload into manifest and snapshot.
    let result = (|| {
        let mut p = BufReader::new(std::fs::File::open(&payload_path)?);
        let mut len = [0u8; 4];
        p.read_exact(&mut len)?;
        let mut m = vec![0u8; u32::from_be_bytes(len) as usize];
        p.read_exact(&mut m)?;
        let manifest: Manifest = serde_json::from_slice(&m).context("manifest is corrupted")?;
        if manifest.id != header.id {
            bail!("manifest does not belong to this backup");
        }
        let snapshot = scratch_dir.join(format!(".{}.snapshot.tmp", uuid::Uuid::new_v4().simple()));
        let mut out = BufWriter::new(private_file(&snapshot)?);
        std::io::copy(&mut p, &mut out)?;
        out.flush()?;
        drop(out);
        let (n, sha) = sha256_file(&snapshot)?;
        if n != manifest.snapshot_bytes || sha != manifest.snapshot_sha256 {
            let _ = std::fs::remove_file(&snapshot);
            bail!("snapshot does not match its manifest checksum");
        }
        anyhow::Ok((manifest, snapshot))
    })();
    let _ = std::fs::remove_file(&payload_path);
    result
}

fn compare_counts(expected: &Counts, found: &Counts) -> anyhow::Result<()> {
    if expected != found {
        let diff: Vec<String> = expected
            .iter()
            .filter(|(t, n)| found.get(*t) != Some(n))
            .map(|(t, n)| format!("{t}: manifest {n}, restored {:?}", found.get(t)))
            .collect();
        bail!("row counts differ from the manifest: {}", diff.join("; "));
    }
    Ok(())
}

/// What a restore rehearsal found.
#[derive(Debug, Clone, Serialize)]
pub struct Rehearsal {
    pub file: String,
    pub tables: usize,
    pub rows: i64,
    pub tenants: usize,
    pub audit_events: u64,
    pub seconds: f64,
}

/// The restore rehearsal: restores into a scratch database, compares row counts with the
/// manifest, verifies every audit chain, and records the outcome in the ledger.
pub async fn verify(services: &Services, config: &Config, file: &Path) -> anyhow::Result<Rehearsal> {
    let started = std::time::Instant::now();
    let result = rehearse(services, config, file, started).await;
    let entry = LedgerEntry {
        kind: "rehearsal".into(),
        file: file.display().to_string(),
        at: now_unix(),
        ok: result.is_ok(),
        detail: match &result {
            Ok(r) => format!(
                "{} rows, {} tables, {} audit events in {} chains verified",
                r.rows, r.tables, r.audit_events, r.tenants
            ),
            Err(e) => format!("{e:#}"),
        },
    };
    append_ledger(config, &entry)?;
    result
}

async fn rehearse(
    services: &Services,
    config: &Config,
    file: &Path,
    started: std::time::Instant,
) -> anyhow::Result<Rehearsal> {
    let scratch_dir = backups_dir(config).join("rehearsal");
    let (manifest, snapshot) = open_backup(services, file, &scratch_dir)?;
    let outcome = async {
        let (counts, store) = match manifest.backend.as_str() {
            "sqlite" => {
                let counts = sqlite_file_counts(&snapshot).await?;
                let store =
                    lacuna_storage::Store::open(&lacuna_storage::StoreConfig::Sqlite { path: snapshot.clone() })
                        .await?;
                (counts, (store, None))
            }
            _ => {
                let url = backup_url(config).context("a PostgreSQL backup needs DATABASE_URL to rehearse")?;
                let name = format!("lacuna_rehearsal_{}", uuid::Uuid::new_v4().simple());
                pg_admin(&url, format!("CREATE DATABASE {name}")).await?;
                let scratch_url = lacuna_storage::scratch::replace_database(&url, &name);
                let r = async {
                    run(
                        tokio::process::Command::new("pg_restore")
                            .arg("--no-owner")
                            .arg("--dbname")
                            .arg(&scratch_url)
                            .arg(&snapshot),
                        "pg_restore",
                    )
                    .await?;
                    let counts = pg_counts(&scratch_url).await?;
                    let store =
                        lacuna_storage::Store::open(&lacuna_storage::StoreConfig::Postgres(lacuna_storage::PgConfig {
                            owner_url: scratch_url.clone(),
                            app_url: None,
                            app_role: config.app_role.clone(),
                        }))
                        .await?;
                    anyhow::Ok((counts, store))
                }
                .await;
                match r {
                    Ok((counts, store)) => (counts, (store, Some((url, name)))),
                    Err(e) => {
                        let _ = pg_admin(&url, format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
                        return Err(e);
                    }
                }
            }
        };
        let (store, pg_scratch) = store;
        let checked = async {
            compare_counts(&manifest.counts, &counts)?;
            let accounts = services.accounts.with_store(store.clone());
            let reports = accounts.verify_all_audit_chains(|_, _| {}).await?;
            if let Some(b) = reports.iter().find(|r| r.broken.is_some()) {
                bail!("audit chain of tenant {} is broken in the backup: {:?}", b.tenant, b.broken);
            }
            anyhow::Ok(Rehearsal {
                file: file.display().to_string(),
                tables: counts.len(),
                rows: counts.values().sum(),
                tenants: reports.len(),
                audit_events: reports.iter().map(|r| r.events).sum(),
                seconds: started.elapsed().as_secs_f64(),
            })
        }
        .await;
        store.close().await;
        if let Some((url, name)) = pg_scratch {
            pg_admin(&url, format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await?;
        }
        checked
    }
    .await;
    let _ = std::fs::remove_file(&snapshot);
    for ext in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", snapshot.display()));
    }
    outcome
}

/// Restores a backup over the current data. Run with the server stopped. The backup is fully
/// decrypted and checked before anything is replaced; afterwards shred tombstones are replayed.
pub async fn restore(config: &Config, file: &Path) -> anyhow::Result<Manifest> {
    let services = crate::open_services(config).await?;
    let (manifest, snapshot) = open_backup(&services, file, &backups_dir(config).join("restore"))?;
    services.close().await;
    let result = async {
        match manifest.backend.as_str() {
            "sqlite" => {
                if config.database_url.as_deref().is_some_and(|u| u.starts_with("postgres")) {
                    bail!("this is a SQLite backup but DATABASE_URL names PostgreSQL");
                }
                compare_counts(&manifest.counts, &sqlite_file_counts(&snapshot).await?)?;
                let db = config.data_dir.join("lacuna.db");
                lacuna_storage::insight::sqlite_restore_from_snapshot(&snapshot, &config.data_dir.join("insight.db"))
                    .await?;
                for ext in ["-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{ext}", db.display()));
                }
                std::fs::rename(&snapshot, &db)?;
            }
            _ => {
                let url = backup_url(config).context("a PostgreSQL backup needs DATABASE_URL")?;
                run(
                    tokio::process::Command::new("pg_restore")
                        .args(["--clean", "--if-exists", "--single-transaction", "--no-owner", "--dbname"])
                        .arg(&url)
                        .arg(&snapshot),
                    "pg_restore",
                )
                .await?;
                compare_counts(&manifest.counts, &pg_counts(&url).await?)?;
            }
        }
        anyhow::Ok(())
    }
    .await;
    let _ = std::fs::remove_file(&snapshot);
    result?;
    // Data of tenants deleted since the backup comes back unreadable; remove it again.
    let services = crate::open_services(config).await?;
    let replayed = services.accounts.replay_tombstones().await?;
    if !replayed.is_empty() {
        tracing::warn!(tenants = replayed.len(), "removed data of tenants deleted after this backup was taken");
    }
    services.close().await;
    Ok(manifest)
}

/// Deletes backups older than the retention (by their creation time in the file name).
pub fn prune(config: &Config, now: i64) -> anyhow::Result<usize> {
    let cutoff = now - BACKUP_RETENTION_DAYS * 86_400;
    let mut n = 0;
    let Ok(entries) = std::fs::read_dir(backups_dir(config)) else { return Ok(0) };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Some(created) =
            name.strip_prefix("lacuna-").and_then(|r| r.split('-').next()).and_then(|t| t.parse::<i64>().ok())
        else {
            continue;
        };
        if created < cutoff {
            std::fs::remove_file(e.path())?;
            n += 1;
        }
    }
    Ok(n)
}

/// Summarises the ledger for the trust page.
pub fn backup_facts(config: &Config) -> lacuna_http::trust::BackupFacts {
    let ledger = read_ledger(config);
    let last_backup = ledger.iter().rev().find(|e| e.kind == "backup");
    let last_good = ledger.iter().rev().find(|e| e.kind == "rehearsal" && e.ok);
    let last_bad = ledger.iter().rev().find(|e| e.kind == "rehearsal" && !e.ok);
    lacuna_http::trust::BackupFacts {
        last_backup_at: last_backup.map(|e| e.at),
        last_backup_ok: last_backup.map(|e| e.ok),
        last_rehearsal_at: last_good.map(|e| e.at),
        last_rehearsal_detail: last_good.map(|e| e.detail.clone()),
        last_rehearsal_failed_at: last_bad.map(|e| e.at),
    }
}
