// A journey's graph as SVG, from `GET /v1/journeys/{id}/graph` (the server places the nodes), and
// counts painted on it: the stats document's (`entered`, `steps[s].entered/waiting/left[t]`), or
// the same shape counted from a dry run's instances.

import {number, svg} from "./dom.js";

const W = 190;
const H = 64;
const BOW = 120;  // how far an edge that skips rows or goes back swings out beside the nodes
const START = "(start)";
const END = "(end)";

function crossesNodes(layout, a, b) {
  return a.x === b.x && layout.nodes.some(n => n.x === a.x && n.y > a.y && n.y < b.y);
}

/** The edge's path and where its label goes: down between rows, or around the side. */
function route(layout, a, b) {
  if (b.y > a.y && !crossesNodes(layout, a, b)) {
    const [y1, y2] = [a.y + H / 2, b.y - H / 2];
    const mid = (y1 + y2) / 2;
    return {d: `M${a.x},${y1} C${a.x},${mid} ${b.x},${mid} ${b.x},${y2}`, at: [(a.x + b.x) / 2, mid]};
  }
  const side = b.y > a.y ? 1 : -1;  // skipping rows: the right; going back up: the left
  const [x1, x2] = [a.x + side * W / 2, b.x + side * W / 2];
  const d = `M${x1},${a.y} C${x1 + side * BOW},${a.y} ${x2 + side * BOW},${b.y} ${x2},${b.y}`;
  return {d, at: [(x1 + x2) / 2 + side * BOW * 0.75, (a.y + b.y) / 2]};
}

function short(text, limit) {
  return text.length > limit ? `${text.slice(0, limit - 1)}…` : text;
}

function drawEdge(layout, byId, edge) {
  const {d, at} = route(layout, byId.get(edge.from), byId.get(edge.to));
  const [x, y] = at;
  return svg("g", {class: "edge", "data-from": edge.from, "data-to": edge.to},
    svg("title", {}, edge.label ? `${edge.from} → ${edge.to}: ${edge.label}` : `${edge.from} → ${edge.to}`),
    svg("path", {d, "marker-end": "url(#arrow)"}),
    edge.label ? svg("text", {class: "edge-label", x, y: y - 8}, short(edge.label, 30)) : null,
    svg("text", {class: "edge-count", x, y: y + 8}, ""));
}

function drawNode(node) {
  const [x, y] = [node.x - W / 2, node.y - H / 2];
  return svg("g", {class: `node ${node.kind}`, "data-node": node.id},
    svg("title", {}, `${node.id}: ${node.label}`),
    svg("rect", {x, y, width: W, height: H, rx: node.kind === "start" || node.kind === "end" ? 32 : 8}),
    svg("text", {class: "node-id", x: node.x, y: node.y - 12}, short(node.id, 26)),
    svg("text", {class: "node-label", x: node.x, y: node.y + 4}, short(node.label, 30)),
    svg("text", {class: "count", x: node.x, y: node.y + 21}, ""));
}

function arrowHead() {
  return svg("defs", {}, svg("marker", {id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7,
    markerHeight: 7, orient: "auto-start-reverse"}, svg("path", {d: "M0,0 L10,5 L0,10 z"})));
}

/** The SVG of a laid-out graph, its counts empty until `paint`. */
export function drawGraph(layout) {
  const byId = new Map(layout.nodes.map(n => [n.id, n]));
  const pad = BOW + 40;
  return svg("svg", {class: "graph", viewBox: `${-pad} 0 ${layout.width + 2 * pad} ${layout.height}`,
    width: layout.width + 2 * pad, height: layout.height, role: "img", "aria-label": `graph of ${layout.journey}`},
    arrowHead(),
    layout.edges.map(e => drawEdge(layout, byId, e)),
    layout.nodes.map(drawNode));
}

function nodeText(node, counts, into) {
  if (node.id === START) return `${number(counts.entered)} entered`;
  if (node.id === END) return `${number(into)} completed`;
  const step = counts.steps?.[node.id];
  if (!step) return "0 entered";
  return step.waiting ? `${number(step.entered)} entered · ${number(step.waiting)} waiting`
    : `${number(step.entered)} entered`;
}

function edgeCount(counts, edge) {
  if (edge.from === START) return counts.entered ?? 0;
  return counts.steps?.[edge.from]?.left?.[edge.to] ?? 0;
}

/** Write `counts` (the stats document's shape) on the nodes and edges of a drawn graph. */
export function paint(graph, layout, counts) {
  const into = new Map();
  for (const edge of layout.edges) {
    const count = edgeCount(counts, edge);
    into.set(edge.to, (into.get(edge.to) || 0) + count);
    const text = graph.querySelector(`g.edge[data-from="${CSS.escape(edge.from)}"][data-to="${CSS.escape(edge.to)}"] .edge-count`);
    if (text) text.textContent = number(count);
  }
  for (const node of layout.nodes) {
    const text = graph.querySelector(`g.node[data-node="${CSS.escape(node.id)}"] .count`);
    if (text) text.textContent = nodeText(node, counts, into.get(node.id) || 0);
  }
}

function bump(table, key, by = 1) {
  table[key] = (table[key] || 0) + by;
}

/** The stats shape counted from instances (a dry run's): where each went, where each waits. */
export function countsFromInstances(instances) {
  const steps = {};
  const stepOf = id => (steps[id] ||= {entered: 0, waiting: 0, left: {}});
  for (const instance of instances) {
    const path = instance.path || [];
    path.forEach((id, i) => {
      bump(stepOf(id), "entered");
      if (i + 1 < path.length) bump(stepOf(id).left, path[i + 1]);
    });
    const last = path[path.length - 1];
    if (last && instance.status === "completed") bump(stepOf(last).left, END);
    if (last && instance.status === "active") bump(stepOf(last), "waiting");
  }
  return {entered: instances.length, steps};
}
