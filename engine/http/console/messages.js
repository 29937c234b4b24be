// Messages across people, filtered (journey, step, channel, status, time), newest first, a page at
// a time (or one person's, with `user_id`); and the audience runs of the journeys entered by schedule, with their progress.

import {api, quoted} from "./api.js";
import {badge, errorBox, h, link, money, number, section, table, when} from "./dom.js";

const FILTERS = [["user_id", "user id"], ["journey", "journey"], ["step", "step"], ["channel", "channel"],
  ["status", "status"], ["since", "since (RFC 3339)"], ["until", "until (RFC 3339)"]];

function filterForm(query) {
  const inputs = FILTERS.map(([name, label]) => h("label", {}, label,
    h("input", {name, id: `filter-${name}`, value: query.get(name) || ""})));
  return h("form", {class: "filters", onsubmit: event => {
    event.preventDefault();
    const params = new URLSearchParams();
    for (const input of event.target.querySelectorAll("input")) if (input.value.trim()) params.set(input.name, input.value.trim());
    window.location.hash = `#/messages?${params}`;
  }}, inputs, h("button", {type: "submit"}, "Filter"));
}

function decisionsText(message) {
  return (message.decisions || []).map(d => `${d.channel} ${d.eligible ? "eligible" : d.reason}`).join(", ") || "—";
}

function messagesTable(messages) {
  return table([
    ["at", m => when(m.at)], ["person", m => link(`#/people/${quoted(m.user_id)}`, m.user_id)],
    ["journey", m => m.journey_id || "—"], ["step", m => m.step || "—"], ["channel", m => m.channel],
    ["status", m => badge(m.status || "—")], ["dispatch", m => m.dispatch || "—"], ["cost", m => money(m.cost)],
    ["decisions", m => h("span", {class: "reason"}, decisionsText(m))],
    ["why", m => m.choice?.reason || m.error || "—"],
  ], messages, "no messages match");
}

/** One page of messages, and a button for the next one while the server gives a cursor. */
async function messagesPage(query, cursor) {
  const params = Object.fromEntries(query.entries());
  const page = await api("/v1/messages", {query: {...params, cursor}});
  const more = page.next_cursor ? h("button", {type: "button", class: "more", onclick: async event => {
    event.target.replaceWith(await messagesPage(query, page.next_cursor).catch(errorBox));
  }}, "Older messages") : null;
  return h("div", {}, messagesTable(page.messages), more);
}

function runProgress(run) {
  const done = run.status === "finished";
  return h("span", {class: "progress"},
    h("progress", done || run.status === "running" ? {max: Math.max(run.matched, 1), value: done ? run.matched : run.entered} : {}),
    ` ${number(run.profiles)} looked at, ${number(run.matched)} matched, ${number(run.entered)} entered`);
}

function runsTable(runs) {
  return table([
    ["journey", r => link(`#/journeys/${quoted(r.journey_id)}`, r.journey_id)], ["trigger", r => r.trigger],
    ["status", r => badge(r.status)], ["due", r => when(r.scheduled_at)], ["progress", runProgress],
    ["skipped", r => Object.entries(r.skipped || {}).map(([k, n]) => `${k} ${n}`).join(", ") || "—"],
    ["error", r => r.error || "—"],
  ], runs, "no audience runs yet");
}

async function audienceRuns() {
  const {journeys} = await api("/v1/journeys");
  const scheduled = journeys.filter(j => j.state !== "removed" && !j.trigger?.event);
  const lists = await Promise.all(scheduled.map(j => api(`/v1/journeys/${quoted(j.id)}/runs`)));
  return lists.flatMap(list => list.runs).sort((a, b) => b.scheduled_at.localeCompare(a.scheduled_at));
}

/** #/messages?journey_id=&channel=...: the filtered messages, then the audience runs. */
export async function renderMessages(main, query) {
  const list = await messagesPage(query).catch(errorBox);
  main.replaceChildren(h("h1", {}, "Messages"), filterForm(query), list,
    section("Audience runs", runsTable(await audienceRuns())));
}
