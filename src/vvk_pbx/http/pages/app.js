/* Shared by the pages: DOM building (never innerHTML), the API with its CSRF token,
   the login form, the live feed, the server's clock and Swedish labels. */
"use strict";

const VVK = (() => {
  let csrf = null;
  let clockOffsetMs = 0; // server time minus browser time, from the snapshot's `now`

  // ----- DOM -------------------------------------------------------------------------
  /** el("td", {class: "x", "data-testid": "y", text: "z", onclick: f}, child, ...) */
  function el(tag, props, ...kids) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = String(value);
      else if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const kid of kids.flat()) {
      if (kid !== null && kid !== undefined && kid !== false) node.append(kid); // strings: text
    }
    return node;
  }
  const $ = (id) => document.getElementById(id);

  // ----- status line -----------------------------------------------------------------
  let statusTimer = null;
  function say(text, kind = "info") {
    const line = $("status");
    line.textContent = text;
    line.className = kind;
    clearTimeout(statusTimer);
    if (kind !== "error") statusTimer = setTimeout(() => { line.textContent = ""; }, 6000);
  }

  // ----- API -------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }
  async function api(method, path, body) {
    const init = { method, credentials: "same-origin", headers: {} };
    if (method !== "GET") {
      init.headers["Content-Type"] = "application/json";
      if (csrf) init.headers["X-CSRF-Token"] = csrf;
      if (body !== undefined) init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (exc) {
      throw new ApiError(0, "Växeln svarar inte: " + exc.message);
    }
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
    if (!response.ok) {
      const reason = data && typeof data.message === "string" ? data.message : `${response.status} ${response.statusText}`;
      if (response.status === 401 && path !== "/login" && path !== "/me") showLogin(() => location.reload());
      throw new ApiError(response.status, reason);
    }
    return data;
  }
  /** Run an action; its error goes to the status line (never swallowed). */
  async function act(what, fn) {
    try {
      const result = await fn();
      if (what) say(what, "ok");
      return result;
    } catch (exc) {
      say(`Misslyckades: ${exc.message}`, "error");
      return undefined;
    }
  }

  // ----- login -----------------------------------------------------------------------
  function showLogin(onDone) {
    const box = $("login");
    $("app").hidden = true;
    $("logout").hidden = true;
    $("who").textContent = "";
    const ext = el("input", { id: "login-extension", "data-testid": "login-extension", name: "extension",
      inputmode: "numeric", autocomplete: "username", required: true });
    const pin = el("input", { id: "login-pin", "data-testid": "login-pin", name: "pin", type: "password",
      inputmode: "numeric", autocomplete: "current-password", required: true });
    const form = el("form", { "data-testid": "login-form", class: "login" },
      el("h2", { text: "Logga in" }),
      el("label", { for: "login-extension", text: "Anknytning" }), ext,
      el("label", { for: "login-pin", text: "PIN-kod" }), pin,
      el("button", { type: "submit", "data-testid": "login-submit", text: "Logga in" }));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        const me = await api("POST", "/login", { extension: ext.value.trim(), pin: pin.value });
        csrf = me.csrf;
        box.hidden = true;
        say(`Inloggad som ${me.who}`, "ok");
        onDone(me);
      } catch (exc) {
        pin.value = "";
        if (exc.status === 401) say("Fel PIN-kod (eller okänd anknytning)", "error");
        else if (exc.status === 423) say("Låst efter för många fel PIN-koder, även på telefonen. Försök igen om en kvart.", "error");
        else say(`Inloggningen misslyckades: ${exc.message}`, "error");
        pin.focus();
      }
    });
    box.replaceChildren(form);
    box.hidden = false;
    ext.focus();
  }

  /** Who is logged in, or the login form first; then `ready(me)` once. */
  async function start(ready) {
    $("logout").addEventListener("click", () => act(null, async () => {
      await api("POST", "/logout");
      location.reload();
    }));
    const enter = (me) => {
      csrf = me.csrf;
      $("who").textContent = me.who;
      $("logout").hidden = false;
      $("app").hidden = false;
      ready(me);
    };
    try {
      enter(await api("GET", "/me"));
    } catch (exc) {
      if (exc.status === 401) showLogin(enter);
      else { say(`Kan inte nå växeln: ${exc.message} – försöker igen`, "error"); setTimeout(() => start(ready), 5000); }
    }
  }
  const hasRole = (me, ...roles) => roles.some((r) => me.roles.includes(r));

  // ----- live feed -------------------------------------------------------------------
  /** handlers: snapshot(board), change(section, data), lost(). Reconnects on its own. */
  // The server pings every 15 s: nothing for this long and the stream is dead, even
  // when the browser reports no error (a network that silently dropped it).
  const SILENCE_MS = 40000;
  function feed(handlers) {
    let source = null;
    let timer = null;
    let watchdog = null;
    const banner = $("feed-lost");
    function lost() {
      banner.hidden = false;
      handlers.lost();
    }
    function alive() {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => { if (source) source.close(); lost(); retry(250); }, SILENCE_MS);
    }
    function retry(ms) {
      clearTimeout(timer);
      timer = setTimeout(async () => {
        try {
          await api("GET", "/me");
        } catch (exc) {
          if (exc.status === 401) showLogin(() => location.reload());
          else retry(3000);
          return;
        }
        connect();
      }, ms);
    }
    function connect() {
      if (source) source.close();
      source = new EventSource("/events");
      alive();
      source.addEventListener("ping", (event) => {
        alive();
        syncClock(JSON.parse(event.data).now);
      });
      source.addEventListener("snapshot", (event) => {
        alive();
        const board = JSON.parse(event.data);
        if (board.now) syncClock(board.now);
        banner.hidden = true;
        handlers.snapshot(board);
      });
      source.addEventListener("change", (event) => {
        alive();
        const message = JSON.parse(event.data);
        handlers.change(message.section, message.data);
      });
      source.addEventListener("cut", () => { source.close(); lost(); retry(250); });
      source.onerror = () => {
        lost();
        if (source.readyState === EventSource.CLOSED) retry(3000); // else it retries itself
      };
    }
    connect();
  }

  // ----- time ------------------------------------------------------------------------
  function syncClock(iso) {
    const at = Date.parse(iso);
    if (!Number.isNaN(at)) clockOffsetMs = at - Date.now();
  }
  const now = () => Date.now() + clockOffsetMs;
  function sinceMs(iso) {
    const at = Date.parse(iso);
    return Number.isNaN(at) ? 0 : Math.max(0, now() - at);
  }
  /** "3:07", or "1:02:07" from an hour on. */
  function mmss(ms) {
    const s = Math.floor(ms / 1000);
    const two = (n) => String(n).padStart(2, "0");
    if (s < 3600) return `${Math.floor(s / 60)}:${two(s % 60)}`;
    return `${Math.floor(s / 3600)}:${two(Math.floor(s / 60) % 60)}:${two(s % 60)}`;
  }
  /** The site's local date "2026-11-30" now (the browser's zone, server-corrected). */
  const ymd = (d) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
  const today = () => ymd(new Date(now()));
  const DAYS = ["sön", "mån", "tis", "ons", "tors", "fre", "lör"];
  /** "14:30" today, "tis 08:00" within a week, else "1/12 08:00"; from the ISO string's own local time. */
  function when(iso) {
    if (!iso) return "";
    const date = iso.slice(0, 10);
    const time = iso.slice(11, 16);
    if (date === today()) return time;
    const [y, m, d] = date.split("-").map(Number);
    const days = (Date.UTC(y, m - 1, d) - Date.parse(today() + "T00:00Z")) / 86400000;
    if (days > 0 && days < 7) return `${DAYS[new Date(Date.UTC(y, m - 1, d)).getUTCDay()]} ${time}`;
    return `${d}/${m} ${time}`;
  }

  // ----- text ------------------------------------------------------------------------
  /** Lower case without diacritics: "Åsa Öberg" -> "asa oberg" (as domain/directory.py). */
  const fold = (text) => String(text || "").normalize("NFKD").replace(/\p{M}/gu, "").toLowerCase();
  /** Every word typed begins a word of the fields, folded: "asa" finds "Åsa". */
  function matches(query, ...fields) {
    const words = fold(fields.join(" ")).replace(/-/g, " ").split(/\s+/).filter(Boolean);
    return fold(query).split(/\s+/).filter(Boolean).every((typed) => words.some((word) => word.startsWith(typed)));
  }
  const LABELS = {
    call: { waiting: "Väntar", ringing: "Ringer", connected: "Samtal", parked: "Parkerad",
      consulting: "Förfrågan", announcing: "Hälsning", menu: "Meny", recording: "Meddelande",
      routing: "Kopplas" },
    operator: { free: "Ledig", reserved: "Reserverad", ringing: "Ringer", talking: "Samtal",
      unavailable: "Ej tillgänglig" },
    presence: { in: "Inloggad", paused: "Paus", out: "Utloggad" },
    line: { idle: "Ledig", ringing: "Ringer", busy: "Upptagen", unavailable: "Ej ansluten", unknown: "Okänd" },
  };
  const label = (kind, value) => (value ? LABELS[kind][value] || value : "");
  /** "är på möte, åter 14:30" */
  function referralText(ref) {
    const what = ref.phrase || ref.reason_name || `orsak ${ref.reason}`;
    const back = ref.announced_end || ref.end;
    return back ? `${what}, åter ${when(back)}` : what;
  }
  /** [{code, name, phrase}] from GET /reasons; without it, those seen in `referrals`. */
  async function reasons(referrals) {
    try {
      return await api("GET", "/reasons");
    } catch (exc) {
      if (exc.status !== 404) say(`Orsakerna kunde inte hämtas: ${exc.message}`, "error");
      const seen = new Map((referrals || []).map((r) => [r.reason, { code: r.reason, name: r.reason_name, phrase: r.phrase }]));
      const found = [...seen.values()].sort((a, b) => a.code - b.code);
      found.fallback = true; // ask again when more referrals are known
      return found;
    }
  }

  // ----- shared pieces ---------------------------------------------------------------
  /** One person of the directory as a list row, with their referral and line state. */
  function personRow(person, referral, line, onpick, testid = "person-row") {
    return el("li", { "data-testid": testid, "data-extension": person.extension, tabindex: "0",
      class: referral ? "away" : "", onclick: () => onpick(person.extension),
      onkeydown: (event) => { if (event.key === "Enter") { event.stopPropagation(); onpick(person.extension); } } },
      el("span", { class: "name", text: person.name }),
      el("span", { class: "ext", text: person.extension }),
      line ? el("span", { class: `line line-${line}`, "data-testid": "line-state", text: label("line", line) }) : null,
      el("span", { class: "muted", text: [person.title, person.unit_name].filter(Boolean).join(", ") }),
      referral ? el("span", { class: "referral", "data-testid": "referral", text: referralText(referral) }) : null);
  }
  /** The reason <select> filled from `list`, with `chosen` selected. */
  function fillReasons(select, list, chosen) {
    select.replaceChildren(...list.map((r) => el("option", { value: r.code, text: `${r.code} ${r.phrase || r.name}` })));
    if (chosen !== undefined && chosen !== null) select.value = String(chosen);
  }
  /** "2026-11-30T16:00" for a datetime-local input: the referral's end, or the next full hour. */
  function untilValue(referral) {
    if (referral && referral.end) return referral.end.slice(0, 16);
    const d = new Date(now() + 3600000);
    return `${ymd(d)}T${String(d.getHours()).padStart(2, "0")}:00`;
  }

  return { el, $, say, api, act, start, personRow, fillReasons, untilValue, hasRole, feed, now, sinceMs, mmss, today, when, fold, matches,
    label, referralText, reasons, ApiError };
})();
