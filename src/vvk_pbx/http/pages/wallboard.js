/* The wallboard: open or closed, the queue against the four-ring goal, the operators,
   today's figures and who is away. Read only; live from the feed. */
"use strict";

(() => {
  const { el, $ } = VVK;
  let board = null; // null while the feed is down: nothing stale is shown
  let names = new Map();
  const nameOf = (ext) => names.get(ext) || ext;

  function waitingCalls() {
    const operators = new Set(((board && board.operators) || []).map((o) => o.extension));
    return ((board && board.calls) || []).filter((c) => c.state === "waiting" || c.state === "parked" ||
      (c.state === "ringing" && (c.position !== null || (c.ringing || []).some((ext) => operators.has(ext)))))
      .sort((a, b) => Date.parse(a.arrived_at) - Date.parse(b.arrived_at)); // the longest wait first
  }
  function ringClass(rings, goal) {
    if (rings >= goal) return "late";
    return rings >= goal - 1 ? "soon" : "ok";
  }
  function renderHours() {
    const hours = board && board.hours;
    $("hours").textContent = hours ? (hours.open ? "Öppet" : "Stängt") : "–";
    $("hours").className = `hours ${hours ? (hours.open ? "open" : "closed") : ""}`;
    const next = hours && hours.next_change ? `${hours.open ? "Stänger" : "Öppnar"} ${VVK.when(hours.next_change)}` : "";
    $("next-change").textContent = next;
    $("next-change").title = (hours && hours.reason) || "";
  }
  function renderQueue() {
    const policy = (board && board.policy) || { cycle_ms: 6000, goal_rings: 4 };
    const waiting = waitingCalls();
    const waits = waiting.map((c) => VVK.sinceMs(c.arrived_at));
    $("waiting-count").textContent = board ? String(waiting.length) : "–";
    $("longest-wait").textContent = board ? (waits.length ? VVK.mmss(Math.max(...waits)) : "0:00") : "–";
    $("waiting").replaceChildren(...waiting.map((call, n) => {
      const rings = Math.floor(waits[n] / policy.cycle_ms) + 1;
      return el("li", { "data-testid": "wait-row", "data-call-id": call.id, class: ringClass(rings, policy.goal_rings) },
        el("span", { class: "name", text: call.name || call.caller || "okänt nummer" }),
        el("span", { text: call.external ? "Externt" : "Internt" }),
        el("span", { text: VVK.mmss(waits[n]) }),
        el("span", { class: "rings", "data-testid": "rings", text: `ring ${rings}/${policy.goal_rings}` }),
        el("span", { class: "muted", text: VVK.label("call", call.state) }));
    }));
    if (board && !waiting.length) $("waiting").append(el("li", { class: "muted", text: "Ingen väntar." }));
    $("app").classList.toggle("stale", !board);
  }
  function renderToday() {
    const today = board && board.today;
    const goal = (board && board.policy && board.policy.goal_rings) || 4;
    $("share-label").textContent = `svarade inom ${goal} signaler idag`;
    const share = today && typeof today.share === "number" ? `${Math.round(today.share * 100)} %` : "–";
    $("share").textContent = share;
    $("share").title = today ? `${today.within_goal} av ${today.answered} besvarade, ${today.calls} samtal` : "";
    $("abandoned").textContent = today && typeof today.abandoned === "number" ? String(today.abandoned) : "–";
  }
  function renderOperators() {
    $("operators").replaceChildren(...((board && board.operators) || []).map((o) => el("li",
      { "data-testid": "operator-row", "data-extension": o.extension, class: `op-${o.state}` },
      el("span", { class: "name", text: o.name || o.extension }),
      el("span", { "data-testid": "operator-state", text: VVK.label("operator", o.state) }),
      o.presence ? el("span", { class: "muted", text: VVK.label("presence", o.presence) }) : null)));
  }
  function renderReferrals() {
    $("referrals").replaceChildren(...((board && board.referrals) || []).map((r) => el("li",
      { "data-testid": "referral-row", "data-extension": r.extension },
      el("span", { class: "name", text: nameOf(r.extension) }),
      el("span", { "data-testid": "referral", text: VVK.referralText(r) }))));
    if (board && !(board.referrals || []).length) $("referrals").append(el("li", { class: "muted", text: "Ingen är hänvisad." }));
  }
  function renderAll() {
    renderHours();
    renderQueue();
    renderToday();
    renderOperators();
    renderReferrals();
  }
  const RENDER = { hours: renderHours, calls: renderQueue, operators: () => { renderOperators(); renderQueue(); },
    today: renderToday, referrals: renderReferrals, policy: renderAll };

  VVK.start(async (me) => {
    if (!VVK.hasRole(me, "operator", "admin", "reports")) {
      $("app").hidden = true;
      VVK.say("Tavlan visas för telefonister och rapportkonton.", "error");
      return;
    }
    renderAll();
    const directory = await VVK.act(null, () => VVK.api("GET", "/directory"));
    names = new Map((directory || []).map((p) => [p.extension, p.name]));
    VVK.feed({
      snapshot: (data) => { board = data; renderAll(); },
      change: (section, data) => {
        if (!board) return;
        board[section] = data;
        (RENDER[section] || (() => {}))();
      },
      lost: () => { board = null; renderAll(); },
    });
    setInterval(renderQueue, 1000);
  });
})();
