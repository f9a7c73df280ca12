//! The OpenAPI 3.1 document, written by hand from the route table (kept next to it in
//! `api.rs`; a test checks every route is documented).

use serde_json::{json, Map, Value};

/// (method, path, summary, tag, needs admin, request schema, response schema)
type Operation = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    bool,
    Option<&'static str>,
    Option<&'static str>,
);

pub(crate) const OPERATIONS: &[Operation] = &[
    (
        "post",
        "/api/login",
        "Log in; sets the session cookie and returns the CSRF token",
        "auth",
        false,
        Some("Login"),
        Some("LoginResult"),
    ),
    (
        "post",
        "/api/login/token",
        "Exchange a user name and password for an API token with the user's role (phoneboot login)",
        "auth",
        false,
        Some("TokenLogin"),
        Some("IssuedToken"),
    ),
    ("post", "/api/logout", "Log out", "auth", false, None, None),
    ("get", "/api/me", "Who am I", "auth", false, None, None),
    (
        "post",
        "/api/me/password",
        "Change my password",
        "auth",
        false,
        Some("PasswordChange"),
        None,
    ),
    ("get", "/api/users", "List users", "auth", true, None, None),
    (
        "post",
        "/api/users",
        "Create a user",
        "auth",
        true,
        Some("NewUser"),
        None,
    ),
    (
        "delete",
        "/api/users/{name}",
        "Delete a user",
        "auth",
        true,
        None,
        None,
    ),
    (
        "get",
        "/api/tokens",
        "List API tokens",
        "auth",
        true,
        None,
        None,
    ),
    (
        "post",
        "/api/tokens",
        "Create an API token (secret shown once)",
        "auth",
        true,
        Some("NewToken"),
        None,
    ),
    (
        "delete",
        "/api/tokens/{id}",
        "Revoke an API token",
        "auth",
        true,
        None,
        None,
    ),
    (
        "get",
        "/api/phones",
        "Devices with live registration status and boot step (filters: q, status, model, protocol)",
        "devices",
        false,
        None,
        None,
    ),
    (
        "get",
        "/api/devices",
        "List devices",
        "devices",
        false,
        None,
        Some("DeviceList"),
    ),
    (
        "post",
        "/api/devices",
        "Add a device",
        "devices",
        true,
        Some("Device"),
        Some("Device"),
    ),
    (
        "get",
        "/api/devices/{name}",
        "Get a device",
        "devices",
        false,
        None,
        Some("Device"),
    ),
    (
        "put",
        "/api/devices/{name}",
        "Replace a device",
        "devices",
        true,
        Some("Device"),
        Some("Device"),
    ),
    (
        "delete",
        "/api/devices/{name}",
        "Delete a device",
        "devices",
        true,
        None,
        None,
    ),
    (
        "get",
        "/api/devices/{name}/lines",
        "A device's lines",
        "devices",
        false,
        None,
        None,
    ),
    (
        "put",
        "/api/devices/{name}/lines",
        "Replace a device's lines",
        "devices",
        true,
        Some("LineList"),
        None,
    ),
    (
        "get",
        "/api/devices/{name}/files",
        "The files the device would be served now",
        "devices",
        false,
        None,
        None,
    ),
    (
        "post",
        "/api/devices/{name}/actions/{action}",
        "Send reset, restart or apply-config",
        "actions",
        true,
        None,
        None,
    ),
    (
        "get",
        "/api/lines",
        "Every line of every device",
        "devices",
        false,
        None,
        None,
    ),
    (
        "get",
        "/api/device-pools",
        "List device pools",
        "settings",
        false,
        None,
        None,
    ),
    (
        "put",
        "/api/device-pools/{name}",
        "Create or replace a device pool",
        "settings",
        true,
        Some("DevicePool"),
        None,
    ),
    (
        "delete",
        "/api/device-pools/{name}",
        "Delete a device pool",
        "settings",
        true,
        None,
        None,
    ),
    (
        "get",
        "/api/cm-groups",
        "List CallManager groups and their nodes",
        "settings",
        false,
        None,
        None,
    ),
    (
        "put",
        "/api/cm-groups/{name}",
        "Create or replace a CallManager group",
        "settings",
        true,
        Some("CmGroup"),
        None,
    ),
    (
        "delete",
        "/api/cm-groups/{name}",
        "Delete a CallManager group",
        "settings",
        true,
        None,
        None,
    ),
    (
        "get",
        "/api/templates",
        "Configuration templates",
        "settings",
        false,
        None,
        None,
    ),
    (
        "get",
        "/api/loads",
        "Firmware loads",
        "settings",
        false,
        None,
        None,
    ),
    (
        "get",
        "/api/auto-registration",
        "Auto-registration settings",
        "settings",
        false,
        None,
        Some("AutoRegistration"),
    ),
    (
        "put",
        "/api/auto-registration",
        "Change auto-registration",
        "settings",
        true,
        Some("AutoRegistration"),
        Some("AutoRegistration"),
    ),
    (
        "post",
        "/api/import",
        "Import devices from CSV (text/csv; all rows validated first)",
        "devices",
        true,
        None,
        None,
    ),
    (
        "get",
        "/api/export",
        "Export devices as CSV",
        "devices",
        false,
        None,
        None,
    ),
    (
        "get",
        "/api/leases",
        "DHCP leases",
        "network",
        false,
        None,
        None,
    ),
    (
        "get",
        "/api/dhcp-pools",
        "DHCP pool use",
        "network",
        false,
        None,
        None,
    ),
    (
        "get",
        "/api/neighbours",
        "CDP/LLDP neighbours",
        "network",
        false,
        None,
        None,
    ),
    (
        "get",
        "/api/registrations",
        "Registrations (RIS): status, IP, protocol, since",
        "network",
        false,
        None,
        None,
    ),
    (
        "get",
        "/api/journal",
        "Phones in the boot journal",
        "journal",
        false,
        None,
        None,
    ),
    (
        "get",
        "/api/journal/stream",
        "Live events as server-sent events (optional ?phone=MAC)",
        "journal",
        false,
        None,
        None,
    ),
    (
        "get",
        "/api/journal/recent",
        "The most recent events of every phone",
        "journal",
        false,
        None,
        None,
    ),
    (
        "get",
        "/api/journal/{phone}",
        "A phone's last boot: timeline, diagnosis and recent events",
        "journal",
        false,
        None,
        None,
    ),
    (
        "get",
        "/api/live",
        "Phones per boot step right now",
        "journal",
        false,
        None,
        None,
    ),
    (
        "get",
        "/api/openapi.json",
        "This document",
        "meta",
        false,
        None,
        None,
    ),
];

fn schemas() -> Value {
    json!({
        "Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
            "code": {"type": "string"}, "message": {"type": "string"},
            "field": {"type": ["string", "null"], "description": "the first field at fault"},
            "fields": {"type": "array", "items": {"type": "object", "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}}}}}},
        "Login": {"type": "object", "required": ["username", "password"], "properties": {"username": {"type": "string"}, "password": {"type": "string"}}},
        "TokenLogin": {"type": "object", "required": ["username", "password"], "properties": {"username": {"type": "string"}, "password": {"type": "string"}, "label": {"type": "string", "maxLength": 40}}},
        "IssuedToken": {"type": "object", "properties": {"token": {"type": "string", "description": "shown once; send as Authorization: Bearer"}, "name": {"type": "string"}, "user": {"type": "string"}, "role": {"enum": ["admin", "read_only"]}}},
        "LoginResult": {"type": "object", "properties": {"user": {"type": "string"}, "role": {"enum": ["admin", "read_only"]}, "must_change_password": {"type": "boolean"}, "csrf_token": {"type": "string"}}},
        "PasswordChange": {"type": "object", "required": ["current_password", "new_password"], "properties": {"current_password": {"type": "string"}, "new_password": {"type": "string", "minLength": 10}}},
        "NewUser": {"type": "object", "required": ["username", "password", "role"], "properties": {"username": {"type": "string"}, "password": {"type": "string"}, "role": {"enum": ["admin", "read_only"]}}},
        "NewToken": {"type": "object", "required": ["name", "role"], "properties": {"name": {"type": "string"}, "role": {"enum": ["admin", "read_only"]}}},
        "Line": {"type": "object", "required": ["dn"], "properties": {"index": {"type": "integer"}, "dn": {"type": "string", "pattern": "^[0-9*#+]{1,24}$"}, "label": {"type": "string"}, "display_name": {"type": "string"}, "sip_user": {"type": "string"}, "sip_password": {"type": "string", "writeOnly": true}}},
        "LineList": {"type": "array", "items": {"$ref": "#/components/schemas/Line"}},
        "Device": {"type": "object", "required": ["model", "device_pool"], "properties": {
            "name": {"type": "string", "pattern": "^SEP[0-9A-F]{12}$"}, "mac": {"type": "string"}, "model": {"type": "string"},
            "protocol": {"enum": ["sccp", "sip"]}, "description": {"type": "string"}, "device_pool": {"type": "string"}, "load": {"type": "string"},
            "lines": {"$ref": "#/components/schemas/LineList"}}},
        "DeviceList": {"type": "array", "items": {"$ref": "#/components/schemas/Device"}},
        "DevicePool": {"type": "object", "required": ["name", "cm_group"], "properties": {"name": {"type": "string"}, "cm_group": {"type": "string"}, "region": {"type": "string"}, "date_time_group": {"type": "string"}}},
        "CmGroup": {"type": "object", "required": ["name", "nodes"], "properties": {"name": {"type": "string"}, "nodes": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}, "address": {"type": "string"}, "sccp_port": {"type": "integer"}, "sip_port": {"type": "integer"}}}}}},
        "AutoRegistration": {"type": "object", "properties": {"enabled": {"type": "boolean"}, "protocol": {"enum": ["sccp", "sip"]}, "device_pool": {"type": "string"}, "dn_first": {"type": "string"}, "dn_last": {"type": "string"}}}
    })
}

/// The OpenAPI document.
pub fn document() -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for (method, path, summary, tag, admin, req, resp) in OPERATIONS {
        let params: Vec<Value> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut op = json!({
            "summary": summary,
            "tags": [tag],
            "parameters": params,
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema":
                    resp.map(|r| json!({"$ref": format!("#/components/schemas/{r}")})).unwrap_or(json!({}))}}},
                "default": {"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            },
            "x-requires-role": if *admin { "admin" } else if *path == "/api/login" || *path == "/api/login/token" { "none" } else { "read_only" },
        });
        if let Some(r) = req {
            op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{r}")}}}});
        }
        if *path == "/api/login" || *path == "/api/login/token" {
            op["security"] = json!([]);
        }
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[*method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "phoneboot admin API", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Devices, lines, pools, registrations, leases, neighbours, the boot journal and actions. Errors are JSON with a code and the field at fault. Writes need an admin; cookie sessions must send X-CSRF-Token."},
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "pb_session"},
                "token": {"type": "http", "scheme": "bearer"}
            }
        },
        "security": [{"session": []}, {"token": []}]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `/api` route in the router is in the document, with every method it answers.
    #[test]
    fn every_route_is_documented() {
        let src = include_str!("api.rs");
        let doc = document();
        let mut n = 0;
        for chunk in src.split(".route(").skip(1) {
            let Some(path) = chunk.split('"').nth(1) else {
                continue;
            };
            if !path.starts_with("/api/") {
                continue;
            }
            let call = &chunk[..chunk.find("))").unwrap_or(chunk.len())];
            for m in ["get", "post", "put", "delete"] {
                if call.contains(&format!("{m}(")) {
                    assert!(
                        doc["paths"][path][m].is_object(),
                        "{m} {path} is not in the OpenAPI document"
                    );
                    n += 1;
                }
            }
        }
        assert!(n >= 40, "found only {n} routes");
    }
}
