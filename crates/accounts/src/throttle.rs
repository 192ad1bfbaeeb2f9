//! Sign-in throttling: a fixed window of failures per key (an account, a client address).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Throttle {
    max_failures: u32,
    window: Duration,
    entries: Mutex<HashMap<String, (Instant, u32)>>,
}

impl Throttle {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self { max_failures, window, entries: Mutex::new(HashMap::new()) }
    }

    /// `Err(seconds)` while the key has used up its failures in the current window.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries.get(key) {
            Some((start, n)) if *n >= self.max_failures => {
                let left = self.window.saturating_sub(start.elapsed());
                if left.is_zero() { Ok(()) } else { Err(left.as_secs().max(1)) }
            }
            _ => Ok(()),
        }
    }

    pub fn record_failure(&self, key: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if entries.len() > 100_000 {
            let window = self.window;
            entries.retain(|_, (start, _)| now.duration_since(*start) < window);
        }
        let e = entries.entry(key.to_string()).or_insert((now, 0));
        if now.duration_since(e.0) >= self.window {
            *e = (now, 0);
        }
        e.1 += 1;
    }

    pub fn clear(&self, key: &str) {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_max_failures_and_unlocks_after_window() {
        let t = Throttle::new(3, Duration::from_millis(200));
        for _ in 0..3 {
            assert!(t.check("a").is_ok());
            t.record_failure("a");
        }
        assert!(t.check("a").is_err());
        assert!(t.check("b").is_ok(), "other keys unaffected");
        std::thread::sleep(Duration::from_millis(250));
        assert!(t.check("a").is_ok());
        t.record_failure("a");
        assert!(t.check("a").is_ok(), "window restarted");
        t.clear("a");
    }
}
