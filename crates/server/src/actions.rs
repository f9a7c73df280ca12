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

/// What the console routes' guard needs: the token store and the allowed `Host` names.
#[derive(Clone, Default)]
pub struct ConsoleAuth {
    pub auth: Option<std::sync::Arc<admin::AuthStore>>,
    pub hosts: admin::HostPolicy,
}

/// Guards the console routes (recent events, IOS-style views, reset, CDP debugging), reads and
/// writes alike (issue #18 item 1):
///
/// - `Host` must name this server (an IP literal, `localhost` or `admin.allowed_hosts`) and a
///   browser's `Origin`/`Sec-Fetch-Site` must be this server's own: no DNS rebinding, no
///   cross-site `fetch` or form;
/// - every request needs `Authorization: Bearer`: an API token (`phoneboot login`; read-only
///   tokens may only read) from anywhere, or the host-local console credential (the file
///   `phoneboot serve` writes next to the database, readable only by root and the service
///   user; the CLI sends it by itself) from this host's own addresses only — loopback,
///   including IPv4-mapped `::ffff:127.0.0.1`. Being on loopback alone proves nothing: a
///   browser or a reverse proxy on this host is on loopback too.
pub async fn console_guard(
    axum::extract::State(guard): axum::extract::State<ConsoleAuth>,
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
    let safe = matches!(*req.method(), Method::GET | Method::HEAD);
    if let Err(why) = guard.hosts.check(req.headers(), safe) {
        tracing::warn!(?why, path = %req.uri().path(), "console request refused");
        return refuse(StatusCode::FORBIDDEN, "forbidden", why.message());
    }
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    let Some(token) = bearer else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "send an API token (phoneboot login; Authorization: Bearer); on the server's host \
             the CLI uses the local console credential by itself",
        );
    };
    let local = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .is_some_and(|c| admin::is_loopback(c.0.ip()));
    let principal = guard.auth.as_ref().and_then(|a| {
        a.token(&token)
            .or_else(|| local.then(|| a.local_token(&token)).flatten())
    });
    match principal {
        None => refuse(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "unknown or revoked API token, or expired (phoneboot login gets a new one)",
        ),
        Some(p) if p.role != admin::Role::Admin && !safe => refuse(
            StatusCode::FORBIDDEN,
            "forbidden",
            "read-only users cannot change anything",
        ),
        Some(_) => next.run(req).await,
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
            .layer(axum::middleware::from_fn_with_state(
                ConsoleAuth {
                    auth,
                    hosts: admin::HostPolicy::new(["pb.example.net"]),
                },
                console_guard,
            ))
    }

    async fn status(
        auth: Option<Arc<admin::AuthStore>>,
        method: &str,
        peer: Option<&str>,
        token: Option<&str>,
    ) -> StatusCode {
        status_with(auth, method, peer, token, &[]).await
    }

    async fn status_with(
        auth: Option<Arc<admin::AuthStore>>,
        method: &str,
        peer: Option<&str>,
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> StatusCode {
        let mut req = Request::builder().method(method).uri("/x");
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let mut req = req.body(Body::empty()).unwrap();
        if let Some(p) = peer {
            req.extensions_mut()
                .insert(ConnectInfo(p.parse::<std::net::SocketAddr>().unwrap()));
        }
        console(auth).oneshot(req).await.unwrap().status()
    }

    /// Issue #18 item 1: nothing is served without a credential, not even to loopback (a
    /// browser page or a reverse proxy on this host is loopback too); the local credential
    /// works from this host only; Host and Origin are checked.
    #[tokio::test]
    async fn console_routes_need_a_credential_from_everywhere() {
        let auth = Arc::new(admin::AuthStore::in_memory(admin::AuthOptions::default()).unwrap());
        auth.ensure_admin(Some("configured-password")).unwrap();
        auth.create_user("viewer", "viewer-password", admin::Role::ReadOnly)
            .unwrap();
        let admin_token = auth
            .create_token("cli", admin::Role::Admin, "admin", None)
            .unwrap();
        let reader = auth
            .create_token("ro", admin::Role::ReadOnly, "viewer", None)
            .unwrap();
        let local_secret = admin::auth::new_local_secret();
        auth.set_local_token(&local_secret);
        let a = Some(auth);
        let (lo, lo6, mapped) = (
            Some("127.0.0.1:5000"),
            Some("[::1]:5000"),
            Some("[::ffff:127.0.0.1]:5000"),
        );
        let far = Some("198.18.100.77:5000");
        // Without a token: refused, from this host too, reads too.
        for (m, peer) in [
            ("POST", lo),
            ("GET", lo),
            ("POST", lo6),
            ("GET", far),
            ("GET", None),
        ] {
            assert_eq!(
                status(a.clone(), m, peer, None).await,
                StatusCode::UNAUTHORIZED,
                "{m} from {peer:?}"
            );
        }
        // The local credential: from this host's loopback (IPv4-mapped too), nowhere else.
        for peer in [lo, lo6, mapped] {
            assert_eq!(
                status(a.clone(), "POST", peer, Some(&local_secret)).await,
                StatusCode::OK,
                "{peer:?}"
            );
        }
        assert_eq!(
            status(a.clone(), "POST", far, Some(&local_secret)).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            status(a.clone(), "POST", None, Some(&local_secret)).await,
            StatusCode::UNAUTHORIZED
        );
        // A valid token: from anywhere.
        assert_eq!(
            status(a.clone(), "POST", far, Some(&admin_token)).await,
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
        // A wrong token is refused; no auth store knows no token.
        assert_eq!(
            status(a.clone(), "POST", lo, Some("pbt_nope")).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            status(None, "POST", far, Some(&admin_token)).await,
            StatusCode::UNAUTHORIZED
        );
        // DNS rebinding and cross-site requests: refused even with a valid credential.
        let t = Some(admin_token.as_str());
        for hs in [
            &[("host", "attacker.example:8080")][..],
            &[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://attacker.example"),
            ],
            &[("host", "127.0.0.1:8080"), ("origin", "null")],
            &[("host", "127.0.0.1:8080"), ("sec-fetch-site", "cross-site")],
        ] {
            assert_eq!(
                status_with(a.clone(), "POST", lo, t, hs).await,
                StatusCode::FORBIDDEN,
                "{hs:?}"
            );
        }
        for hs in [
            &[("host", "127.0.0.1:8080")][..],
            &[
                ("host", "pb.example.net:8080"),
                ("origin", "http://pb.example.net:8080"),
            ],
        ] {
            assert_eq!(
                status_with(a.clone(), "POST", lo, t, hs).await,
                StatusCode::OK,
                "{hs:?}"
            );
        }
    }
}
