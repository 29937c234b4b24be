// Dry runs from the browser: pick a journey, paste or upload events and profiles (JSON lines or a
// JSON array), and see the simulation as tables and as counts on the graph; or a forecast, the
// same inputs run many times, as ranges.

import {ApiError, api, quoted} from "./api.js";
import {badge, errorBox, facts, h, money, number, section, table, when} from "./dom.js";
import {countsFromInstances, drawGraph, paint} from "./graph.js";

/** JSON lines, or one JSON array; a clear error naming the line that is not JSON. */
export function records(text, what) {
  const trimmed = text.trim();
  if (!trimmed) return [];
  if (trimmed.startsWith("[")) return JSON.parse(trimmed);
  return trimmed.split("\n").map((line, i) => [line.trim(), i + 1]).filter(([line]) => line).map(([line, n]) => {
    try {
      return JSON.parse(line);
    } catch (error) {
      throw new Error(`${what} line ${n}: not JSON (${error.message})`);
    }
  });
}

function inputArea(name, label) {
  const area = h("textarea", {name, id: `${name}-input`, rows: 8, spellcheck: "false",
    placeholder: `${label}: JSON lines or a JSON array`});
  const file = h("input", {type: "file", accept: ".jsonl,.json,.ndjson,application/json", "aria-label": `${label} file`,
    onchange: async event => { area.value = await event.target.files[0].text(); }});
  return h("label", {class: "input-area"}, label, area, file);
}

function range(value, format = number) {
  if (!value || typeof value !== "object") return format(value);
  return `${format(value.mean)} (${format(value.p5)} to ${format(value.p95)})`;
}

function seconds(value) {
  if (value === null || value === undefined) return "—";
  return value < 3600 ? `${Math.round(value / 60)} min` : `${(value / 3600).toFixed(1)} h`;
}

function simulationView(layout, result) {
  const graph = drawGraph(layout);
  paint(graph, layout, countsFromInstances(result.instances));
  const s = result.summary;
  return h("div", {id: "simulation"},
    section("Summary", facts([["users", number(s.users)], ["entered", number(s.entered)],
      ["completed", number(s.completed)], ["converted", number(s.converted)], ["exited", number(s.exited)],
      ["active", number(s.active)], ["failed", number(s.failed)], ["cost", money(s.cost)],
      ["messages", Object.entries(s.messages || {}).map(([c, n]) => `${c} ${n}`).join(", ") || "0"]])),
    section("On the graph", h("div", {class: "graph-box"}, graph)),
    section("Messages", table([["at", m => when(m.at)], ["person", m => m.user_id], ["step", m => m.step],
      ["channel", m => m.channel], ["message", m => m.message], ["cost", m => money(m.cost)],
      ["why", m => m.choice?.reason || "—"]], result.messages, "nothing would be sent")),
    section("Skipped", table([["at", m => when(m.at)], ["person", m => m.user_id], ["step", m => m.step],
      ["reason", m => m.reason]], result.skipped, "nothing skipped")),
    section("Instances", table([["person", i => i.user_id], ["status", i => badge(i.status)],
      ["path", i => (i.path || []).join(" → ")]], result.instances, "nobody entered")));
}

function forecastView(result) {
  const channels = Object.entries(result.channels || {}).map(([channel, c]) => ({channel, ...c}));
  const tte = result.time_to_engagement || {};
  return h("div", {id: "forecast"},
    section("Forecast", facts([["profiles", number(result.profiles)], ["runs", number(result.runs)],
      ["cost", range(result.cost, money)], ["reached", range(result.reached)], ["never reached", range(result.never_reached)],
      ["deferred by quiet hours", range(result.deferred_quiet_hours)],
      ["time to engagement", `p50 ${seconds(tte.p50)}, p90 ${seconds(tte.p90)}`]])),
    section("Channels", table([["channel", c => c.channel], ["messages", c => range(c.messages)],
      ["cost", c => range(c.cost, money)], ["reached", c => range(c.reached)]], channels, "no messages")),
    section("Skipped", table([["reason", ([reason]) => reason], ["count", ([, n]) => range(n)]],
      Object.entries(result.skipped || {}), "nothing skipped")));
}

class DryRun {
  constructor(main, journeys) {
    this.main = main;
    this.select = h("select", {id: "journey-select", "aria-label": "journey"},
      journeys.map(j => h("option", {value: j.id}, j.name ? `${j.name} (${j.id})` : j.id)));
    this.events = inputArea("events", "Events");
    this.profiles = inputArea("profiles", "Profiles");
    this.runs = h("input", {type: "number", id: "forecast-runs", min: 1, max: 10000, value: 200});
    this.result = h("div", {class: "result", "aria-live": "polite"});
  }

  body() {
    return {events: records(this.events.querySelector("textarea").value, "events"),
      profiles: records(this.profiles.querySelector("textarea").value, "profiles")};
  }

  async simulate() {
    const id = this.select.value;
    const [layout, result] = await Promise.all([api(`/v1/journeys/${quoted(id)}/graph`),
      api(`/v1/journeys/${quoted(id)}/simulate`, {method: "POST", body: this.body()})]);
    return simulationView(layout, result);
  }

  async forecast() {
    const body = {...this.body(), runs: Number(this.runs.value), seed: 1};
    try {
      return forecastView(await api(`/v1/journeys/${quoted(this.select.value)}/forecast`, {method: "POST", body}));
    } catch (error) {
      if (!(error instanceof ApiError && error.missingRoute)) throw error;
      return h("p", {class: "empty", id: "forecast"}, "This server has no forecast route " +
        "(POST /v1/journeys/{id}/forecast): upgrade it, or run `journey forecast` from the command line.");
    }
  }

  button(id, label, work) {
    return h("button", {type: "button", id, onclick: async () => {
      this.result.replaceChildren(h("p", {class: "subtle"}, "running…"));
      this.result.replaceChildren(await work().catch(errorBox));
    }}, label);
  }

  render() {
    this.main.replaceChildren(h("h1", {}, "Simulate and forecast"),
      h("p", {class: "subtle"}, "A dry run on a virtual clock: nothing is sent or stored."),
      h("div", {class: "dry-run"}, h("label", {}, "Journey ", this.select), this.events, this.profiles,
        h("div", {class: "controls"}, this.button("run-simulate", "Simulate", () => this.simulate()),
          h("label", {}, "forecast runs ", this.runs), this.button("run-forecast", "Forecast", () => this.forecast()))),
      this.result);
  }
}

/** #/simulate: the dry-run form and its results. */
export async function renderSimulate(main) {
  const {journeys} = await api("/v1/journeys");
  new DryRun(main, journeys.filter(j => j.state !== "removed")).render();
}
