// The transparency page: the latest checkpoint and each witness's last cosignature checked
// here against the trust root, tree growth (ECharts), and a consistency check between two
// checkpoints, each note verified before its root is used.
import { trustRoot } from "./app.js";
import { echarts } from "./charts.js";
import { b64decode, VerificationError, verifyCheckpoint, verifyConsistency } from "./verify.js";

const UNITS = [
  ["d", 86400],
  ["h", 3600],
  ["m", 60],
];

function ageText(table, seconds) {
  for (const [unit, size] of UNITS) {
    if (seconds >= size) return table.dataset[`age${unit.toUpperCase()}`].replace("{n}", Math.floor(seconds / size));
  }
  return table.dataset.ageS.replace("{n}", String(Math.max(0, seconds)));
}

function setBadge(badge, state, detail) {
  badge.dataset.state = state;
  const key = `label${state[0].toUpperCase()}${state.slice(1)}`;
  badge.querySelector("[data-label]").textContent = badge.dataset[key] ?? state;
  badge.querySelector("[data-detail]").textContent = detail;
}

async function getText(url) {
  const response = await fetch(url);
  if (!response.ok) throw new VerificationError(`${url}: HTTP ${response.status}`);
  return response.text();
}

async function checkLatest(trust) {
  const badge = document.getElementById("checkpoint-badge");
  setBadge(badge, "pending", "");
  try {
    const checkpoint = await verifyCheckpoint(await getText("/checkpoint"), trust);
    const witnessed = Object.keys(checkpoint.cosigned).length;
    const detail = badge.dataset.detailTemplate
      .replace("{size}", String(checkpoint.size))
      .replace("{witnessed}", String(witnessed))
      .replace("{witnesses}", String(checkpoint.witnesses));
    setBadge(badge, witnessed ? "ok" : "unwitnessed", detail);
  } catch (error) {
    setBadge(badge, "failed", error.message);
  }
}

async function checkWitnesses(trust) {
  const table = document.getElementById("witnesses");
  const notes = JSON.parse(document.getElementById("witness-notes").textContent);
  const now = Math.floor(Date.now() / 1000);
  for (const row of table.querySelectorAll("tbody tr[data-region]")) {
    const region = row.dataset.region;
    const cell = row.querySelector("[data-witness-check]");
    if (!cell || !notes[region]) continue;
    try {
      const checkpoint = await verifyCheckpoint(notes[region], trust);
      const timestamp = checkpoint.cosigned[region];
      if (timestamp === undefined) throw new VerificationError(`no cosignature of ${region}`);
      // The row's size and time are the server's words: they must be the verified ones.
      const shownSize = Number(row.querySelector("[data-size]")?.dataset.size);
      const shownTime = Number(row.querySelector("[data-age]")?.dataset.timestamp);
      if (shownSize !== checkpoint.size || shownTime !== timestamp) {
        throw new VerificationError(`the row shows ${shownSize} at ${shownTime}, not what was cosigned`);
      }
      row.querySelector("[data-age]").textContent = ageText(table, now - timestamp);
      cell.textContent = `✓ ${table.dataset.ok}`;
      cell.className = "ok";
    } catch (error) {
      cell.textContent = `✗ ${table.dataset.failed}: ${error.message}`;
      cell.className = "bad";
    }
  }
}

function drawGrowth() {
  const element = document.getElementById("growth-chart");
  const points = JSON.parse(document.getElementById("growth-data").textContent);
  const chart = echarts.init(element, null, { renderer: "canvas" });
  chart.setOption({
    animation: false,
    grid: { left: 56, right: 16, top: 16, bottom: 40 },
    tooltip: { trigger: "axis" },
    xAxis: { type: "time" },
    yAxis: { type: "value", minInterval: 1 },
    series: [{ type: "line", data: points, symbolSize: 6, areaStyle: {} }],
  });
  window.addEventListener("resize", () => chart.resize());
}

async function checkConsistency(form, trust) {
  const result = document.getElementById("consistency-result");
  result.hidden = false;
  result.className = "verdict";
  result.textContent = "…";
  let [old, size] = [Number(form.old.value), Number(form.new.value)];
  if (old > size) [old, size] = [size, old];
  try {
    const [first, second] = await Promise.all(
      [old, size].map(async (n) => verifyCheckpoint(await getText(`/transparency/checkpoints/${n}`), trust)),
    );
    // A genuine checkpoint of another size proves nothing about the size asked for.
    for (const [checkpoint, asked] of [[first, old], [second, size]]) {
      if (checkpoint.size !== asked) {
        throw new VerificationError(`served a checkpoint of size ${checkpoint.size}, not ${asked}`);
      }
    }
    const response = await fetch(`/v1/proofs/consistency?old=${old}&new=${size}`);
    if (!response.ok) throw new VerificationError(`consistency proof: HTTP ${response.status}`);
    const proof = await response.json();
    await verifyConsistency(old, size, first.root, second.root, proof.hashes.map(b64decode));
    result.classList.add("verdict-yes");
    result.dataset.state = "ok";
    result.textContent = form.dataset.ok.replace("{old}", old).replace("{new}", size);
  } catch (error) {
    result.classList.add("verdict-no");
    result.dataset.state = "failed";
    result.textContent = `${form.dataset.failed}: ${error.message}`;
  }
}

async function main() {
  const { trust } = await trustRoot();
  drawGrowth();
  const form = document.getElementById("consistency");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    checkConsistency(form, trust);
  });
  await Promise.all([checkLatest(trust), checkWitnesses(trust)]);
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", main);
else main();
