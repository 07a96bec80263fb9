// The pair browser of an aigen report: filters, pages loaded on demand, and the full-size compare view.
// Pair data comes in pairs/NNNNN.js chunks that call aigenChunk(number, pairs); <script> tags load them, since a
// page opened from disk (file://) may not fetch() local files. The index embedded in index.html lists segments
// (consecutive pairs of one dataset, generator and alignment), so a filter is a list of segments and a page is a
// slice of their concatenation: only the chunks a page shows are ever loaded.
"use strict";

(function () {
  const indexElement = document.getElementById("pairs-index");
  const index = JSON.parse(indexElement.textContent);
  const NONE = "n/a"; // the label of a missing generator or alignment
  const state = { dataset: "", generator: "", alignment: "", page: 0 };
  const chunks = new Map(); // chunk number -> Promise of its pairs
  const arrived = new Map(); // chunk number -> resolve
  let shown = []; // the pairs on the current page, for the compare view's previous / next
  let rendering = 0;

  window.aigenChunk = function (number, pairs) {
    const resolve = arrived.get(number);
    if (resolve) resolve(pairs);
  };

  function chunk(number) {
    if (!chunks.has(number)) {
      chunks.set(number, new Promise(function (resolve, reject) {
        const script = document.createElement("script");
        script.src = "pairs/" + String(number).padStart(5, "0") + ".js";
        arrived.set(number, resolve);
        script.onerror = function () { reject(new Error("cannot load " + script.src)); };
        document.head.appendChild(script);
      }));
    }
    return chunks.get(number);
  }

  const label = (value) => (value === null || value === undefined ? NONE : String(value));

  function matching() {
    return index.segments.filter(function (segment) {
      return (!state.dataset || index.datasets[segment.dataset].name === state.dataset) &&
        (!state.generator || label(segment.generator) === state.generator) &&
        (!state.alignment || label(segment.alignment) === state.alignment);
    });
  }

  // The global positions (and segments) of one page of the filtered pairs.
  function pagePositions(segments, page) {
    let skip = page * index.pageSize;
    let wanted = index.pageSize;
    const positions = [];
    for (const segment of segments) {
      if (skip >= segment.count) { skip -= segment.count; continue; }
      const take = Math.min(segment.count - skip, wanted);
      for (let offset = 0; offset < take; offset++) {
        positions.push({ position: segment.start + skip + offset, segment: segment });
      }
      wanted -= take;
      skip = 0;
      if (!wanted) break;
    }
    return positions;
  }

  function pairAt(item, loaded) {
    const entry = loaded.get(Math.floor(item.position / index.pageSize))[item.position % index.pageSize];
    const dataset = index.datasets[item.segment.dataset];
    return {
      id: entry[0],
      original: dataset.base + "/" + entry[1],
      ai: dataset.base + "/" + entry[2],
      source: entry[3],
      seed: entry[4],
      dataset: dataset.name,
      generator: label(item.segment.generator),
      alignment: label(item.segment.alignment),
    };
  }

  function element(tag, attributes, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, value);
    for (const child of children || []) node.append(child);
    return node;
  }

  function pairCard(pair, number) {
    const card = element("button", { type: "button", class: "pair", "data-generator": pair.generator,
      "data-alignment": pair.alignment, "data-dataset": pair.dataset, title: "compare " + pair.id }, [
      element("span", { class: "halves" }, [
        element("img", { src: pair.original, alt: "original " + pair.id, decoding: "async" }),
        element("img", { src: pair.ai, alt: "AI " + pair.id, decoding: "async" }),
      ]),
      element("span", { class: "caption" }, [
        element("span", { class: "id" }, [pair.id]),
        element("span", { class: "meta" }, [pair.generator + " \u00b7 " + pair.alignment]),
      ]),
    ]);
    card.addEventListener("click", function () { openCompare(number); });
    return card;
  }

  async function render() {
    const ticket = ++rendering;
    const segments = matching();
    const total = segments.reduce((sum, segment) => sum + segment.count, 0);
    const pages = Math.max(1, Math.ceil(total / index.pageSize));
    state.page = Math.min(Math.max(state.page, 0), pages - 1);
    const positions = pagePositions(segments, state.page);
    const numbers = [...new Set(positions.map((item) => Math.floor(item.position / index.pageSize)))];
    const grid = document.getElementById("pair-grid");
    let loaded;
    try {
      loaded = new Map(await Promise.all(numbers.map((number) => chunk(number).then((pairs) => [number, pairs]))));
    } catch (error) {
      grid.replaceChildren(element("p", { class: "error" }, [error.message]));
      return;
    }
    if (ticket !== rendering) return; // a newer filter or page won
    shown = positions.map((item) => pairAt(item, loaded));
    grid.replaceChildren(...shown.map(pairCard));
    if (!shown.length) grid.append(element("p", { class: "empty" }, ["No pair matches these filters."]));
    document.getElementById("page-label").textContent =
      "page " + (state.page + 1) + " of " + pages + " \u00b7 " + total.toLocaleString("en") + " pairs";
    document.getElementById("page-previous").disabled = state.page === 0;
    document.getElementById("page-next").disabled = state.page >= pages - 1;
  }

  // State <-> #pairs?dataset=...&generator=...&alignment=...&page=N (links from the dataset cards use it).
  function readHash() {
    if (!location.hash.startsWith("#pairs?")) return false;
    const query = new URLSearchParams(location.hash.slice("#pairs?".length));
    state.dataset = query.get("dataset") || "";
    state.generator = query.get("generator") || "";
    state.alignment = query.get("alignment") || "";
    state.page = Math.max(0, (parseInt(query.get("page"), 10) || 1) - 1);
    return true;
  }

  function writeHash() {
    const query = new URLSearchParams();
    for (const key of ["dataset", "generator", "alignment"]) if (state[key]) query.set(key, state[key]);
    query.set("page", String(state.page + 1));
    history.replaceState(null, "", "#pairs?" + query.toString());
  }

  const selects = {
    dataset: document.getElementById("filter-dataset"),
    generator: document.getElementById("filter-generator"),
    alignment: document.getElementById("filter-alignment"),
  };

  function fillFilters() {
    const values = {
      dataset: index.datasets.map((dataset) => dataset.name),
      generator: index.segments.map((segment) => label(segment.generator)),
      alignment: index.segments.map((segment) => label(segment.alignment)),
    };
    for (const [key, select] of Object.entries(selects)) {
      for (const value of [...new Set(values[key])].sort()) select.append(element("option", { value: value }, [value]));
    }
  }

  function showState() {
    for (const [key, select] of Object.entries(selects)) select.value = state[key];
    return render();
  }

  for (const [key, select] of Object.entries(selects)) {
    select.addEventListener("change", function () {
      state[key] = select.value;
      state.page = 0;
      writeHash();
      render();
    });
  }
  for (const [id, step] of [["page-previous", -1], ["page-next", 1]]) {
    document.getElementById(id).addEventListener("click", function () {
      state.page += step;
      writeHash();
      render();
    });
  }
  // A link to #pairs?... (a dataset card's) names no element: show the browser with its filters.
  function followHash() {
    if (!readHash()) return;
    document.getElementById("pairs").scrollIntoView();
    showState();
  }
  window.addEventListener("hashchange", followHash);

  // The compare view: both halves at full size (or zoomed, pixels kept square) and their per-pixel difference.
  // The difference is the browser's own `mix-blend-mode: difference` of the AI image over the original, so it needs
  // no canvas: reading a canvas's pixels is refused for images opened from disk (file:// is no shared origin).
  const dialog = document.getElementById("compare");
  const zoomSelect = document.getElementById("compare-zoom");
  const gainSelect = document.getElementById("compare-gain");
  const difference = document.getElementById("compare-difference");
  const panels = [document.getElementById("compare-original"), document.getElementById("compare-ai"),
    ...difference.querySelectorAll("img")];
  let current = 0;

  function zoomFactor(width) {
    if (zoomSelect.value !== "auto") return Number(zoomSelect.value);
    const room = (dialog.clientWidth - 80) / 3;
    return Math.max(1, [8, 4, 2, 1].find((factor) => width * factor <= room) || 1);
  }

  function sizePanels() {
    const width = panels[0].naturalWidth;
    if (!width) return;
    const factor = zoomFactor(width);
    for (const image of panels) {
      image.style.width = width * factor + "px";
      image.classList.toggle("pixelated", factor > 1);
    }
  }

  function openCompare(number) {
    current = (number + shown.length) % shown.length;
    const pair = shown[current];
    const [original, ai, differenceOriginal, differenceAi] = panels;
    original.src = differenceOriginal.src = pair.original;
    ai.src = differenceAi.src = pair.ai;
    document.getElementById("compare-title").textContent = pair.id;
    const seed = pair.seed === null ? "" : " \u00b7 seed " + pair.seed;
    document.getElementById("compare-meta").textContent = pair.dataset + " \u00b7 " + pair.generator + " \u00b7 " +
      pair.alignment + (pair.source ? " \u00b7 " + pair.source : "") + seed;
    if (!dialog.open) dialog.showModal();
    sizePanels();
  }

  panels[0].addEventListener("load", sizePanels);
  zoomSelect.addEventListener("change", sizePanels);
  gainSelect.addEventListener("change", function () {
    difference.style.filter = gainSelect.value === "1" ? "" : "brightness(" + gainSelect.value + ")";
  });
  document.getElementById("compare-close").addEventListener("click", () => dialog.close());
  document.getElementById("compare-previous").addEventListener("click", () => openCompare(current - 1));
  document.getElementById("compare-next").addEventListener("click", () => openCompare(current + 1));
  dialog.addEventListener("keydown", function (event) {
    if (event.target.tagName === "SELECT") return; // arrows choose a zoom or gain there
    if (event.key === "ArrowLeft") openCompare(current - 1);
    if (event.key === "ArrowRight") openCompare(current + 1);
  });

  if (index.pairs) {
    fillFilters();
    if (location.hash.startsWith("#pairs?")) followHash();
    else showState();
  }
})();
