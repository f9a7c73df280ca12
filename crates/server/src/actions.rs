//! Administrator actions on phones: reset, restart, apply config — sent through the protocol
//! the phone registered with (SCCP Reset message, SIP service-control NOTIFY).

use journal::ResetKind;

use crate::Shared;

/// Sends the reset of `kind` to `device` (a `SEP<MAC>` name). Returns how it was sent.
pub async fn reset(shared: &Shared, device: &str, kind: ResetKind) -> Result<String, String> {
    let regs = shared.ris.of_device(device);
    let Some(reg) = regs.first() else {
        return Err(format!("{device} is not registered on this node"));
    };
    match reg.protocol {
        journal::Protocol::Sccp => {
            let sccp = shared
                .services
                .sccp
                .as_ref()
                .ok_or("the SCCP service is not running")?;
            sccp.reset(device, kind).map_err(|e| e.to_string())?;
            Ok(format!("SCCP Reset ({kind:?})"))
        }
        journal::Protocol::Sip => {
            let sip = shared
                .services
                .sip
                .as_ref()
                .ok_or("the SIP service is not running")?;
            let action = match kind {
                ResetKind::Reset => sip::ServiceAction::Reset,
                // SIP phones re-read their configuration on restart; apply-config is a restart.
                ResetKind::Restart | ResetKind::ApplyConfig => sip::ServiceAction::Restart,
            };
            let stamps = shared
                .provisioner
                .device(device)
                .map(|d| sip::VersionStamps {
                    config: d.config_stamp.clone(),
                    ..sip::VersionStamps::default()
                })
                .unwrap_or_default();
            let results = sip
                .notifier()
                .notify_service_control_with(device, action, &stamps)
                .await
                .map_err(|e| e.to_string())?;
            let answered: Vec<String> = results
                .iter()
                .map(|r| {
                    format!(
                        "{} -> {}",
                        r.to,
                        r.status.map_or("no answer".into(), |s| s.to_string())
                    )
                })
                .collect();
            Ok(format!(
                "SIP NOTIFY service-control action={action}: {}",
                answered.join(", ")
            ))
        }
    }
}

/// Guards the console routes (recent events, IOS-style views, reset, CDP debugging):
///
/// - a request with `Authorization: Bearer <API token>` is served from any address when the
///   token is valid (read-only tokens may only read: GET); a wrong token is refused even from
///   this host, so a stale stored token is noticed;
/// - a request without a token is served only to clients on this host (loopback), like a
///   switch's console, so local operations need no login;
/// - anyone else is refused. Without connection information (a router served without it) a
///   request without a token is refused too.
pub async fn console_guard(
    axum::extract::State(auth): axum::extract::State<Option<std::sync::Arc<admin::AuthStore>>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{header, Method, StatusCode};
    use axum::response::IntoResponse;
    let refuse = |status: StatusCode, code: &str, message: &str| {
        (
            status,
            axum::Json(serde_json::json!({"error": {"code": code, "message": message}})),
        )
            .into_response()
    };
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    if let Some(token) = bearer {
        let principal = auth.as_ref().and_then(|a| a.token(&token));
        return match principal {
            None => refuse(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "unknown or revoked API token (phoneboot login gets a new one)",
            ),
            Some(p) if p.role != admin::Role::Admin && req.method() != Method::GET => refuse(
                StatusCode::FORBIDDEN,
                "forbidden",
                "read-only users cannot change anything",
            ),
            Some(_) => next.run(req).await,
        };
    }
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0);
    match peer {
        Some(addr) if addr.ip().is_loopback() => next.run(req).await,
        _ => refuse(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this route answers local clients, or an API token (phoneboot login; Authorization: Bearer)",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use axum::http::{Request, StatusCode};
    use axum::Router;
    use std::sync::Arc;
    use tower::ServiceExt;

    fn console(auth: Option<Arc<admin::AuthStore>>) -> Router {
        Router::new()
            .route(
                "/x",
                axum::routing::post(|| async { "done" }).get(|| async { "seen" }),
            )
            .layer(axum::middleware::from_fn_with_state(auth, console_guard))
    }

    async fn status(
        auth: Option<Arc<admin::AuthStore>>,
        method: &str,
        peer: Option<&str>,
        token: Option<&str>,
    ) -> StatusCode {
        let mut req = Request::builder().method(method).uri("/x");
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let mut req = req.body(Body::empty()).unwrap();
        if let Some(p) = peer {
            req.extensions_mut()
                .insert(ConnectInfo(p.parse::<std::net::SocketAddr>().unwrap()));
        }
        console(auth).oneshot(req).await.unwrap().status()
    }

    #[tokio::test]
    async fn console_routes_answer_local_clients_and_valid_tokens() {
        let auth = Arc::new(admin::AuthStore::in_memory(admin::AuthOptions::default()).unwrap());
        let admin_token = auth.create_token("cli", admin::Role::Admin).unwrap();
        let reader = auth.create_token("ro", admin::Role::ReadOnly).unwrap();
        let a = Some(auth);
        // Without a token: this host only.
        assert_eq!(
            status(a.clone(), "POST", Some("127.0.0.1:5000"), None).await,
            StatusCode::OK
        );
        assert_eq!(
            status(a.clone(), "POST", Some("[::1]:5000"), None).await,
            StatusCode::OK
        );
        let far = Some("198.18.100.77:5000");
        assert_eq!(
            status(a.clone(), "POST", far, None).await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            status(a.clone(), "GET", None, None).await,
            StatusCode::FORBIDDEN
        );
        // A valid token: from anywhere.
        assert_eq!(
            status(a.clone(), "POST", far, Some(&admin_token)).await,
            StatusCode::OK
        );
        assert_eq!(
            status(a.clone(), "GET", None, Some(&admin_token)).await,
            StatusCode::OK
        );
        // A read-only token reads, never acts.
        assert_eq!(
            status(a.clone(), "GET", far, Some(&reader)).await,
            StatusCode::OK
        );
        assert_eq!(
            status(a.clone(), "POST", far, Some(&reader)).await,
            StatusCode::FORBIDDEN
        );
        // A wrong token is refused even locally; no auth store knows no token.
        let local = Some("127.0.0.1:5000");
        assert_eq!(
            status(a.clone(), "POST", local, Some("pbt_nope")).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            status(None, "POST", far, Some(&admin_token)).await,
            StatusCode::UNAUTHORIZED
        );
    }
}
