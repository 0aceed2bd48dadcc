/* The operator's console: the calls, the actions on them, the directory with referrals. */
"use strict";

(() => {
  const { el, $, say, api, act } = VVK;
  const QUEUED = new Set(["waiting", "ringing", "parked"]);
  const S = {
    me: null,
    board: null, // the live board; null while the feed is down (no stale queue)
    directory: [],
    byExt: new Map(),
    reasons: [],
    selected: null, // call id
    target: null, // extension to transfer to or act for
  };
  const enc = encodeURIComponent;
  const calls = () => (S.board && S.board.calls) || [];
  const callById = (id) => calls().find((c) => c.id === id) || null;
  const myOperator = () => ((S.board && S.board.operators) || []).find((o) => o.extension === S.me.extension);
  const referralOf = (ext) => ((S.board && S.board.referrals) || []).find((r) => r.extension === ext) || null;
  const lineOf = (ext) => (S.board && S.board.lines ? S.board.lines[ext] : null);
  const nameOf = (ext) => (S.byExt.get(ext) || {}).name || ext;

  /** The call the actions are about: the selected one, else the one I talk with. */
  function activeCall() {
    const mine = myOperator();
    return callById(S.selected) || (mine && callById(mine.call)) || calls().find((c) => c.with === S.me.extension) || null;
  }
  function consultCall() {
    const active = activeCall();
    if (active && active.state === "consulting") return active;
    return calls().find((c) => c.state === "consulting" && c.with === S.me.extension) || null;
  }

  // ----- rendering -------------------------------------------------------------------
  function stateText(call) {
    let text = VVK.label("call", call.state);
    if (call.with) text += ` med ${call.with}`;
    if (call.state === "ringing" && call.ringing && call.ringing.length) text += ` hos ${call.ringing.join(", ")}`;
    if (call.parked_by) text += ` av ${call.parked_by}`;
    if (call.consult_to) text += ` → ${nameOf(call.consult_to)}`;
    return text;
  }
  function timing(call) {
    const policy = (S.board && S.board.policy) || { cycle_ms: 6000, goal_rings: 4 };
    const wait = VVK.sinceMs(call.arrived_at);
    const rings = Math.floor(wait / policy.cycle_ms) + 1;
    const counting = QUEUED.has(call.state);
    return { wait: VVK.mmss(wait), rings: counting ? `ring ${rings}/${policy.goal_rings}` : "",
      late: counting && rings >= policy.goal_rings };
  }
  function queueRow(call) {
    const t = timing(call);
    const chosen = call.id === S.selected;
    return el("tr", { "data-testid": "queue-row", "data-call-id": call.id, "data-state": call.state,
      "aria-selected": chosen ? "true" : "false", class: [chosen ? "selected" : "", t.late ? "late" : ""].join(" "),
      onclick: () => select(call.id === S.selected ? null : call.id) },
      el("td", { class: "number", "data-testid": "caller", text: call.caller || "okänt nummer" }),
      el("td", { "data-testid": "caller-name", text: call.name || "" }),
      el("td", { text: call.external ? "Externt" : "Internt" }),
      el("td", { text: call.called || "" }),
      el("td", { "data-testid": "wait", text: t.wait }),
      el("td", { "data-testid": "rings", class: "rings", text: t.rings }),
      el("td", { "data-testid": "call-state", text: stateText(call) }));
  }
  function renderQueue() {
    if (S.selected && !callById(S.selected)) S.selected = null;
    $("queue-body").replaceChildren(...calls().map(queueRow));
    $("queue").classList.toggle("stale", !S.board);
    const waiting = calls().filter((c) => QUEUED.has(c.state)).length;
    $("queue-count").textContent = S.board ? `(${waiting} väntar)` : "";
    $("queue-empty").textContent = !S.board ? "Ingen förbindelse med växeln – kön visas inte."
      : calls().length ? "" : "Inga samtal just nu.";
    renderButtons();
  }
  /** Once a second: only the times, so a click on a row is never lost to a rebuild. */
  function tick() {
    for (const row of $("queue-body").children) {
      const call = callById(row.dataset.callId);
      if (!call) continue;
      const t = timing(call);
      row.querySelector("[data-testid=wait]").textContent = t.wait;
      row.querySelector("[data-testid=rings]").textContent = t.rings;
      row.classList.toggle("late", t.late);
    }
  }
  function renderButtons() {
    const up = Boolean(S.board);
    const active = activeCall();
    const consulting = Boolean(consultCall());
    $("answer").disabled = !up;
    for (const id of ["park", "transfer", "consult"]) $(id).disabled = !up || !active || consulting;
    $("complete").disabled = !up || !consulting;
    $("take-back").disabled = !up || !consulting;
    const mine = myOperator();
    for (const button of $("presence").querySelectorAll("button")) {
      button.disabled = !up;
      button.setAttribute("aria-pressed", mine && mine.presence === button.dataset.presence ? "true" : "false");
    }
    $("my-state").textContent = mine ? [VVK.label("presence", mine.presence), VVK.label("operator", mine.state)].filter(Boolean).join(" · ") : "";
  }
  function renderOperators() {
    const ops = (S.board && S.board.operators) || [];
    $("operators").replaceChildren(...ops.map((o) => el("li", { "data-testid": "operator-row", "data-extension": o.extension,
      class: `op-${o.state}` },
    el("span", { class: "name", text: o.name || o.extension }),
    o.name ? el("span", { class: "ext", text: o.extension }) : null,
    el("span", { "data-testid": "operator-state", text: VVK.label("operator", o.state) }),
    o.presence ? el("span", { class: "muted", text: VVK.label("presence", o.presence) }) : null)));
  }
  function renderMessages() {
    const open = ((S.board && S.board.messages) || []).filter((m) => m.status !== "called_back");
    $("messages").replaceChildren(...open.map((m) => el("li", { "data-testid": "message-row", "data-message-id": m.id,
      class: m.overdue ? "late" : "" },
    el("span", { class: "name", text: `Till ${nameOf(m.extension)}` }),
    el("span", { text: [m.caller, m.name].filter(Boolean).join(" ") }),
    m.note ? el("span", { class: "muted", text: m.note }) : null,
    m.deadline ? el("span", { class: "muted", text: `ring senast ${VVK.when(m.deadline)}` }) : null,
    el("button", { type: "button", "data-testid": "called-back", text: "Ringt tillbaka",
      onclick: () => act("Markerat som återuppringt", () => api("POST", `/messages/${enc(m.id)}/called-back`)) }))));
  }
  function renderPeople() {
    const query = $("search").value;
    const found = S.directory.filter((p) => VVK.matches(query, p.name, p.unit, p.unit_name, p.title, p.extension)).slice(0, 50);
    $("people").replaceChildren(...found.map((p) => VVK.personRow(p, referralOf(p.extension), lineOf(p.extension), pick)));
    if (!found.length) $("people").append(el("li", { class: "muted", text: S.directory.length ? "Ingen träff." : "Katalogen är tom." }));
    renderPerson();
  }
  function renderPerson() {
    const person = S.byExt.get(S.target);
    $("person").hidden = !person;
    $("target").textContent = person ? `Koppla till: ${person.name} (${person.extension})` : "Koppla till: ingen vald (sök till höger)";
    if (!person) return;
    const referral = referralOf(person.extension);
    const line = lineOf(person.extension);
    $("person-name").textContent = `${person.name} ${person.extension}`;
    $("person-info").textContent = [person.title, person.unit_name, person.mobile && `mobil ${person.mobile}`,
      line && VVK.label("line", line), referral ? VVK.referralText(referral) : "ingen hänvisning"].filter(Boolean).join(" · ");
    $("colleagues").replaceChildren(...S.directory.filter((p) => p.unit === person.unit && p.extension !== person.extension)
      .map((p) => VVK.personRow(p, referralOf(p.extension), lineOf(p.extension), pick, "colleague-row")));
  }
  function renderAll() {
    renderQueue();
    renderOperators();
    renderMessages();
    renderPeople();
  }

  // ----- actions ---------------------------------------------------------------------
  function select(id) {
    S.selected = id;
    renderQueue();
  }
  function move(step) {
    const list = calls();
    if (!list.length) return;
    const at = list.findIndex((c) => c.id === S.selected);
    select(list[at < 0 ? (step > 0 ? 0 : list.length - 1) : Math.min(list.length - 1, Math.max(0, at + step))].id);
  }
  function pick(extension) {
    S.target = extension;
    const referral = referralOf(extension);
    VVK.fillReasons($("referral-reason"), S.reasons, referral ? referral.reason : undefined);
    $("referral-until").value = VVK.untilValue(referral);
    $("referral-note").value = (referral && referral.note) || "";
    renderPerson();
  }
  function answer() {
    const call = callById(S.selected);
    if (call && QUEUED.has(call.state)) {
      return act(`Din telefon ringer för ${call.caller}`, () => api("POST", `/calls/${enc(call.id)}/answer`));
    }
    return act("Din telefon ringer för den första i kön", () => api("POST", "/calls/next/answer"));
  }
  function park() {
    const call = activeCall();
    if (!call) return say("Välj ett samtal att parkera", "error");
    return act(`${call.caller} parkerad`, () => api("POST", `/calls/${enc(call.id)}/park`));
  }
  function transfer(consult) {
    const call = activeCall();
    if (!call) return say("Inget samtal att koppla: välj ett i listan", "error");
    if (!S.target) return say("Välj vem samtalet ska kopplas till (sök till höger)", "error");
    const body = consult ? { to: S.target, consult: true } : { to: S.target };
    const done = consult ? `Förfrågan till ${nameOf(S.target)}: Slutför (S) eller Återta (T)` : `Kopplar till ${nameOf(S.target)}`;
    return act(done, () => api("POST", `/calls/${enc(call.id)}/transfer`, body));
  }
  function finishConsult(how) {
    const call = consultCall();
    if (!call) return say("Ingen förfrågan pågår", "error");
    const done = how === "complete" ? "Samtalet kopplat" : "Samtalet återtaget";
    return act(done, () => api("POST", `/calls/${enc(call.id)}/consult/${how}`));
  }
  function setPresence(presence) {
    return act(`Status: ${VVK.label("presence", presence)}`,
      () => api("POST", `/operators/${enc(S.me.extension)}/presence`, { presence }));
  }
  function openMessage() {
    const call = activeCall();
    const to = $("message-to");
    to.replaceChildren(el("option", { value: "", text: "– välj person –" }),
      ...S.directory.map((p) => el("option", { value: p.extension, text: `${p.name} (${p.extension})` })));
    to.value = S.target || "";
    $("message-caller").value = call ? call.caller || "" : "";
    $("message-name").value = call ? call.name || "" : "";
    $("message-note").value = "";
    $("message-form").dataset.callId = call ? call.id : "";
    $("message-form").hidden = false;
    (S.target ? $("message-note") : to).focus();
  }
  function closeMessage() {
    $("message-form").hidden = true;
  }
  async function saveMessage(event) {
    event.preventDefault();
    const body = { extension: $("message-to").value, caller: $("message-caller").value.trim(),
      name: $("message-name").value.trim(), note: $("message-note").value.trim() };
    const call = $("message-form").dataset.callId;
    if (call) body.call = call;
    const saved = await act(`Meddelande till ${nameOf(body.extension)} sparat`, () => api("POST", "/messages", body));
    if (saved !== undefined) closeMessage();
  }
  function setReferral(event) {
    event.preventDefault();
    const body = { reason: Number($("referral-reason").value), until: $("referral-until").value };
    const note = $("referral-note").value.trim();
    if (note) body.note = note;
    const who = S.target;
    return act(`Hänvisning satt för ${nameOf(who)}`, () => api("PUT", `/referrals/${enc(who)}`, body));
  }
  function clearReferral() {
    const who = S.target;
    return act(`Hänvisningen för ${nameOf(who)} borttagen`, () => api("DELETE", `/referrals/${enc(who)}`));
  }

  // ----- keyboard --------------------------------------------------------------------
  /** The referral form of the chosen person: H to fill it in (Enter saves), Delete to
   *  open their phone again. */
  function editReferral() {
    if (!S.target) return say("Välj en person först (sök till höger)", "error");
    $("referral-reason").focus();
  }
  function clearChosenReferral() {
    if (!S.target) return say("Välj en person först (sök till höger)", "error");
    return clearReferral();
  }
  const KEYS = { enter: answer, p: park, k: () => transfer(false), f: () => transfer(true),
    s: () => finishConsult("complete"), t: () => finishConsult("cancel"), m: openMessage,
    h: editReferral, delete: clearChosenReferral,
    f8: () => setPresence("in"), f9: () => setPresence("paused"), f10: () => setPresence("out"),
    arrowdown: () => move(1), arrowup: () => move(-1) };
  function onKey(event) {
    const target = event.target;
    const typing = target.matches("input, textarea, select");
    if (event.key === "Escape") {
      event.preventDefault();
      if (!$("message-form").hidden) closeMessage();
      else if (typing) target.blur();
      else select(null);
      return;
    }
    if (event.key === "F2" || (event.key === "/" && !typing)) {
      event.preventDefault();
      $("search").focus();
      $("search").select();
      return;
    }
    if (typing) {
      if (event.key === "Enter" && target.id === "search") {
        event.preventDefault();
        const first = $("people").querySelector("[data-testid=person-row]");
        if (first) pick(first.dataset.extension);
      }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (target.matches("button, [tabindex]") && (event.key === "Enter" || event.key === " ")) return;
    const action = KEYS[event.key.toLowerCase()];
    if (action && !(event.key === "Enter" && $("answer").disabled)) {
      event.preventDefault();
      action();
    }
  }

  // ----- start -----------------------------------------------------------------------
  function wire() {
    $("answer").addEventListener("click", answer);
    $("park").addEventListener("click", park);
    $("transfer").addEventListener("click", () => transfer(false));
    $("consult").addEventListener("click", () => transfer(true));
    $("complete").addEventListener("click", () => finishConsult("complete"));
    $("take-back").addEventListener("click", () => finishConsult("cancel"));
    $("message").addEventListener("click", openMessage);
    $("message-cancel").addEventListener("click", closeMessage);
    $("message-form").addEventListener("submit", saveMessage);
    $("referral-form").addEventListener("submit", setReferral);
    $("referral-clear").addEventListener("click", clearReferral);
    for (const button of $("presence").querySelectorAll("button")) {
      button.addEventListener("click", () => setPresence(button.dataset.presence));
    }
    $("search").addEventListener("input", renderPeople);
    document.addEventListener("keydown", onKey);
  }
  async function loadDirectory() {
    const found = await act(null, () => api("GET", "/directory"));
    S.directory = found || [];
    S.byExt = new Map(S.directory.map((p) => [p.extension, p]));
    renderAll();
  }
  /** The directory again only when a person's line changed: the operators' own phones
   *  change with every call, and rebuilding the list each time costs a busy console. */
  let shownLines = "";
  function renderLines() {
    const lines = (S.board && S.board.lines) || {};
    const now = S.directory.map((p) => lines[p.extension] || "").join(",");
    if (now === shownLines) return;
    shownLines = now;
    renderPeople();
  }
  const RENDER = { calls: renderQueue, operators: () => { renderOperators(); renderButtons(); },
    messages: renderMessages, referrals: renderPeople, lines: renderLines };

  VVK.start(async (me) => {
    S.me = me;
    if (!VVK.hasRole(me, "operator", "admin")) {
      $("app").hidden = true;
      say("Konsolen är för telefonister: logga ut och in med en telefonists anknytning.", "error");
      return;
    }
    wire();
    renderAll();
    await loadDirectory();
    S.reasons = await VVK.reasons([]);
    VVK.feed({
      snapshot: async (board) => {
        S.board = board;
        if (S.reasons.fallback) S.reasons = await VVK.reasons(board.referrals);
        renderAll();
      },
      change: (section, data) => {
        if (!S.board) return;
        S.board[section] = data;
        (RENDER[section] || (() => {}))();
      },
      lost: () => {
        S.board = null;
        renderAll();
      },
    });
    setInterval(tick, 1000);
  });
})();
