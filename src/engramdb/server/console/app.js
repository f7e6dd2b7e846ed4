// engramdb console: a thin client of the REST API (/v1). No framework, no build step.
//
// Every piece of stored content reaches the page through textContent or a text node (the h()
// helper below); nothing built from data is ever assigned to innerHTML.
"use strict";

const KEY_STORAGE = "engramdb.console.key";
const SCOPE_STORAGE = "engramdb.console.scope";
const PAGE_SIZES = [25, 50, 100];
const TIMELINE_PAGE = 200; // memories per /v1/timeline page; "Later" reads the next
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const MONTHS_LONG = ["January", "February", "March", "April", "May", "June", "July", "August",
  "September", "October", "November", "December"];
const WEEKDAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

// What the search score breakdown (a hit's `explain`) means, for the keys retrieval writes today.
// Unknown keys are shown too, with their raw name.
const EXPLAIN_LABELS = {
  lexical: "Lexical rank (BM25 over words)",
  dense: "Dense rank (embedding similarity)",
  dense_window: "Dense rank within the asked-for period",
  speaker: "Boost: said by / about the person the query names",
  mentions_time: "Boost: mentions the asked-for time",
  past: "Lowered: the fact had ended by then",
  stale: "Lowered: every statement in it was superseded",
  degraded: "Degraded search",
};
const MEMORY_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const RANK_KEYS = new Set(["lexical", "dense", "dense_window"]);

const state = {
  key: null,
  whoami: null,
  users: [],
  scope: null, // {user_id, agent_id}
  flash: null, // {text, kind}: shown once on the next view
  memories: { sig: null, cursors: [null], page: 0 },
  factsCursor: { sig: null, cursors: [null], page: 0 },
  sourceCache: new Map(),
};

// ---------------------------------------------------------------- DOM helpers

/** Builds an element. Strings become text nodes: data can never turn into markup. */
function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "value" || name === "checked" || name === "selected") el[name] = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  add(el, children);
  return el;
}

function add(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replaces an element's children (arrays flattened, null skipped; strings as text). */
function put(el, ...children) {
  el.replaceChildren();
  return add(el, children);
}

function $(id) {
  return document.getElementById(id);
}

function link(href, ...children) {
  return h("a", { href }, ...children);
}

function memoryHref(id) {
  return "#/memory/" + encodeURIComponent(id);
}

function shortId(id) {
  return String(id).slice(0, 8);
}

function badge(text, kind) {
  return h("span", { class: "badge" + (kind ? " badge-" + kind : "") }, text);
}

function archivedBadge(item) {
  const el = badge("archived", "archived");
  el.title = "Archived " + item.archived_at + ": kept, but out of search, context, facts and profile";
  return el;
}

function kindBadge(kind) {
  return badge(kind, kind === "fact" ? "fact" : "message");
}

// ---------------------------------------------------------------- dates

// Dates are shown as the API gives them: on the speaker's own clock (the offset in the string),
// never converted to the browser's zone, so "10:00" is the time the person said it.
function parts(iso) {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2}))?/.exec(String(iso || ""));
  return m ? { y: +m[1], mo: +m[2], d: +m[3], hh: m[4], mm: m[5] } : null;
}

function fmtDay(iso) {
  const p = parts(iso);
  return p ? `${p.d} ${MONTHS[p.mo - 1]} ${p.y}` : String(iso);
}

function fmtDate(iso) {
  const p = parts(iso);
  if (!p) return iso ? String(iso) : "—";
  const day = `${p.d} ${MONTHS[p.mo - 1]} ${p.y}`;
  return p.hh && !(p.hh === "00" && p.mm === "00") ? `${day}, ${p.hh}:${p.mm}` : day;
}

function timeEl(iso) {
  if (!iso) return h("span", { class: "muted" }, "—");
  return h("time", { datetime: iso, title: iso }, fmtDate(iso));
}

function longDay(dayKey) {
  const p = parts(dayKey);
  if (!p) return dayKey;
  const weekday = WEEKDAYS[new Date(Date.UTC(p.y, p.mo - 1, p.d)).getUTCDay()];
  return `${weekday}, ${p.d} ${MONTHS_LONG[p.mo - 1]} ${p.y}`;
}

function epochOf(value) {
  const t = typeof value === "number" ? value * 1000 : Date.parse(value);
  return Number.isNaN(t) ? null : t;
}

// ---------------------------------------------------------------- facts

/** A fact is past at `at` (ms; now when null) once its validity ended or it was superseded. */
function factIsPast(item, at) {
  const when = at ?? Date.now();
  if (item.valid_to && epochOf(item.valid_to) <= when) return true;
  if (at === null || at === undefined) return Boolean(item.expired_at || item.superseded_by);
  return false;
}

function validityText(item) {
  if (item.valid_to) return `from ${fmtDate(item.valid_from)} until ${fmtDate(item.valid_to)}`;
  return item.valid_from ? `since ${fmtDate(item.valid_from)}` : "";
}

function factBadge(item, at) {
  return factIsPast(item, at) ? badge("past", "past") : badge("current", "current");
}

// ---------------------------------------------------------------- API

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, { query, body } = {}) {
  const url = new URL("../v1/" + path, document.baseURI);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== null && value !== undefined && value !== "") url.searchParams.set(name, value);
  }
  const headers = { Authorization: "Bearer " + state.key, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let resp;
  try {
    resp = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch (err) {
    throw new ApiError(0, "network_error", "The engramdb server could not be reached (" + err.message + ").");
  }
  const text = await resp.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!resp.ok) {
    const error = (data && data.error) || {};
    throw new ApiError(
      resp.status,
      error.code || "http_" + resp.status,
      error.message || resp.statusText || "The request failed.",
    );
  }
  return data;
}

function scopeQuery() {
  const scope = state.scope || {};
  return { user_id: scope.user_id ?? null, agent_id: scope.agent_id ?? null };
}

function scopeBody() {
  const body = {};
  if (state.scope && state.scope.user_id != null) body.user_id = state.scope.user_id;
  if (state.scope && state.scope.agent_id != null) body.agent_id = state.scope.agent_id;
  return body;
}

async function fetchMemory(id) {
  if (state.sourceCache.has(id)) return state.sourceCache.get(id);
  const promise = api("GET", "memories/" + encodeURIComponent(id)).catch((err) => {
    state.sourceCache.delete(id);
    throw err;
  });
  state.sourceCache.set(id, promise);
  return promise;
}

// ---------------------------------------------------------------- messages

function errorTitle(err) {
  const role = state.whoami ? state.whoami.role : "this";
  switch (err.status) {
    case 0: return "The server is unreachable.";
    case 401: return "This API key was not accepted.";
    case 403: return `Not allowed: a key with the ${role} role cannot do this.`;
    case 404: return "Not found.";
    case 413: return "That is too large for the server.";
    case 429: return "Too many requests: wait a moment and try again.";
    default: return err.status >= 500 ? "The server failed to answer." : "The request was refused.";
  }
}

function errorBox(err) {
  if (!(err instanceof ApiError)) err = new ApiError(-1, "console_error", String(err && err.message || err));
  return h(
    "div",
    { class: "alert alert-error", role: "alert" },
    h("strong", null, errorTitle(err)),
    h("div", { class: "alert-detail" }, h("code", { class: "err-code" }, err.code), " ", h("span", { class: "err-message" }, err.message)),
  );
}

function notice(text, kind) {
  return h("div", { class: "alert alert-" + (kind || "info"), role: "status" }, text);
}

/** Shows an error where the view was going to be; a 401 signs out (the key stopped working). */
function fail(root, err) {
  if (err instanceof ApiError && err.status === 401) {
    signOut(err);
    return;
  }
  put(root, errorBox(err));
}

function loading(text) {
  return h("p", { class: "loading muted", "aria-busy": "true" }, text || "Loading…");
}

// ---------------------------------------------------------------- sign-in

function readKeyFromFragment() {
  const match = /^#key=([^&]*)/.exec(location.hash);
  if (!match) return null;
  // The key must not stay in the address bar, the history or a bookmark.
  history.replaceState(null, "", location.pathname + location.search + "#/people");
  try {
    return decodeURIComponent(match[1]);
  } catch {
    return match[1];
  }
}

function showSignIn(err) {
  state.key = null;
  state.whoami = null;
  $("session").hidden = true;
  $("nav").hidden = true;
  $("view").hidden = true;
  put($("view"));
  $("signin").hidden = false;
  put($("signin-error"), err ? errorBox(err) : "");
  $("signin-key").value = "";
  $("signin-key").focus();
}

async function signIn(key) {
  state.key = key;
  try {
    state.whoami = await api("GET", "whoami");
  } catch (err) {
    sessionStorage.removeItem(KEY_STORAGE);
    showSignIn(err);
    return;
  }
  sessionStorage.setItem(KEY_STORAGE, key);
  await loadUsers();
  if (!state.key) return; // the key stopped working meanwhile
  $("signin").hidden = true;
  $("session").hidden = false;
  $("nav").hidden = false;
  $("view").hidden = false;
  const who = state.whoami;
  put($("who"),
    h("span", { class: "muted" }, "tenant "), h("strong", { id: "who-tenant" }, who.tenant),
    h("span", { class: "muted" }, " · role "), h("strong", { id: "who-role" }, who.role),
  );
  if (!location.hash || location.hash === "#" || location.hash === "#/") {
    history.replaceState(null, "", location.pathname + location.search + "#/people");
  }
  route();
}

function signOut(err) {
  sessionStorage.removeItem(KEY_STORAGE);
  state.sourceCache.clear();
  showSignIn(err instanceof ApiError ? err : null);
}

// ---------------------------------------------------------------- people and scope

async function loadUsers() {
  try {
    const data = await api("GET", "users");
    state.users = data.items || [];
  } catch (err) {
    state.users = [];
    if (err.status === 401) return signOut(err);
  }
  const stored = sessionStorage.getItem(SCOPE_STORAGE);
  let scope = stored ? JSON.parse(stored) : null;
  if (scope && !state.users.some((u) => u.user_id === scope.user_id)) scope = null;
  if (!scope && state.users.length) scope = { user_id: state.users[0].user_id, agent_id: null };
  setScope(scope, false);
}

/** The agents a user talks with (the server names the list `agent_ids`; the spec `agents`). */
function agentsOf(user) {
  return user.agent_ids || user.agents || [];
}

function scopeLabel(scope) {
  if (!scope) return "nobody";
  return scope.agent_id == null ? scope.user_id : `${scope.user_id} · agent ${scope.agent_id}`;
}

function setScope(scope, rerender = true) {
  state.scope = scope;
  state.memories.sig = null;
  state.factsCursor.sig = null;
  if (scope) sessionStorage.setItem(SCOPE_STORAGE, JSON.stringify(scope));
  else sessionStorage.removeItem(SCOPE_STORAGE);
  const select = $("scope");
  put(select);
  if (!state.users.length) select.append(h("option", { value: "" }, "no people yet"));
  for (const user of state.users) {
    const scopes = [{ user_id: user.user_id, agent_id: null }];
    for (const agent of agentsOf(user)) scopes.push({ user_id: user.user_id, agent_id: agent });
    for (const s of scopes) {
      const value = JSON.stringify(s);
      select.append(h("option", { value, selected: scope && value === JSON.stringify(scope) }, scopeLabel(s)));
    }
  }
  if (rerender) route();
}

function needScope(root) {
  if (state.scope) return false;
  put(root,
    h("h1", null, "No person selected"),
    notice("There are no memories yet, or no person is selected. Pick one on the People page."),
    link("#/people", "Go to People"),
  );
  return true;
}

/** A table head; a column is its title, or [title, class, tooltip]. */
function headRow(columns) {
  return h("thead", null, h("tr", null, columns.map((col) => {
    const [title, cls, tip] = Array.isArray(col) ? col : [col];
    return h("th", { scope: "col", class: cls, title: tip }, title);
  })));
}

function viewHeader(title, ...extra) {
  return h(
    "div",
    { class: "view-header" },
    h("h1", null, title),
    state.scope ? h("p", { class: "scope-line muted" }, "About ", h("strong", { class: "scope-name" }, scopeLabel(state.scope))) : null,
    ...extra,
  );
}

async function viewPeople(root) {
  await loadUsers();
  const rows = state.users.map((user) => {
    const selected = state.scope && state.scope.user_id === user.user_id;
    return h(
      "tr",
      { class: selected ? "selected" : null, dataset: { user: user.user_id } },
      h("th", { scope: "row" }, user.user_id),
      h("td", { class: "num" }, user.memories ?? "—"),
      h("td", { class: "num" }, user.facts ?? "—"),
      h("td", null, agentsOf(user).length ? agentsOf(user).join(", ") : h("span", { class: "muted" }, "none")),
      h("td", null, timeEl(user.last_at)),
      h(
        "td",
        null,
        h("button", {
          type: "button",
          class: selected ? "secondary" : null,
          "aria-label": `Show ${user.user_id}`,
          onclick: () => {
            setScope({ user_id: user.user_id, agent_id: null }, false);
            location.hash = "#/facts";
          },
        }, selected ? "Selected" : "Show"),
      ),
    );
  });
  put(root,
    h("div", { class: "view-header" }, h("h1", null, "People"), h("p", { class: "muted" }, "Everyone the agent keeps memories about. Pick a person: every view then shows only their memories.")),
    state.users.length
      ? h(
          "table",
          { class: "grid", id: "people-table" },
          h("caption", { class: "sr-only" }, "People and their memory counts"),
          headRow(["Person", ["Memories", "num", "Every record: messages and facts"], ["Facts", "num"], "Agents", "Last activity", ""]),
          h("tbody", null, rows),
        )
      : notice("No memories yet. Add some through the API (POST /v1/memories) or `engram import`."),
  );
}

// ---------------------------------------------------------------- memories list

function memoryRow(item) {
  return h(
    "li",
    { class: "memory-row" + (item.archived_at ? " is-archived" : ""), dataset: { id: item.id, kind: item.kind } },
    h("div", { class: "memory-meta" }, kindBadge(item.kind), " ", timeEl(item.occurred_at),
      item.kind === "fact" ? [" ", factBadge(item)] : null,
      item.archived_at ? [" ", archivedBadge(item)] : null),
    h(
      "div",
      { class: "memory-main" },
      h("a", { href: memoryHref(item.id), class: "memory-text" + (item.kind === "fact" && factIsPast(item) ? " past" : "") }, item.text),
      h("div", { class: "memory-sub muted" },
        item.name || item.role ? h("span", null, item.name || item.role, item.name && item.role ? ` (${item.role})` : "") : null,
        item.session_id ? h("span", null, "session ", item.session_id) : null,
        item.kind === "fact" ? h("span", null, validityText(item)) : null),
    ),
  );
}

async function viewMemories(root, params) {
  if (needScope(root)) return;
  const kind = params.get("kind") || "";
  const session = params.get("session") || "";
  const contains = params.get("contains") || "";
  const archived = ["true", "false"].includes(params.get("archived")) ? params.get("archived") : "";
  const asked = Math.trunc(+params.get("limit"));
  const limit = asked >= 1 && asked <= 100 ? asked : 25;
  const sizes = PAGE_SIZES.includes(limit) ? PAGE_SIZES : [...PAGE_SIZES, limit].sort((a, b) => a - b);
  const pager = state.memories;
  const sig = JSON.stringify([state.scope, kind, session, archived, limit]);
  if (pager.sig !== sig) Object.assign(pager, { sig, cursors: [null], page: 0 });

  const form = h(
    "form",
    { class: "filters", id: "memory-filters", role: "search", "aria-label": "Filter memories" },
    h("label", null, h("span", null, "Kind"), h("select", { name: "kind", id: "filter-kind" },
      h("option", { value: "", selected: kind === "" }, "all"),
      h("option", { value: "message", selected: kind === "message" }, "messages"),
      h("option", { value: "fact", selected: kind === "fact" }, "facts"))),
    h("label", null, h("span", null, "Session"), h("input", { name: "session", id: "filter-session", value: session, placeholder: "any" })),
    h("label", null, h("span", null, "Text contains (this page)"), h("input", { name: "contains", id: "filter-contains", value: contains, type: "search" })),
    h("label", null, h("span", null, "Archived"), h("select", { name: "archived", id: "filter-archived" },
      h("option", { value: "", selected: archived === "" }, "shown"),
      h("option", { value: "false", selected: archived === "false" }, "hidden"),
      h("option", { value: "true", selected: archived === "true" }, "only archived"))),
    h("label", null, h("span", null, "Per page"), h("select", { name: "limit" }, sizes.map((n) => h("option", { value: n, selected: n === limit }, n)))),
    h("button", { type: "submit" }, "Apply"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const q = new URLSearchParams();
    for (const [name, value] of new FormData(form)) if (value) q.set(name, value);
    location.hash = "#/memories" + (q.toString() ? "?" + q : "");
  });
  const results = h("div", { id: "memory-results" }, loading());
  put(root, viewHeader("Memories"), form, results);

  let page;
  try {
    page = await api("GET", "memories", {
      query: { ...scopeQuery(), kind, session_id: session, archived, limit, cursor: pager.cursors[pager.page] },
    });
  } catch (err) {
    return fail(results, err);
  }
  const needle = contains.toLocaleLowerCase();
  const items = (page.items || []).filter((item) => !needle || String(item.text).toLocaleLowerCase().includes(needle));
  const nav = h(
    "div",
    { class: "pager" },
    h("button", {
      type: "button", class: "secondary", id: "page-prev", disabled: pager.page === 0,
      onclick: () => { pager.page -= 1; route(); },
    }, "← Previous"),
    h("span", { class: "muted", id: "page-number" }, `Page ${pager.page + 1}`),
    h("button", {
      type: "button", class: "secondary", id: "page-next", disabled: !page.next_cursor,
      onclick: () => {
        pager.cursors[pager.page + 1] = page.next_cursor;
        pager.page += 1;
        route();
      },
    }, "Next →"),
  );
  const summary = needle
    ? `${items.length} of ${page.items.length} on this page contain “${contains}”.`
    : `${items.length} on this page, in the order they were recorded.`;
  put(results,
    h("p", { class: "muted summary" }, summary),
    items.length ? h("ul", { class: "memory-list", id: "memory-list" }, items.map(memoryRow)) : notice("No memories match."),
    nav,
  );
}

// ---------------------------------------------------------------- sources

/** A source message: who said it, when, and (fetched) what it said, linking to its detail. */
function sourceItem(src) {
  const text = h("span", { class: "source-text" }, "…");
  const item = h(
    "li",
    { class: "source", dataset: { id: src.id } },
    h("a", { href: memoryHref(src.id) }, text),
    h("span", { class: "muted source-meta" },
      " — ", src.name || src.role || "unknown speaker", ", ", timeEl(src.occurred_at),
      src.session_id ? [", session ", src.session_id] : null),
  );
  fetchMemory(src.id).then(
    (rec) => { text.textContent = rec.text; },
    (err) => { text.textContent = err.status === 404 ? "(deleted message)" : "message " + shortId(src.id); },
  );
  return item;
}

function sourcesBlock(sources, title, heading) {
  if (!sources || !sources.length) return null;
  return h("div", { class: "sources" },
    h(heading || "h3", null, title || "Sources"),
    h("ul", { class: "source-list" }, sources.map(sourceItem)));
}

/** A link to another memory that shows its text once fetched (its id until then). */
function memoryLink(id, props) {
  const a = h("a", { href: memoryHref(id), ...(props || {}) }, shortId(id));
  fetchMemory(id).then(
    (rec) => { a.textContent = rec.text; },
    () => { a.textContent = id; },
  );
  return a;
}

// ---------------------------------------------------------------- search

function explainTable(explain) {
  const entries = Object.entries(explain || {});
  if (!entries.length) return h("p", { class: "muted" }, "No breakdown given.");
  return h(
    "table",
    { class: "explain" },
    h("caption", null, "Score breakdown"),
    h("thead", null, h("tr", null, h("th", { scope: "col" }, "signal"), h("th", { scope: "col" }, "value"), h("th", { scope: "col" }, h("span", { class: "sr-only" }, "bar")))),
    h("tbody", null, entries.map(([key, value]) => {
      // A rank: 1 is best, so the bar is 1/rank; a flag or boost fills it.
      let fill = null;
      if (RANK_KEYS.has(key) && typeof value === "number" && value > 0) fill = 1 / value;
      else if (typeof value === "number") fill = Math.max(0, Math.min(1, value));
      return h(
        "tr",
        { dataset: { key } },
        h("th", { scope: "row", title: key }, EXPLAIN_LABELS[key] || key, h("span", { class: "explain-key muted" }, " ", key)),
        h("td", { class: "explain-value" }, typeof value === "object" ? JSON.stringify(value) : String(value)),
        h("td", { class: "bar-cell" }, fill === null ? null : h("span", { class: "bar", style: `width:${Math.round(fill * 100)}%` })),
      );
    })),
  );
}

function hitCard(hit, rank, topScore, at) {
  const isFact = hit.kind === "fact";
  const past = isFact && factIsPast(hit, at);
  return h(
    "li",
    { class: "hit", dataset: { id: hit.id, kind: hit.kind } },
    h("div", { class: "hit-head" },
      h("span", { class: "rank muted" }, `#${rank}`), " ",
      kindBadge(hit.kind), " ",
      isFact ? [factBadge(hit, at), " "] : null,
      timeEl(hit.occurred_at),
      h("span", { class: "score", title: "fused score" },
        h("span", { class: "muted" }, "score "), h("strong", { class: "score-value" }, Number(hit.score).toFixed(4)),
        h("span", { class: "bar score-bar", style: `width:${Math.round((hit.score / (topScore || 1)) * 60)}px` }))),
    h("a", { href: memoryHref(hit.id), class: "hit-text" + (past ? " past" : "") }, hit.text),
    h("div", { class: "hit-sub muted" },
      hit.name || hit.role ? h("span", null, hit.name || hit.role) : null,
      hit.session_id ? h("span", null, "session ", hit.session_id) : null,
      isFact ? h("span", { class: "validity" }, "valid ", validityText(hit) || "—") : null,
      // Under as_of a fact can be current then and superseded since: say "later".
      isFact && hit.superseded_by ? h("span", null, past ? "superseded by " : "later superseded by ", memoryLink(hit.superseded_by)) : null),
    h("div", { class: "hit-why" }, explainTable(hit.explain), sourcesBlock(hit.sources)),
  );
}

async function viewSearch(root, params) {
  if (needScope(root)) return;
  const query = params.get("q") || "";
  const limit = Math.max(1, Math.min(100, +(params.get("limit") || 10)));
  const asOf = params.get("as_of") || "";
  const includeExpired = params.get("expired") !== "0";
  const form = h(
    "form",
    { class: "filters search-form", id: "search-form", role: "search" },
    h("label", { class: "grow" }, h("span", null, "Query"), h("input", { name: "q", id: "search-query", type: "search", value: query, required: true, placeholder: "Where does she live now?" })),
    h("label", null, h("span", null, "Limit"), h("input", { name: "limit", id: "search-limit", type: "number", min: 1, max: 100, value: limit })),
    h("label", null, h("span", null, "As of (UTC)"), h("input", { name: "as_of", id: "search-as-of", type: "datetime-local", value: asOf })),
    h("label", { class: "check" }, h("input", { name: "expired", id: "search-expired", type: "checkbox", value: "1", checked: includeExpired }), h("span", null, "Include past facts")),
    h("button", { type: "submit" }, "Search"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const q = new URLSearchParams({ q: data.get("q"), limit: data.get("limit") || "10" });
    if (data.get("as_of")) q.set("as_of", data.get("as_of"));
    if (!data.get("expired")) q.set("expired", "0");
    const next = "#/search?" + q;
    if (location.hash === next) route();
    else location.hash = next;
  });
  const results = h("div", { id: "search-results" });
  put(root, viewHeader("Search playground", h("p", { class: "muted" }, "Ask what the agent would ask; see what it gets back and why.")), form, results);
  if (!query) return;

  put(results, loading("Searching…"));
  const body = { query, ...scopeBody(), limit, include_expired: includeExpired };
  if (asOf) body.as_of = asOf.length === 16 ? asOf + ":00Z" : asOf;
  let data;
  try {
    data = await api("POST", "search", { body });
  } catch (err) {
    return fail(results, err);
  }
  const hits = data.results || [];
  const at = asOf ? epochOf(body.as_of) : null;
  const top = hits.length ? hits[0].score : 1;
  put(results,
    h("p", { class: "muted summary" }, `${hits.length} result${hits.length === 1 ? "" : "s"}`, asOf ? ` as of ${fmtDate(body.as_of)}` : "", "."),
    hits.length ? h("ol", { class: "hits", id: "hits" }, hits.map((hit, i) => hitCard(hit, i + 1, top, at))) : notice("Nothing found."),
  );
}

// ---------------------------------------------------------------- memory detail

function fieldList(pairs) {
  return h("dl", { class: "fields" }, pairs.filter(Boolean).map(([term, value]) => [h("dt", null, term), h("dd", null, value)]));
}

function jsonValue(value, key) {
  if (value === null || value === undefined) return h("span", { class: "muted" }, "—");
  // History snapshots keep validity as epoch seconds; show those as dates.
  if (typeof value === "number" && /^(valid_from|valid_to|expired_at|occurred_at|at)$/.test(key || "")) {
    return h("span", { title: String(value) }, fmtDate(new Date(value * 1000).toISOString()), " UTC");
  }
  // Ids of other memories (superseded_by, caused_by, ...) show as links to them, by their text.
  if (typeof value === "string" && MEMORY_ID.test(value)) return memoryLink(value);
  if (Array.isArray(value) && value.length && value.every((v) => typeof v === "string" && MEMORY_ID.test(v))) {
    return value.map((v, i) => [i ? "; " : "", memoryLink(v)]);
  }
  if (typeof value === "object") return h("code", null, JSON.stringify(value));
  return String(value);
}

function kvTable(obj, caption) {
  const entries = Object.entries(obj || {});
  if (!entries.length) return h("p", { class: "muted" }, "none");
  return h("table", { class: "kv" }, caption ? h("caption", { class: "sr-only" }, caption) : null,
    h("tbody", null, entries.map(([k, v]) => h("tr", null, h("th", { scope: "row" }, k), h("td", null, jsonValue(v, k))))));
}

function historyEvent(entry) {
  const before = entry.before || {};
  const after = entry.after || {};
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])];
  return h(
    "li",
    { class: "version", dataset: { event: entry.event } },
    h("div", { class: "version-head" }, badge(entry.event, "event"), " ", timeEl(entry.at),
      entry.actor ? h("span", { class: "muted" }, " by ", entry.actor) : null),
    keys.length
      ? h("table", { class: "diff" },
          h("thead", null, h("tr", null, h("th", { scope: "col" }, "field"), h("th", { scope: "col" }, "before"), h("th", { scope: "col" }, "after"))),
          h("tbody", null, keys.map((k) => {
            const changed = JSON.stringify(before[k] ?? null) !== JSON.stringify(after[k] ?? null);
            return h("tr", { class: changed ? (k in before && before[k] !== null ? "changed" : "changed added") : null },
              h("th", { scope: "row" }, k),
              h("td", { class: "before" }, k in before ? jsonValue(before[k], k) : h("span", { class: "muted" }, "—")),
              h("td", { class: "after" }, k in after ? jsonValue(after[k], k) : h("span", { class: "muted" }, "—")));
          })))
      : h("p", { class: "muted" }, "No content kept (deleted data is blanked)."),
  );
}

/** The API merges metadata (a key set to null goes): send what changed, and null for removals. */
function metadataPatch(before, after) {
  const patch = {};
  for (const [k, v] of Object.entries(after)) {
    if (JSON.stringify(before[k]) !== JSON.stringify(v)) patch[k] = v;
  }
  for (const k of Object.keys(before)) if (!(k in after)) patch[k] = null;
  return patch;
}

function editForm(record, onSaved, onCancel) {
  const status = h("div", { class: "form-status" });
  const text = h("textarea", { id: "edit-text", name: "text", rows: 4, value: record.text });
  const meta = h("textarea", { id: "edit-metadata", name: "metadata", rows: 4, spellcheck: "false", value: JSON.stringify(record.metadata || {}, null, 2) });
  const form = h(
    "form",
    { class: "edit-form", id: "edit-form", "aria-label": "Edit memory" },
    h("label", { for: "edit-text" }, "Text"), text,
    h("label", { for: "edit-metadata" }, "Metadata (JSON object)"), meta,
    status,
    h("div", { class: "actions" },
      h("button", { type: "submit", id: "edit-save" }, "Save"),
      h("button", { type: "button", class: "secondary", onclick: onCancel }, "Cancel")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {};
    if (text.value !== record.text) body.text = text.value;
    let metadata;
    try {
      metadata = JSON.parse(meta.value || "{}");
    } catch (err) {
      put(status, errorBox(new ApiError(-1, "invalid_json", "Metadata is not valid JSON: " + err.message)));
      return;
    }
    if (metadata === null || typeof metadata !== "object" || Array.isArray(metadata)) {
      put(status, errorBox(new ApiError(-1, "invalid_json", "Metadata must be a JSON object.")));
      return;
    }
    const patch = metadataPatch(record.metadata || {}, metadata);
    if (Object.keys(patch).length) body.metadata = patch;
    if (!Object.keys(body).length) return onCancel();
    try {
      await api("PATCH", "memories/" + encodeURIComponent(record.id), { body });
    } catch (err) {
      if (err.status === 401) return signOut(err);
      put(status, errorBox(err));
      return;
    }
    state.sourceCache.clear();
    onSaved("Saved: the previous version is kept in the history.");
  });
  return form;
}

function confirmDialog(title, bodyNodes, confirmLabel) {
  const dialog = $("confirm");
  $("confirm-title").textContent = title;
  put($("confirm-body"), ...bodyNodes);
  $("confirm-ok").textContent = confirmLabel;
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
    dialog.showModal();
  });
}

async function setArchived(record, archive, status, rerender) {
  try {
    await api("POST", `memories/${encodeURIComponent(record.id)}/${archive ? "archive" : "unarchive"}`);
  } catch (err) {
    if (err.status === 401) return signOut(err);
    put(status, errorBox(err));
    return;
  }
  state.sourceCache.clear();
  rerender(archive ? "Archived: kept, but left out of search, context, facts and profile." : "Unarchived: back in search, context, facts and profile.");
}

async function deleteMemory(record, status) {
  const what = record.kind === "fact" ? "fact" : "message";
  const ok = await confirmDialog(
    `Delete this ${what}?`,
    [
      h("blockquote", { class: "confirm-quote" }, record.text),
      h("p", null, "Memory ", h("code", null, record.id), " of ", h("strong", null, scopeLabel({ user_id: record.user_id, agent_id: record.agent_id })), "."),
      h("p", { class: "muted" }, record.kind === "fact"
        ? "It is deleted for good; the fact it had superseded becomes current again."
        : "It is deleted for good, with the facts derived from it alone. This cannot be undone."),
    ],
    `Delete ${what}`,
  );
  if (!ok) return;
  try {
    await api("DELETE", "memories/" + encodeURIComponent(record.id));
  } catch (err) {
    if (err.status === 401) return signOut(err);
    put(status, errorBox(err));
    return;
  }
  state.sourceCache.clear();
  state.flash = { text: `Deleted ${what} “${record.text}”.`, kind: "success" };
  await loadUsers();
  location.hash = "#/memories";
}

async function viewMemory(root, params, id, message) {
  put(root, loading());
  let record, historyData;
  try {
    // One after the other: an unknown id is reported by the memory itself, not its history.
    record = await api("GET", "memories/" + encodeURIComponent(id));
    historyData = await api("GET", "memories/" + encodeURIComponent(id) + "/history");
  } catch (err) {
    return fail(root, err);
  }
  const isFact = record.kind === "fact";
  const status = h("div", { id: "action-status" }, message ? notice(message, "success") : null);
  const editArea = h("div", { id: "edit-area" });
  const rerender = (text) => viewMemory(root, params, id, text);
  const actions = h(
    "div",
    { class: "actions" },
    h("button", {
      type: "button", id: "edit-button", class: "secondary",
      onclick: () => put(editArea, editForm(record, rerender, () => put(editArea))),
    }, "Edit"),
    h("button", {
      type: "button", id: "archive-button", class: "secondary",
      title: record.archived_at ? "Bring it back into search, context, facts and profile" : "Keep it, but leave it out of search, context, facts and profile",
      onclick: () => setArchived(record, !record.archived_at, status, rerender),
    }, record.archived_at ? "Unarchive" : "Archive"),
    h("button", { type: "button", id: "delete-button", class: "danger", onclick: () => deleteMemory(record, status) }, "Delete"),
    state.whoami && state.whoami.role === "reader" ? h("span", { class: "muted hint" }, "Read-only key: changes will be refused.") : null,
  );

  const validity = isFact
    ? h("section", { class: "card", id: "validity", "aria-labelledby": "validity-title" },
        h("h2", { id: "validity-title" }, "Validity ", factBadge(record)),
        fieldList([
          ["Statement", `${record.subject ?? "?"} · ${record.attribute ?? "?"} · ${record.value ?? "?"}`],
          ["Valid from", timeEl(record.valid_from)],
          ["Valid to", record.valid_to ? timeEl(record.valid_to) : h("span", { class: "muted" }, "still true")],
          ["Expired at", record.expired_at ? timeEl(record.expired_at) : h("span", { class: "muted" }, "—")],
          ["Superseded by", record.superseded_by ? memoryLink(record.superseded_by, { id: "superseded-link" }) : h("span", { class: "muted" }, "—")],
        ]))
    : null;

  const versions = historyData.items || [];
  // A message lists itself as its source: only other records explain where it came from.
  const sources = (record.sources || []).filter((src) => src.id !== record.id);
  const sourcesCard = sources.length
    ? h("section", { class: "card", id: "sources" }, sourcesBlock(sources, "Sources: why the agent believes this", "h2"))
    : isFact ? h("section", { class: "card", id: "sources" }, h("h2", null, "Sources"), h("p", { class: "muted" }, "No source left.")) : null;
  put(root,
    h("div", { class: "view-header" },
      h("p", { class: "crumbs" }, link("#/memories", "← Memories")),
      h("h1", { id: "memory-title", class: isFact && factIsPast(record) ? "past" : null }, record.text),
      h("p", null, kindBadge(record.kind), " ", isFact ? factBadge(record) : null, " ",
        record.archived_at ? [archivedBadge(record), " "] : null, timeEl(record.occurred_at))),
    status,
    actions,
    editArea,
    h("div", { class: "columns" },
      h("div", null,
        validity,
        sourcesCard,
        h("section", { class: "card", "aria-labelledby": "details-title" },
          h("h2", { id: "details-title" }, "Details"),
          fieldList([
            ["Id", h("code", null, record.id)],
            ["Kind", record.kind],
            ["Person", record.user_id ?? h("span", { class: "muted" }, "—")],
            ["Agent", record.agent_id ?? h("span", { class: "muted" }, "—")],
            ["Session", record.session_id ?? h("span", { class: "muted" }, "—")],
            ["Speaker", [record.name || "—", record.role ? ` (${record.role})` : ""]],
            ["Said at", timeEl(record.occurred_at)],
            ["Recorded", timeEl(record.recorded_at)],
            ["Updated", timeEl(record.updated_at)],
            ["Archived", record.archived_at ? timeEl(record.archived_at) : h("span", { class: "muted" }, "no")],
          ])),
        h("section", { class: "card", "aria-labelledby": "meta-title" },
          h("h2", { id: "meta-title" }, "Metadata"), kvTable(record.metadata, "Metadata")),
        (record.time_mentions || []).length
          ? h("section", { class: "card" }, h("h2", null, "Dates it mentions"),
              h("ul", null, record.time_mentions.map((m) => h("li", null, `“${m.text}” → ${fmtDate(m.start)} – ${fmtDate(m.end)} (${m.granularity})`))))
          : null),
      h("section", { class: "card", id: "versions", "aria-labelledby": "versions-title" },
        h("h2", { id: "versions-title" }, `Versions (${versions.length})`),
        versions.length ? h("ol", { class: "version-list" }, versions.map(historyEvent)) : h("p", { class: "muted" }, "No history."))),
  );
}

// ---------------------------------------------------------------- facts and profile

function factRow(fact) {
  const past = factIsPast(fact);
  return h(
    "li",
    { class: "fact" + (past ? " is-past" : ""), dataset: { id: fact.id } },
    h("div", null, factBadge(fact), " ",
      h("a", { href: memoryHref(fact.id), class: "fact-text" + (past ? " past" : "") }, fact.text)),
    h("div", { class: "muted fact-sub" },
      h("span", { class: "validity" }, validityText(fact)),
      fact.superseded_by ? h("span", null, "superseded by ", memoryLink(fact.superseded_by)) : null,
      fact.attribute ? h("span", null, h("code", null, fact.attribute)) : null),
    sourcesBlock(fact.sources),
  );
}

async function viewFacts(root, params) {
  if (needScope(root)) return;
  const includeExpired = params.get("all") === "1";
  const pager = state.factsCursor;
  const sig = JSON.stringify([state.scope, includeExpired]);
  if (pager.sig !== sig) Object.assign(pager, { sig, cursors: [null], page: 0 });
  const toggle = h("label", { class: "check" },
    h("input", {
      type: "checkbox", id: "facts-expired", checked: includeExpired,
      onchange: (event) => { location.hash = event.target.checked ? "#/facts?all=1" : "#/facts"; },
    }),
    h("span", null, "Include past facts (ended or superseded)"));
  const profileBox = h("section", { class: "card", id: "profile", "aria-labelledby": "profile-title" }, h("h2", { id: "profile-title" }, "Profile: who this person is now"), loading());
  const factsBox = h("section", { class: "card", id: "facts", "aria-labelledby": "facts-title" }, h("h2", { id: "facts-title" }, "Facts"), toggle, loading());
  put(root, viewHeader("Facts & profile"), h("div", { class: "columns" }, profileBox, factsBox));

  const [profile, facts] = await Promise.allSettled([
    api("GET", "profile", { query: scopeQuery() }),
    api("GET", "facts", { query: { ...scopeQuery(), include_expired: includeExpired, limit: 50, cursor: pager.cursors[pager.page] } }),
  ]);
  if (profile.status === "rejected") fail(profileBox, profile.reason);
  else {
    const entries = profile.value.entries || [];
    put(profileBox,
      h("h2", { id: "profile-title" }, "Profile: who this person is now"),
      entries.length
        ? h("ul", { class: "profile-list", id: "profile-list" }, entries.map((e) => h(
            "li", { dataset: { attribute: e.attribute } },
            h("div", null, h("a", { href: memoryHref(e.fact_id), class: "profile-text" }, e.text)),
            h("div", { class: "muted" }, h("code", null, e.attribute), " since ", timeEl(e.since),
              (e.sources || []).length ? [" · from ", e.sources.map((s, i) => [i ? ", " : "", link(memoryHref(s), "message " + shortId(s))])] : null))))
        : h("p", { class: "muted" }, "Nothing stable known yet."),
      profile.value.truncated ? h("p", { class: "muted" }, "(truncated to the profile size limit)") : null,
    );
  }
  if (facts.status === "rejected") return fail(factsBox, facts.reason);
  const page = facts.value;
  const items = page.items || [];
  put(factsBox,
    h("h2", { id: "facts-title" }, "Facts"),
    toggle,
    items.length ? h("ul", { class: "fact-list", id: "fact-list" }, items.map(factRow)) : h("p", { class: "muted" }, "No facts."),
    h("div", { class: "pager" },
      h("button", { type: "button", class: "secondary", disabled: pager.page === 0, onclick: () => { pager.page -= 1; route(); } }, "← Previous"),
      h("span", { class: "muted" }, `Page ${pager.page + 1}`),
      h("button", {
        type: "button", class: "secondary", disabled: !page.next_cursor,
        onclick: () => { pager.cursors[pager.page + 1] = page.next_cursor; pager.page += 1; route(); },
      }, "Next →")),
  );
}

// ---------------------------------------------------------------- timeline

/** The next page of the scope's timeline (every kind, in the order things happened). */
async function timelinePage(cursor) {
  return api("GET", "timeline", { query: { ...scopeQuery(), kind: "all", limit: TIMELINE_PAGE, cursor } });
}

function timelineEvents(items) {
  const events = [];
  for (const item of items) {
    if (item.kind === "fact") {
      if (item.valid_from) events.push({ at: item.valid_from, type: "began", item });
      if (item.valid_to) events.push({ at: item.valid_to, type: "ended", item });
    } else {
      events.push({ at: item.occurred_at, type: "said", item });
    }
  }
  events.sort((a, b) => epochOf(a.at) - epochOf(b.at) || (a.type === "said" ? -1 : 1));
  return events;
}

function timelineEntry(event) {
  const { item, type } = event;
  if (type === "said") {
    return h("li", { class: "tl-item tl-said", dataset: { id: item.id } },
      h("span", { class: "tl-time muted" }, parts(event.at)?.hh ? `${parts(event.at).hh}:${parts(event.at).mm}` : ""),
      h("span", { class: "tl-who" }, item.name || item.role || ""),
      h("a", { href: memoryHref(item.id), class: "tl-text" }, item.text));
  }
  return h("li", { class: "tl-item tl-fact tl-" + type, dataset: { id: item.id, event: type } },
    h("span", { class: "tl-time muted" }, ""),
    h("span", { class: "tl-marker" }, type === "began" ? "▶ fact began" : "■ fact ended"),
    h("a", { href: memoryHref(item.id), class: "tl-text" + (type === "ended" ? " past" : "") }, item.text));
}

async function viewTimeline(root) {
  if (needScope(root)) return;
  const body = h("div", { id: "timeline" }, loading());
  put(root, viewHeader("Timeline", h("p", { class: "muted" }, "What was said, day by day, and where facts began and ended (on the speaker's clock).")), body);
  // Pages arrive in the order things happened. What is shown stops at the last instant read
  // (the horizon): a fact that ended later shows its end once the pages reach it.
  const loaded = { items: [], cursor: null, complete: false };
  async function readMore() {
    const page = await timelinePage(loaded.cursor);
    loaded.items.push(...(page.items || []));
    loaded.cursor = page.next_cursor || null;
    loaded.complete = !loaded.cursor;
  }
  try {
    await readMore();
  } catch (err) {
    return fail(body, err);
  }
  const render = () => {
    const last = loaded.items[loaded.items.length - 1];
    const horizon = loaded.complete || !last ? Infinity : epochOf(last.occurred_at);
    const days = new Map();
    for (const event of timelineEvents(loaded.items)) {
      if (epochOf(event.at) > horizon) continue;
      const day = String(event.at).slice(0, 10);
      if (!days.has(day)) days.set(day, []);
      days.get(day).push(event);
    }
    const later = h("button", {
      type: "button", class: "secondary", id: "timeline-more",
      onclick: async () => {
        later.disabled = true;
        try {
          await readMore();
        } catch (err) {
          return fail(body, err);
        }
        render();
      },
    }, "Later →");
    put(body,
      days.size
        ? [...days].map(([day, events]) => h("section", { class: "tl-day", dataset: { day } },
            h("h2", null, h("time", { datetime: day }, longDay(day))),
            h("ol", { class: "tl-list" }, events.map(timelineEntry))))
        : notice("Nothing remembered yet."),
      loaded.complete
        ? null
        : h("div", { class: "pager" }, h("span", { class: "muted", id: "timeline-horizon" }, `Up to ${fmtDate(last.occurred_at)}`), later),
    );
  };
  render();
}

// ---------------------------------------------------------------- entities

async function viewEntities(root, params, entityId) {
  if (needScope(root)) return;
  const body = h("div", { class: "columns" }, loading());
  put(root, viewHeader("Entities", h("p", { class: "muted" }, "People, places, organizations and things the memories mention.")), body);
  let data;
  try {
    data = await api("GET", "entities", { query: scopeQuery() });
  } catch (err) {
    return fail(body, err);
  }
  const items = data.items || [];
  const selected = items.find((e) => e.id === entityId) || null;
  const table = items.length
    ? h("table", { class: "grid", id: "entity-table" },
        h("caption", { class: "sr-only" }, "Entities"),
        headRow(["Name", "Type", "Aliases", "Relation", ["Mentions", "num"]]),
        h("tbody", null, items.map((e) => h("tr", { class: e === selected ? "selected" : null, dataset: { id: e.id } },
          h("th", { scope: "row" }, h("a", { href: "#/entities/" + encodeURIComponent(e.id), "aria-current": e === selected ? "true" : null }, e.name)),
          h("td", null, e.type || "—"),
          h("td", null, (e.aliases || []).length ? e.aliases.join(", ") : h("span", { class: "muted" }, "—")),
          h("td", null, e.relation ? `${e.relation}${e.relation_of ? " of " + e.relation_of : ""}` : h("span", { class: "muted" }, "—")),
          h("td", { class: "num" }, e.mentions)))))
    : notice("No entities yet.");
  const panel = h("section", { class: "card", id: "entity-panel", "aria-live": "polite" });
  put(body, h("div", null, table), panel);
  if (!selected) {
    panel.append(h("p", { class: "muted" }, items.length ? "Pick an entity to see the memories that mention it." : ""));
    return;
  }
  panel.append(h("h2", null, selected.name, " ", badge(selected.type || "thing")), loading());
  const records = await Promise.allSettled((selected.memory_ids || []).map((id) => fetchMemory(id)));
  const found = records.filter((r) => r.status === "fulfilled").map((r) => r.value);
  put(panel,
    h("h2", null, selected.name, " ", badge(selected.type || "thing")),
    selected.relation ? h("p", null, `${selected.relation}${selected.relation_of ? " of " + selected.relation_of : ""}`) : null,
    h("p", { class: "muted" }, `Mentioned in ${found.length} memor${found.length === 1 ? "y" : "ies"}:`),
    h("ul", { class: "memory-list", id: "entity-memories" }, found.sort((a, b) => epochOf(a.occurred_at) - epochOf(b.occurred_at)).map(memoryRow)),
  );
}

// ---------------------------------------------------------------- router

const ROUTES = {
  people: viewPeople,
  memories: viewMemories,
  search: viewSearch,
  memory: viewMemory,
  facts: viewFacts,
  timeline: viewTimeline,
  entities: viewEntities,
};

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, query] = raw.split("?");
  const [name, ...rest] = path.split("/");
  return { name: name || "people", arg: rest.length ? decodeURIComponent(rest.join("/")) : null, params: new URLSearchParams(query || "") };
}

function route() {
  if (!state.key || !state.whoami) return;
  const { name, arg, params } = parseHash();
  const view = ROUTES[name];
  const main = $("view");
  for (const a of document.querySelectorAll("#nav a")) {
    const current = a.dataset.route === name || (name === "memory" && a.dataset.route === "memories");
    if (current) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  // Each view draws into its own container: a slow answer for a view already left lands in a
  // detached node instead of over the current one.
  const root = h("div", { class: "view", dataset: { view: name } });
  const flash = state.flash;
  state.flash = null;
  put(main, ...(flash ? [notice(flash.text, flash.kind)] : []), root);
  if (!view) {
    root.append(h("h1", null, "Page not found"), link("#/people", "Go to People"));
    return;
  }
  document.title = `${name[0].toUpperCase()}${name.slice(1)} · engramdb console`;
  Promise.resolve(view(root, params, arg)).catch((err) => fail(root, err));
}

function start() {
  $("signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("signin-key").value.trim();
    if (key) signIn(key);
  });
  $("signout").addEventListener("click", () => signOut(null));
  $("scope").addEventListener("change", (event) => {
    if (event.target.value) setScope(JSON.parse(event.target.value));
  });
  document.querySelector(".skip").addEventListener("click", (event) => {
    event.preventDefault();
    $("view").focus();
  });
  window.addEventListener("hashchange", () => {
    if (/^#key=/.test(location.hash)) {
      const key = readKeyFromFragment();
      if (key) signIn(key);
      return;
    }
    route();
  });
  const key = readKeyFromFragment() || sessionStorage.getItem(KEY_STORAGE);
  if (key) signIn(key);
  else showSignIn(null);
}

start();
