// The regulator desk (/desk): sign in with the region's key file, decide the review
// queue in bulk (one `endorsement` entry per decision, signed here), and draw the
// region's picture. The key is held in this page's memory only, non-extractable; after
// a reload the page asks for the file again before it signs.
import { echarts } from "./charts.js";
import {
  endorsementEntry,
  KeyFileError,
  loadKey,
  signChallenge,
  submittedEntry,
} from "./regionkey.js";

let heldKey = null; // { privateKey, keyId, publicB64, region }

function $(selector, root = document) {
  return root.querySelector(selector);
}

function say(element, text, state = "info") {
  if (!element) return;
  element.textContent = text;
  element.dataset.state = state;
}

async function problemText(response) {
  try {
    const problem = await response.json();
    return problem.detail ?? problem.title ?? `HTTP ${response.status}`;
  } catch {
    return `HTTP ${response.status}`;
  }
}

async function readKeyFile(input) {
  const file = input.files && input.files[0];
  if (!file) throw new KeyFileError(input.dataset.missing || "no key file chosen");
  return loadKey(await file.text());
}

async function signIn(form) {
  const status = $("[data-sign-in-status]", form);
  const region = form.elements.region.value;
  try {
    say(status, form.dataset.working);
    const key = await readKeyFile(form.elements.keyfile);
    const challenge = await (await fetch("/v1/session/challenge", { method: "POST" })).json();
    const sig = await signChallenge(key, challenge.nonce, region);
    const response = await fetch("/v1/session", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ region, key: key.keyId, nonce: challenge.nonce, sig }),
    });
    if (!response.ok) throw new Error(await problemText(response));
    heldKey = { ...key, region };
    say(status, form.dataset.done, "ok");
    await refreshDesk();
  } catch (error) {
    say(status, `${form.dataset.failed}: ${error.message ?? error}`, "bad");
  }
}

async function refreshDesk() {
  const panel = $("#desk-panel");
  if (!panel) return;
  const response = await fetch(panel.dataset.src, { headers: { "HX-Request": "true" } });
  panel.innerHTML = await response.text();
  wire(panel);
  const heading = $("h2", panel);
  if (heading) {
    heading.tabIndex = -1;
    heading.focus();
  }
}

async function keyFor(region, bar) {
  if (heldKey && heldKey.region === region) return heldKey;
  const input = $("input[type=file]", bar);
  const key = await readKeyFile(input);
  heldKey = { ...key, region };
  return heldKey;
}

async function decide(bar, decision) {
  const status = $("[data-decide-status]");
  const region = bar.dataset.region;
  const targets = Array.from(document.querySelectorAll("input[name=target]:checked"), (box) =>
    Number(box.value),
  );
  if (!targets.length) {
    say(status, bar.dataset.none, "bad");
    return;
  }
  const reason = decision === "reject" ? bar.querySelector("select[name=reason]").value : "";
  try {
    say(status, bar.dataset.working);
    const key = await keyFor(region, bar);
    const entry = endorsementEntry(region, targets, decision, reason);
    const document_ = await submittedEntry(key, entry);
    const response = await fetch("/v1/entries", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(document_),
    });
    if (!response.ok) throw new Error(await problemText(response));
    const logged = await response.json();
    await refreshDesk();
    say($("[data-decide-status]"), bar.dataset.done.replace("{seq}", String(logged.seq)), "ok");
  } catch (error) {
    say(status, `${bar.dataset.failed}: ${error.message ?? error}`, "bad");
  }
}

function chart(element, option) {
  if (!element) return;
  const instance = echarts.init(element, null, { renderer: "canvas" });
  instance.setOption({ animation: false, ...option });
  new ResizeObserver(() => instance.resize()).observe(element);
}

function pictureData() {
  const element = $("#desk-picture-data");
  return element ? JSON.parse(element.textContent) : null;
}

function drawPicture(root) {
  const data = pictureData();
  if (!data || !$("[data-chart=returns]", root)) return;
  const words = data.words;
  const days = data.returns_per_day.map((day) => day.day.slice(5));
  chart($("[data-chart=returns]", root), {
    tooltip: { trigger: "axis" },
    legend: { top: 0 },
    grid: { left: 40, right: 12, top: 36, bottom: 28 },
    xAxis: { type: "category", data: days },
    yAxis: { type: "value" },
    series: [
      { name: words.accepted, type: "bar", data: data.returns_per_day.map((d) => d.accepted) },
      { name: words.sold, type: "bar", data: data.returns_per_day.map((d) => d.sold) },
    ],
  });
  // A Sankey needs no cycles: owing regions on the left, owed regions on the right.
  const nodes = new Map();
  const links = [];
  for (const flow of data.flows) {
    const source = `${words.owes} ${flow.debtor_region}`;
    const target = `${words.owed} ${flow.creditor_region}`;
    nodes.set(source, { name: source });
    nodes.set(target, { name: target });
    const existing = links.find((link) => link.source === source && link.target === target);
    if (existing) existing.value += flow.amount_fen / 100;
    else links.push({ source, target, value: flow.amount_fen / 100 });
  }
  chart($("[data-chart=flows]", root), {
    tooltip: { trigger: "item" },
    series: [{ type: "sankey", data: [...nodes.values()], links, emphasis: { focus: "adjacency" } }],
  });
  const labels = data.disputes_by_age.map(([label]) => label);
  chart($("[data-chart=ages]", root), {
    tooltip: { trigger: "axis" },
    legend: { top: 0 },
    grid: { left: 40, right: 12, top: 36, bottom: 28 },
    xAxis: { type: "category", data: labels, name: words.days },
    yAxis: { type: "value", minInterval: 1 },
    series: [
      { name: words.disputes, type: "bar", data: data.disputes_by_age.map(([, n]) => n) },
      { name: words.overdue, type: "bar", data: data.overdue_by_age.map(([, n]) => n) },
    ],
  });
}

function wire(root) {
  const form = $("form[data-sign-in]", root);
  if (form && !form.dataset.wired) {
    form.dataset.wired = "1";
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      signIn(form);
    });
  }
  const bar = $("[data-decide]", root);
  if (bar && !bar.dataset.wired) {
    bar.dataset.wired = "1";
    for (const button of bar.querySelectorAll("button[data-decision]")) {
      button.addEventListener("click", () => decide(bar, button.dataset.decision));
    }
    if (heldKey && heldKey.region === bar.dataset.region) {
      const held = $("[data-key-held]", bar);
      if (held) held.hidden = false;
      const choose = $("[data-key-choose]", bar);
      if (choose) choose.hidden = true;
    }
  }
  const all = $("input[data-select-all]", root);
  if (all && !all.dataset.wired) {
    all.dataset.wired = "1";
    all.addEventListener("change", () => {
      for (const box of document.querySelectorAll("input[name=target]")) box.checked = all.checked;
    });
  }
  const signOut = $("button[data-sign-out]", root);
  if (signOut && !signOut.dataset.wired) {
    signOut.dataset.wired = "1";
    signOut.addEventListener("click", async () => {
      await fetch("/v1/session", { method: "DELETE" });
      heldKey = null;
      await refreshDesk();
    });
  }
  drawPicture(root);
}

document.addEventListener("DOMContentLoaded", () => wire(document));
