//! The test app: the real server (built exactly as `lacuna serve` builds it) on a random
//! loopback port over HTTPS, on a fresh SQLite data dir or a fresh PostgreSQL database.
#![allow(dead_code, clippy::disallowed_methods, clippy::unwrap_used)]

use lacuna::scratch::{Backend, Scratch};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A fresh UUID, as text.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Runs each listed async test body once per storage backend:
/// `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(lacuna::scratch::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(lacuna::scratch::Backend::Postgres).await
                }
            )*
        }
    };
}

pub struct TestApp {
    pub backend: Backend,
    pub base: String,
    pub client: reqwest::Client,
    pub app: lacuna::App,
    server: Option<lacuna_http::RunningServer>,
    pub scratch: Scratch,
}

/// A signed-in staff member: the cookie to send and the CSRF token for writes.
#[derive(Clone, Debug)]
pub struct Session {
    pub cookie: String,
    pub csrf: String,
    pub tenant_id: String,
    pub user_id: String,
    pub email: String,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn error_field(&self) -> Option<&str> {
        self.body["error"]["field"].as_str()
    }
    pub fn error_code(&self) -> Option<&str> {
        self.body["error"]["code"].as_str()
    }
}

pub const PASSWORD: &str = "correct horse battery staple";

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        let scratch = Scratch::new(backend).await.expect("scratch environment");
        Self::spawn_in(scratch).await
    }

    pub async fn spawn_in(scratch: Scratch) -> TestApp {
        // Server errors show up in the failing test's output.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("warn,lacuna::request=off"))
            .with_test_writer()
            .try_init();

        let app = lacuna::build(&scratch.config).await.expect("app builds");
        let server = app.start().await.expect("server starts");
        let cert = app.certificate_pem().expect("TLS certificate");
        let client = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&cert).unwrap()])
            .build()
            .unwrap();
        let backend = if scratch.db.is_some() { Backend::Postgres } else { Backend::Sqlite };
        TestApp { backend, base: server.base_url(), client, app, server: Some(server), scratch }
    }

    /// Stops the server (graceful) and closes the store; the scratch data stays until drop.
    pub async fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown(std::time::Duration::from_secs(5)).await.unwrap();
        }
        self.app.services.close().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends a request as `who` (cookie + CSRF token for unsafe methods).
    pub async fn call(&self, method: Method, path: &str, who: Option<&Session>, body: Option<Value>) -> Resp {
        let mut req = self.client.request(method.clone(), self.url(path));
        if let Some(s) = who {
            req = req.header("cookie", &s.cookie);
            if method != Method::GET {
                req = req.header("x-csrf-token", &s.csrf);
            }
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("request sent");
        Self::read(r).await
    }

    pub async fn call_bearer(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Resp {
        let mut req = self.client.request(method, self.url(path)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        Self::read(req.send().await.expect("request sent")).await
    }

    pub async fn read(r: reqwest::Response) -> Resp {
        let status = r.status();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        let body =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        Resp { status, headers, body }
    }

    pub async fn get(&self, path: &str, who: &Session) -> Resp {
        self.call(Method::GET, path, Some(who), None).await
    }
    pub async fn post(&self, path: &str, who: &Session, body: Value) -> Resp {
        self.call(Method::POST, path, Some(who), Some(body)).await
    }
    pub async fn patch(&self, path: &str, who: &Session, body: Value) -> Resp {
        self.call(Method::PATCH, path, Some(who), Some(body)).await
    }
    pub async fn delete(&self, path: &str, who: &Session) -> Resp {
        self.call(Method::DELETE, path, Some(who), None).await
    }

    /// Signs up a new practice; returns its owner's session.
    pub async fn signup(&self, practice: &str, email: &str) -> Session {
        let r = self
            .call(
                Method::POST,
                "/api/v1/signup",
                None,
                Some(json!({"practice_name": practice, "name": "Owner of ".to_string() + practice, "email": email, "password": PASSWORD})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "signup: {:?}", r.body);
        Self::session_from(&r, email)
    }

    pub fn session_from(r: &Resp, email: &str) -> Session {
        let set_cookie = r.headers.get("set-cookie").expect("set-cookie").to_str().unwrap();
        let cookie = set_cookie.split(';').next().unwrap().to_string();
        Session {
            cookie,
            csrf: r.body["csrf_token"].as_str().unwrap().to_string(),
            tenant_id: r.body["tenant_id"].as_str().unwrap().to_string(),
            user_id: r.body["user_id"].as_str().unwrap().to_string(),
            email: email.to_string(),
        }
    }

    pub async fn login(&self, email: &str, password: &str) -> Resp {
        self.call(Method::POST, "/api/v1/auth/login", None, Some(json!({"email": email, "password": password}))).await
    }

    /// Invites a member with `role` as `owner` and accepts the invitation; returns their session.
    pub async fn add_member(&self, owner: &Session, email: &str, role: &str) -> Session {
        let r = self
            .post("/api/v1/members", owner, json!({"email": email, "name": format!("{role} person"), "role": role}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "invite: {:?}", r.body);
        let token = r.body["invite_token"].as_str().unwrap().to_string();
        let r = self
            .call(Method::POST, "/api/v1/auth/accept-invite", None, Some(json!({"token": token, "password": PASSWORD})))
            .await;
        assert_eq!(r.status, StatusCode::OK, "accept: {:?}", r.body);
        Self::session_from(&r, email)
    }

    /// Runs raw SQL as the database owner (to simulate what an attacker with disk access or a
    /// bug could do). Returns the number of affected rows.
    /// Counts the rows a query returns, as the database owner (`SELECT COUNT(*) FROM (sql)`).
    /// Use this, not `owner_sql`, for SELECTs: SQLite reports no affected rows for a SELECT.
    /// Creates a client through the API (expects 201) and returns its id.
    pub async fn add_client(&self, who: &Session, body: Value) -> String {
        let r = self.post("/api/v1/clients", who, body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.body["id"].as_str().unwrap().to_string()
    }

    /// A location ("Main Street"), a provider ("Pat") and a 60-minute USD facial service
    /// ("Hydrafacial") of the tenant, written directly as the owner (for tests of what is built
    /// on top of the catalogue). Returns (service, provider, location).
    pub async fn sql_catalogue(
        &self,
        tenant: &str,
        price_minor: i64,
        cycle_days: Option<i64>,
    ) -> (String, String, String) {
        let (svc, prov, loc) = (new_id(), new_id(), new_id());
        let t = lacuna_storage::now_unix();
        let cycle = cycle_days.map_or_else(|| "NULL".to_string(), |d| d.to_string());
        self.owner_sql(&format!(
            "INSERT INTO locations (tenant_id, id, name, created_at) VALUES ('{tenant}', '{loc}', 'Main Street', {t});
             INSERT INTO providers (tenant_id, id, name, created_at, updated_at) VALUES ('{tenant}', '{prov}', 'Pat', {t}, {t});
             INSERT INTO services (tenant_id, id, name, category, duration_min, price_minor, currency, cycle_days,
                     created_at, updated_at)
                 VALUES ('{tenant}', '{svc}', 'Hydrafacial', 'facial', 60, {price_minor}, 'USD', {cycle}, {t}, {t});"
        ))
        .await;
        (svc, prov, loc)
    }

    pub async fn owner_count(&self, sql: &str) -> i64 {
        use sqlx::Connection;
        let wrapped = format!("SELECT COUNT(*) FROM ({sql}) AS counted");
        match &self.scratch.db {
            Some(db) => {
                let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
                let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(wrapped)).fetch_one(&mut c).await.unwrap();
                n
            }
            None => {
                let path = self.scratch.dir().join("lacuna.db");
                let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display())).await.unwrap();
                let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(wrapped)).fetch_one(&mut c).await.unwrap();
                n
            }
        }
    }

    /// As [`TestApp::owner_sql`], returning the database's refusal instead of panicking on it.
    pub async fn owner_sql_result(&self, sql: &str) -> Result<u64, String> {
        use sqlx::Connection;
        let r = match &self.scratch.db {
            Some(db) => {
                let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string())).execute(&mut c).await.map(|r| r.rows_affected())
            }
            None => {
                let path = self.scratch.dir().join("lacuna.db");
                let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display())).await.unwrap();
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string())).execute(&mut c).await.map(|r| r.rows_affected())
            }
        };
        r.map_err(|e| e.to_string())
    }

    pub async fn owner_sql(&self, sql: &str) -> u64 {
        self.owner_sql_result(sql).await.unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            s.handle().shutdown();
        }
    }
}
