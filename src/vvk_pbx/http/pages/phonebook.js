/* The phone book for everyone logged in: search, who is away; a person's own referral
   and messages. No live feed (staff may not have it): it asks again every 10 s. */
"use strict";

(() => {
  const { el, $, api, act } = VVK;
  const POLL_MS = 10000;
  const S = { me: null, staff: false, directory: [], referrals: [], messages: [], reasons: [] };
  const enc = encodeURIComponent;
  const referralOf = (ext) => S.referrals.find((r) => r.extension === ext) || null;

  function renderPeople() {
    const query = $("search").value;
    const found = S.directory.filter((p) => VVK.matches(query, p.name, p.unit, p.unit_name, p.title, p.extension)).slice(0, 100);
    $("people").replaceChildren(...found.map((p) => VVK.personRow(p, referralOf(p.extension), null, () => {})));
    if (!found.length) $("people").append(el("li", { class: "muted", text: "Ingen träff." }));
  }
  function renderMine() {
    if (!S.staff) return;
    const mine = referralOf(S.me.extension);
    $("my-referral").textContent = mine ? `Du ${VVK.referralText(mine)}` : "Ingen hänvisning: din telefon är öppen.";
    $("referral-clear").disabled = !mine;
    const open = S.messages.filter((m) => m.extension === S.me.extension && m.status !== "called_back");
    $("messages").replaceChildren(...open.map((m) => el("li", { "data-testid": "message-row", "data-message-id": m.id,
      class: m.overdue ? "late" : "" },
    el("span", { class: "name", text: [m.caller, m.name].filter(Boolean).join(" ") }),
    m.note ? el("span", { text: m.note }) : null,
    el("span", { class: "muted", text: [m.left_at && `lämnat ${VVK.when(m.left_at)}`,
      m.deadline && `ring senast ${VVK.when(m.deadline)}`, m.taken_by && `tog emot: ${m.taken_by}`].filter(Boolean).join(" · ") }),
    el("button", { type: "button", "data-testid": "called-back", text: "Ringt tillbaka",
      onclick: () => act("Markerat som återuppringt", async () => { await api("POST", `/messages/${enc(m.id)}/called-back`); await poll(); }) }))));
    if (!open.length) $("messages").append(el("li", { class: "muted", text: "Inga meddelanden." }));
  }
  function fillForm() {
    const mine = referralOf(S.me.extension);
    VVK.fillReasons($("referral-reason"), S.reasons, mine ? mine.reason : undefined);
    $("referral-until").value = VVK.untilValue(mine);
    $("referral-note").value = (mine && mine.note) || "";
  }

  let timer = null;
  async function poll() {
    clearTimeout(timer);
    try {
      S.referrals = await api("GET", "/referrals");
      if (S.staff) S.messages = await api("GET", "/messages");
      $("feed-lost").hidden = true;
    } catch (exc) {
      if (exc.status === 401) return; // the login form is shown
      $("feed-lost").hidden = false;
      VVK.say(`Kan inte hämta hänvisningarna: ${exc.message}`, "error");
    }
    renderPeople();
    renderMine();
    timer = setTimeout(poll, POLL_MS);
  }
  async function setReferral(event) {
    event.preventDefault();
    const body = { reason: Number($("referral-reason").value), until: $("referral-until").value };
    const note = $("referral-note").value.trim();
    if (note) body.note = note;
    await act("Hänvisningen är satt", () => api("PUT", `/referrals/${enc(S.me.extension)}`, body));
    await poll();
  }
  async function clearReferral() {
    await act("Hänvisningen är borttagen", () => api("DELETE", `/referrals/${enc(S.me.extension)}`));
    await poll();
    fillForm();
  }

  VVK.start(async (me) => {
    S.me = me;
    S.staff = VVK.hasRole(me, "staff");
    $("mine").hidden = !S.staff;
    $("search").addEventListener("input", renderPeople);
    $("referral-form").addEventListener("submit", setReferral);
    $("referral-clear").addEventListener("click", clearReferral);
    S.directory = (await act(null, () => api("GET", "/directory"))) || [];
    await poll();
    if (S.staff) {
      S.reasons = await VVK.reasons(S.referrals);
      fillForm();
    }
    $("search").focus();
  });
})();
