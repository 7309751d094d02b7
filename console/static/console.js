// Anxin operator console: login, live queue, calls panel and incident detail.
//
// How it stays current
//   The page keeps one map incident_id -> IncidentView. The console websocket first sends a snapshot
//   (which replaces the map), then journal entries. An entry naming an incident only marks that incident
//   stale; stale incidents are re-fetched from GET /api/incidents/{id}, at most once per animation frame
//   and never twice at the same time, so a burst of entries costs one request per incident. The last
//   sequence number seen is kept; after any close the page reconnects with after=SEQ (back-off 0.5 s
//   doubling to 5 s) and the server replays what was missed.
//
// Rules
//   1. The server decides. Buttons are greyed out only where the incident state table makes the action
//      impossible; every refusal is shown with the server's detail.
//   2. Data is never written as HTML: every text goes through textContent.
//   3. Clocks run on server time: the offset to the local clock is taken from the HTTP Date header.
"use strict";

(() => {
  const SESSION_KEY = "anxin.console.session";
  const DEFAULT_ANSWER_TARGET_S = 60;
  const BACKOFF_FIRST_MS = 500;
  const BACKOFF_MAX_MS = 5000;
  const REFETCH_RETRY_MS = 2000;
  const CALL_KEEP_S = 60; // an ended call stays in the panel this long
  const TIMEZONE = document.documentElement.dataset.timezone || "Asia/Shanghai";

  const STATE_LABELS = {
    received: "待接警", acknowledged: "已接警", dispatching: "派单中", assigned: "已接单",
    on_scene: "已到场", resolved: "已处置", closed: "已结案", cancelled: "已取消", escalated: "已转外部",
  };
  const ALARM_LABELS = {
    sos: "紧急呼叫", fall: "跌倒", medical: "医疗求助", fire: "火警", inactivity: "长时间未活动",
    call: "热线来电", missed_checkin: "设备失联", low_battery: "低电量", mains_loss: "断电",
    watch_removed: "手表摘下", test: "测试",
  };
  const ASSIGNMENT_LABELS = {
    offered: "待响应", accepted: "已接单", declined: "已拒绝", expired: "已超时", withdrawn: "已撤回",
    en_route: "在途", on_scene: "已到场", done: "已完成",
  };
  const CALL_LABELS = { ringing: "振铃", answered: "通话中", ended: "已挂断" };
  const TRAVEL_LABELS = { walk: "步行", bike: "骑行", car: "驾车" };
  const ACTIVE_ASSIGNMENT = new Set(["offered", "accepted", "en_route", "on_scene"]);

  // Which states allow which action: a mirror of the server's incident table, for greying out buttons.
  const ALLOWED = {
    dispatch: new Set(["received", "acknowledged", "dispatching", "escalated"]),
    cancel: new Set(["received", "acknowledged", "dispatching", "assigned", "on_scene"]),
    escalate: new Set(["received", "acknowledged", "dispatching", "assigned", "on_scene"]),
    resolve: new Set(["acknowledged", "dispatching", "assigned", "on_scene", "escalated"]),
    close: new Set(["resolved", "cancelled", "escalated"]),
  };

  const app = {
    session: null, // {token, role, username, expiresAt}
    incidents: new Map(), // incident_id -> IncidentView
    responders: new Map(), // responder_id -> responder view
    calls: new Map(), // call_id -> {call_id, caller, line, elder_id, state, started, ended, drill}
    selectedId: null,
    candidates: new Map(), // incident_id -> responder_id chosen for dispatch
    lastSeq: null,
    socket: null,
    opened: false, // whether the current socket ever opened
    backoffMs: BACKOFF_FIRST_MS,
    reconnectTimer: null,
    serverOffsetS: 0, // server clock minus local clock
    stale: new Set(), // incidents to re-fetch
    fetching: new Set(), // incidents being fetched
    staleAgain: new Set(), // incidents that went stale while being fetched
    busy: false,
  };

  // -- small helpers -----------------------------------------------------------------------------------

  const $ = (id) => document.getElementById(id);

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "dataset") Object.assign(node.dataset, value);
      else if (key === "className") node.className = value;
      else if (key in node && key !== "list") node[key] = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const label = (table, code) => (code in table ? table[code] : code || "—");
  const serverNow = () => Date.now() / 1000 + app.serverOffsetS;
  const lastPart = (path) => (path ? path.split("/").pop() : "—");

  function fmtClock(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const ss = String(s % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
  }

  const timeFormat = new Intl.DateTimeFormat("zh-CN", {
    timeZone: TIMEZONE, hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });
  const fmtTime = (epoch) => (epoch ? timeFormat.format(new Date(epoch * 1000)) : "—");

  function fmtDistance(m) {
    if (m === null || m === undefined) return "—";
    return m < 1000 ? `${Math.round(m)} 米` : `${(m / 1000).toFixed(1)} 公里`;
  }

  function fmtEta(s) {
    if (s === null || s === undefined) return "—";
    return s < 60 ? `${Math.round(s)} 秒` : `${Math.round(s / 60)} 分钟`;
  }

  // Runs fn at most once per animation frame; the timer covers background tabs, where frames stop.
  function perFrame(fn) {
    let scheduled = false;
    let frame = 0;
    let timer = 0;
    const run = () => {
      cancelAnimationFrame(frame);
      clearTimeout(timer);
      scheduled = false;
      fn();
    };
    return () => {
      if (scheduled) return;
      scheduled = true;
      frame = requestAnimationFrame(run);
      timer = setTimeout(run, 250);
    };
  }

  // -- session and HTTP --------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, detail, field) {
      super(detail);
      this.status = status;
      this.field = field || null;
    }
  }

  function loadSession() {
    try {
      const session = JSON.parse(sessionStorage.getItem(SESSION_KEY));
      if (session && session.token && session.expiresAt > Date.now()) return session;
    } catch (_) {
      // a damaged entry is the same as none
    }
    sessionStorage.removeItem(SESSION_KEY);
    return null;
  }

  function noteServerDate(response) {
    const date = Date.parse(response.headers.get("Date") || "");
    // The header has whole seconds: take the middle of the second.
    if (!Number.isNaN(date)) app.serverOffsetS = (date + 500 - Date.now()) / 1000;
  }

  async function readError(response) {
    let detail = `HTTP ${response.status}`;
    let field = null;
    try {
      const body = await response.json();
      if (typeof body.detail === "string") detail = body.detail;
      else if (Array.isArray(body.detail) && body.detail.length) detail = body.detail[0].msg || detail;
      field = body.field || null;
    } catch (_) {
      // not JSON: keep the status line
    }
    return new ApiError(response.status, detail, field);
  }

  async function api(method, path, body) {
    if (!app.session) throw new ApiError(401, "未登录");
    const headers = { Authorization: `Bearer ${app.session.token}` };
    const init = { method, headers };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    noteServerDate(response);
    if (response.status === 401) {
      logout("登录已过期，请重新登录");
      throw new ApiError(401, "登录已过期");
    }
    if (!response.ok) throw await readError(response);
    return response.json();
  }

  async function login(event) {
    event.preventDefault();
    const form = new FormData($("login-form"));
    $("login-error").textContent = "";
    $("login-submit").disabled = true;
    try {
      const response = await fetch("/api/auth/token", { method: "POST", body: new URLSearchParams(form) });
      noteServerDate(response);
      if (!response.ok) throw await readError(response);
      const answer = await response.json();
      if (answer.role === "caregiver") throw new ApiError(403, "护理员账号请使用手机端");
      app.session = {
        token: answer.access_token,
        role: answer.role,
        username: String(form.get("username")),
        expiresAt: Date.now() + answer.expires_in * 1000,
      };
      sessionStorage.setItem(SESSION_KEY, JSON.stringify(app.session));
      $("login-password").value = "";
      start();
    } catch (error) {
      $("login-error").textContent = error instanceof ApiError ? error.message : "无法连接服务器";
    } finally {
      $("login-submit").disabled = false;
    }
  }

  function logout(message) {
    sessionStorage.removeItem(SESSION_KEY);
    app.session = null;
    clearTimeout(app.reconnectTimer);
    if (app.socket) app.socket.close(1000, "logout");
    app.socket = null;
    app.incidents.clear();
    app.calls.clear();
    app.responders.clear();
    app.candidates.clear();
    app.selectedId = null;
    app.lastSeq = null;
    $("console-view").hidden = true;
    $("logout-button").hidden = true;
    $("login-view").hidden = false;
    $("user-info").textContent = "";
    $("login-error").textContent = message || "";
    setConnection("offline", "未连接");
    document.title = "安心 · 接警台";
  }

  function start() {
    $("login-view").hidden = true;
    $("console-view").hidden = false;
    $("logout-button").hidden = false;
    $("user-info").textContent = `${app.session.username}（${app.session.role}）`;
    app.backoffMs = BACKOFF_FIRST_MS;
    connect();
    render();
  }

  // -- the live connection -----------------------------------------------------------------------------

  function setConnection(state, text) {
    const status = $("conn-status");
    status.dataset.state = state;
    status.textContent = text;
    status.title = app.lastSeq === null ? "" : `最后序号 ${app.lastSeq}`;
  }

  function connect() {
    if (!app.session) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    let url = `${scheme}//${location.host}/ws/console?token=${encodeURIComponent(app.session.token)}`;
    if (app.lastSeq !== null) url += `&after=${app.lastSeq}`;
    setConnection("connecting", "连接中…");
    const socket = new WebSocket(url);
    app.socket = socket;
    app.opened = false;
    socket.onopen = () => {
      app.opened = true;
      app.backoffMs = BACKOFF_FIRST_MS;
      setConnection("online", "实时");
    };
    socket.onmessage = (event) => {
      if (socket !== app.socket) return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (_) {
        console.warn("console: a message that is not JSON", event.data);
        return;
      }
      receive(message);
    };
    socket.onclose = (event) => {
      if (socket === app.socket) disconnected(event);
    };
  }

  function disconnected(event) {
    app.socket = null;
    if (!app.session) return;
    if (!app.opened) checkSession(); // a refused handshake may mean the token expired
    const delay = app.backoffMs;
    app.backoffMs = Math.min(app.backoffMs * 2, BACKOFF_MAX_MS);
    const why = event.code === 4000 ? "跟不上推送" : "连接断开";
    setConnection("offline", `${why}，${(delay / 1000).toFixed(1)} 秒后重连`);
    clearTimeout(app.reconnectTimer);
    app.reconnectTimer = setTimeout(connect, delay);
  }

  async function checkSession() {
    try {
      await api("GET", "/api/incidents?open=true&limit=1"); // logs out on 401
    } catch (_) {
      // the server is away: the reconnect loop goes on
    }
  }

  function receive(message) {
    if (message.type === "snapshot") {
      app.lastSeq = message.seq;
      app.incidents = new Map(message.incidents.map((view) => [view.incident_id, view]));
      app.responders = new Map((message.responders || []).map((r) => [r.responder_id, r]));
      loadUnclosed();
      render();
    } else if (message.type === "entry") {
      if (app.lastSeq !== null && message.seq <= app.lastSeq) return; // seen already
      app.lastSeq = message.seq;
      applyEntry(message);
    }
  }

  function applyEntry(entry) {
    if (entry.incident_id) markStale(entry.incident_id);
    const p = entry.payload || {};
    switch (entry.kind) {
      case "call.ringing":
        app.calls.set(p.call_id, {
          call_id: p.call_id, caller: p.caller, line: p.line, elder_id: p.elder_id,
          state: "ringing", started: entry.ts, ended: null, drill: entry.drill,
        });
        break;
      case "call.answered":
      case "call.ended": {
        const call = app.calls.get(p.call_id);
        if (call) {
          call.state = entry.kind === "call.answered" ? "answered" : "ended";
          if (call.state === "ended") call.ended = entry.ts;
        }
        break;
      }
      case "responder.duty":
      case "responder.position": {
        const responder = app.responders.get(p.responder_id);
        if (responder) {
          if ("on" in p) responder.on_duty = p.on;
          if (p.lat !== undefined) Object.assign(responder, { lat: p.lat, lon: p.lon });
        }
        break;
      }
      default:
        break;
    }
    scheduleRender();
  }

  // Resolved and cancelled incidents are not in the snapshot but still wait for "close".
  async function loadUnclosed() {
    try {
      const answer = await api("GET", "/api/incidents?limit=200");
      for (const view of answer.incidents) {
        if ((view.state === "resolved" || view.state === "cancelled") && !app.incidents.has(view.incident_id)) {
          app.incidents.set(view.incident_id, view);
        }
      }
      scheduleRender();
    } catch (_) {
      // not essential
    }
  }

  // -- re-fetching stale incidents ---------------------------------------------------------------------

  function markStale(id) {
    app.stale.add(id);
    scheduleFetch();
  }

  const scheduleFetch = perFrame(() => {
    for (const id of app.stale) {
      app.stale.delete(id);
      if (app.fetching.has(id)) app.staleAgain.add(id);
      else fetchIncident(id);
    }
  });

  async function fetchIncident(id) {
    app.fetching.add(id);
    try {
      putIncident(await api("GET", `/api/incidents/${encodeURIComponent(id)}`));
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        app.incidents.delete(id);
        scheduleRender();
      } else if (app.session && !(error instanceof ApiError && error.status === 401)) {
        setTimeout(() => app.session && markStale(id), REFETCH_RETRY_MS);
      }
    } finally {
      app.fetching.delete(id);
      if (app.staleAgain.delete(id)) markStale(id);
    }
  }

  function putIncident(view) {
    if (view.state === "closed" && view.incident_id !== app.selectedId) {
      app.incidents.delete(view.incident_id);
    } else {
      app.incidents.set(view.incident_id, view);
    }
    scheduleRender();
  }

  // -- rendering ---------------------------------------------------------------------------------------

  const scheduleRender = perFrame(render);

  function render() {
    if (!app.session) return;
    renderQueue();
    renderClosing();
    renderCalls();
    renderDetail();
    renderSummary();
    tick();
  }

  function byUrgency(a, b) {
    return a.priority - b.priority || a.opened_at - b.opened_at;
  }

  function callerOf(view) {
    const call = view.call_id ? app.calls.get(view.call_id) : null;
    return call ? call.caller : null;
  }

  function elderText(view) {
    if (view.elder_name) return view.elder_name;
    const caller = callerOf(view);
    return caller ? `未登记来电 ${caller}` : "未登记";
  }

  function assignmentText(view) {
    if (view.state === "escalated") return `已转 ${view.escalated_to || "外部"}`;
    const active = view.assignments.filter((a) => ACTIVE_ASSIGNMENT.has(a.state));
    if (active.length) {
      return active.map((a) => `${a.responder_name || a.responder_id} · ${label(ASSIGNMENT_LABELS, a.state)}`)
        .join("；");
    }
    if (view.needs_manual) return "需人工派单";
    return "—";
  }

  // Keeps a table body in step with a list of incidents, one row per incident, reusing each row: a row is
  // refilled only when its incident view (or the selection) changed, and never replaced while the
  // operator may be clicking it.
  const painted = new WeakMap(); // row -> what it shows
  function syncRows(tbody, views, cells) {
    const existing = new Map([...tbody.rows].map((row) => [row.dataset.incidentId, row]));
    views.forEach((view, index) => {
      let row = existing.get(view.incident_id);
      existing.delete(view.incident_id);
      if (!row) row = el("tr", { tabIndex: 0 });
      const selected = view.incident_id === app.selectedId;
      const shown = painted.get(row);
      const caller = callerOf(view);
      if (!shown || shown.view !== view || shown.selected !== selected || shown.caller !== caller) {
        row.className = rowClasses(view, selected);
        Object.assign(row.dataset, { incidentId: view.incident_id, state: view.state, priority: view.priority });
        row.replaceChildren(...cells(view));
        painted.set(row, { view, selected, caller });
      }
      if (tbody.rows[index] !== row) tbody.insertBefore(row, tbody.rows[index] || null);
    });
    for (const row of existing.values()) row.remove();
  }

  function rowClasses(view, selected) {
    const classes = ["incident", `prio-${view.priority}`];
    if (selected) classes.push("selected");
    if (view.drill) classes.push("drill");
    if (view.needs_manual) classes.push("needs-manual");
    if (view.supervisor_alerted) classes.push("alerted");
    if (view.acknowledged_at) classes.push("acknowledged");
    return classes.join(" ");
  }

  function queueCells(view) {
    return [
      el("td", { className: "col-clock" }, el("span", { className: "clock" })),
      el("td", { className: "col-priority", title: view.priority_reasons.join("；") }, `P${view.priority}`),
      el("td", { className: "col-state" }, label(STATE_LABELS, view.state)),
      el("td", { className: "col-type", title: view.alarm_type },
        label(ALARM_LABELS, view.alarm_type), view.drill ? el("span", { className: "tag" }, "演练") : null),
      el("td", { className: "col-elder" }, elderText(view)),
      el("td", { className: "col-address" }, view.address || view.location || "—"),
      el("td", { className: "col-community", title: view.community || "" }, lastPart(view.community)),
      el("td", { className: "col-assignment" }, assignmentText(view)),
    ];
  }

  function closingCells(view) {
    return [
      el("td", { className: "col-state" }, label(STATE_LABELS, view.state)),
      el("td", { className: "col-type" }, label(ALARM_LABELS, view.alarm_type)),
      el("td", { className: "col-elder" }, elderText(view)),
      el("td", { className: "col-outcome" }, view.outcome || lastNote(view) || "—"),
      el("td", { className: "col-time" }, fmtTime(view.updated_at)),
    ];
  }

  function renderQueue() {
    const open = [...app.incidents.values()].filter((v) => v.open).sort(byUrgency);
    syncRows($("queue-body"), open, queueCells);
    $("queue-empty").hidden = open.length > 0;
    $("queue-count").textContent = open.length ? `(${open.length})` : "";
    const unanswered = open.filter((v) => !v.acknowledged_at).length;
    document.title = unanswered ? `(${unanswered}) 安心 · 接警台` : "安心 · 接警台";
  }

  function renderClosing() {
    const done = [...app.incidents.values()]
      .filter((v) => v.state === "resolved" || v.state === "cancelled")
      .sort((a, b) => b.updated_at - a.updated_at);
    syncRows($("closing-body"), done, closingCells);
    $("closing-count").textContent = done.length ? `(${done.length})` : "";
  }

  function lastNote(view) {
    return view.notes.length ? view.notes[view.notes.length - 1].text : null;
  }

  function renderCalls() {
    const now = serverNow();
    for (const [id, call] of app.calls) {
      if (call.ended && now - call.ended > CALL_KEEP_S) app.calls.delete(id);
    }
    const calls = [...app.calls.values()].sort((a, b) => b.started - a.started);
    $("calls").replaceChildren(...calls.map((call) => {
      const incident = [...app.incidents.values()].find((v) => v.call_id === call.call_id);
      const who = call.elder_id
        ? (incident && incident.elder_name) || `老人 ${call.elder_id}`
        : "未登记号码";
      const classes = ["call", `call-${call.state}`];
      if (!call.elder_id) classes.push("call-unknown");
      return el("li", {
        className: classes.join(" "),
        dataset: { callId: call.call_id, state: call.state, incidentId: incident ? incident.incident_id : "" },
      },
      el("span", { className: "call-caller" }, call.caller),
      el("span", { className: "call-who" }, who),
      el("span", { className: "call-line" }, `线路 ${call.line || "—"}`),
      el("span", { className: "call-state" }, label(CALL_LABELS, call.state)),
      el("span", { className: "call-time" }, fmtTime(call.started)));
    }));
    $("calls-empty").hidden = calls.length > 0;
  }

  function renderSummary() {
    const all = [...app.responders.values()].filter((r) => r.kind !== "clinic");
    const onDuty = all.filter((r) => r.on_duty).length;
    $("responder-summary").textContent = all.length ? `在岗 ${onDuty} / ${all.length}` : "";
  }

  // -- the detail pane ---------------------------------------------------------------------------------

  function selected() {
    return app.selectedId ? app.incidents.get(app.selectedId) || null : null;
  }

  function select(id) {
    if (id === app.selectedId) return;
    const previous = selected();
    if (previous && previous.state === "closed") app.incidents.delete(previous.incident_id);
    app.selectedId = id;
    $("action-error").textContent = "";
    $("note-text").value = "";
    render();
  }

  // The pane is rebuilt only when the selected incident's view changed, so a radio button or a button
  // under the mouse is not swapped out by unrelated traffic.
  let detailShown = { view: null, caller: null };
  function renderDetail() {
    const view = selected();
    $("detail").hidden = !view;
    if (!view) {
      detailShown = { view: null, caller: null };
      return;
    }
    const caller = callerOf(view);
    if (detailShown.view !== view || detailShown.caller !== caller) {
      $("detail").dataset.incidentId = view.incident_id;
      $("detail").dataset.state = view.state;
      $("detail-title").textContent =
        `${label(ALARM_LABELS, view.alarm_type)} · ${elderText(view)} · ${view.incident_id}`;
      renderFlags(view);
      renderFacts(view);
      renderRanking(view);
      renderClinic(view);
      renderAssignments(view);
      renderNotes(view);
      detailShown = { view, caller };
    }
    renderButtons(view);
  }

  function renderNotes(view) {
    $("notes").replaceChildren(...view.notes.map((note) => el("li", { className: "note" },
      el("span", { className: "note-time" }, fmtTime(note.ts)),
      el("span", { className: "note-actor" }, note.actor),
      el("span", { className: "note-text" }, note.text))));
  }

  function renderFlags(view) {
    const flags = [];
    if (view.needs_manual) flags.push(el("span", { className: "flag flag-manual" }, `需人工派单：${view.manual_reason || ""}`));
    if (view.supervisor_alerted) flags.push(el("span", { className: "flag flag-alerted" }, "超时未接警，已通知主管"));
    if (view.drill) flags.push(el("span", { className: "flag flag-drill" }, "演练"));
    $("detail-flags").replaceChildren(...flags);
  }

  function renderFacts(view) {
    const position = typeof view.lat === "number" && typeof view.lon === "number"
      ? `${view.lat.toFixed(5)}, ${view.lon.toFixed(5)}` : null;
    const facts = [
      ["级别", `P${view.priority}（${view.priority_reasons.join("；")}）`],
      ["状态", label(STATE_LABELS, view.state)],
      ["计时", el("span", { className: "clock", id: "detail-clock" })],
      ["来源", [view.source, view.device_id && `设备 ${view.device_id}`, callerOf(view) && `来电 ${callerOf(view)}`]
        .filter(Boolean).join(" · ")],
      ["老人", elderText(view)],
      ["地址", view.address || "—"],
      ["社区", view.community || "—"],
      ["位置", [view.location, position].filter(Boolean).join(" · ") || "—"],
      ["报警时间", fmtTime(view.opened_at)],
      ["接警", view.acknowledged_at ? `${view.acknowledged_by || ""} ${fmtTime(view.acknowledged_at)}` : "未接警"],
      ["外部服务", view.escalated_to || "—"],
      ["处置结果", view.outcome || "—"],
    ];
    $("detail-facts").replaceChildren(...facts.flatMap(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]));
  }

  function triedResponders(view) {
    return new Set(view.assignments.map((a) => a.responder_id));
  }

  function renderRanking(view) {
    const tried = triedResponders(view);
    let chosen = app.candidates.get(view.incident_id);
    if (!chosen || !view.ranking.some((c) => c.responder_id === chosen)) {
      const first = view.ranking.find((c) => !tried.has(c.responder_id));
      chosen = first ? first.responder_id : null;
      if (chosen) app.candidates.set(view.incident_id, chosen);
    }
    $("ranking-body").replaceChildren(...view.ranking.map((c) => {
      const classes = ["candidate"];
      if (c.own) classes.push("own");
      if (tried.has(c.responder_id)) classes.push("tried");
      const radio = el("input", {
        type: "radio", name: "candidate", value: c.responder_id, checked: c.responder_id === chosen,
      });
      radio.addEventListener("change", () => app.candidates.set(view.incident_id, c.responder_id));
      return el("tr", { className: classes.join(" "), dataset: { responderId: c.responder_id } },
        el("td", {}, radio),
        el("td", {}, c.name, c.own ? el("span", { className: "tag", title: "固定护理员（五定）" }, "本人护理员") : null),
        el("td", {}, fmtDistance(c.distance_m)),
        el("td", {}, fmtEta(c.eta_s)),
        el("td", {}, label(TRAVEL_LABELS, c.travel)),
        el("td", { className: "reasons" }, (c.reasons || []).join("；")));
    }));
    $("ranking").hidden = view.ranking.length === 0;
    $("ranking-empty").hidden = view.ranking.length > 0;
  }

  function renderClinic(view) {
    const clinic = view.clinic;
    $("clinic").replaceChildren(clinic
      ? el("p", { className: "clinic", dataset: { clinicId: clinic.clinic_id } },
        el("strong", {}, clinic.name), ` · ${fmtDistance(clinic.distance_m)} · ${fmtEta(clinic.eta_s)}`,
        el("span", { className: "reasons" }, ` ${(clinic.reasons || []).join("；")}`))
      : el("p", { className: "empty" }, "无"));
  }

  function renderAssignments(view) {
    $("assignments-body").replaceChildren(...view.assignments.map((a) => el("tr", {
      className: `assignment assignment-${a.state}`,
      dataset: { assignmentId: a.assignment_id, state: a.state },
    },
    el("td", {}, a.responder_name || a.responder_id),
    el("td", {}, label(ASSIGNMENT_LABELS, a.state)),
    el("td", {}, fmtTime(a.offered_at)),
    el("td", {}, fmtEta(a.eta_s)),
    el("td", {}, a.note || ""))));
  }

  function renderButtons(view) {
    const can = {
      acknowledge: view.open && !view.acknowledged_at,
      dispatch: ALLOWED.dispatch.has(view.state) && app.candidates.has(view.incident_id),
      cancel: ALLOWED.cancel.has(view.state),
      escalate: ALLOWED.escalate.has(view.state),
      resolve: ALLOWED.resolve.has(view.state),
      close: ALLOWED.close.has(view.state),
      note: view.state !== "closed",
    };
    for (const button of document.querySelectorAll("#detail button[data-action]")) {
      button.disabled = app.busy || !can[button.dataset.action];
    }
  }

  // -- clocks ------------------------------------------------------------------------------------------

  // The answer clock runs from the alarm until an operator acknowledges it, against the answer target.
  function clockState(view) {
    const target = view.answer_deadline ? view.answer_deadline - view.opened_at : DEFAULT_ANSWER_TARGET_S;
    const answered = view.acknowledged_at !== null && view.acknowledged_at !== undefined;
    const elapsed = (answered ? view.acknowledged_at : serverNow()) - view.opened_at;
    let level = "ok";
    if (elapsed >= target) level = "late";
    else if (elapsed >= target / 2) level = "warn";
    return { elapsed, answered, level };
  }

  function paintClock(node, row, view) {
    const { elapsed, answered, level } = clockState(view);
    node.textContent = answered ? `✓ ${fmtClock(elapsed)}` : fmtClock(elapsed);
    node.title = answered ? "接警用时" : "等待接警";
    for (const target of [node, row]) {
      if (!target) continue;
      target.classList.toggle("clock-ok", !answered && level === "ok");
      target.classList.toggle("clock-warn", !answered && level === "warn");
      target.classList.toggle("clock-late", !answered && level === "late");
      target.classList.toggle("clock-answered", answered);
      target.dataset.clock = answered ? "answered" : level;
    }
  }

  function tick() {
    if (!app.session) return;
    if (Date.now() > app.session.expiresAt) {
      logout("登录已过期，请重新登录");
      return;
    }
    $("conn-status").title = app.lastSeq === null ? "" : `最后序号 ${app.lastSeq}`;
    for (const row of $("queue-body").rows) {
      const view = app.incidents.get(row.dataset.incidentId);
      if (view) paintClock(row.querySelector(".clock"), row, view);
    }
    const view = selected();
    const detailClock = $("detail-clock");
    if (view && detailClock) paintClock(detailClock, null, view);
  }

  // -- actions -----------------------------------------------------------------------------------------

  function requestFor(action, view) {
    switch (action) {
      case "acknowledge":
        return { path: "acknowledge", body: undefined };
      case "dispatch":
        return { path: "dispatch", body: { responder_id: app.candidates.get(view.incident_id) } };
      case "cancel": {
        const reason = prompt("确认为误报？请填写取消原因：", "误报");
        return reason === null ? null : { path: "cancel", body: { reason: reason.trim() } };
      }
      case "escalate": {
        const service = $("escalate-service").value;
        const note = prompt(`转 ${service}，说明（可留空）：`, "");
        return note === null ? null : { path: "escalate", body: { service, note: note.trim() } };
      }
      case "resolve": {
        const outcome = prompt("处置结果：", "");
        return outcome === null ? null : { path: "resolve", body: { outcome: outcome.trim() } };
      }
      case "close":
        return { path: "close", body: {} };
      case "note":
        return { path: "notes", body: { text: $("note-text").value.trim() } };
      default:
        return null;
    }
  }

  async function act(action) {
    const view = selected();
    if (!view || app.busy) return;
    const request = requestFor(action, view);
    if (!request) return;
    app.busy = true;
    renderButtons(view);
    $("action-error").textContent = "";
    try {
      const path = `/api/incidents/${encodeURIComponent(view.incident_id)}/${request.path}`;
      putIncident(await api("POST", path, request.body));
      if (action === "note") $("note-text").value = "";
    } catch (error) {
      const where = error.field ? `（${error.field}）` : "";
      $("action-error").textContent = error instanceof ApiError ? `${error.message}${where}` : "无法连接服务器";
    } finally {
      app.busy = false;
      scheduleRender();
    }
  }

  // -- wiring ------------------------------------------------------------------------------------------

  function rowClicked(event) {
    const row = event.target.closest("tr[data-incident-id]");
    if (row) select(row.dataset.incidentId);
  }

  function rowKey(event) {
    if (event.key === "Enter" || event.key === " ") {
      const row = event.target.closest("tr[data-incident-id]");
      if (row) {
        event.preventDefault();
        select(row.dataset.incidentId);
      }
    }
  }

  function init() {
    $("login-form").addEventListener("submit", login);
    $("logout-button").addEventListener("click", () => logout(""));
    for (const id of ["queue-body", "closing-body"]) {
      $(id).addEventListener("click", rowClicked);
      $(id).addEventListener("keydown", rowKey);
    }
    $("calls").addEventListener("click", (event) => {
      const item = event.target.closest("li[data-incident-id]");
      if (item && item.dataset.incidentId) select(item.dataset.incidentId);
    });
    $("detail-actions").addEventListener("click", (event) => {
      const button = event.target.closest("button[data-action]");
      if (button) act(button.dataset.action);
    });
    $("note-form").addEventListener("submit", (event) => {
      event.preventDefault();
      act("note");
    });
    setInterval(tick, 1000);
    app.session = loadSession();
    if (app.session) start();
    else logout("");
  }

  init();
})();
