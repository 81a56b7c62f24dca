// The browser's own check of what a page shows (docs/PROTOCOL.md §7, "Web console"):
// RFC 9162 inclusion and consistency proofs (SHA-256 by WebCrypto), the log's C2SP
// signed-note checkpoint (Ed25519, signature type 0x01) and the region witnesses'
// tlog-cosignature/v1 lines (type 0x04), all against the trust root served with the
// page. It mirrors ledger/merkle/verify.py and signing/{note,checkpoint}.py; any
// failure throws VerificationError. Nothing here trusts the server.

export class VerificationError extends Error {
  constructor(message) {
    super(message);
    this.name = "VerificationError";
  }
}

const HASH_SIZE = 32;
const KEY_HASH_SIZE = 4;
const SIG_TYPE_ED25519 = 0x01;
const SIG_TYPE_COSIGNATURE_V1 = 0x04;
const TIMESTAMP_SIZE = 8;
const SIGNATURE_SIZE = 64;
const SIGNATURE_LINE_PREFIX = "\u2014 ";
const encoder = new TextEncoder();

function fail(message) {
  throw new VerificationError(message);
}

export function b64decode(text) {
  if (typeof text !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4) {
    fail("not canonical base64");
  }
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

export function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function equal(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i += 1) diff |= a[i] ^ b[i];
  return diff === 0;
}

export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

async function nodeHash(left, right) {
  return sha256(concat(Uint8Array.of(0x01), left, right));
}

export async function leafHash(leaf) {
  return sha256(concat(Uint8Array.of(0x00), leaf));
}

function checkHash(value, what) {
  if (!(value instanceof Uint8Array) || value.length !== HASH_SIZE) {
    fail(`${what} is not a ${HASH_SIZE}-byte hash`);
  }
}

// Sizes and indices stay below 2^53 (PROOF_TREE_SIZE_MAX is far smaller): plain numbers,
// with division instead of bit shifts, which JavaScript limits to 32 bits.
const odd = (n) => n % 2 === 1;
const half = (n) => Math.floor(n / 2);
const isPowerOfTwo = (n) => {
  let m = n;
  while (m > 1 && !odd(m)) m = half(m);
  return m === 1;
};

/** RFC 9162 §2.1.3.2: `proof` leads from `leaf` at `index` to `root` of a `size` tree. */
export async function verifyInclusion(leaf, index, size, proof, root) {
  checkHash(leaf, "leaf hash");
  checkHash(root, "root");
  proof.forEach((element, i) => checkHash(element, `proof element ${i}`));
  if (!(Number.isSafeInteger(index) && Number.isSafeInteger(size) && index >= 0 && index < size)) {
    fail(`leaf index ${index} is outside a tree of size ${size}`);
  }
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const element of proof) {
    if (sn === 0) fail("inclusion proof is longer than the tree is deep");
    if (odd(fn) || fn === sn) {
      r = await nodeHash(element, r);
      while (fn !== 0 && !odd(fn)) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      r = await nodeHash(r, element);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0) fail("inclusion proof is shorter than the tree is deep");
  if (!equal(r, root)) fail(`inclusion proof of leaf ${index} does not lead to the root`);
}

/** RFC 9162 §2.1.4.2: the `old` tree is a prefix of the `new` one. */
export async function verifyConsistency(old, size, oldRoot, newRoot, proof) {
  checkHash(oldRoot, "old root");
  checkHash(newRoot, "new root");
  proof.forEach((element, i) => checkHash(element, `proof element ${i}`));
  if (!(Number.isSafeInteger(old) && Number.isSafeInteger(size) && old >= 0 && old <= size)) {
    fail(`old tree size ${old} is not within 0..${size}`);
  }
  if (old === 0 || old === size) {
    if (proof.length) fail(`consistency proof from ${old} to ${size} must be empty`);
    if (old === 0 && !equal(oldRoot, await sha256(new Uint8Array()))) {
      fail("the root of the empty tree is SHA-256 of the empty string");
    }
    if (old === size && !equal(oldRoot, newRoot)) {
      fail(`two different roots for the same tree size ${size}`);
    }
    return;
  }
  if (!proof.length) fail(`consistency proof from ${old} to ${size} is empty`);
  const path = isPowerOfTwo(old) ? [oldRoot, ...proof] : [...proof];
  let fn = old - 1;
  let sn = size - 1;
  while (odd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr = path[0];
  let sr = path[0];
  for (const element of path.slice(1)) {
    if (sn === 0) fail("consistency proof is longer than the tree is deep");
    if (odd(fn) || fn === sn) {
      fr = await nodeHash(element, fr);
      sr = await nodeHash(element, sr);
      while (fn !== 0 && !odd(fn)) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      sr = await nodeHash(sr, element);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0) fail("consistency proof is shorter than the tree is deep");
  if (!(equal(fr, oldRoot) && equal(sr, newRoot))) {
    fail(`consistency proof from ${old} to ${size} does not match the roots`);
  }
}

// --- C2SP signed notes, checkpoints and cosignatures ----------------------------------

async function keyHash(name, type, publicKey) {
  const digest = await sha256(concat(encoder.encode(`${name}\n`), Uint8Array.of(type), publicKey));
  return digest.slice(0, KEY_HASH_SIZE);
}

/** `<name>+<hex key hash>+<base64(type || key)>`, its hash checked: {name, publicKey, keyHash}. */
export async function parseVkey(vkey, type) {
  const first = vkey.indexOf("+");
  const second = vkey.indexOf("+", first + 1);
  if (first <= 0 || second < 0) fail("a vkey has three +-separated parts");
  const name = vkey.slice(0, first);
  const hashHex = vkey.slice(first + 1, second);
  const encoded = b64decode(vkey.slice(second + 1));
  if (!/^[0-9a-f]{8}$/i.test(hashHex)) fail(`vkey ${name}: the key hash must be 8 hex digits`);
  if (encoded.length !== 33 || encoded[0] !== type) fail(`vkey ${name}: not a type ${type} key`);
  const publicKey = encoded.slice(1);
  const digest = await keyHash(name, type, publicKey);
  if (hex(digest) !== hashHex.toLowerCase()) fail(`vkey ${name}: key hash does not match`);
  return { name, publicKey, keyHash: digest };
}

/** Text (up to the last blank line) and the signature lines: {text, signatures}. */
export function parseNote(note) {
  const split = note.lastIndexOf("\n\n");
  if (split < 0) fail("a note needs a blank line before its signatures");
  const text = note.slice(0, split + 1);
  const block = note.slice(split + 2);
  if (!block.endsWith("\n")) fail("a note must end with a newline after its last signature");
  const signatures = block
    .slice(0, -1)
    .split("\n")
    .map((line) => {
      if (!line.startsWith(SIGNATURE_LINE_PREFIX)) fail("a signature line starts with an em dash");
      const rest = line.slice(SIGNATURE_LINE_PREFIX.length);
      const space = rest.indexOf(" ");
      if (space <= 0) fail("a signature line names its key, then the signature");
      const raw = b64decode(rest.slice(space + 1));
      if (raw.length <= KEY_HASH_SIZE) fail("a signature is too short");
      return {
        name: rest.slice(0, space),
        keyHash: raw.slice(0, KEY_HASH_SIZE),
        signature: raw.slice(KEY_HASH_SIZE),
      };
    });
  return { text, signatures };
}

/** `origin\nsize\nbase64(root)\n[extensions]`: {origin, size, root}. */
export function parseCheckpoint(text) {
  const lines = text.split("\n");
  if (lines.length < 4 || lines[lines.length - 1] !== "") fail("a checkpoint has three lines");
  const [origin, sizeText, rootText] = lines;
  if (!/^(0|[1-9][0-9]{0,15})$/.test(sizeText)) fail("checkpoint size is not a number");
  const root = b64decode(rootText);
  checkHash(root, "checkpoint root");
  return { origin, size: Number(sizeText), root };
}

async function ed25519Verify(publicKey, signature, message) {
  const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, [
    "verify",
  ]);
  return crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
}

/**
 * Open a cosigned checkpoint against `trust` ({origin, log_key, witness_keys}): the log's
 * signature must verify, and so must every line of a witness the trust root names.
 * Returns {origin, size, root, cosigned: {region: unix seconds}, witnesses: count}.
 */
export async function verifyCheckpoint(note, trust) {
  const { text, signatures } = parseNote(note);
  const message = encoder.encode(text);
  const checkpoint = parseCheckpoint(text);
  if (checkpoint.origin !== trust.origin) fail(`checkpoint of ${checkpoint.origin}, not ours`);
  const log = await parseVkey(trust.log_key, SIG_TYPE_ED25519);
  const witnesses = await Promise.all(
    Object.entries(trust.witness_keys).map(async ([region, vkey]) => ({
      region,
      ...(await parseVkey(vkey, SIG_TYPE_COSIGNATURE_V1)),
    })),
  );
  let logSigned = false;
  const cosigned = {};
  for (const sig of signatures) {
    if (sig.name === log.name && equal(sig.keyHash, log.keyHash)) {
      if (logSigned) fail("the log signed the checkpoint twice");
      if (!(await ed25519Verify(log.publicKey, sig.signature, message))) {
        fail("the log's signature on the checkpoint does not verify");
      }
      logSigned = true;
      continue;
    }
    const witness = witnesses.find((w) => w.name === sig.name && equal(w.keyHash, sig.keyHash));
    if (!witness) continue; // a key the trust root does not name: ignored (signed-note)
    if (sig.signature.length !== TIMESTAMP_SIZE + SIGNATURE_SIZE) {
      fail(`cosignature of ${sig.name} is not ${TIMESTAMP_SIZE + SIGNATURE_SIZE} bytes`);
    }
    const view = new DataView(sig.signature.buffer, sig.signature.byteOffset, TIMESTAMP_SIZE);
    const timestamp = Number(view.getBigUint64(0));
    const signed = concat(encoder.encode(`cosignature/v1\ntime ${timestamp}\n`), message);
    if (!(await ed25519Verify(witness.publicKey, sig.signature.slice(TIMESTAMP_SIZE), signed))) {
      fail(`the cosignature of region ${witness.region} does not verify`);
    }
    cosigned[witness.region] = Math.max(timestamp, cosigned[witness.region] ?? 0);
  }
  if (!logSigned) fail("the checkpoint is not signed by the log key of the trust root");
  return { ...checkpoint, cosigned, witnesses: witnesses.length };
}

/**
 * The badge's check of a public member page (GET /v1/public/members/{uscc}): each of its
 * proofs leads to the root of the tree it names, and that tree is the checkpoint's own
 * or (checked by a consistency proof fetched with `consistency(old, new)`) a prefix of it.
 * Returns {checkpoint, seqs: verified entry numbers}.
 */
export async function verifyMemberPage(page, note, trust, consistency) {
  const checkpoint = await verifyCheckpoint(note, trust);
  const roots = new Map();
  for (const proven of page.proofs) {
    const proof = proven.proof;
    if (proof.seq !== proven.seq) fail(`proof of ${proof.seq} offered for entry ${proven.seq}`);
    const root = b64decode(proof.root);
    await verifyInclusion(
      b64decode(proof.leaf_hash),
      proof.seq,
      proof.tree_size,
      proof.hashes.map(b64decode),
      root,
    );
    // One tree has one root: a second proof naming the same size must lead to the same
    // root, or the first one (perhaps forged) would never be tied to the checkpoint.
    const known = roots.get(proof.tree_size);
    if (known && !equal(known, root)) fail(`two different roots for tree ${proof.tree_size}`);
    roots.set(proof.tree_size, root);
  }
  for (const [size, root] of roots) {
    if (size > checkpoint.size) fail(`a proof names tree ${size}, beyond the checkpoint`);
    if (size === checkpoint.size) {
      if (!equal(root, checkpoint.root)) fail("a proof's root is not the checkpoint's");
      continue;
    }
    const link = await consistency(size, checkpoint.size);
    if (!equal(b64decode(link.old_root), root) || !equal(b64decode(link.new_root), checkpoint.root)) {
      fail(`the consistency proof from ${size} names other roots`);
    }
    await verifyConsistency(size, checkpoint.size, root, checkpoint.root, link.hashes.map(b64decode));
  }
  return { checkpoint, seqs: page.proofs.map((p) => p.seq) };
}
