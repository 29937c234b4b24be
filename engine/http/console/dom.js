// Building the page from elements and text nodes only: every string becomes a text node, so nothing the API
// answers (a user id, a message's text, a journey's name) is ever parsed as markup.

const SVG = "http://www.w3.org/2000/svg";

function fill(element, attrs, children) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") element.addEventListener(name.slice(2), value);
    else if (name === "value" && "value" in element) element.value = value;
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** An HTML element: h("td", {class: "n"}, "text", otherNode). */
export function h(tag, attrs, ...children) {
  return fill(document.createElement(tag), attrs, children);
}

/** An SVG element, the same way. */
export function svg(tag, attrs, ...children) {
  return fill(document.createElementNS(SVG, tag), attrs, children);
}

/**
 * A table: `columns` are [title, row => cell content] pairs; `empty` is said when there are no rows.
 */
export function table(columns, rows, empty = "nothing yet") {
  if (!rows.length) return h("p", {class: "empty"}, empty);
  const head = h("tr", {}, columns.map(([title]) => h("th", {}, title)));
  const body = rows.map(row => h("tr", {}, columns.map(([, cell]) => h("td", {}, cell(row)))));
  return h("table", {}, h("thead", {}, head), h("tbody", {}, body));
}

/** A titled section of a page. */
export function section(title, ...children) {
  return h("section", {}, h("h2", {}, title), ...children);
}

/** A small key/value list: [["email", "a@b"], ...]. */
export function facts(pairs) {
  return h("dl", {class: "facts"}, pairs.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v ?? "—")]));
}

export function badge(text, kind = text) {
  return h("span", {class: `badge ${kind}`}, text);
}

export function link(href, text) {
  return h("a", {href}, text);
}

export function number(value) {
  return value === undefined || value === null ? "—" : Number(value).toLocaleString("en");
}

export function money(value) {
  return value === undefined || value === null ? "—" : Number(value).toFixed(4);
}

/** An RFC 3339 time in the reader's zone, written 2026-01-05 15:00:00 (no day/month ambiguity). */
export function when(value) {
  if (!value) return "—";
  const at = new Date(value);
  return Number.isNaN(at.getTime()) ? String(value) : at.toLocaleString("sv-SE");
}

export function errorBox(error) {
  return h("p", {class: "error", role: "alert"}, error.message || String(error));
}
