//! The REST API: JSON in and out, errors as `{"error": {"code", "message", "field", "fields"}}`.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use futures::Stream;
use journal::{Mac, ResetKind, Step};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::{same_secret, Principal, Role};
use crate::backend::{
    AutoRegistration, BackendError, CmGroup, Device, DevicePool, FieldError, Line,
};
use crate::App;

pub(crate) const COOKIE: &str = "pb_session";

// ---------------------------------------------------------------------------------------------
// Errors

/// An API error: an HTTP status, a stable code, a message and the fields at fault.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub fields: Vec<FieldError>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            fields: vec![],
        }
    }
    fn field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "invalid",
            message: format!("{field}: {message}"),
            fields: vec![FieldError::new(field, message)],
        }
    }
    fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "log in or send an API token",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let field = self.fields.first().map(|f| f.field.clone());
        let body = json!({"error": {
            "code": self.code,
            "message": self.message,
            "field": field,
            "fields": self.fields,
        }});
        (self.status, Json(body)).into_response()
    }
}

impl From<BackendError> for ApiError {
    fn from(e: BackendError) -> Self {
        match e {
            BackendError::NotFound { what } => ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("{what} not found"),
            ),
            BackendError::Invalid(fields) => {
                let message = fields
                    .iter()
                    .map(|f| format!("{}: {}", f.field, f.message))
                    .collect::<Vec<_>>()
                    .join("; ");
                ApiError {
                    status: StatusCode::UNPROCESSABLE_ENTITY,
                    code: "invalid",
                    message,
                    fields,
                }
            }
            BackendError::Conflict { field, message } => ApiError {
                status: StatusCode::CONFLICT,
                code: "conflict",
                message: format!("{field}: {message}"),
                fields: vec![FieldError::new(field, message)],
            },
            BackendError::Unavailable(m) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", m)
            }
        }
    }
}

impl From<crate::auth::AuthError> for ApiError {
    fn from(e: crate::auth::AuthError) -> Self {
        match e {
            crate::auth::AuthError::Invalid { field, message } => ApiError::field(field, message),
            other => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                other.to_string(),
            ),
        }
    }
}

impl From<bootlog::BootLogError> for ApiError {
    fn from(e: bootlog::BootLogError) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// A JSON body whose rejections are JSON errors naming the field at fault.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(rej) => Err(json_rejection(rej)),
        }
    }
}

fn json_rejection(rej: JsonRejection) -> ApiError {
    let status = rej.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(status, "too_large", "request body too large");
    }
    match rej {
        JsonRejection::JsonDataError(e) => {
            // axum reports "<path>: <serde message>" after its prefix.
            let text = std::error::Error::source(&e)
                .map(|s| s.to_string())
                .unwrap_or_else(|| e.body_text());
            // serde's position suffix means nothing to an operator.
            let text = match text.rfind(" at line ") {
                Some(i) if text[i..].contains(" column ") => text[..i].to_string(),
                _ => text,
            };
            let (field, msg) = match text.split_once(": ") {
                Some((f, m)) if !f.contains(' ') && f != "." => (f.to_string(), m.to_string()),
                _ => (
                    missing_field(&text).unwrap_or_else(|| "body".into()),
                    text.clone(),
                ),
            };
            ApiError::field(&field, msg)
        }
        JsonRejection::JsonSyntaxError(e) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_json",
            format!("not valid JSON: {}", e.body_text()),
        ),
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "bad_content_type",
            "send Content-Type: application/json",
        ),
        other => ApiError::new(other.status(), "bad_request", other.body_text()),
    }
}

fn missing_field(text: &str) -> Option<String> {
    let i = text.find("missing field `")?;
    let rest = &text[i + 15..];
    Some(rest[..rest.find('`')?].to_string())
}

// ---------------------------------------------------------------------------------------------
// Authentication extractors

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn principal(app: &App, parts: &Parts) -> Option<Principal> {
    if let Some(auth) = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let token = auth.strip_prefix("Bearer ")?;
        return app.auth.token(token.trim());
    }
    let sid = cookie(&parts.headers, COOKIE)?;
    let p = app.auth.session(&sid)?;
    // Cookie-authenticated state changes must echo the session's CSRF token.
    if !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        let sent = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let want = p.csrf.as_deref().unwrap_or("");
        if want.is_empty() || !same_secret(sent, want) {
            return None;
        }
    }
    Some(p)
}

/// Any logged-in user who needs no password change.
pub struct Reader(pub Principal);
/// An admin.
pub struct Writer(pub Principal);
/// Any logged-in user, even one who must change the password first.
pub struct AnyUser(pub Principal);

fn csrf_or_auth_error(parts: &Parts) -> ApiError {
    let has_cookie = cookie(&parts.headers, COOKIE).is_some();
    if has_cookie && !matches!(parts.method, Method::GET | Method::HEAD) {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf",
            "missing or wrong X-CSRF-Token header (or the session expired)",
        )
    } else {
        ApiError::unauthorized()
    }
}

impl FromRequestParts<Arc<App>> for AnyUser {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        principal(app, parts)
            .map(AnyUser)
            .ok_or_else(|| csrf_or_auth_error(parts))
    }
}

impl FromRequestParts<Arc<App>> for Reader {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        let AnyUser(p) = AnyUser::from_request_parts(parts, app).await?;
        if p.must_change_password {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "password_change_required",
                "change the one-time password first (POST /api/me/password)",
            ));
        }
        Ok(Reader(p))
    }
}

impl FromRequestParts<Arc<App>> for Writer {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        let Reader(p) = Reader::from_request_parts(parts, app).await?;
        if p.role != Role::Admin {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "read-only users cannot change anything",
            ));
        }
        Ok(Writer(p))
    }
}

// ---------------------------------------------------------------------------------------------
// Routes

pub(crate) fn routes(app: Arc<App>) -> Router {
    let limit = app.options.body_limit;
    let api = Router::new()
        .route("/api/login", post(login))
        .route("/api/login/token", post(login_token))
        .route("/api/logout", post(logout))
        .route("/api/me", get(me))
        .route("/api/me/password", post(change_password))
        .route("/api/users", get(users).post(create_user))
        .route("/api/users/{name}", delete(delete_user))
        .route("/api/tokens", get(tokens).post(create_token))
        .route("/api/tokens/{id}", delete(revoke_token))
        .route("/api/phones", get(phones))
        .route("/api/devices", get(list_devices).post(create_device))
        .route(
            "/api/devices/{name}",
            get(get_device).put(update_device).delete(delete_device),
        )
        .route("/api/devices/{name}/lines", get(get_lines).put(put_lines))
        .route("/api/devices/{name}/files", get(files))
        .route("/api/devices/{name}/actions/{action}", post(action))
        .route("/api/lines", get(all_lines))
        .route("/api/device-pools", get(list_pools))
        .route(
            "/api/device-pools/{name}",
            put(put_pool).delete(delete_pool),
        )
        .route("/api/cm-groups", get(list_groups))
        .route("/api/cm-groups/{name}", put(put_group).delete(delete_group))
        .route("/api/templates", get(templates))
        .route("/api/loads", get(loads))
        .route("/api/auto-registration", get(get_autoreg).put(put_autoreg))
        .route("/api/import", post(import_csv))
        .route("/api/export", get(export_csv))
        .route("/api/leases", get(leases))
        .route("/api/dhcp-pools", get(pool_use))
        .route("/api/neighbours", get(neighbours))
        .route("/api/registrations", get(registrations))
        .route("/api/journal", get(journal_phones))
        .route("/api/journal/stream", get(journal_stream))
        .route("/api/journal/recent", get(journal_recent))
        .route("/api/journal/{phone}", get(journal_phone))
        .route("/api/live", get(live))
        .route("/api/openapi.json", get(openapi))
        .fallback(api_not_found);
    Router::new()
        .merge(api)
        .route("/metrics", get(crate::metrics::handler))
        .merge(crate::ui::routes())
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            app.options.hosts.clone(),
            host_guard,
        ))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(app)
}

/// Refuses requests naming a foreign `Host` (DNS rebinding) or coming from another site
/// (`Origin`, `Sec-Fetch-Site`), before any handler or credential check runs.
pub async fn host_guard(
    State(hosts): State<crate::auth::HostPolicy>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    match hosts.check(req.headers(), safe) {
        Ok(()) => next.run(req).await,
        Err(why) => {
            tracing::warn!(?why, host = ?req.headers().get(header::HOST), origin = ?req.headers().get(header::ORIGIN), path = %req.uri().path(), "admin request refused");
            ApiError::new(
                StatusCode::FORBIDDEN,
                match why {
                    crate::auth::Refusal::Host => "bad_host",
                    crate::auth::Refusal::CrossOrigin => "cross_origin",
                },
                why.message(),
            )
            .into_response()
        }
    }
}

async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    res
}

async fn api_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such API endpoint")
}

async fn openapi() -> impl IntoResponse {
    Json(crate::openapi::document())
}

// -- auth ---------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginReq {
    username: String,
    password: String,
}

#[derive(Serialize)]
struct LoginResp {
    user: String,
    role: Role,
    must_change_password: bool,
    csrf_token: String,
}

async fn login(
    State(app): State<Arc<App>>,
    ApiJson(req): ApiJson<LoginReq>,
) -> ApiResult<Response> {
    let s = check_password(&app, req.username, req.password).await?;
    let opts = app.auth.options();
    let cookie = format!(
        "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        s.id,
        opts.max_age.as_secs(),
        if opts.secure_cookie { "; Secure" } else { "" }
    );
    let body = LoginResp {
        user: s.principal.user,
        role: s.principal.role,
        must_change_password: s.principal.must_change_password,
        csrf_token: s.csrf,
    };
    let mut res = Json(body).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(res)
}

/// The password check both logins share (the form and `phoneboot login`): bounded input, the
/// slow hash off the async threads, the lockout, and one answer for any wrong pair.
async fn check_password(
    app: &App,
    username: String,
    password: String,
) -> ApiResult<crate::auth::NewSession> {
    if username.len() > 64 || password.len() > 256 {
        return Err(ApiError::field("username", "too long"));
    }
    let auth = app.auth.clone();
    let session = tokio::task::spawn_blocking(move || auth.login(&username, &password))
        .await
        .ok()
        .flatten();
    session.ok_or_else(|| {
        app.metrics.login_failed();
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: "bad_credentials",
            message: "wrong user name or password".into(),
            fields: vec![FieldError::new("password", "wrong user name or password")],
        }
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenLoginReq {
    username: String,
    password: String,
    /// What the token is for (shown in the token list), e.g. the CLI's host.
    #[serde(default)]
    label: Option<String>,
}

/// Exchanges a user name and password for an API token with the user's role (what
/// `phoneboot login` stores): no session, no cookie. Same lockout as the login form.
async fn login_token(
    State(app): State<Arc<App>>,
    ApiJson(req): ApiJson<TokenLoginReq>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let label = req.label.unwrap_or_default();
    if label.chars().count() > 40 {
        return Err(ApiError::field("label", "at most 40 characters"));
    }
    let s = check_password(&app, req.username, req.password).await?;
    // Only the check was wanted: the session is not handed out.
    app.auth.logout(&s.id);
    if s.principal.must_change_password {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "password_change_required",
            "change the one-time password first (web UI or POST /api/me/password)",
        ));
    }
    let name = if label.is_empty() {
        format!("{} (login)", s.principal.user)
    } else {
        format!("{} ({label})", s.principal.user)
    };
    let secret = app
        .auth
        .create_token(&name, s.principal.role, &s.principal.owner, None)?;
    tracing::info!(user = %s.principal.user, token = %name, "API token issued at login");
    Ok((
        StatusCode::CREATED,
        Json(
            json!({"token": secret, "name": name, "user": s.principal.user, "role": s.principal.role}),
        ),
    ))
}

async fn logout(State(app): State<Arc<App>>, headers: HeaderMap, _u: AnyUser) -> Response {
    if let Some(sid) = cookie(&headers, COOKIE) {
        app.auth.logout(&sid);
    }
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("pb_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    res
}

async fn me(AnyUser(p): AnyUser) -> Json<serde_json::Value> {
    Json(
        json!({"user": p.user, "role": p.role, "must_change_password": p.must_change_password, "csrf_token": p.csrf}),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordReq {
    current_password: String,
    new_password: String,
}

async fn change_password(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    AnyUser(p): AnyUser,
    ApiJson(req): ApiJson<PasswordReq>,
) -> ApiResult<StatusCode> {
    if p.csrf.is_none() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "log in with a password to change it",
        ));
    }
    let auth = app.auth.clone();
    let user = p.user.clone();
    // The asking session stays; every other session and every token of the user ends.
    let keep = cookie(&headers, COOKIE);
    let res = tokio::task::spawn_blocking(move || {
        auth.change_password_keeping(
            &user,
            &req.current_password,
            &req.new_password,
            keep.as_deref(),
        )
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))??;
    if !res {
        return Err(ApiError::field("current_password", "wrong password"));
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn users(State(app): State<Arc<App>>, _w: Writer) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(json!(app.auth.users()?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    username: String,
    password: String,
    role: Role,
}

async fn create_user(
    State(app): State<Arc<App>>,
    _w: Writer,
    ApiJson(u): ApiJson<NewUser>,
) -> ApiResult<StatusCode> {
    let auth = app.auth.clone();
    tokio::task::spawn_blocking(move || auth.create_user(&u.username, &u.password, u.role))
        .await
        .map_err(|e| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
        })??;
    Ok(StatusCode::CREATED)
}

async fn delete_user(
    State(app): State<Arc<App>>,
    Writer(p): Writer,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    if p.user == name {
        return Err(ApiError::field("username", "you cannot delete yourself"));
    }
    if app.auth.delete_user(&name)? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("user {name} not found"),
        ))
    }
}

/// Admins see every token, other users their own.
async fn tokens(
    State(app): State<Arc<App>>,
    Reader(p): Reader,
) -> ApiResult<Json<serde_json::Value>> {
    let owner = (p.role != Role::Admin).then_some(p.owner.as_str());
    Ok(Json(json!(app.auth.tokens_of(owner)?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    name: String,
    role: Role,
    /// Lifetime in days (default 90, at most 366).
    #[serde(default)]
    expires_in_days: Option<u64>,
}

/// A token acting for the caller, with at most the caller's role.
async fn create_token(
    State(app): State<Arc<App>>,
    Reader(p): Reader,
    ApiJson(t): ApiJson<NewToken>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let ttl = match t.expires_in_days {
        Some(d) if d == 0 || d > 366 => {
            return Err(ApiError::field("expires_in_days", "1 to 366 days"))
        }
        Some(d) => Some(Duration::from_secs(d * 86_400)),
        None => None,
    };
    if t.role == Role::Admin && p.role != Role::Admin {
        return Err(ApiError::field(
            "role",
            "a token cannot have more rights than its user",
        ));
    }
    let secret = app.auth.create_token(&t.name, t.role, &p.owner, ttl)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"token": secret, "name": t.name, "role": t.role, "owner": p.owner})),
    ))
}

/// Admins revoke any token, other users their own.
async fn revoke_token(
    State(app): State<Arc<App>>,
    Reader(p): Reader,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::field("id", "a token id (number)"))?;
    let owner = (p.role != Role::Admin).then_some(p.owner.as_str());
    if app.auth.revoke_token_of(id, owner)? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such token",
        ))
    }
}

// -- devices ------------------------------------------------------------------------------

/// A phone as the UI's list shows it: configuration, registration and boot progress.
#[derive(Serialize)]
pub struct PhoneRow {
    #[serde(flatten)]
    pub device: Device,
    pub status: &'static str,
    pub registration: Option<ris::Registration>,
    pub boot_step: Option<Step>,
    pub last_event: Option<SystemTime>,
}

#[derive(Deserialize, Default)]
struct PhoneFilter {
    q: Option<String>,
    status: Option<String>,
    model: Option<String>,
    protocol: Option<String>,
}

async fn phones(
    State(app): State<Arc<App>>,
    _r: Reader,
    Query(f): Query<PhoneFilter>,
) -> ApiResult<Json<Vec<PhoneRow>>> {
    let devices = app.backend.list_devices()?;
    let regs: HashMap<String, ris::Registration> = app
        .ris
        .snapshot()
        .into_iter()
        .map(|r| (r.device.to_ascii_uppercase(), r))
        .collect();
    let journal: HashMap<Mac, bootlog::PhoneSummary> = app
        .bootlog
        .phones()?
        .into_iter()
        .map(|p| (p.mac, p))
        .collect();
    let q = f.q.unwrap_or_default().to_ascii_lowercase();
    let rows = devices
        .into_iter()
        .map(|d| {
            let reg = regs.get(&d.name.to_ascii_uppercase()).cloned();
            let j = d.mac.and_then(|m| journal.get(&m));
            let status = if reg.is_some() {
                "registered"
            } else if j.is_some() {
                "unregistered"
            } else {
                "never_seen"
            };
            PhoneRow {
                status,
                registration: reg,
                boot_step: j.map(|j| j.step),
                last_event: j.map(|j| j.last_event),
                device: d,
            }
        })
        .filter(|r| {
            (q.is_empty()
                || r.device.name.to_ascii_lowercase().contains(&q)
                || r.device.description.to_ascii_lowercase().contains(&q)
                || r.device.lines.iter().any(|l| l.dn.contains(&q)))
                && f.status
                    .as_deref()
                    .is_none_or(|s| s.is_empty() || s == r.status)
                && f.model
                    .as_deref()
                    .is_none_or(|m| m.is_empty() || m == r.device.model)
                && f.protocol.as_deref().is_none_or(|p| {
                    p.is_empty() || serde_json::to_value(r.device.protocol).ok() == Some(json!(p))
                })
        })
        .collect();
    Ok(Json(rows))
}

async fn list_devices(State(app): State<Arc<App>>, _r: Reader) -> ApiResult<Json<Vec<Device>>> {
    Ok(Json(app.backend.list_devices()?))
}

async fn create_device(
    State(app): State<Arc<App>>,
    Writer(p): Writer,
    ApiJson(d): ApiJson<Device>,
) -> ApiResult<(StatusCode, Json<Device>)> {
    let d = app.backend.create_device(d)?;
    tracing::info!(user = %p.user, device = %d.name, "device created");
    Ok((StatusCode::CREATED, Json(d)))
}

async fn get_device(
    State(app): State<Arc<App>>,
    _r: Reader,
    Path(name): Path<String>,
) -> ApiResult<Json<Device>> {
    Ok(Json(app.backend.get_device(&name)?))
}

async fn update_device(
    State(app): State<Arc<App>>,
    Writer(p): Writer,
    Path(name): Path<String>,
    ApiJson(d): ApiJson<Device>,
) -> ApiResult<Json<Device>> {
    let d = app.backend.update_device(&name, d)?;
    tracing::info!(user = %p.user, device = %d.name, "device updated");
    Ok(Json(d))
}

async fn delete_device(
    State(app): State<Arc<App>>,
    Writer(p): Writer,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    app.backend.delete_device(&name)?;
    tracing::info!(user = %p.user, device = %name, "device deleted");
    Ok(StatusCode::NO_CONTENT)
}

async fn get_lines(
    State(app): State<Arc<App>>,
    _r: Reader,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<Line>>> {
    Ok(Json(app.backend.get_device(&name)?.lines))
}

async fn put_lines(
    State(app): State<Arc<App>>,
    _w: Writer,
    Path(name): Path<String>,
    ApiJson(lines): ApiJson<Vec<Line>>,
) -> ApiResult<Json<Vec<Line>>> {
    let mut d = app.backend.get_device(&name)?;
    d.lines = lines;
    Ok(Json(app.backend.update_device(&name, d)?.lines))
}

#[derive(Serialize)]
struct LineRow {
    device: String,
    #[serde(flatten)]
    line: Line,
}

async fn all_lines(State(app): State<Arc<App>>, _r: Reader) -> ApiResult<Json<Vec<LineRow>>> {
    let mut out = Vec::new();
    for d in app.backend.list_devices()? {
        for l in d.lines {
            out.push(LineRow {
                device: d.name.clone(),
                line: l,
            });
        }
    }
    Ok(Json(out))
}

/// The generated files of a phone; read-only users see every credential blanked.
async fn files(
    State(app): State<Arc<App>>,
    Reader(p): Reader,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let mut files = app.backend.files_for(&name)?;
    if p.role != Role::Admin {
        for f in &mut files {
            f.content = redact_secrets(&f.content);
        }
    }
    Ok(Json(json!(files)))
}

/// What replaces a credential for read-only users.
pub const REDACTED: &str = "********";

/// Blanks the text of every element whose name ends in `Password` (`authPassword`,
/// `sshPassword`, and any the generators add later): the files view for read-only users.
pub fn redact_secrets(xml: &str) -> String {
    let mut out = String::with_capacity(xml.len());
    let mut rest = xml;
    while let Some(lt) = rest.find('<') {
        let (before, tag) = rest.split_at(lt);
        out.push_str(before);
        let Some(gt) = tag.find('>') else {
            out.push_str(tag);
            return out;
        };
        let open = &tag[..=gt];
        out.push_str(open);
        rest = &tag[gt + 1..];
        let name = open[1..open.len() - 1]
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or("");
        let secret = !open.ends_with("/>")
            && !name.starts_with(['/', '?', '!'])
            && name.to_ascii_lowercase().ends_with("password");
        if secret {
            let close = format!("</{name}>");
            match rest.find(&close) {
                Some(end) => {
                    if !rest[..end].is_empty() {
                        out.push_str(REDACTED);
                    }
                    rest = &rest[end..];
                }
                None => {
                    // Unterminated: hide the rest rather than risk a leak.
                    out.push_str(REDACTED);
                    return out;
                }
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod redaction {
    use super::*;

    #[test]
    fn every_password_element_is_blanked_and_the_rest_kept() {
        let x = "<device><sshUserId>cisco</sshUserId><sshPassword>s3cret</sshPassword>\
                 <line><authName>4101</authName><authPassword>pw&amp;x</authPassword>\
                 <authPassword></authPassword><phonePassword a=\"1\">9</phonePassword>\
                 <empty/></line></device>";
        let r = redact_secrets(x);
        for leak in ["s3cret", "pw&amp;x", ">9<"] {
            assert!(!r.contains(leak), "{leak} leaked: {r}");
        }
        assert!(r.contains("<sshPassword>********</sshPassword>"), "{r}");
        assert!(r.contains("<authPassword></authPassword>"), "{r}");
        assert!(r.contains("<authName>4101</authName><empty/>") || r.contains("<empty/>"));
        assert!(r.contains("<sshUserId>cisco</sshUserId>"), "{r}");
        assert_eq!(redact_secrets("<a>b</a>"), "<a>b</a>");
        assert_eq!(
            redact_secrets("<authPassword>open"),
            "<authPassword>********"
        );
    }
}

async fn action(
    State(app): State<Arc<App>>,
    Writer(p): Writer,
    Path((name, action)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let kind = match action.as_str() {
        "reset" => ResetKind::Reset,
        "restart" => ResetKind::Restart,
        "apply-config" => ResetKind::ApplyConfig,
        _ => {
            return Err(ApiError::field(
                "action",
                "one of reset, restart, apply-config",
            ))
        }
    };
    app.backend.action(&name, kind)?;
    tracing::info!(user = %p.user, device = %name, action = %action, "action sent");
    Ok(StatusCode::ACCEPTED)
}

// -- pools, groups, settings --------------------------------------------------------------

async fn list_pools(State(app): State<Arc<App>>, _r: Reader) -> ApiResult<Json<Vec<DevicePool>>> {
    Ok(Json(app.backend.list_pools()?))
}

async fn put_pool(
    State(app): State<Arc<App>>,
    _w: Writer,
    Path(name): Path<String>,
    ApiJson(p): ApiJson<DevicePool>,
) -> ApiResult<Json<DevicePool>> {
    if p.name != name {
        return Err(ApiError::field("name", "must match the name in the path"));
    }
    Ok(Json(app.backend.put_pool(p)?))
}

async fn delete_pool(
    State(app): State<Arc<App>>,
    _w: Writer,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    app.backend.delete_pool(&name)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_groups(State(app): State<Arc<App>>, _r: Reader) -> ApiResult<Json<Vec<CmGroup>>> {
    Ok(Json(app.backend.list_cm_groups()?))
}

async fn put_group(
    State(app): State<Arc<App>>,
    _w: Writer,
    Path(name): Path<String>,
    ApiJson(g): ApiJson<CmGroup>,
) -> ApiResult<Json<CmGroup>> {
    if g.name != name {
        return Err(ApiError::field("name", "must match the name in the path"));
    }
    Ok(Json(app.backend.put_cm_group(g)?))
}

async fn delete_group(
    State(app): State<Arc<App>>,
    _w: Writer,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    app.backend.delete_cm_group(&name)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn templates(State(app): State<Arc<App>>, _r: Reader) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(json!(app.backend.list_templates()?)))
}

async fn loads(State(app): State<Arc<App>>, _r: Reader) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(json!(app.backend.list_loads()?)))
}

async fn get_autoreg(State(app): State<Arc<App>>, _r: Reader) -> ApiResult<Json<AutoRegistration>> {
    Ok(Json(app.backend.auto_registration()?))
}

async fn put_autoreg(
    State(app): State<Arc<App>>,
    _w: Writer,
    ApiJson(s): ApiJson<AutoRegistration>,
) -> ApiResult<Json<AutoRegistration>> {
    Ok(Json(app.backend.set_auto_registration(s)?))
}

async fn import_csv(
    State(app): State<Arc<App>>,
    _w: Writer,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("text/csv") && !ct.starts_with("text/plain") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "bad_content_type",
            "send Content-Type: text/csv",
        ));
    }
    let text = std::str::from_utf8(&body).map_err(|_| ApiError::field("csv", "not UTF-8"))?;
    Ok(Json(json!(app.backend.import_csv(text)?)))
}

async fn export_csv(State(app): State<Arc<App>>, _r: Reader) -> ApiResult<Response> {
    let csv = app.backend.export_csv()?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"phones.csv\"",
            ),
        ],
        csv,
    )
        .into_response())
}

async fn leases(State(app): State<Arc<App>>, _r: Reader) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(json!(app.backend.leases()?)))
}

async fn pool_use(State(app): State<Arc<App>>, _r: Reader) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(json!(app.backend.pool_use()?)))
}

async fn neighbours(State(app): State<Arc<App>>, _r: Reader) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(json!(app.backend.neighbours()?)))
}

async fn registrations(State(app): State<Arc<App>>, _r: Reader) -> Json<Vec<ris::Registration>> {
    Json(app.ris.snapshot())
}

// -- journal ------------------------------------------------------------------------------

fn parse_phone(s: &str) -> ApiResult<Mac> {
    s.parse::<Mac>()
        .or_else(|_| Mac::from_device_name(s))
        .map_err(|e| ApiError::field("phone", format!("a MAC or SEP name: {e}")))
}

async fn journal_phones(
    State(app): State<Arc<App>>,
    _r: Reader,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(json!(app.bootlog.phones()?)))
}

/// The diagnosis context the backend can tell: is the phone provisioned, is auto-reg on.
pub(crate) fn context_for(app: &App, mac: Mac) -> bootlog::Context {
    let provisioned = match app.backend.get_device(&mac.device_name()) {
        Ok(_) => Some(true),
        Err(BackendError::NotFound { .. }) => Some(false),
        Err(_) => None,
    };
    bootlog::Context {
        provisioned,
        auto_registration: app.backend.auto_registration().ok().map(|a| a.enabled),
        now: Some(SystemTime::now()),
    }
}

async fn journal_phone(
    State(app): State<Arc<App>>,
    _r: Reader,
    Path(phone): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let mac = parse_phone(&phone)?;
    let boot = app.bootlog.last_boot(mac)?;
    let recent = app.bootlog.recent(mac, 200)?;
    let timeline = bootlog::diagnose(&boot, &context_for(&app, mac));
    Ok(Json(json!({
        "mac": mac,
        "device": mac.device_name(),
        "timeline": timeline,
        "trace": bootlog::render_trace(mac, &timeline),
        "events": recent,
    })))
}

/// The most recent events of every phone (newest last), to fill a live view before the stream.
async fn journal_recent(State(app): State<Arc<App>>, _r: Reader) -> Json<Vec<journal::Event>> {
    let all = app.events.recent();
    let skip = all.len().saturating_sub(200);
    Json(all.into_iter().skip(skip).collect())
}

#[derive(Deserialize)]
struct StreamQuery {
    phone: Option<String>,
}

async fn journal_stream(
    State(app): State<Arc<App>>,
    _r: Reader,
    Query(q): Query<StreamQuery>,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    let filter = match q.phone.as_deref() {
        Some(p) if !p.is_empty() => Some(parse_phone(p)?),
        _ => None,
    };
    let rx = app.events.subscribe();
    let stream = futures::stream::unfold(rx, move |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(ev) => {
                    if filter.is_some_and(|m| m != ev.mac) {
                        continue;
                    }
                    let data = serde_json::to_string(&ev).unwrap_or_default();
                    return Some((Ok(SseEvent::default().event("boot").data(data)), rx));
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    let ev = SseEvent::default().event("lagged").data(n.to_string());
                    return Some((Ok(ev), rx));
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// Phones per boot step right now: where each phone heard in the journal is, registered or not.
async fn live(State(app): State<Arc<App>>, _r: Reader) -> ApiResult<Json<serde_json::Value>> {
    let registered: std::collections::HashSet<String> = app
        .ris
        .snapshot()
        .into_iter()
        .map(|r| r.device.to_ascii_uppercase())
        .collect();
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    for k in [
        "power",
        "discovery",
        "dhcp",
        "files",
        "registration",
        "registered",
    ] {
        counts.insert(k, 0);
    }
    let now = SystemTime::now();
    let mut booting = Vec::new();
    for p in app.bootlog.phones()? {
        let key = if registered.contains(&p.device) {
            "registered"
        } else {
            match p.step {
                Step::Power => "power",
                Step::Discovery => "discovery",
                Step::Dhcp => "dhcp",
                Step::Files => "files",
                Step::Registration => "registration",
            }
        };
        *counts.entry(key).or_default() += 1;
        let recent = now
            .duration_since(p.last_event)
            .map(|d| d < Duration::from_secs(300))
            .unwrap_or(true);
        if key != "registered" && recent && booting.len() < 200 {
            booting.push(json!({"mac": p.mac, "device": p.device, "step": p.step, "last_event": p.last_event}));
        }
    }
    Ok(Json(
        json!({"counts": counts, "booting": booting, "registered": registered.len()}),
    ))
}
