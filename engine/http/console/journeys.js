// The journeys: the list with state and versions; one journey's graph with the stats' counts on
// its nodes and edges, refreshed every few seconds, and its pause / resume / stop / reload buttons.

import {api, quoted} from "./api.js";
import {badge, facts, h, link, money, number, section, table, when} from "./dom.js";
import {drawGraph, paint} from "./graph.js";

const REFRESH_MS = 3000;
const SUMMARY_EVERY = 10;

function trigger(journey) {
  const t = journey.trigger || {};
  return t.event || (t.schedule ? `schedule ${t.schedule}` : t.at ? `at ${t.at}` : "—");
}

/** #/journeys: every journey with its state, current version and versions. */
export async function renderList(main) {
  const {journeys} = await api("/v1/journeys");
  main.replaceChildren(h("h1", {}, "Journeys"), table([
    ["journey", j => link(`#/journeys/${quoted(j.id)}`, j.name ? `${j.name} (${j.id})` : j.id)],
    ["state", j => badge(j.state)],
    ["trigger", trigger],
    ["version", j => j.version || "—"],
    ["versions", j => number(j.versions.length)],
    ["active instances", j => number(j.active_instances)],
  ], journeys, "no journeys are loaded"));
}

function channelRows(stats) {
  return Object.entries(stats.channels || {}).map(([channel, c]) => ({channel, ...c}));
}

function skippedText(skipped) {
  const entries = Object.entries(skipped || {}).filter(([, n]) => n);
  return entries.length ? entries.map(([reason, n]) => `${reason} ${number(n)}`).join(", ") : "0";
}

function channelsTable(stats) {
  const m = row => row.messages || {};
  const e = row => row.engagement || {};
  return table([
    ["channel", r => r.channel], ["queued", r => number(m(r).queued)], ["sent", r => number(m(r).sent)],
    ["delivered", r => number(m(r).delivered)], ["failed", r => number(m(r).failed)],
    ["cancelled", r => number(m(r).cancelled)], ["skipped", r => skippedText(r.skipped)],
    ["opened", r => number(e(r).opened)], ["clicked", r => number(e(r).clicked)],
    ["replied", r => number(e(r).replied)], ["cost", r => money(r.cost)],
  ], channelRows(stats), "no messages yet");
}

function pathsTable(stats) {
  const rows = Object.entries(stats.paths || {}).flatMap(([split, branches]) =>
    Object.entries(branches).map(([branch, b]) => ({split, branch, ...b})));
  return table([
    ["split", r => r.split], ["branch", r => r.branch], ["entered", r => number(r.entered)],
    ["conversions", r => number(r.conversions)],
    ["active", r => number(r.instances?.active)], ["completed", r => number(r.instances?.completed)],
  ], rows, "no split steps");
}

function totals(stats) {
  const i = stats.instances || {};
  return facts([["entered", number(stats.entered)], ["conversions", number(stats.conversions)],
    ["active", number(i.active)], ["completed", number(i.completed)], ["exited", number(i.exited)],
    ["failed", number(i.failed)], ["cancelled", number(i.cancelled)]]);
}

function versionsTable(journey) {
  return table([
    ["version", v => v.version], ["file", v => v.file || "—"], ["first loaded", v => when(v.first_loaded_at)],
    ["active instances", v => number(v.active_instances)], ["current", v => (v.current ? "yes" : "")],
  ], journey.versions || []);
}

/** The buttons, enabled as the journey's state allows: a stop is final. */
function controls(view) {
  const state = view.journey.state;
  const button = (action, label, enabled) => h("button", {
    type: "button", id: `${action}-journey`, disabled: !enabled, onclick: () => view.act(action),
  }, label);
  return h("div", {class: "controls"},
    button("pause", "Pause", state === "active"),
    button("resume", "Resume", state === "paused"),
    button("stop", "Stop", state === "active" || state === "paused"),
    h("button", {type: "button", id: "reload-journeys", onclick: () => view.reload()}, "Reload journeys"),
    view.status);
}

class JourneyView {
  constructor(main, id) {
    this.main = main;
    this.id = id;
    this.ticks = 0;
    this.status = h("span", {class: "status", role: "status", id: "action-status"});
    this.updated = h("span", {class: "updated"});
  }

  path(tail = "") {
    return `/v1/journeys/${quoted(this.id)}${tail}`;
  }

  /** The journey, its graph and its stats at once; the graph drawn, the counts painted. */
  async load() {
    const [journey, layout, stats] = await Promise.all([api(this.path()), api(this.path("/graph")),
      api(this.path("/stats"))]);
    Object.assign(this, {journey, layout, graph: drawGraph(layout)});
    this.head = h("div", {});
    this.numbers = h("div", {});
    this.main.replaceChildren(this.head, section("Graph", h("div", {class: "graph-box"}, this.graph)), this.numbers);
    this.show(stats);
  }

  /** Every few seconds: the stats (kept as counters: cheap to read); the journey itself, whose
   * answer counts its instances, only every SUMMARY_EVERY turns, to see a reload or another's pause. */
  async refresh() {
    this.ticks += 1;
    if (this.ticks % SUMMARY_EVERY === 0 && await this.changed()) return this.load();
    return this.show(await api(this.path("/stats")));
  }

  async changed() {
    const version = this.journey.version;
    this.journey = await api(this.path());
    return Boolean(this.journey.version) && version !== this.journey.version;
  }

  show(stats) {
    this.stats = stats;
    paint(this.graph, this.layout, stats);
    const j = this.journey;
    this.updated.textContent = `live: updated ${new Date().toLocaleTimeString("sv-SE")}`;
    this.head.replaceChildren(h("h1", {}, j.name || j.id, " ", badge(j.state)),
      h("p", {class: "subtle"}, `${j.id} · trigger ${trigger(j)} · version ${j.version || "—"} · `, this.updated),
      controls(this));
    this.numbers.replaceChildren(section("Totals", totals(stats)), section("Channels", channelsTable(stats)),
      section("Split paths", pathsTable(stats)), section("Versions", versionsTable(j)));
  }

  async act(action) {
    if (action === "stop" && !window.confirm(`Stop ${this.id}? Every instance in flight ends; a stop is final.`)) {
      return;
    }
    await this.run(async () => {
      const done = await api(this.path(`/${action}`), {method: "POST"});
      Object.assign(this.journey, {state: done.state, versions: done.versions});
      return `${this.id} is ${done.state}`;
    });
  }

  async reload() {
    await this.run(async () => {
      const r = await api("/v1/journeys/reload", {method: "POST"});
      if (await this.changed()) await this.load();
      return `reloaded: ${r.added.length} added, ${r.changed.length} changed, ${r.removed.length} removed`;
    });
  }

  async run(action) {
    try {
      this.status.textContent = await action();
      this.status.className = "status ok";
    } catch (error) {
      this.status.textContent = error.message;
      this.status.className = "status error";
    }
    this.show(await api(this.path("/stats")));
  }
}

/** #/journeys/<id>: the graph with live counts, totals, channels, split paths, versions. */
export async function renderJourney(main, id) {
  const view = new JourneyView(main, id);
  await view.load();
  const timer = window.setInterval(() => view.refresh().catch(error => {
    view.updated.textContent = `not updated: ${error.message}`;
  }), REFRESH_MS);
  return () => window.clearInterval(timer);
}
