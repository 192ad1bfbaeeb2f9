//! The web UI end to end, in headless Chromium driven through WebDriver (chromedriver): sign up,
//! enroll MFA from the QR page (the code computed from the secret shown), sign out and back in
//! with the second factor, set up a location, a service and a provider with hours, add a client,
//! book from an open slot on the calendar, book the same slot again and see the conflict, search
//! clients as you type, open the profile, a refused form keeping what was typed, settings and
//! owner tools, and an ended session sending the browser to sign-in and back.
//!
//! Screenshots of the main pages land in `<target>/screenshots/`. Needs Debian's `chromium` and
//! `chromium-driver`; without them the test fails (never silently passes).
#![allow(clippy::unwrap_used)]

mod common;

use common::{PASSWORD, TestApp};
use fantoccini::{Client, ClientBuilder, Locator};
use lacuna::scratch::Backend;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_web_ui_end_to_end() {
    web_ui_end_to_end(Backend::Sqlite).await
}

fn find_in_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).flat_map(|dir| names.iter().map(move |n| dir.join(n))).find(|p| p.is_file())
}

/// chromedriver on a free loopback port; killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_driver() -> Driver {
    let Some(driver) = find_in_path(&["chromedriver"]) else {
        let how = "install Chromium and its WebDriver: `apt-get install -y chromium chromium-driver` (Debian)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("chromedriver is not installed on this CI machine; .ci/run should have installed it: {how}");
        }
        panic!("the web UI end-to-end test needs chromedriver, which is not installed: {how}");
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let d = Driver { child, url: format!("http://127.0.0.1:{port}") };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start listening on port {port}");
}

/// Where screenshots go: `$CARGO_TARGET_DIR/screenshots` or the workspace's `target/screenshots`.
fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct Browser {
    c: Client,
    base: String,
    shots: PathBuf,
    _profile: tempdir::TempDir,
    _driver: Driver,
}

mod tempdir {
    /// A fresh Chromium profile directory, removed afterwards.
    pub struct TempDir(pub std::path::PathBuf);
    impl TempDir {
        pub fn new() -> Self {
            let p = std::env::temp_dir().join(format!("lacuna-chromium-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&p).unwrap();
            Self(p)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Browser {
    async fn start(base: &str) -> Browser {
        let driver = start_driver().await;
        let profile = tempdir::TempDir::new();
        let mut opts = serde_json::json!({
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--ignore-certificate-errors", "--window-size=1366,900", "--lang=en-US",
                format!("--user-data-dir={}", profile.0.display()),
            ],
        });
        if let Some(bin) = find_in_path(&["chromium", "chromium-browser", "google-chrome"]) {
            opts["binary"] = serde_json::Value::String(bin.display().to_string());
        }
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), "chrome".into());
        caps.insert("acceptInsecureCerts".into(), true.into());
        caps.insert("goog:chromeOptions".into(), opts);
        let c = ClientBuilder::rustls()
            .expect("rustls connector")
            .capabilities(caps)
            .connect(&driver.url)
            .await
            .expect("a Chromium session (is `chromium` installed?)");
        Browser { c, base: base.to_string(), shots: screenshot_dir(), _profile: profile, _driver: driver }
    }

    async fn go(&self, path: &str) {
        self.c.goto(&format!("{}{}", self.base, path)).await.unwrap();
    }

    async fn fill(&self, css: &str, text: &str) {
        let e = self.c.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
        e.clear().await.unwrap();
        e.send_keys(text).await.unwrap();
    }

    async fn click(&self, css: &str) {
        self.c.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).click().await.unwrap();
    }

    async fn select(&self, css: &str, value: &str) {
        let e = self.c.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
        e.select_by_value(value).await.unwrap();
    }

    /// Clicks the submit button of the form matched by `form` and waits for the next page.
    async fn submit(&self, form: &str) {
        let before = self.c.find(Locator::Css("body")).await.ok();
        self.click(&format!("{form} button[type=submit]")).await;
        // Wait for the old document to go (its body goes stale), then for the new one to load.
        if let Some(old) = before {
            for _ in 0..100 {
                if old.text().await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        self.settle().await;
    }

    /// Waits until the document has loaded.
    async fn settle(&self) {
        for _ in 0..50 {
            let state = self.c.execute("return document.readyState", vec![]).await.unwrap();
            if state == "complete" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The page's text; retried while a navigation replaces the document under us.
    async fn text(&self) -> String {
        for _ in 0..100 {
            if let Ok(body) = self.c.find(Locator::Css("body")).await
                && let Ok(text) = body.text().await
            {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no page text at {}", self.path().await)
    }

    async fn path(&self) -> String {
        let u = self.c.current_url().await.unwrap();
        match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        }
    }

    /// Waits (up to 5 s) for `needle` to appear on the page.
    async fn assert_text(&self, needle: &str) {
        let mut text = String::new();
        for _ in 0..50 {
            text = self.text().await;
            if text.contains(needle) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("expected {needle:?} on {}:\n{text}", self.path().await);
    }

    async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        self.c.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css(css)).await.unwrap_or_else(|e| {
            panic!("waiting for {css}: {e}");
        })
    }

    async fn shot(&self, name: &str) {
        let png = self.c.screenshot().await.unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    /// A screenshot of the whole page (the window grown to the document's height, then restored).
    async fn full_shot(&self, name: &str) {
        let h = self.c.execute("return document.documentElement.scrollHeight", vec![]).await.unwrap();
        let h = h.as_u64().unwrap_or(900).clamp(600, 4000) as u32;
        self.c.set_window_size(1366, h + 120).await.unwrap();
        self.shot(name).await;
        self.c.set_window_size(1366, 900).await.unwrap();
    }
}

fn totp_now(secret_b32: &str, ahead: u64) -> String {
    let secret = lacuna_crypto::totp_secret_from_base32(secret_b32.trim()).expect("base32 secret on the page");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    lacuna_crypto::totp_code(&secret, now + ahead)
}

async fn web_ui_end_to_end(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let b = Browser::start(&app.base).await;
    let email = "olive@glowspa.example";

    // ---- sign up ---------------------------------------------------------------------------------
    b.go("/").await;
    assert!(b.path().await.starts_with("/signin"), "anonymous visitors land on sign-in");
    b.shot("01-sign-in").await;
    b.go("/signup").await;
    b.fill("#f-practice_name", "Glow Spa").await;
    b.fill("#f-name", "Olive Owner").await;
    b.fill("#f-email", email).await;
    b.fill("#f-password", "short").await;
    b.submit("main form").await;
    // Refused by the accounts service, shown beside the field, the rest kept.
    b.wait_for(".has-error #f-password").await;
    let kept = b.c.find(Locator::Css("#f-practice_name")).await.unwrap().prop("value").await.unwrap();
    assert_eq!(kept.as_deref(), Some("Glow Spa"));
    b.shot("02-sign-up-error").await;
    b.fill("#f-password", PASSWORD).await;
    b.submit("main form").await;
    assert!(b.path().await.starts_with("/calendar"), "signed up: {}", b.path().await);
    b.assert_text("Set up your calendar").await;
    b.shot("03-calendar-onboarding").await;

    // ---- MFA enrollment ------------------------------------------------------------------------
    b.go("/account/mfa").await;
    b.submit("main form[action='/account/mfa/enroll']").await;
    b.wait_for(".enroll-qr svg").await;
    let secret = b.c.find(Locator::Css("#mfa-secret")).await.unwrap().text().await.unwrap();
    b.shot("04-mfa-enroll").await;
    b.fill("#f-code", &totp_now(&secret, 0)).await;
    b.submit("main form[action='/account/mfa/confirm']").await;
    b.assert_text("Save your recovery codes").await;
    let recovery = b.c.find(Locator::Css("ul.codes li code")).await.unwrap().text().await.unwrap();
    b.shot("05-mfa-recovery-codes").await;

    // ---- sign out, sign in with the second factor ----------------------------------------------
    b.submit("header form[action='/signout']").await;
    b.assert_text("You are signed out").await;
    b.fill("#f-email", email).await;
    b.fill("#f-password", PASSWORD).await;
    b.submit("main form").await;
    assert!(b.path().await.starts_with("/mfa/verify"), "the second factor is asked: {}", b.path().await);
    b.shot("06-mfa-prompt").await;
    // The enrollment used this time step; the next one is within the accepted skew.
    b.fill("#f-code", &totp_now(&secret, 30)).await;
    b.submit("main form").await;
    assert!(b.path().await.starts_with("/calendar"), "signed in: {}", b.path().await);

    // ---- a location, a service, a provider with hours -----------------------------------------
    b.go("/settings/locations").await;
    b.fill("#f-name", "Main studio").await;
    b.submit("main form[action='/settings/locations']").await;
    b.assert_text("Main studio").await;

    b.go("/settings/services").await;
    b.fill("#f-name", "Signature facial").await;
    b.select("#f-category", "facial").await;
    b.fill("#f-duration_min", "60").await;
    b.fill("#f-price_minor", "abc").await;
    b.submit("main form[action='/settings/services']").await;
    b.wait_for(".has-error #f-price_minor").await;
    b.fill("#f-price_minor", "120").await;
    b.fill("#f-cycle_days", "42").await;
    b.fill("#f-follow_up_days", "14").await;
    b.submit("main form[action='/settings/services']").await;
    b.assert_text("Signature facial").await;
    b.assert_text("42 days").await;
    b.full_shot("07-settings-services").await;

    b.go("/settings/providers").await;
    b.fill("#f-name", "Maya Chen").await;
    b.click("#f-service_ids-0").await;
    b.submit("main form[action='/settings/providers']").await;
    b.assert_text("Weekly hours").await;
    for d in 0..7 {
        let cb = b.c.find(Locator::Css(&format!("#works-{d}"))).await.unwrap();
        if cb.prop("checked").await.unwrap().as_deref() != Some("true") {
            cb.click().await.unwrap();
        }
    }
    b.submit("main form[action$='/hours']").await;
    b.assert_text("Saved.").await;
    b.full_shot("08-settings-provider-hours").await;

    // ---- a client ----------------------------------------------------------------------------
    b.go("/clients/new").await;
    b.fill("#f-name", "Olivia Bennett").await;
    b.fill("#f-email", "olivia@example").await;
    b.fill("#f-phone", "+1 415 555 0134").await;
    b.submit("main form").await;
    b.wait_for(".has-error #f-email").await;
    let kept = b.c.find(Locator::Css("#f-name")).await.unwrap().prop("value").await.unwrap();
    assert_eq!(kept.as_deref(), Some("Olivia Bennett"), "the form keeps what was typed");
    b.shot("09-client-form-error").await;
    b.fill("#f-email", "olivia@example.com").await;
    b.fill("#f-notes", "Prefers afternoon appointments.").await;
    b.submit("main form").await;
    b.assert_text("Client since").await;
    let client_path = b.path().await;
    let client_id = client_path.trim_start_matches("/clients/").split('?').next().unwrap().to_string();

    // ---- book from an open slot on the calendar ---------------------------------------------
    let tomorrow = jiff::Zoned::now().with_time_zone(jiff::tz::TimeZone::UTC).date().tomorrow().unwrap();
    b.go(&format!("/calendar?date={tomorrow}")).await;
    let slot = b.wait_for("td.open a.slot").await;
    let book_href = slot.attr("href").await.unwrap().expect("slot link");
    b.full_shot("10-calendar-day-open-slots").await;
    slot.click().await.unwrap();
    b.settle().await;
    b.assert_text("New appointment").await;
    b.select("#f-client_id", &client_id).await;
    b.shot("11-book-form").await;
    b.submit("main form").await;
    b.assert_text("Appointment booked.").await;
    b.assert_text("Olivia Bennett").await;
    b.full_shot("12-calendar-day-booked").await;

    // The same slot again (a second front desk with the form still open): the booking service's
    // conflict is shown as such.
    b.go(&book_href).await;
    b.select("#f-client_id", &client_id).await;
    b.submit("main form").await;
    b.assert_text("That time was just taken").await;
    b.wait_for(".has-error #f-time").await;
    b.shot("13-double-booking").await;

    // Week view and the appointment itself.
    b.go(&format!("/calendar?date={tomorrow}&view=week")).await;
    b.assert_text("Olivia Bennett").await;
    b.shot("14-calendar-week").await;
    b.go(&format!("/calendar?date={tomorrow}")).await;
    b.click("a.appt-card").await;
    b.settle().await;
    b.assert_text("Reschedule").await;
    b.full_shot("15-appointment").await;

    // ---- search as you type, then the profile --------------------------------------------------
    b.go("/clients/new").await;
    b.fill("#f-name", "Noah Fischer").await;
    b.submit("main form").await;
    b.go("/clients").await;
    b.fill("#client-search", "oli").await;
    b.wait_for("#client-results[data-query='oli'] a.client-row").await;
    let found = b.c.find(Locator::Css("#client-results")).await.unwrap().text().await.unwrap();
    assert!(found.contains("Olivia Bennett") && !found.contains("Noah Fischer"), "search results: {found}");
    b.shot("16-client-search").await;
    b.click("#client-results a.client-row").await;
    b.settle().await;
    b.assert_text("Signature facial").await;
    b.assert_text("Prefers afternoon appointments.").await;
    b.full_shot("17-client-profile").await;

    // ---- settings and owner tools ---------------------------------------------------------------
    for (path, shot, needle) in [
        ("/settings", "18-settings-practice", "Time zone"),
        ("/settings/members", "19-settings-members", "Olive Owner"),
        ("/settings/security", "20-settings-security", "Two-step verification policy"),
        ("/settings/messages", "21-settings-messages", "Recent messages"),
        ("/owner", "22-owner-overview", "Latest activity"),
        ("/owner/audit", "23-owner-audit", "tenant.signup"),
        ("/owner/exports", "24-owner-exports", "Export register"),
        ("/owner/backups", "25-owner-backups", "kept 30 days"),
        ("/owner/trust", "26-owner-trust", "Encryption at rest"),
        ("/insights", "27-insights", "Waiting for approval"),
        ("/insights/policy", "27b-insights-policy", "Approval policy"),
    ] {
        b.go(path).await;
        b.assert_text(needle).await;
        b.full_shot(shot).await;
    }
    b.go("/owner/audit?action=auth.login").await;
    b.shot("23b-owner-audit-filtered").await;

    // A tablet-sized window.
    b.c.set_window_size(820, 1180).await.unwrap();
    b.go(&format!("/calendar?date={tomorrow}")).await;
    b.shot("28-tablet-calendar").await;
    b.go(&client_path).await;
    b.shot("29-tablet-client").await;
    b.c.set_window_size(1366, 900).await.unwrap();

    // ---- an ended session: to sign-in with a message, then back where we were ------------------
    let cookie = b.c.get_named_cookie(lacuna_http::SESSION_COOKIE).await.unwrap();
    let jar = format!("{}={}", cookie.name(), cookie.value());
    let me = app.client.get(app.url("/api/v1/me")).header("cookie", &jar).send().await.unwrap();
    let csrf = me.json::<serde_json::Value>().await.unwrap()["csrf_token"].as_str().unwrap().to_string();
    let out = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .header("cookie", &jar)
        .header("x-csrf-token", csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), reqwest::StatusCode::NO_CONTENT);
    b.go("/clients?q=oli").await;
    assert!(b.path().await.starts_with("/signin?expired=1"), "ended session: {}", b.path().await);
    b.assert_text("Your session ended").await;
    b.shot("30-session-expired").await;
    b.fill("#f-email", email).await;
    b.fill("#f-password", PASSWORD).await;
    b.submit("main form").await;
    b.fill("#f-code", &recovery).await;
    b.submit("main form").await;
    assert_eq!(b.path().await, "/clients?q=oli", "back where the session ended");

    // ---- Insights: a rebook gap from demo data, approved, its message in the outbox --------------
    let demo = lacuna::demo::DemoOptions {
        clients: 300,
        appointments: 3_000,
        seed: 11,
        practice_name: "Demo Spa".into(),
        owner_email: "owner@demo.example".into(),
        owner_password: PASSWORD.into(),
    };
    lacuna::demo::run(&app.app.services, &demo).await.unwrap();
    b.submit("form[action='/signout']").await;
    b.go("/signin").await;
    b.fill("#f-email", "owner@demo.example").await;
    b.fill("#f-password", PASSWORD).await;
    b.submit("main form").await;
    b.go("/insights").await;
    b.assert_text("Due to rebook").await;
    b.assert_text("Waiting for approval").await;
    let inbox = b.text().await;
    assert!(inbox.contains("last ") && inbox.contains(" ago"), "rebook evidence in words: {inbox}");
    b.submit("form[action='/insights/propose']").await;
    b.assert_text("Looked for new actions.").await;
    b.full_shot("31-insights-inbox").await;
    // Approve until one reaches a client who consented to marketing (the demo has some who did not).
    let mut queued = false;
    for _ in 0..8 {
        b.submit(".actions-table form[action$='/approve']").await;
        b.assert_text("Approved.").await;
        lacuna::jobs::deliver_insight_triggers(&app.app.services).await.unwrap();
        b.go("/insights").await;
        if b.text().await.contains("message queued") {
            queued = true;
            break;
        }
    }
    assert!(queued, "an approved rebook nudge reached the outbox");
    b.full_shot("32-insights-approved").await;
    b.go("/settings/messages").await;
    b.assert_text("nudge").await;
    b.full_shot("33-outbox-nudge").await;

    b.c.clone().close().await.unwrap();
}
