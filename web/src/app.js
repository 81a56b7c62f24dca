// Every page: htmx (server-rendered fragments), the "verified" badge and small helpers.
import htmx from "htmx.org/dist/htmx.esm.js";
import { hex, sha256, VerificationError, verifyMemberPage } from "./verify.js";

window.htmx = htmx;

const encoder = new TextEncoder();

/** The trust root served inside the page, and its SHA-256 fingerprint (hex). */
export async function trustRoot() {
  const element = document.getElementById("trust-root");
  const text = element.textContent.trim();
  return { trust: JSON.parse(text), fingerprint: hex(await sha256(encoder.encode(text))) };
}

async function getJson(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  if (!response.ok) throw new VerificationError(`${url}: HTTP ${response.status}`);
  return response.json();
}

async function getText(url) {
  const response = await fetch(url);
  if (!response.ok) throw new VerificationError(`${url}: HTTP ${response.status}`);
  return response.text();
}

function setBadge(badge, state, detail) {
  badge.dataset.state = state; // pending | ok | partial | unwitnessed | failed
  const label = badge.querySelector("[data-label]");
  label.textContent = badge.dataset[`label${state[0].toUpperCase()}${state.slice(1)}`] ?? state;
  const more = badge.querySelector("[data-detail]");
  if (more) more.textContent = detail;
}

/** Check a member card's entries in this browser; the badge says what was found. */
async function verifyBadge(badge) {
  const uscc = badge.dataset.uscc;
  setBadge(badge, "pending", "");
  try {
    const { trust } = await trustRoot();
    const [page, note] = await Promise.all([
      getJson(`/v1/public/members/${encodeURIComponent(uscc)}`),
      getText("/checkpoint"),
    ]);
    const consistency = (old, size) => getJson(`/v1/proofs/consistency?old=${old}&new=${size}`);
    const result = await verifyMemberPage(page, note, trust, consistency);
    const witnessed = Object.keys(result.checkpoint.cosigned).length;
    const detail = badge.dataset.detailTemplate
      .replace("{entries}", String(result.seqs.length))
      .replace("{size}", String(result.checkpoint.size))
      .replace("{witnessed}", String(witnessed))
      .replace("{witnesses}", String(result.checkpoint.witnesses));
    // Every entry the card shows (its data-seq marks) must be among those verified.
    const card = badge.closest("[data-uscc]") ?? document;
    const verified = new Set(result.seqs);
    const shown = [...card.querySelectorAll("[data-seq]")].map((e) => Number(e.dataset.seq));
    let state = "ok";
    if (page.proofs_left_out > 0 || shown.some((seq) => !verified.has(seq))) state = "partial";
    if (witnessed === 0) state = "unwitnessed";
    setBadge(badge, state, detail);
  } catch (error) {
    setBadge(badge, "failed", error instanceof Error ? error.message : String(error));
  }
}

async function showFingerprint() {
  const target = document.querySelectorAll("[data-trust-fingerprint]");
  if (!target.length) return;
  const { fingerprint } = await trustRoot();
  for (const element of target) {
    element.textContent = fingerprint.match(/.{1,4}/g).slice(0, 8).join(" ");
    element.dataset.computed = fingerprint;
  }
}

function scan(root) {
  for (const badge of root.querySelectorAll("[data-verify-member]")) verifyBadge(badge);
}

document.addEventListener("DOMContentLoaded", () => {
  showFingerprint();
  scan(document);
});
document.addEventListener("htmx:afterSettle", (event) => scan(event.target));
