// One person: profile, consent ledger and suppressions, engagement, instances with their paths,
// every decision with each candidate's reason, reach and cost, the messages and their receipts,
// and a timeline of all of it, oldest first.

import {ApiError, api, quoted} from "./api.js";
import {badge, facts, h, link, money, number, section, table, when} from "./dom.js";

/** The form that opens a person's page, on the page and in the header. */
export function lookupForm(id, current = "") {
  const input = h("input", {type: "search", name: "user_id", id, placeholder: "user id",
    value: current, required: true, "aria-label": "user id"});
  return h("form", {class: "lookup", role: "search", onsubmit: event => {
    event.preventDefault();
    const id = input.value.trim();
    if (id) window.location.hash = `#/people/${quoted(id)}`;
  }}, input, h("button", {type: "submit"}, "Look up"));
}

async function optional(request) {
  try {
    return await request;
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return null;
    throw error;
  }
}

function profileSection(profile) {
  if (!profile) return section("Profile", h("p", {class: "empty"}, "no profile is stored for this person"));
  return section("Profile", facts([
    ["user id", profile.user_id], ["time zone", profile.timezone], ["locale", profile.locale],
    ["email", profile.email], ["phone", profile.phone], ["push token", profile.push_token],
    ["rcs", profile.rcs_capable ? "capable" : "not capable"],
    ...Object.entries(profile.attributes || {}).map(([name, value]) =>
      [name, typeof value === "string" ? value : JSON.stringify(value)]),
  ]));
}

function consentSection(exported, profile) {
  const ledger = exported?.consents || profile?.consents || [];
  return section("Consent",
    table([["channel", c => c.channel || "—"], ["category", c => c.category || "—"],
      ["granted", c => badge(c.granted ? "granted" : "withdrawn")], ["source", c => c.source || "—"],
      ["at", c => when(c.at)]], ledger, "no consent recorded"),
    h("h3", {}, "Suppressions"),
    table([["number", s => s.number], ["keyword", s => s.keyword], ["source", s => s.source || "—"],
      ["at", s => when(s.at)]], exported?.suppressions || [], "the person's number is not suppressed"));
}

function engagementSection(profile) {
  const rows = Object.entries(profile?.engagement || {}).map(([channel, e]) => ({channel, ...e}));
  return section("Engagement", table([
    ["channel", r => r.channel], ["sent", r => number(r.sent)], ["delivered", r => number(r.delivered)],
    ["failed", r => number(r.failed)], ["engaged", r => number(r.engaged)],
    ["last engaged", r => when(r.last_engaged_at)],
  ], rows, "no engagement counted"));
}

function timerText(timer) {
  return timer ? `${timer.kind} until ${when(timer.due_at)} (${timer.reason})` : "—";
}

function instancesSection(instances) {
  return section("Instances", table([
    ["journey", i => link(`#/journeys/${quoted(i.journey_id)}`, i.journey_id)], ["status", i => badge(i.status)],
    ["step", i => i.step || "—"], ["path", i => h("span", {class: "path"}, (i.path || []).join(" → "))],
    ["entered", i => when(i.entered_at)], ["ended", i => when(i.ended_at)], ["reason", i => i.reason || "—"],
    ["timer", i => timerText(i.timer)],
  ], instances, "no instances"));
}

function outcome(send) {
  if (send.message_id) return `sent on ${send.channel}: ${send.status || send.dispatch}`;
  return send.status === "deferred" ? `deferred: ${send.reason}` : `skipped: ${send.reason}`;
}

function candidates(decisions) {
  return table([
    ["channel", d => d.channel], ["eligible", d => badge(d.eligible ? "eligible" : "not eligible")],
    ["reason", d => h("span", {class: "reason"}, d.reason || "—")], ["reach", d => d.reach ?? "—"],
    ["cost", d => money(d.cost)], ["score", d => d.score ?? "—"],
  ], decisions || [], "no candidates recorded");
}

function decisionCard(send) {
  return h("article", {class: "decision"},
    h("h3", {}, `${when(send.at)} · ${send.journey_id || ""} · step ${send.step || "—"} · message ${send.message || "—"}`),
    h("p", {class: "outcome"}, outcome(send)),
    send.choice ? h("p", {class: "choice"}, `${send.choice.strategy}: ${send.choice.reason}`) : null,
    send.detail ? h("p", {class: "detail"}, send.detail) : null,
    candidates(send.decisions));
}

function decisionsSection(sent) {
  const sends = [...sent.messages, ...sent.deferred, ...sent.skipped]
    .sort((a, b) => String(b.at || b.next_attempt_at).localeCompare(String(a.at || a.next_attempt_at)));
  return section("Decisions", sends.length ? sends.map(decisionCard) : h("p", {class: "empty"}, "no decisions yet"));
}

function linksText(message) {
  const hits = (message.links || []).reduce((sum, l) => sum + l.hits, 0);
  return message.links?.length ? `${number(hits)} hits on ${message.links.length}` : "—";
}

function messagesSection(messages) {
  return section("Sends and receipts", table([
    ["at", m => when(m.at)], ["journey", m => m.journey_id || "—"], ["step", m => m.step || "—"],
    ["channel", m => m.channel], ["status", m => badge(m.status || "—")], ["dispatch", m => m.dispatch || "—"],
    ["last receipt", m => when(m.status_at)], ["provider", m => m.provider || "—"],
    ["attempts", m => number(m.attempts)], ["error", m => m.error || "—"], ["links", linksText],
  ], messages, "nothing sent"));
}

function candidateText(d) {
  const figures = d.reach !== undefined && d.reach !== null ? ` (reach ${d.reach}, cost ${money(d.cost)})` : "";
  return `${d.channel} ${d.eligible ? "eligible" : d.reason}${figures}`;
}

const DETAILS = {
  event: t => `${t.type} ${JSON.stringify(t.properties || {})}`,
  instance: t => [t.action, t.reason, t.path ? t.path.join(" → ") : null].filter(Boolean).join(" · "),
  decision: t => [t.sent ? `${t.message}: ${t.channel} chosen` : `${t.message}: skipped, ${t.reason}`,
    (t.decisions || []).map(candidateText).join("; "), t.choice?.reason].filter(Boolean).join(" · "),
  message: t => `${t.channel} ${t.status} · cost ${money(t.cost)}`,
  receipt: t => [`${t.channel} ${t.status}`, t.provider, t.error].filter(Boolean).join(" · "),
  timer: t => `${t.timer}${t.reason ? ` (${t.reason})` : ""}`,
};

function details(item) {
  return (DETAILS[item.kind] || (t => JSON.stringify(t)))(item);
}

function timelineSection(items) {
  return section("Timeline", table([
    ["at", t => when(t.at)], ["kind", t => badge(t.kind)], ["journey", t => t.journey || "—"],
    ["step", t => t.step || "—"], ["what", t => h("span", {class: "details"}, details(t))],
  ], items, "nothing has happened to this person"));
}

/** #/people/<id> (or #/people: the form alone). */
export async function renderPerson(main, id) {
  main.replaceChildren(h("h1", {}, id ? `Person ${id}` : "Find a person"), lookupForm("person-lookup", id || ""));
  if (!id) return;
  const [profile, exported, instances, sent, timeline] = await Promise.all([
    optional(api(`/v1/profiles/${quoted(id)}`)), optional(api(`/v1/profiles/${quoted(id)}/export`)),
    api(`/v1/users/${quoted(id)}/instances`), api("/v1/messages", {query: {user_id: id}}),
    api(`/v1/users/${quoted(id)}/timeline`),
  ]);
  main.append(profileSection(profile), consentSection(exported, profile), engagementSection(profile),
    instancesSection(instances.instances), decisionsSection(sent), messagesSection(sent.messages),
    timelineSection(timeline.items));
}
