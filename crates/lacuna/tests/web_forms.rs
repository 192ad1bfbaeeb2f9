//! The web UI's public forms (sign-in, sign-up, invitation) have no session to hold a CSRF token:
//! they carry a form token that must match a `__Host-` cookie set with the page. A post from
//! another site (no cookie, or a token of its own) is refused and signs no one in.
#![allow(clippy::unwrap_used)]

mod common;

use common::{PASSWORD, TestApp};
use lacuna::scratch::Backend;
use reqwest::StatusCode;

both_backends!(public_forms_need_their_form_token);

async fn post_form(app: &TestApp, path: &str, cookie: Option<&str>, fields: &[(&str, &str)]) -> reqwest::Response {
    let enc =
        |v: &str| v.replace('%', "%25").replace('@', "%40").replace('/', "%2F").replace(' ', "+").replace('&', "%26");
    let body: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={}", enc(v))).collect();
    let cert = reqwest::Certificate::from_pem(&app.app.certificate_pem().unwrap()).unwrap();
    let client =
        reqwest::Client::builder().tls_certs_only([cert]).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut req =
        client.post(app.url(path)).header("content-type", "application/x-www-form-urlencoded").body(body.join("&"));
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    req.send().await.unwrap()
}

async fn public_forms_need_their_form_token(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow", "owner@glow.test").await;
    let _ = owner;
    // The page hands out the token twice: cookie and hidden field.
    let page = app.client.get(app.url("/signin")).send().await.unwrap();
    let set = page.headers().get("set-cookie").unwrap().to_str().unwrap().to_string();
    assert!(
        set.starts_with("__Host-lacuna_form=") && set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let token = set.split(';').next().unwrap().trim_start_matches("__Host-lacuna_form=").to_string();
    let html = page.text().await.unwrap();
    assert!(html.contains(&format!("name=\"form_token\" value=\"{token}\"")), "hidden field");
    let cookie = format!("__Host-lacuna_form={token}");
    let creds = [("email", "owner@glow.test"), ("password", PASSWORD), ("next", "/calendar")];

    // Forged: no cookie, or the attacker's own token.
    let mut forged = creds.to_vec();
    forged.push(("form_token", &token));
    let r = post_form(&app, "/signin", None, &forged).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.headers().get("set-cookie").is_none(), "no session for a forged post");
    let mut other = creds.to_vec();
    other.push(("form_token", "0000000000000000000000000000000000000000000000000000000000000000"));
    let r = post_form(&app, "/signin", Some(&cookie), &other).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = post_form(
        &app,
        "/signup",
        None,
        &[("practice_name", "Evil"), ("name", "E"), ("email", "e@evil.test"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "sign-up too");

    // Genuine: cookie and field agree.
    let r = post_form(&app, "/signin", Some(&cookie), &forged).await;
    let status = r.status();
    let headers = r.headers().clone();
    assert_eq!(status, StatusCode::SEE_OTHER, "{}", r.text().await.unwrap());
    let r = headers;
    assert!(r.get_all("set-cookie").iter().any(|v| v.to_str().unwrap().starts_with("__Host-lacuna_session=")));
}
