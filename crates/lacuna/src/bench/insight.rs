//! `lacuna bench insight`: Insight's gap engine at scale, against DuckDB in the same run.
//!
//! Reads one tenant's events from Insight's store (after delivering whatever the Practice outbox
//! still holds) — or, with `--synthetic`, builds a demo-shaped stream in memory — parses every
//! body through the PHI guard, then measures
//! 1. loading the gap engine and a full detection (`GapEngine::gaps`), with peak memory;
//! 2. applying new events one at a time (p50 / p99 / max per event), then a detection again;
//! 3. the full run, both engines from one CSV export of the same events: DuckDB (Python package
//!    `duckdb`) reads it and runs the equivalent rebook-due query (its count must equal ours);
//!    we read it, validate every field, load the engine and run all four detectors (the gaps must
//!    equal those from the store). Both ratios are printed: full run, and data already in memory.

use anyhow::{Context, bail};
use lacuna_domain::TenantId;
use lacuna_insight::{AppointmentRef, EventId, EventKind, Gap, GapEngine, GapKind, InsightEvent, PhiGuard, Timestamp};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::time::Instant;

const DAY: i64 = 86_400;

#[derive(Debug, Clone)]
pub struct InsightBenchOptions {
    /// A tenant of the data dir (default: its only tenant).
    pub tenant: Option<String>,
    /// Build the stream in memory instead of reading the store.
    pub synthetic: Option<(usize, usize)>,
    /// New events applied one at a time.
    pub incremental: usize,
    pub duckdb: bool,
    /// Check `gaps` against `gaps_by_scan` (a full scan without the indexes).
    pub verify: bool,
    pub seed: u64,
}

/// Seconds (wall clock) of one step.
fn secs(since: Instant) -> f64 {
    since.elapsed().as_secs_f64()
}

/// `VmHWM` (peak resident set) and `VmRSS` of this process in MiB, from `/proc/self/status`.
fn memory_mib() -> (Option<f64>, Option<f64>) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// CPU seconds (user + system, every thread) this process has used so far, from
/// `/proc/self/stat` (counted in USER_HZ ticks, 1/100 s on Linux); `None` where that is missing.
fn cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // After the command name (in parentheses, which may hold spaces) the fields run from the 3rd;
    // utime and stime are the 14th and 15th.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split(' ').collect();
    let ticks = |at: usize| fields.get(at)?.parse::<f64>().ok();
    Some((ticks(11)? + ticks(12)?) / 100.0)
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|r| r.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split(':').nth(1)).map(|s| s.trim().to_string()))
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cores} cores ({cpu}), {mem_gib:.1} GiB memory")
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted.get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1))).copied().unwrap_or(0)
}

fn counts(gaps: &[Gap]) -> BTreeMap<&'static str, usize> {
    let mut by_kind: BTreeMap<&'static str, usize> = GapKind::ALL.iter().map(|k| (k.as_str(), 0)).collect();
    for g in gaps {
        *by_kind.entry(g.kind.as_str()).or_default() += 1;
    }
    by_kind
}

fn format_counts(c: &BTreeMap<&'static str, usize>) -> String {
    c.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
}

/// The whole benchmark; prints as it goes.
pub async fn insight(config: &crate::Config, opts: &InsightBenchOptions) -> anyhow::Result<()> {
    println!("machine: {}", machine());
    println!("command: {}", std::env::args().collect::<Vec<_>>().join(" "));
    let guard = PhiGuard::new();
    let now_secs = lacuna_storage::now_unix();
    let now = Timestamp::from_unix_seconds(now_secs).context("the clock is outside 2000..2100")?;

    // 1. The events, as Insight stores them: JSON bodies.
    let started = Instant::now();
    let bodies: Vec<String> = match opts.synthetic {
        Some((clients, appointments)) => {
            let bodies = synthetic_stream(clients, appointments, now_secs, opts.seed);
            println!(
                "source: synthetic demo-shaped stream, {clients} clients, {appointments} appointments, {} events \
                 (generated in {:.2}s)",
                bodies.len(),
                secs(started)
            );
            bodies
        }
        None => {
            let services = crate::open_services(config).await?;
            let fed = crate::jobs::deliver_insight_events(&services).await?;
            let tenant = match &opts.tenant {
                Some(t) => t.parse::<TenantId>().map_err(|_| anyhow::anyhow!("--tenant is not a tenant id"))?,
                None => {
                    let all = services.store.tenant_ids().await?;
                    match all.as_slice() {
                        [one] => *one,
                        [] => bail!("no tenant in {}: run `lacuna demo` first", config.data_dir.display()),
                        _ => bail!("{} tenants here: name one with --tenant", all.len()),
                    }
                }
            };
            let read = Instant::now();
            let stored = services.insight.events(tenant).await?;
            println!(
                "source: Insight store of {} (tenant {tenant}), {} events; outbox fed first ({fed} new); read in {:.2}s",
                config.data_dir.display(),
                stored.len(),
                secs(read)
            );
            services.close().await;
            stored.into_iter().map(|e| e.body).collect()
        }
    };
    if bodies.is_empty() {
        bail!("no events to measure");
    }
    let (_, rss_before) = memory_mib();

    // Parse through the PHI guard, exactly as the feed does.
    let started = Instant::now();
    let mut events = Vec::with_capacity(bodies.len());
    let mut refused = 0usize;
    for body in &bodies {
        match guard.check_json(body) {
            Ok(e) => events.push(e),
            Err(_) => refused += 1,
        }
    }
    let parse_secs = secs(started);
    println!(
        "parse + PHI guard: {} events in {parse_secs:.2}s ({:.0} events/s), {refused} refused",
        events.len(),
        events.len() as f64 / parse_secs.max(1e-9)
    );

    // 2. Load + full detection.
    let (_, rss_parsed) = memory_mib();
    let started = Instant::now();
    let mut engine = GapEngine::from_events(&events);
    let load_secs = secs(started);
    let (_, rss_engine) = memory_mib();
    // Dropped only now, so that the engine's memory is fresh pages, not the bodies' reused.
    drop(bodies);
    let started = Instant::now();
    let gaps = engine.gaps(&now);
    let detect_secs = secs(started);
    let (hwm, _) = memory_mib();
    let stats = engine.stats();
    let base_counts = counts(&gaps);
    let ours_secs = load_secs + detect_secs;
    println!(
        "engine: {} events, {} clients, {} providers, {} appointments, {} memberships, {} freed slots",
        stats.events, stats.clients, stats.providers, stats.appointments, stats.memberships, stats.freed_slots
    );
    println!(
        "full detection: load {load_secs:.3}s + gaps {detect_secs:.3}s = {ours_secs:.3}s; {} gaps ({})",
        gaps.len(),
        format_counts(&base_counts)
    );
    let mib = |v: Option<f64>| v.map_or_else(|| "n/a".to_string(), |m| format!("{m:.0} MiB"));
    let delta = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => format!("{:.0} MiB", b - a),
        _ => "n/a".into(),
    };
    println!(
        "memory: peak RSS (VmHWM) {} (JSON bodies, parsed events and engine together); parsed events {}; \
         engine state {}",
        mib(hwm),
        delta(rss_before, rss_parsed),
        delta(rss_parsed, rss_engine)
    );
    if opts.verify {
        let started = Instant::now();
        let scanned = engine.gaps_by_scan(&now);
        let scan_secs = secs(started);
        if scanned != gaps {
            bail!(
                "MISMATCH: the indexed gaps differ from a full scan of the engine ({} vs {})",
                gaps.len(),
                scanned.len()
            );
        }
        println!("verified: gaps() equals gaps_by_scan() (full scan in {scan_secs:.3}s)");
    }

    // 3. Incremental: new events one at a time.
    if opts.incremental > 0 {
        let fresh = incremental_events(&events, opts.incremental, now_secs, opts.seed)?;
        let mut lat = Vec::with_capacity(fresh.len());
        let started = Instant::now();
        for e in &fresh {
            let t = Instant::now();
            engine.apply(e);
            lat.push(t.elapsed().as_nanos() as u64);
        }
        let total = secs(started);
        lat.sort_unstable();
        let us = |ns: u64| ns as f64 / 1000.0;
        println!(
            "incremental: {} events applied one at a time in {total:.3}s; per event p50 {:.1} µs, p99 {:.1} µs, \
             max {:.1} µs (goal p99 < 1 ms)",
            fresh.len(),
            us(percentile(&lat, 0.50)),
            us(percentile(&lat, 0.99)),
            us(lat.last().copied().unwrap_or(0)),
        );
        let started = Instant::now();
        let after = engine.gaps(&now);
        let again = secs(started);
        println!(
            "detection after the incremental events: {again:.3}s, {} freed slots, {} gaps ({})",
            engine.stats().freed_slots,
            after.len(),
            format_counts(&counts(&after))
        );
        if opts.verify {
            let mut all = events.clone();
            all.extend(fresh.iter().cloned());
            let started = Instant::now();
            let recomputed = GapEngine::recompute(&all, &now);
            if recomputed != after {
                bail!(
                    "MISMATCH: incremental gaps differ from a full recompute ({} vs {})",
                    after.len(),
                    recomputed.len()
                );
            }
            println!("verified: incremental equals GapEngine::recompute ({:.3}s)", secs(started));
        }
    }

    // 4. The full run, both engines from the same CSV file: DuckDB reads it and runs the
    //    rebook-due query; we read it, validate every field, load the engine and run all four
    //    detectors.
    let ours_rebook = base_counts.get(GapKind::RebookDue.as_str()).copied().unwrap_or(0);
    if !opts.duckdb {
        println!("duckdb: skipped (--no-duckdb)");
        return Ok(());
    }
    let dir = std::env::temp_dir().join(format!("lacuna-bench-insight-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("events.csv");
    let result = full_run(&events, &path, now_secs, ours_secs, &base_counts);
    let _ = std::fs::remove_dir_all(&dir);
    match result? {
        None => println!(
            "duckdb: the Python package is not installed — `pip install duckdb` (or `python3 -m pip install --user \
             duckdb`), then run again; DuckDB comparison skipped"
        ),
        Some(d) => {
            println!(
                "duckdb {} ({} threads): read_csv {:.3}s + rebook query {:.3}s = {:.3}s; rebook due {} (ours {ours_rebook})",
                d.version,
                d.threads,
                d.load_secs,
                d.query_secs,
                d.load_secs + d.query_secs,
                d.rebook
            );
            if d.rebook != ours_rebook as u64 {
                bail!("MISMATCH: rebook-due counts differ (ours {ours_rebook}, duckdb {})", d.rebook);
            }
            let duck_full = d.load_secs + d.query_secs;
            println!(
                "ratio ours / duckdb, full run from the same CSV file (ours: read + validate + load + all four \
                 detectors, {:.3}s; duckdb: read_csv + rebook query, {duck_full:.3}s) = {:.2}",
                d.ours_full_secs,
                d.ours_full_secs / duck_full.max(1e-9)
            );
            // CPU time moves less than wall time with what else the machine is doing (though a
            // busy cache or memory bus still shows in it): a steadier figure for comparing builds.
            if let (Some(ours), Some(duck)) = (d.ours_full_cpu_secs, d.cpu_secs) {
                println!(
                    "CPU time of the full run, every thread: ours {ours:.2}s, duckdb {duck:.2}s, ratio {:.2}",
                    ours / duck.max(1e-9)
                );
            }
            println!(
                "ratio ours / duckdb, data already in memory (ours: load + all four detectors from parsed events, \
                 {ours_secs:.3}s; duckdb: rebook query on its loaded table, {:.3}s) = {:.2}",
                d.query_secs,
                ours_secs / d.query_secs.max(1e-9)
            );
        }
    }
    Ok(())
}

struct DuckFigures {
    version: String,
    threads: u64,
    load_secs: f64,
    query_secs: f64,
    rebook: u64,
    /// DuckDB's CPU time (every thread) for read_csv and the query, if Python reported it.
    cpu_secs: Option<f64>,
    /// Our full run over the same file.
    ours_full_secs: f64,
    /// Its CPU time, every thread.
    ours_full_cpu_secs: Option<f64>,
}

/// The rebook-due rule of `lacuna_insight::gaps` in SQL: per client and category, the last
/// completed treatment and the cycle of the latest treatment that carried one; due when
/// `now > last + cycle + grace` (grace: a tenth of the cycle, at least 7 days) and no open booking
/// in that category (booked, never completed, cancelled or no-showed) starts at or after `now`.
const REBOOK_SQL: &str = "
WITH treated AS (
    SELECT client, category, max(occurred_at) AS last,
           arg_max(cycle_days, occurred_at) FILTER (WHERE cycle_days > 0) AS cycle
    FROM ev WHERE kind = 'appointment.completed' AND category IS NOT NULL
    GROUP BY client, category
), booking AS (
    SELECT appointment_ref, arg_max(client, occurred_at) AS client, arg_max(category, occurred_at) AS category,
           arg_max(starts_at, occurred_at) AS starts_at
    FROM ev WHERE kind = 'appointment.booked' AND appointment_ref IS NOT NULL
    GROUP BY appointment_ref
), closed AS (
    SELECT DISTINCT appointment_ref FROM ev
    WHERE kind IN ('appointment.completed', 'appointment.cancelled', 'appointment.no_show')
      AND appointment_ref IS NOT NULL
), upcoming AS (
    SELECT DISTINCT b.client, b.category FROM booking b ANTI JOIN closed c USING (appointment_ref)
    WHERE b.starts_at >= $now
)
SELECT count(*) FROM treated t ANTI JOIN upcoming u USING (client, category)
WHERE t.cycle IS NOT NULL
  AND $now > t.last + t.cycle * 86400 + greatest(t.cycle * 86400 // 10, 7 * 86400)";

const DUCK_SCRIPT: &str = r#"
import json, sys, time
try:
    import duckdb
except ImportError:
    print(json.dumps({"missing": True})); sys.exit(0)
path, now, sql = sys.argv[1], int(sys.argv[2]), sys.argv[3]
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
t, c = time.perf_counter(), time.process_time()
con.execute("""CREATE TABLE ev AS SELECT * FROM read_csv(?, header = true, columns = {
    'event_id': 'VARCHAR', 'kind': 'VARCHAR', 'client': 'VARCHAR', 'provider': 'VARCHAR',
    'category': 'VARCHAR', 'cycle_days': 'INTEGER', 'follow_up_days': 'INTEGER', 'price_band': 'VARCHAR',
    'location_id': 'VARCHAR', 'occurred_at': 'BIGINT', 'starts_at': 'BIGINT', 'ends_at': 'BIGINT',
    'membership_id': 'VARCHAR', 'appointment_ref': 'VARCHAR'})""",
    [path])
load = time.perf_counter() - t
t = time.perf_counter()
n = con.execute(sql.replace("$now", str(now))).fetchone()[0]
query = time.perf_counter() - t
cpu = time.process_time() - c
print(json.dumps({"version": duckdb.__version__, "threads": int(threads), "load": load, "query": query, "rebook": n,
                  "cpu": cpu}))
"#;

/// The CSV header: every field of an event, times in Unix seconds.
const CSV_HEADER: &str = "event_id,kind,client,provider,category,cycle_days,follow_up_days,price_band,location_id,\
                          occurred_at,starts_at,ends_at,membership_id,appointment_ref";

/// Writes every event, every field, to `path` (no value needs quoting: ids, keywords, numbers).
fn export_csv(events: &[InsightEvent], path: &std::path::Path) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "{CSV_HEADER}")?;
    let mut line = String::with_capacity(320);
    let secs = |t: &Option<Timestamp>| t.as_ref().map(|t| t.unix_seconds().to_string()).unwrap_or_default();
    for e in events {
        line.clear();
        let _ = writeln!(
            line,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            e.event_id.as_str(),
            e.kind.as_str(),
            e.client.as_str(),
            e.provider.as_ref().map_or("", |p| p.as_str()),
            e.service_category.map_or("", |c| c.as_str()),
            e.cycle_days.map(|d| d.get().to_string()).unwrap_or_default(),
            e.follow_up_days.map(|d| d.get().to_string()).unwrap_or_default(),
            e.price_band.map_or("", |b| b.as_str()),
            e.location_id.as_ref().map_or("", |l| l.as_str()),
            e.occurred_at.unix_seconds(),
            secs(&e.starts_at),
            secs(&e.ends_at),
            e.membership_id.as_ref().map_or("", |m| m.as_str()),
            e.appointment_ref.as_ref().map_or("", |a| a.as_str()),
        );
        out.write_all(line.as_bytes())?;
    }
    // On disk before either side is timed: otherwise the kernel writes the fresh file back
    // while the first reader (DuckDB) runs, and that side alone pays for it.
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(())
}

/// One CSV row back into an event, every field through its validator; `None` if any fails.
fn event_from_csv(line: &str) -> Option<InsightEvent> {
    use lacuna_insight::{
        ClientPseudonym, Days, LocationId, MembershipPseudonym, PriceBand, ProviderPseudonym, ServiceCategory,
    };
    fn opt<T>(field: &str, parse: impl Fn(&str) -> Option<T>) -> Option<Option<T>> {
        if field.is_empty() { Some(None) } else { parse(field).map(Some) }
    }
    let time = |f: &str| f.parse::<i64>().ok().and_then(Timestamp::from_unix_seconds);
    let days = |f: &str| f.parse::<u64>().ok().and_then(Days::new);
    // The 14 fields, cut at the commas in one pass (no value contains a comma).
    let mut fields = [""; 14];
    let (mut n, mut start) = (0, 0);
    for at in memchr::memchr_iter(b',', line.as_bytes()) {
        *fields.get_mut(n)? = line.get(start..at)?;
        (n, start) = (n + 1, at + 1);
    }
    *fields.get_mut(n)? = line.get(start..)?;
    if n != fields.len() - 1 {
        return None;
    }
    let mut f = fields.into_iter();
    let mut next = || f.next();
    let event = InsightEvent {
        event_id: EventId::parse(next()?)?,
        kind: EventKind::parse(next()?)?,
        client: ClientPseudonym::parse(next()?)?,
        provider: opt(next()?, ProviderPseudonym::parse)?,
        service_category: opt(next()?, ServiceCategory::parse)?,
        cycle_days: opt(next()?, days)?,
        follow_up_days: opt(next()?, days)?,
        price_band: opt(next()?, PriceBand::parse)?,
        location_id: opt(next()?, LocationId::parse)?,
        occurred_at: time(next()?)?,
        starts_at: opt(next()?, time)?,
        ends_at: opt(next()?, time)?,
        membership_id: opt(next()?, MembershipPseudonym::parse)?,
        appointment_ref: opt(next()?, AppointmentRef::parse)?,
    };
    (!event.kind.is_appointment() || event.service_category.is_some()).then_some(event)
}

/// Our full run over the CSV file, streamed: one thread reads it in blocks and turns every row
/// into an event (every field through its validator), chunk by chunk, while the engine loads the
/// chunks already read (deduplicating on a second thread, applying on this one) — so at no time do
/// more than a few chunks of rows or events exist, and no byte or event is written to memory
/// the process has not written before. Then the gaps. Returns seconds, CPU seconds (every
/// thread) and the gap counts.
fn ours_from_csv(
    path: &std::path::Path,
    now: &Timestamp,
) -> anyhow::Result<(f64, Option<f64>, BTreeMap<&'static str, usize>)> {
    use std::sync::mpsc;
    let started = Instant::now();
    let cpu_started = cpu_secs();
    let file = std::fs::File::open(path)?;
    // A guess at the number of rows, to size the engine's tables once: the demo's rows are
    // about 200 bytes.
    let expected = usize::try_from(file.metadata()?.len() / 200).unwrap_or(0);
    let (to_engine, chunks) = mpsc::sync_channel::<Vec<InsightEvent>>(4);
    let (recycle, recycled) = mpsc::channel::<Vec<InsightEvent>>();
    let (engine, read) = std::thread::scope(|scope| {
        let reader = scope.spawn(move || -> anyhow::Result<f64> {
            read_csv_events(file, &to_engine, &recycled)?;
            Ok(secs(started))
        });
        let engine = GapEngine::from_chunks(chunks, expected, |chunk| {
            let _ = recycle.send(chunk);
        });
        (engine, reader.join())
    });
    let read = match read {
        Ok(read) => read?,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    let loaded = secs(started);
    let gaps = engine.gaps(now);
    let total = secs(started);
    let cpu = cpu_secs().zip(cpu_started).map(|(end, start)| end - start);
    println!(
        "ours from the CSV, by phase: read + validate + load {loaded:.3}s (pipelined; the reader done after \
         {read:.3}s), gaps {:.3}s",
        total - loaded
    );
    Ok((total, cpu, counts(&gaps)))
}

/// The reader of [`ours_from_csv`]: the file in blocks of 1 MiB, each block's whole lines turned
/// into events (one UTF-8 check per block, lines and fields cut with `memchr`), sent to the engine
/// in chunks of [`lacuna_insight::gaps::LOAD_CHUNK`] events, refilling chunks it gets back.
fn read_csv_events(
    mut file: std::fs::File,
    to_engine: &std::sync::mpsc::SyncSender<Vec<InsightEvent>>,
    recycled: &std::sync::mpsc::Receiver<Vec<InsightEvent>>,
) -> anyhow::Result<()> {
    use std::io::Read as _;
    const BLOCK: usize = 1 << 20;
    const CHUNK: usize = lacuna_insight::gaps::LOAD_CHUNK;
    let mut block: Vec<u8> = Vec::with_capacity(2 * BLOCK);
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut line_number = 0usize;
    let send =
        |chunk: Vec<InsightEvent>| to_engine.send(chunk).map_err(|_| anyhow::anyhow!("the engine stopped loading"));
    loop {
        // Append up to a block after the partial line carried over from the last one.
        let kept = block.len();
        block.resize(kept + BLOCK, 0);
        let read = file.read(&mut block[kept..])?;
        block.truncate(kept + read);
        if read == 0 {
            if block.is_empty() {
                break;
            }
            if !block.ends_with(b"\n") {
                block.push(b'\n'); // the last line, without its newline
            }
        }
        let Some(last) = memchr::memrchr(b'\n', &block) else { continue };
        let whole = last + 1;
        let text = std::str::from_utf8(&block[..whole]).context("the CSV file is not UTF-8")?;
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', text.as_bytes()) {
            let row = text.get(start..end).unwrap_or_default();
            let row = row.strip_suffix('\r').unwrap_or(row);
            start = end + 1;
            line_number += 1;
            if line_number == 1 {
                continue; // the header
            }
            let event = event_from_csv(row)
                .with_context(|| format!("CSV line {line_number} did not read back as a valid event"))?;
            chunk.push(event);
            if chunk.len() == CHUNK {
                let mut next = recycled.try_recv().unwrap_or_else(|_| Vec::with_capacity(CHUNK));
                next.clear();
                send(std::mem::replace(&mut chunk, next))?;
            }
        }
        block.drain(..whole);
    }
    if !chunk.is_empty() {
        send(chunk)?;
    }
    Ok(())
}

/// Exports the events to one CSV file, runs DuckDB on it, then our full run on the same file.
/// `None` if the `duckdb` Python package is missing.
fn full_run(
    events: &[InsightEvent],
    path: &std::path::Path,
    now: i64,
    ours_in_memory_secs: f64,
    expected: &BTreeMap<&'static str, usize>,
) -> anyhow::Result<Option<DuckFigures>> {
    let started = Instant::now();
    export_csv(events, path)?;
    let csv_mib = std::fs::metadata(path).map_or(0.0, |m| m.len() as f64 / 1024.0 / 1024.0);
    println!(
        "CSV export: {} events, {csv_mib:.0} MiB in {:.2}s (not timed for either side)",
        events.len(),
        secs(started)
    );
    let output = std::process::Command::new("python3")
        .arg("-c")
        .arg(DUCK_SCRIPT)
        .arg(path)
        .arg(now.to_string())
        .arg(REBOOK_SQL)
        .output();
    let output = match output {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).context("running python3"),
    };
    if !output.status.success() {
        bail!("duckdb run failed: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    let v: serde_json::Value = serde_json::from_slice(&output.stdout).with_context(|| {
        format!("duckdb output: {}", String::from_utf8_lossy(&output.stdout).chars().take(500).collect::<String>())
    })?;
    if v["missing"].as_bool() == Some(true) {
        return Ok(None);
    }
    let now_ts = Timestamp::from_unix_seconds(now).context("the clock is outside 2000..2100")?;
    let (ours_full_secs, ours_full_cpu_secs, from_csv) = ours_from_csv(path, &now_ts)?;
    if &from_csv != expected {
        bail!("MISMATCH: gaps from the CSV file differ from gaps from the store ({from_csv:?} vs {expected:?})");
    }
    println!(
        "ours from the same CSV: {ours_full_secs:.3}s (read, validate and load pipelined on 3 threads, all four detectors; \
         in memory alone {ours_in_memory_secs:.3}s); same gaps as from the store"
    );
    Ok(Some(DuckFigures {
        version: v["version"].as_str().unwrap_or("?").to_string(),
        threads: v["threads"].as_u64().unwrap_or(0),
        load_secs: v["load"].as_f64().unwrap_or(0.0),
        query_secs: v["query"].as_f64().unwrap_or(0.0),
        rebook: v["rebook"].as_u64().context("duckdb gave no count")?,
        cpu_secs: v["cpu"].as_f64(),
        ours_full_secs,
        ours_full_cpu_secs,
    }))
}

const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// `prefix` + 26 base32 characters from a random 128-bit value.
fn pseudonym(prefix: &str, rng: &mut StdRng) -> String {
    let mut s = String::with_capacity(prefix.len() + 26);
    s.push_str(prefix);
    for _ in 0..26 {
        s.push(char::from(BASE32[rng.gen_range(0..32)]));
    }
    s
}

fn instant(unix: i64) -> String {
    Timestamp::from_unix_seconds(unix).map(|t| t.to_string()).unwrap_or_default()
}

fn band(minor: i64) -> &'static str {
    lacuna_practice::insight_feed::price_band(minor)
}

/// (category, price in cents, cycle days, follow-up days, weight) — the demo's menu.
const MENU: &[(&str, i64, u16, u16, u32)] = &[
    ("neurotoxin", 42_000, 90, 14, 14),
    ("neurotoxin", 38_000, 90, 14, 8),
    ("neurotoxin", 18_000, 75, 14, 4),
    ("filler", 75_000, 270, 14, 5),
    ("filler", 120_000, 365, 14, 2),
    ("filler", 90_000, 270, 14, 2),
    ("laser", 15_000, 42, 0, 5),
    ("laser", 35_000, 42, 0, 3),
    ("laser", 40_000, 30, 7, 4),
    ("laser", 95_000, 90, 7, 1),
    ("facial", 22_000, 30, 0, 8),
    ("facial", 18_000, 42, 7, 4),
    ("facial", 35_000, 42, 7, 4),
    ("facial", 16_000, 30, 0, 6),
    ("massage", 13_000, 28, 0, 8),
    ("massage", 18_000, 28, 0, 5),
    ("hair", 9_500, 42, 0, 6),
    ("hair", 21_000, 56, 0, 3),
    ("nails", 5_500, 21, 0, 5),
    ("nails", 7_500, 28, 0, 3),
];

fn weighted(rng: &mut StdRng) -> usize {
    let total: u32 = MENU.iter().map(|m| m.4).sum();
    let mut x = rng.gen_range(0..total);
    for (i, m) in MENU.iter().enumerate() {
        if x < m.4 {
            return i;
        }
        x -= m.4;
    }
    0
}

#[allow(clippy::too_many_arguments)]
fn appointment_body(
    out: &mut Vec<String>,
    kind: &str,
    client: &str,
    provider: &str,
    service: usize,
    location: &str,
    at: i64,
    starts: i64,
    reference: &str,
) {
    let (category, price, cycle, follow_up, _) = MENU[service];
    let mut body = format!(
        r#"{{"event_id":"{}","kind":"{kind}","client":"{client}","provider":"{provider}","service_category":"{category}","price_band":"{}","location_id":"{location}","occurred_at":"{}","starts_at":"{}","ends_at":"{}","appointment_ref":"{reference}","cycle_days":{cycle}"#,
        uuid::Uuid::new_v4(),
        band(price),
        instant(at),
        instant(starts),
        instant(starts + 3600),
    );
    if follow_up > 0 {
        let _ = write!(body, r#","follow_up_days":{follow_up}"#);
    }
    body.push('}');
    out.push(body);
}

/// A demo-shaped stream as JSON bodies: two years of history per client (a favourite service,
/// provider and hour, back about once per cycle until they lapse; 8 % cancelled, 3 % no-shows),
/// bookings for the next three weeks of which some are cancelled already (freed slots), and
/// memberships for 8 % of clients.
pub fn synthetic_stream(clients: usize, appointments: usize, now: i64, seed: u64) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let providers: Vec<String> = (0..(appointments / 2_500).max(8)).map(|_| pseudonym("pv_", &mut rng)).collect();
    let locations = ["loc_downtown", "loc_riverside"];
    let ids: Vec<String> = (0..clients.max(1)).map(|_| pseudonym("p_", &mut rng)).collect();
    let mut out = Vec::with_capacity(appointments * 2 + clients / 4);
    let first = now - 730 * DAY;
    let mut made = 0;
    'rounds: for _ in 0..200 {
        for client in &ids {
            if made >= appointments {
                break 'rounds;
            }
            let service = weighted(&mut rng);
            let provider = &providers[rng.gen_range(0..providers.len())];
            let location = locations[rng.gen_range(0..2)];
            let hour = rng.gen_range(9..18) * 3600 + rng.gen_range(0..4) * 900;
            let loyalty: f64 = rng.gen_range(0.75..0.97);
            let cycle = i64::from(MENU[service].2);
            let mut day = rng.gen_range(0..730);
            while made < appointments && day < 751 {
                let starts = first + day * DAY - first.rem_euclid(DAY) + hour;
                let reference = pseudonym("a_", &mut rng);
                let created = (starts - rng.gen_range(1..30) * DAY).min(now);
                appointment_body(
                    &mut out,
                    "appointment.booked",
                    client,
                    provider,
                    service,
                    location,
                    created,
                    starts,
                    &reference,
                );
                made += 1;
                let roll: f64 = rng.gen_range(0.0..1.0);
                if starts > now {
                    // Upcoming; one in twelve already cancelled, freeing its slot.
                    if roll < 0.08 {
                        let at = (created + DAY).min(now);
                        appointment_body(
                            &mut out,
                            "appointment.cancelled",
                            client,
                            provider,
                            service,
                            location,
                            at,
                            starts,
                            &reference,
                        );
                    }
                    break;
                }
                let outcome = if roll < 0.08 {
                    ("appointment.cancelled", starts - DAY)
                } else if roll < 0.11 {
                    ("appointment.no_show", starts + 3600)
                } else {
                    ("appointment.completed", starts + 3600)
                };
                appointment_body(
                    &mut out,
                    outcome.0,
                    client,
                    provider,
                    service,
                    location,
                    outcome.1.min(now),
                    starts,
                    &reference,
                );
                if !rng.gen_bool(loyalty) {
                    break;
                }
                day += (cycle as f64 * rng.gen_range(0.85..1.35)).round() as i64;
            }
        }
    }
    for client in &ids {
        if rng.gen_range(0.0..1.0) >= 0.08 {
            continue;
        }
        let membership = pseudonym("m_", &mut rng);
        let started = now - rng.gen_range(30..700) * DAY;
        let months = (now - started) / (30 * DAY) + 1;
        let mut push = |kind: &str, at: i64, price: i64| {
            out.push(format!(
                r#"{{"event_id":"{}","kind":"{kind}","client":"{client}","membership_id":"{membership}","price_band":"{}","occurred_at":"{}"}}"#,
                uuid::Uuid::new_v4(),
                band(price),
                instant(at)
            ));
        };
        push("membership.started", started, 14_900);
        for m in 1..months {
            push("membership.renewed", started + m * 30 * DAY, 14_900);
        }
        for _ in 0..rng.gen_range(0..=months) {
            push("membership.redeemed", rng.gen_range(started..now), 16_000);
        }
    }
    out
}

/// `count` new events shaped like the stream: new bookings in the next three weeks for known
/// clients (of a category and provider they used), some completed visits just now, and
/// cancellations of a quarter of those new bookings (each freeing a slot).
fn incremental_events(base: &[InsightEvent], count: usize, now: i64, seed: u64) -> anyhow::Result<Vec<InsightEvent>> {
    let templates: Vec<&InsightEvent> =
        base.iter().filter(|e| e.kind == EventKind::AppointmentCompleted && e.provider.is_some()).collect();
    if templates.is_empty() {
        bail!("the stream has no completed appointments to model new events on");
    }
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    let mut out = Vec::with_capacity(count);
    let mut booked: Vec<InsightEvent> = Vec::new();
    while out.len() < count {
        let t = templates[rng.gen_range(0..templates.len())];
        let roll = rng.gen_range(0..100);
        let mut e = t.clone();
        e.event_id = EventId::parse(&uuid::Uuid::new_v4().to_string()).context("event id")?;
        if roll < 25 && !booked.is_empty() {
            // Cancel one of the new bookings: its slot is freed.
            let b = booked.swap_remove(rng.gen_range(0..booked.len()));
            e = InsightEvent { event_id: e.event_id, kind: EventKind::AppointmentCancelled, ..b };
            e.occurred_at = ts(now - rng.gen_range(1..3600))?;
        } else if roll < 40 {
            // A visit completed just now.
            let starts = now - rng.gen_range(2..8) * 3600;
            e.kind = EventKind::AppointmentCompleted;
            e.appointment_ref = AppointmentRef::parse(&pseudonym("a_", &mut rng));
            e.starts_at = Some(ts(starts)?);
            e.ends_at = Some(ts(starts + 3600)?);
            e.occurred_at = ts(starts + 3600)?;
        } else {
            // A new booking in the next three weeks.
            let starts = (now + rng.gen_range(1..21) * DAY) / 900 * 900;
            e.kind = EventKind::AppointmentBooked;
            e.appointment_ref = AppointmentRef::parse(&pseudonym("a_", &mut rng));
            e.starts_at = Some(ts(starts)?);
            e.ends_at = Some(ts(starts + 3600)?);
            e.occurred_at = ts(now - rng.gen_range(1..3600))?;
            booked.push(e.clone());
        }
        out.push(e);
    }
    Ok(out)
}

fn ts(unix: i64) -> anyhow::Result<Timestamp> {
    Timestamp::from_unix_seconds(unix).context("time outside 2000..2100")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The process's CPU time is read, and grows with work done on another thread and this one.
    #[test]
    fn cpu_time_grows_with_work_on_any_thread() {
        let before = cpu_secs().expect("/proc/self/stat");
        let spin = || {
            let until = Instant::now() + std::time::Duration::from_millis(300);
            let mut x = 0u64;
            while Instant::now() < until {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(1));
            }
            x
        };
        let other = std::thread::spawn(spin);
        spin();
        let _ = other.join();
        let used = cpu_secs().expect("/proc/self/stat") - before;
        // Two threads spun 0.3 s each; on a loaded machine (tests run in parallel) they may have
        // run much less than that, but never nothing (ticks are 10 ms).
        assert!(used >= 0.05, "only {used}s of CPU counted");
    }

    /// The CSV export reads back as the same events, in the same order, across block boundaries
    /// (several MiB of rows), with or without a newline after the last row, with CRLF line ends.
    #[test]
    fn csv_rows_read_back_as_the_events_written() {
        let guard = PhiGuard::new();
        let now = 1_790_000_000;
        let events: Vec<InsightEvent> = synthetic_stream(3_000, 12_000, now, 7)
            .iter()
            .map(|body| guard.check_json(body).expect("a synthetic event passes the guard"))
            .collect();
        let dir = std::env::temp_dir().join(format!("lacuna-csv-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("events.csv");
        export_csv(&events, &path).expect("export");
        assert!(std::fs::metadata(&path).expect("written").len() > 3 << 20, "spans several blocks");
        let written = std::fs::read_to_string(&path).expect("read");
        for (variant, text) in [
            ("as written", written.clone()),
            ("no newline after the last row", written.trim_end_matches('\n').to_string()),
            ("CRLF line ends", written.replace('\n', "\r\n")),
        ] {
            std::fs::write(&path, text).expect("rewrite");
            let (send, receive) = std::sync::mpsc::sync_channel(64);
            let (_recycle, recycled) = std::sync::mpsc::channel();
            let file = std::fs::File::open(&path).expect("open");
            read_csv_events(file, &send, &recycled).expect("every row valid");
            drop(send);
            let back: Vec<InsightEvent> = receive.iter().flatten().collect();
            assert_eq!(back.len(), events.len(), "{variant}");
            assert!(back == events, "{variant}");
        }
        // A row that does not validate names its line.
        let mut text = written;
        text.push_str("\nnot-an-id,appointment.booked");
        std::fs::write(&path, text).expect("rewrite");
        let (send, _receive) = std::sync::mpsc::sync_channel(64);
        let (_recycle, recycled) = std::sync::mpsc::channel();
        let err = read_csv_events(std::fs::File::open(&path).expect("open"), &send, &recycled).expect_err("refused");
        assert!(err.to_string().contains(&format!("CSV line {}", events.len() + 2)), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
