// phoneboot admin UI: plain JavaScript, no build step. Hash routes, JSON API, SSE live feed.
"use strict";

const S = { csrf: "", user: null, role: null, pools: [], timer: null, es: null, feed: [] };
const $ = (sel, root = document) => root.querySelector(sel);
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const isAdmin = () => S.role === "admin";

function secs(t) {
  // SystemTime serializes as {secs_since_epoch, nanos_since_epoch}.
  if (!t) return null;
  if (typeof t === "object" && "secs_since_epoch" in t) return t.secs_since_epoch * 1000;
  // Journal events carry milliseconds since the epoch.
  if (typeof t === "number") return t;
  return Date.parse(t);
}
function when(t) {
  const ms = secs(t);
  if (!ms) return "—";
  const d = new Date(ms);
  return d.toISOString().replace("T", " ").slice(0, 19);
}
function ago(t) {
  const ms = secs(t);
  if (!ms) return "—";
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return s + " s ago";
  if (s < 3600) return Math.round(s / 60) + " min ago";
  if (s < 86400) return Math.round(s / 3600) + " h ago";
  return Math.round(s / 86400) + " d ago";
}

async function api(method, path, body, raw) {
  const headers = {};
  if (method !== "GET") headers["X-CSRF-Token"] = S.csrf;
  let payload;
  if (body !== undefined) {
    if (raw) { headers["Content-Type"] = "text/csv"; payload = body; }
    else { headers["Content-Type"] = "application/json"; payload = JSON.stringify(body); }
  }
  const res = await fetch(path, { method, headers, body: payload, credentials: "same-origin" });
  if (res.status === 401 && path !== "/api/login" && path !== "/api/me/password") { showLogin(); throw { error: { code: "unauthenticated", message: "Please sign in again." } }; }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = text; }
  if (!res.ok) throw data && data.error ? data : { error: { code: "http_" + res.status, message: text || res.statusText, fields: [] } };
  return data;
}

function toast(msg, bad) {
  const t = document.createElement("div");
  t.className = "toast" + (bad ? " bad" : "");
  t.textContent = msg;
  $("#toasts").appendChild(t);
  setTimeout(() => t.remove(), 4000);
}

// ---------------------------------------------------------------------------------------
// Login

function showLogin() {
  stopTimers();
  $("#app").classList.add("hidden");
  $("#login-view").classList.remove("hidden");
  $("#login-form").classList.remove("hidden");
  $("#pw-form").classList.add("hidden");
}

function showApp() {
  $("#login-view").classList.add("hidden");
  $("#app").classList.remove("hidden");
  $("#who").textContent = `${S.user} · ${S.role === "admin" ? "admin" : "read-only"}`;
  route();
}

async function boot() {
  try {
    const me = await api("GET", "/api/me");
    S.csrf = me.csrf_token || ""; S.user = me.user; S.role = me.role;
    if (me.must_change_password) { showLogin(); $("#login-form").classList.add("hidden"); $("#pw-form").classList.remove("hidden"); return; }
    showApp();
  } catch (_) { showLogin(); }
}

document.addEventListener("DOMContentLoaded", () => {
  $("#login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("#login-error").textContent = "";
    try {
      const r = await api("POST", "/api/login", { username: $("#login-user").value, password: $("#login-pass").value });
      S.csrf = r.csrf_token; S.user = r.user; S.role = r.role;
      if (r.must_change_password) {
        $("#login-form").classList.add("hidden"); $("#pw-form").classList.remove("hidden");
        $("#pw-old").value = $("#login-pass").value;
        return;
      }
      showApp();
    } catch (err) { $("#login-error").textContent = err.error ? err.error.message : "Sign-in failed"; }
  });
  $("#pw-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("#pw-error").textContent = "";
    try {
      await api("POST", "/api/me/password", { current_password: $("#pw-old").value, new_password: $("#pw-new").value });
      toast("Password changed");
      showApp();
    } catch (err) { $("#pw-error").textContent = err.error ? err.error.message : "Failed"; }
  });
  $("#logout").addEventListener("click", async () => {
    try { await api("POST", "/api/logout"); } catch (_) { /* already out */ }
    S.csrf = ""; showLogin();
  });
  $("#modal").addEventListener("click", (e) => { if (e.target.id === "modal") closeModal(); });
  window.addEventListener("hashchange", route);
  boot();
});

// ---------------------------------------------------------------------------------------
// Routing

function stopTimers() {
  if (S.timer) { clearInterval(S.timer); S.timer = null; }
  if (S.es) { S.es.close(); S.es = null; }
}

function route() {
  stopTimers();
  const h = location.hash.replace(/^#\/?/, "") || "phones";
  const [page, arg] = h.split("/");
  document.querySelectorAll("[data-nav]").forEach((a) => a.classList.toggle("active", a.dataset.nav === page || (page === "phone" && a.dataset.nav === "phones")));
  // Each route renders into its own view: a render still in flight when the user navigates
  // away writes into a detached view and starts no timers (`view.isConnected` is false).
  const main = document.createElement("div");
  main.className = "view";
  main.innerHTML = `<div class="empty">Loading…</div>`;
  $("#main").replaceChildren(main);
  const pages = { phones: pagePhones, phone: pagePhone, live: pageLive, neighbours: pageNeighbours, leases: pageLeases, settings: pageSettings };
  (pages[page] || pagePhones)(main, arg ? decodeURIComponent(arg) : undefined).catch((err) => {
    main.innerHTML = `<div class="card err">${esc(err.error ? err.error.message : err)}</div>`;
  });
}

function live(view, fn, ms) {
  // Poll, and refresh sooner when a journal event arrives; only while `view` is shown.
  if (!view.isConnected) return;
  stopTimers();
  S.timer = setInterval(fn, ms);
  try {
    S.es = new EventSource("/api/journal/stream");
    let pending = null;
    S.es.addEventListener("boot", () => { if (!pending) pending = setTimeout(() => { pending = null; fn(); }, 300); });
  } catch (_) { /* polling still works */ }
}

// ---------------------------------------------------------------------------------------
// Phones

const STATUS_TEXT = { registered: "Registered", unregistered: "Unregistered", never_seen: "Never seen" };

async function pagePhones(main) {
  main.innerHTML = `
    <div class="head"><div><h1>Phones</h1><div class="muted" id="phones-sum"></div></div><div class="spacer"></div>
      <a class="muted" href="/api/export" download>Export CSV</a>
      ${isAdmin() ? `<button id="import-csv">Import CSV</button><button class="primary" id="add-phone">Add phone</button>` : ""}</div>
    <div class="toolbar">
      <input id="f-q" placeholder="Search name, description, DN" size="30">
      <select id="f-status"><option value="">Any status</option><option value="registered">Registered</option><option value="unregistered">Unregistered</option><option value="never_seen">Never seen</option></select>
      <select id="f-protocol"><option value="">SCCP and SIP</option><option value="sccp">SCCP</option><option value="sip">SIP</option></select>
      <select id="f-model"><option value="">Any model</option></select>
    </div>
    <div class="table-wrap"><table id="phones-table"><thead><tr><th>Status</th><th>Device</th><th>Description</th><th>Model</th><th>Protocol</th><th>Lines</th><th>IP</th><th>Registered since</th><th>Boot step</th></tr></thead><tbody></tbody></table></div>`;
  if (isAdmin()) {
    $("#add-phone").addEventListener("click", () => deviceForm(null));
    $("#import-csv").addEventListener("click", importForm);
  }
  const models = new Set();
  const load = async () => {
    const p = new URLSearchParams({ q: $("#f-q").value, status: $("#f-status").value, protocol: $("#f-protocol").value, model: $("#f-model").value });
    const rows = await api("GET", "/api/phones?" + p);
    if (!main.isConnected) return;
    rows.forEach((r) => { if (!models.has(r.model)) { models.add(r.model); $("#f-model").insertAdjacentHTML("beforeend", `<option>${esc(r.model)}</option>`); } });
    const reg = rows.filter((r) => r.status === "registered").length;
    $("#phones-sum").textContent = `${rows.length} shown · ${reg} registered`;
    const tb = $("#phones-table tbody");
    tb.innerHTML = rows.length ? rows.map((r) => `
      <tr class="click" data-device="${esc(r.name)}">
        <td><span class="pill ${r.status} status">${STATUS_TEXT[r.status] || r.status}</span></td>
        <td class="mono"><a href="#/phone/${esc(r.name)}">${esc(r.name)}</a></td>
        <td>${esc(r.description)}</td><td>${esc(r.model)}</td><td>${esc(r.protocol.toUpperCase())}</td>
        <td>${r.lines.map((l) => esc(l.dn)).join(", ") || '<span class="muted">none</span>'}</td>
        <td class="mono">${r.registration ? esc(r.registration.from.split(":")[0]) : "—"}</td>
        <td>${r.registration ? esc(ago(r.registration.since)) : "—"}</td>
        <td>${r.boot_step ? esc(r.boot_step) : "—"}</td></tr>`).join("")
      : `<tr><td colspan="9" class="empty">No phones match. ${isAdmin() ? "Add one with “Add phone”." : ""}</td></tr>`;
  };
  let debounce;
  $("#f-q").addEventListener("input", () => { clearTimeout(debounce); debounce = setTimeout(load, 200); });
  ["#f-status", "#f-protocol", "#f-model"].forEach((s) => $(s).addEventListener("change", load));
  $("#phones-table").addEventListener("click", (e) => {
    const tr = e.target.closest("tr[data-device]");
    if (tr && e.target.tagName !== "A") location.hash = "#/phone/" + tr.dataset.device;
  });
  await load();
  live(main, load, 2000);
}

function openModal(html) {
  $("#modal-card").innerHTML = html;
  $("#modal").classList.remove("hidden");
}
function closeModal() { $("#modal").classList.add("hidden"); $("#modal-card").innerHTML = ""; }

function confirmBox(title, text, yes) {
  return new Promise((resolve) => {
    openModal(`<h1>${esc(title)}</h1><p>${esc(text)}</p><div class="actions"><button id="confirm-no">Cancel</button><button class="primary" id="confirm-yes">${esc(yes)}</button></div>`);
    $("#confirm-no").addEventListener("click", () => { closeModal(); resolve(false); });
    $("#confirm-yes").addEventListener("click", () => { closeModal(); resolve(true); });
  });
}

function lineRow(l, i) {
  return `<tr data-line="${i}">
    <td><input name="dn" value="${esc(l.dn)}" placeholder="1001" data-field="lines[${i}].dn"><div class="err" data-err="lines[${i}].dn"></div></td>
    <td><input name="label" value="${esc(l.label)}" placeholder="Reception" data-field="lines[${i}].label"><div class="err" data-err="lines[${i}].label"></div></td>
    <td><input name="display_name" value="${esc(l.display_name)}" placeholder="Front desk" data-field="lines[${i}].display_name"><div class="err" data-err="lines[${i}].display_name"></div></td>
    <td><button type="button" class="small danger" data-remove-line>Remove</button></td></tr>`;
}

async function deviceForm(existing) {
  S.pools = await api("GET", "/api/device-pools");
  const d = existing || { name: "", mac: null, model: "CP-7841", protocol: "sccp", description: "", device_pool: S.pools[0] ? S.pools[0].name : "", load: "", lines: [{ dn: "", label: "", display_name: "" }] };
  openModal(`
    <h1>${existing ? "Edit " + esc(d.name) : "Add phone"}</h1>
    <form id="device-form" novalidate>
      <div class="form-grid">
        <label>MAC address<input name="mac" id="dev-mac" value="${esc(d.mac || "")}" placeholder="00:1B:54:AA:BB:CC" ${existing ? "disabled" : ""} data-field="mac"><div class="err" data-err="mac"></div><div class="err" data-err="name"></div></label>
        <label>Model<input name="model" id="dev-model" value="${esc(d.model)}" placeholder="CP-7841" data-field="model"><div class="err" data-err="model"></div></label>
        <label>Protocol<select name="protocol" id="dev-protocol" data-field="protocol"><option value="sccp">SCCP</option><option value="sip">SIP</option></select><div class="err" data-err="protocol"></div></label>
        <label>Device pool<select name="device_pool" id="dev-pool" data-field="device_pool">${S.pools.map((p) => `<option>${esc(p.name)}</option>`).join("")}</select><div class="err" data-err="device_pool"></div></label>
        <label class="full">Description<input name="description" id="dev-desc" value="${esc(d.description)}" placeholder="Lobby phone" data-field="description"><div class="err" data-err="description"></div></label>
        <label class="full">Firmware load (empty for the model default)<input name="load" id="dev-load" value="${esc(d.load)}" data-field="load"><div class="err" data-err="load"></div></label>
      </div>
      <h2 style="margin-top:18px">Lines</h2>
      <table class="lines-table"><thead><tr><th>Directory number</th><th>Label</th><th>Display name</th><th></th></tr></thead><tbody id="lines-body">${d.lines.map(lineRow).join("")}</tbody></table>
      <button type="button" class="small" id="add-line" style="margin-top:8px">Add line</button>
      <div class="err" data-err="lines"></div><div class="err" id="form-error"></div>
      <div class="actions"><button type="button" id="dev-cancel">Cancel</button><button class="primary" type="submit" id="dev-save">${existing ? "Save" : "Add phone"}</button></div>
    </form>`);
  $("#dev-protocol").value = d.protocol;
  $("#dev-pool").value = d.device_pool;
  $("#dev-cancel").addEventListener("click", closeModal);
  $("#add-line").addEventListener("click", () => {
    const n = document.querySelectorAll("#lines-body tr").length;
    $("#lines-body").insertAdjacentHTML("beforeend", lineRow({ dn: "", label: "", display_name: "" }, n));
  });
  $("#lines-body").addEventListener("click", (e) => { if (e.target.matches("[data-remove-line]")) e.target.closest("tr").remove(); });
  $("#device-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    document.querySelectorAll("#device-form .err").forEach((x) => (x.textContent = ""));
    document.querySelectorAll("#device-form .bad").forEach((x) => x.classList.remove("bad"));
    const lines = [...document.querySelectorAll("#lines-body tr")].map((tr, i) => ({
      index: i + 1, dn: $("[name=dn]", tr).value.trim(), label: $("[name=label]", tr).value, display_name: $("[name=display_name]", tr).value,
    })).filter((l) => l.dn || l.label || l.display_name);
    // Renumber the row fields so error paths match what is sent.
    const body = {
      name: existing ? existing.name : "", mac: existing ? existing.mac : ($("#dev-mac").value.trim() || null),
      model: $("#dev-model").value.trim(), protocol: $("#dev-protocol").value, device_pool: $("#dev-pool").value,
      description: $("#dev-desc").value, load: $("#dev-load").value.trim(), lines,
    };
    try {
      const saved = existing ? await api("PUT", "/api/devices/" + encodeURIComponent(existing.name), body) : await api("POST", "/api/devices", body);
      closeModal();
      toast(`${saved.name} ${existing ? "saved" : "added"}`);
      route();
    } catch (err) { showFieldErrors(err); }
  });
}

function showFieldErrors(err) {
  const e = err.error || { message: String(err), fields: [] };
  let placed = false;
  (e.fields || []).forEach((f) => {
    const slot = document.querySelector(`[data-err="${CSS.escape(f.field)}"]`);
    const input = document.querySelector(`[data-field="${CSS.escape(f.field)}"]`);
    if (input) input.classList.add("bad");
    if (slot) { slot.textContent = f.message; placed = true; }
  });
  if (!placed) $("#form-error").textContent = e.message;
}

function importForm() {
  openModal(`<h1>Import phones from CSV</h1>
    <p class="muted">CUCM BAT columns: MAC ADDRESS, DEVICE TYPE (required), DESCRIPTION, DEVICE PROTOCOL, DEVICE POOL, then DIRECTORY NUMBER 1, DISPLAY 1, LINE TEXT LABEL 1, … (what “Export CSV” writes). Every row is checked before anything changes.</p>
    <textarea id="csv-text" rows="10" style="width:100%" placeholder="MAC ADDRESS,DEVICE TYPE,DEVICE PROTOCOL,DEVICE POOL,DIRECTORY NUMBER 1,LINE TEXT LABEL 1&#10;001B54AABBCC,Cisco 7841,SIP,Default,1001,Lobby"></textarea>
    <div class="err" id="form-error"></div>
    <div class="actions"><button id="csv-cancel">Cancel</button><button class="primary" id="csv-go">Import</button></div>`);
  $("#csv-cancel").addEventListener("click", closeModal);
  $("#csv-go").addEventListener("click", async () => {
    try {
      const r = await api("POST", "/api/import", $("#csv-text").value, true);
      closeModal(); toast(`Imported: ${r.created} added, ${r.updated} updated`); route();
    } catch (err) {
      const e = err.error || {};
      $("#form-error").innerHTML = (e.fields && e.fields.length ? e.fields.map((f) => `${esc(f.field)}: ${esc(f.message)}`).join("<br>") : esc(e.message));
    }
  });
}

// ---------------------------------------------------------------------------------------
// One phone

const STEP_NAMES = { power: "Power", discovery: "CDP/LLDP", dhcp: "DHCP", files: "Files", registration: "Registration" };

async function pagePhone(main, name) {
  const render = async () => {
    const [dev, journal, regs, leases, neigh, files] = await Promise.all([
      api("GET", "/api/devices/" + encodeURIComponent(name)),
      api("GET", "/api/journal/" + encodeURIComponent(name)).catch(() => null),
      api("GET", "/api/registrations"),
      api("GET", "/api/leases"),
      api("GET", "/api/neighbours"),
      api("GET", "/api/devices/" + encodeURIComponent(name) + "/files").catch(() => []),
    ]);
    if (!main.isConnected) return;
    const mac = (dev.mac || "").toLowerCase();
    const reg = regs.filter((r) => r.device.toUpperCase() === dev.name.toUpperCase());
    const lease = leases.find((l) => l.mac.toLowerCase() === mac);
    const nb = neigh.find((n) => n.mac.toLowerCase() === mac);
    const status = reg.length ? "registered" : (journal && journal.events.length ? "unregistered" : "never_seen");
    const t = journal ? journal.timeline : null;
    main.innerHTML = `
      <div class="head"><div><h1 class="mono">${esc(dev.name)}</h1><div class="muted">${esc(dev.description || "No description")} · ${esc(dev.model)} · ${esc(dev.protocol.toUpperCase())}</div></div>
        <span class="pill ${status}" id="phone-status">${STATUS_TEXT[status]}</span><div class="spacer"></div>
        ${isAdmin() ? `<button id="action-apply-config">Apply config</button><button id="action-restart">Restart</button><button id="action-reset" class="primary">Reset</button><button id="edit-phone">Edit</button><button id="delete-phone" class="danger">Delete</button>` : ""}</div>
      <div class="grid">
        <div class="card"><h2>Registration</h2>${reg.length ? reg.map((r) => `<dl class="kv"><dt>Protocol</dt><dd>${esc(r.protocol.toUpperCase())}${r.line ? " · line " + esc(r.line) : ""}</dd><dt>From</dt><dd class="mono">${esc(r.from)}</dd><dt>Node</dt><dd>${esc(r.node)}</dd><dt>Since</dt><dd>${esc(when(r.since))} (${esc(ago(r.since))})</dd><dt>Last heard</dt><dd>${esc(ago(r.last_seen))}</dd><dt>Detail</dt><dd>${esc(r.detail)}</dd></dl>`).join("<hr>") : `<div class="muted">Not registered.</div>`}</div>
        <div class="card" id="lease-card"><h2>DHCP lease</h2>${lease ? `<dl class="kv"><dt>Address</dt><dd class="mono">${esc(lease.ip)}</dd><dt>Pool</dt><dd>${esc(lease.pool)}</dd><dt>Expires</dt><dd>${esc(when(lease.expires))}</dd><dt>Vendor class</dt><dd>${esc(lease.vendor_class || "—")}</dd></dl>` : `<div class="muted">No lease.</div>`}</div>
        <div class="card" id="neighbour-card"><h2>Switch port (CDP/LLDP)</h2>${nb ? `<dl class="kv"><dt>Port</dt><dd class="mono">${esc(nb.port)}</dd><dt>Heard by</dt><dd>${esc(nb.protocol.toUpperCase())}</dd><dt>Platform</dt><dd>${esc(nb.platform || "—")}</dd><dt>Voice VLAN</dt><dd>${esc(nb.voice_vlan ?? "—")}</dd><dt>Power</dt><dd>${nb.power_mw ? esc(nb.power_mw) + " mW" : "—"}</dd><dt>Last seen</dt><dd>${esc(ago(nb.last_seen))}</dd></dl>` : `<div class="muted">Not heard on any switch port.</div>`}</div>
        <div class="card"><h2>Lines</h2>${dev.lines.length ? `<table><thead><tr><th>#</th><th>DN</th><th>Label</th><th>Display</th></tr></thead><tbody>${dev.lines.map((l) => `<tr><td>${l.index}</td><td class="mono">${esc(l.dn)}</td><td>${esc(l.label)}</td><td>${esc(l.display_name)}</td></tr>`).join("")}</tbody></table>` : `<div class="muted">No lines.</div>`}</div>
      </div>
      <div class="card" style="margin-bottom:16px"><h2>Last boot</h2>${t ? timelineHtml(t) : `<div class="muted">No journal.</div>`}</div>
      <div class="card" id="files-card"><h2>Generated files</h2>${files.length ? files.map((f) => `<div class="mono" style="margin:6px 0"><b>${esc(f.name)}</b> <span class="muted">${esc(f.content_type)}, ${f.content.length} bytes</span></div><pre class="file">${esc(f.content)}</pre>`).join("") : `<div class="muted">No files for this device.</div>`}</div>`;
    if (isAdmin()) {
      for (const [id, act, label] of [["#action-reset", "reset", "Reset"], ["#action-restart", "restart", "Restart"], ["#action-apply-config", "apply-config", "Apply config"]]) {
        $(id).addEventListener("click", async () => {
          if (!(await confirmBox(`${label} ${dev.name}?`, act === "reset" ? "The phone reboots and fetches its files again; calls in progress drop." : "The phone re-reads its configuration.", label))) return;
          try { await api("POST", `/api/devices/${encodeURIComponent(dev.name)}/actions/${act}`); toast(`${label} sent to ${dev.name}`); } catch (err) { toast(err.error ? err.error.message : "Failed", true); }
        });
      }
      $("#edit-phone").addEventListener("click", () => deviceForm(dev));
      $("#delete-phone").addEventListener("click", async () => {
        if (!(await confirmBox(`Delete ${dev.name}?`, "The phone and its lines are removed from the database.", "Delete"))) return;
        try { await api("DELETE", "/api/devices/" + encodeURIComponent(dev.name)); toast(`${dev.name} deleted`); location.hash = "#/phones"; } catch (err) { toast(err.error ? err.error.message : "Failed", true); }
      });
    }
  };
  await render();
  live(main, () => { if ($("#modal").classList.contains("hidden")) render().catch(() => {}); }, 3000);
}

function timelineHtml(t) {
  const outcome = { registered: "Registered", stalled: "Stalled", ended: "Ended", in_progress: "In progress", unknown: "No data" }[t.outcome] || t.outcome;
  return `
    <div class="verdict ${t.outcome}" id="verdict"><div class="title">${esc(outcome)}${t.stalled_at ? " at " + esc(STEP_NAMES[t.stalled_at]) : ""}: ${esc(t.verdict)}</div>
      ${t.cause ? `<div class="cause">Likely cause: ${esc(t.cause)}</div>` : ""}
      ${(t.warnings || []).map((w) => `<div class="cause">Note: ${esc(w)}</div>`).join("")}</div>
    <div class="ladder">${t.steps.map((s) => `<div class="st ${s.state}">${esc(STEP_NAMES[s.step])}<small>${s.after_ms != null ? "+" + (s.after_ms / 1000).toFixed(1) + " s" : s.state}</small></div>`).join("")}</div>
    <ul class="timeline">${t.entries.map((e) => `<li><span class="off mono">+${(e.offset_ms / 1000).toFixed(3)} s</span><span class="muted">${esc(STEP_NAMES[e.step])}</span><span class="lvl-${e.level}">${esc(e.text)}${e.side === "phone" ? ' <span class="muted">[phone]</span>' : ""}</span></li>`).join("")}</ul>
    ${t.started ? `<div class="muted" style="margin-top:8px">Boot began ${esc(when(t.started))} UTC</div>` : ""}`;
}

// ---------------------------------------------------------------------------------------
// Live boots

async function pageLive(main) {
  main.innerHTML = `<div class="head"><div><h1><span class="live-dot"></span>Live boots</h1><div class="muted">Phones per boot step, updated as events arrive.</div></div></div>
    <div class="tiles" id="tiles"></div>
    <div class="grid"><div class="card"><h2>Booting now</h2><div id="booting"></div></div><div class="card"><h2>Event feed</h2><div class="feed" id="feed"></div></div></div>`;
  const load = async () => {
    const l = await api("GET", "/api/live");
    if (!main.isConnected) return;
    const order = ["power", "discovery", "dhcp", "files", "registration", "registered"];
    const label = { ...STEP_NAMES, registration: "Registering", registered: "Registered" };
    $("#tiles").innerHTML = order.map((k) => `<div class="tile ${k}" data-step="${k}"><div class="n">${l.counts[k] || 0}</div><div class="l">${esc(label[k])}</div></div>`).join("");
    $("#booting").innerHTML = l.booting.length ? `<table><thead><tr><th>Device</th><th>Step</th><th>Last event</th></tr></thead><tbody>${l.booting.map((b) => `<tr><td class="mono"><a href="#/phone/${esc(b.device)}">${esc(b.device)}</a></td><td><span class="pill in_progress">${esc(STEP_NAMES[b.step])}</span></td><td>${esc(ago(b.last_event))}</td></tr>`).join("")}</tbody></table>` : `<div class="muted">No phone is booting.</div>`;
  };
  const show = (e) => {
    const feed = $("#feed");
    if (!feed) return;
    const div = document.createElement("div");
    div.innerHTML = `<span class="muted mono">${esc(when(e.at).slice(11))}</span> <a class="mono" href="#/phone/SEP${esc(e.mac.replace(/:/g, "").toUpperCase())}">${esc(e.mac)}</a> ${esc(e.kind.replace(/_/g, " "))}${e.name ? " " + esc(e.name) : ""}${e.ip ? " " + esc(e.ip) : ""}${e.port ? " on " + esc(e.port) : ""}`;
    feed.prepend(div);
    while (feed.children.length > 200) feed.lastChild.remove();
  };
  await load();
  const recent = await api("GET", "/api/journal/recent");
  if (!main.isConnected) return;
  recent.forEach(show);
  stopTimers();
  S.timer = setInterval(load, 3000);
  S.es = new EventSource("/api/journal/stream");
  S.es.addEventListener("boot", (m) => { show(JSON.parse(m.data)); load().catch(() => {}); });
}

// ---------------------------------------------------------------------------------------
// Neighbours, leases, settings

async function pageNeighbours(main) {
  const load = async () => {
    const n = await api("GET", "/api/neighbours");
    main.innerHTML = `<div class="head"><div><h1>CDP/LLDP neighbours</h1><div class="muted">${n.length} phones heard on switch ports</div></div></div>
      <div class="table-wrap"><table><thead><tr><th>Device</th><th>Port</th><th>Protocol</th><th>Platform</th><th>Voice VLAN</th><th>Power</th><th>Last seen</th></tr></thead><tbody>
      ${n.length ? n.map((x) => `<tr><td class="mono"><a href="#/phone/SEP${esc(x.mac.replace(/:/g, "").toUpperCase())}">SEP${esc(x.mac.replace(/:/g, "").toUpperCase())}</a></td><td class="mono">${esc(x.port)}</td><td>${esc(x.protocol.toUpperCase())}</td><td>${esc(x.platform || "—")}</td><td>${esc(x.voice_vlan ?? "—")}</td><td>${x.power_mw ? esc(x.power_mw) + " mW" : "—"}</td><td>${esc(ago(x.last_seen))}</td></tr>`).join("") : `<tr><td colspan="7" class="empty">No neighbours heard yet.</td></tr>`}
      </tbody></table></div>`;
  };
  await load();
  if (!main.isConnected) return;
  stopTimers();
  S.timer = setInterval(load, 5000);
}

async function pageLeases(main) {
  const load = async () => {
    const [l, pools] = await Promise.all([api("GET", "/api/leases"), api("GET", "/api/dhcp-pools")]);
    main.innerHTML = `<div class="head"><div><h1>DHCP leases</h1><div class="muted">${l.length} active leases</div></div></div>
      <div class="grid">${pools.map((p) => `<div class="card"><h2>Pool ${esc(p.name)}</h2><div style="display:flex;justify-content:space-between;margin-bottom:6px"><b>${p.used} / ${p.size}</b><span class="muted">${p.size ? Math.round((100 * p.used) / p.size) : 0}% used</span></div><div class="bar"><span style="width:${p.size ? Math.min(100, (100 * p.used) / p.size) : 0}%"></span></div></div>`).join("")}</div>
      <div class="table-wrap"><table><thead><tr><th>Address</th><th>MAC</th><th>Pool</th><th>Vendor class</th><th>Host name</th><th>Expires</th></tr></thead><tbody>
      ${l.length ? l.map((x) => `<tr><td class="mono">${esc(x.ip)}</td><td class="mono"><a href="#/phone/SEP${esc(x.mac.replace(/:/g, "").toUpperCase())}">${esc(x.mac)}</a></td><td>${esc(x.pool)}</td><td>${esc(x.vendor_class || "—")}</td><td>${esc(x.hostname || "—")}</td><td>${esc(when(x.expires))}</td></tr>`).join("") : `<tr><td colspan="6" class="empty">No leases.</td></tr>`}
      </tbody></table></div>`;
  };
  await load();
  if (!main.isConnected) return;
  stopTimers();
  S.timer = setInterval(load, 5000);
}

async function pageSettings(main) {
  const [ar, pools, groups, loads, templates] = await Promise.all([
    api("GET", "/api/auto-registration"), api("GET", "/api/device-pools"), api("GET", "/api/cm-groups"), api("GET", "/api/loads"), api("GET", "/api/templates"),
  ]);
  main.innerHTML = `<div class="head"><div><h1>Settings</h1></div></div>
    <div class="grid">
      <div class="card"><h2>Auto-registration</h2><form id="ar-form" class="form-grid">
        <label class="full" style="flex-direction:row;align-items:center;gap:8px"><input type="checkbox" id="ar-enabled" ${ar.enabled ? "checked" : ""} ${isAdmin() ? "" : "disabled"}> Register unknown phones automatically</label>
        <label>Protocol<select id="ar-protocol" data-field="protocol"><option value="sccp">SCCP</option><option value="sip">SIP</option></select></label>
        <label>Device pool<select id="ar-pool" data-field="device_pool">${pools.map((p) => `<option>${esc(p.name)}</option>`).join("")}</select><div class="err" data-err="device_pool"></div></label>
        <label>First DN<input id="ar-first" value="${esc(ar.dn_first)}" data-field="dn_first"><div class="err" data-err="dn_first"></div></label>
        <label>Last DN<input id="ar-last" value="${esc(ar.dn_last)}" data-field="dn_last"><div class="err" data-err="dn_last"></div></label>
        <div class="full err" id="form-error"></div>
        ${isAdmin() ? `<div class="full"><button class="primary" type="submit">Save</button></div>` : ""}</form></div>
      <div class="card"><h2>Device pools</h2><table><thead><tr><th>Name</th><th>CM group</th><th>Region</th><th>Date/time</th></tr></thead><tbody>${pools.map((p) => `<tr><td>${esc(p.name)}</td><td>${esc(p.cm_group)}</td><td>${esc(p.region)}</td><td>${esc(p.date_time_group)}</td></tr>`).join("")}</tbody></table></div>
      <div class="card"><h2>CallManager groups</h2>${groups.map((g) => `<div style="margin-bottom:10px"><b>${esc(g.name)}</b><ol>${g.nodes.map((n) => `<li class="mono">${esc(n.name)} ${esc(n.address)} SCCP ${n.sccp_port} SIP ${n.sip_port}</li>`).join("")}</ol></div>`).join("")}</div>
      <div class="card"><h2>Firmware loads</h2><table><thead><tr><th>Model</th><th>Load</th><th>On disk</th></tr></thead><tbody>${loads.map((l) => `<tr><td>${esc(l.model)}</td><td class="mono">${esc(l.name)}</td><td><span class="pill ${l.present ? "ok" : "warn"}">${l.present ? "present" : "missing"}</span></td></tr>`).join("")}</tbody></table></div>
      <div class="card"><h2>Templates</h2><table><thead><tr><th>Name</th><th>Produces</th></tr></thead><tbody>${templates.map((t) => `<tr><td>${esc(t.name)}</td><td class="mono">${esc(t.produces)}</td></tr>`).join("")}</tbody></table></div>
    </div>`;
  $("#ar-protocol").value = ar.protocol;
  $("#ar-pool").value = ar.device_pool;
  $("#ar-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    document.querySelectorAll("#ar-form .err").forEach((x) => (x.textContent = ""));
    try {
      await api("PUT", "/api/auto-registration", { enabled: $("#ar-enabled").checked, protocol: $("#ar-protocol").value, device_pool: $("#ar-pool").value, dn_first: $("#ar-first").value.trim(), dn_last: $("#ar-last").value.trim() });
      toast("Auto-registration saved");
    } catch (err) { showFieldErrors(err); }
  });
}
