// The console's shell: the key, asked once per tab; the header; and the hash routes, each drawn
// by its page's module. `main[data-loaded]` names the page once its data is on screen.

import {api, apiKey, forgetKey, keepKey} from "./api.js";
import {errorBox, h} from "./dom.js";
import {renderJourney, renderList} from "./journeys.js";
import {renderMessages} from "./messages.js";
import {lookupForm, renderPerson} from "./person.js";
import {renderSimulate} from "./simulate.js";

const ROUTES = {
  journeys: (main, [id]) => (id ? renderJourney(main, id) : renderList(main)),
  people: (main, [id]) => renderPerson(main, id),
  messages: (main, parts, query) => renderMessages(main, query),
  simulate: main => renderSimulate(main),
};

const main = document.getElementById("main");
let cleanup = null;
let generation = 0;

function parse(hash) {
  const [path, query = ""] = hash.replace(/^#\/?/, "").split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return {parts, query: new URLSearchParams(query)};
}

function header(page) {
  const tab = (name, label) => h("a", {href: `#/${name}`, class: name === page ? "current" : null}, label);
  document.getElementById("nav").replaceChildren(tab("journeys", "Journeys"), tab("messages", "Messages"),
    tab("people", "People"), tab("simulate", "Simulate"), lookupForm("person-search"),
    h("button", {type: "button", class: "quiet", onclick: () => { forgetKey(); askKey(); }}, "Forget key"));
}

function askKey(message = "") {
  generation += 1;
  document.getElementById("nav").replaceChildren();
  const input = h("input", {type: "password", id: "api-key", autocomplete: "off", required: true,
    "aria-label": "API key"});
  const said = h("p", {class: "error", role: "alert"}, message);
  main.replaceChildren(h("form", {class: "key", id: "key-form", onsubmit: async event => {
    event.preventDefault();
    try {
      await api("/v1/journeys", {key: input.value});
      keepKey(input.value);
      show();
    } catch (error) {
      said.textContent = error.status === 401 ? "That key was refused." : error.message;
    }
  }}, h("h1", {}, "journey-engine console"),
  h("p", {}, "Enter one of the server's API keys (JOURNEY_API_KEYS). It is kept in this tab only."),
  input, h("button", {type: "submit"}, "Open the console"), said));
  input.focus();
}

async function show() {
  if (cleanup) cleanup();
  cleanup = null;
  delete main.dataset.loaded;
  if (!apiKey()) return askKey();
  const {parts, query} = parse(window.location.hash);
  const page = ROUTES[parts[0]] ? parts[0] : "journeys";
  header(page);
  main.replaceChildren(h("p", {class: "subtle"}, "loading…"));
  const mine = ++generation;
  try {
    const done = await ROUTES[page](main, parts.slice(1), query);
    if (mine !== generation) return typeof done === "function" ? done() : undefined;
    cleanup = typeof done === "function" ? done : null;
  } catch (error) {
    if (mine !== generation) return undefined;
    main.replaceChildren(errorBox(error));
  }
  main.dataset.loaded = page;
  performance.mark(`console:${page}`);  // benchmarks/console_pages.py reads when each page was on screen
  return undefined;
}

window.addEventListener("hashchange", show);
window.addEventListener("console:unauthorized", () => askKey("The key was refused: enter it again."));
show();
