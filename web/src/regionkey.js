// A region's key in the browser (issue 10, "Signing in"): the PKCS#8 PEM file that
// `alliance init` writes is read locally and imported into WebCrypto as a
// non-extractable Ed25519 key. Nothing of it is sent anywhere; only signatures are.
//
// What is signed (docs/PROTOCOL.md §1 and §6 "Sessions"):
//   sign-in:  "alliance-ledger/v1/session\n" + nonce + "\nregion:" + R + "\n" + keyId + "\n"
//   entries:  "alliance-ledger/v1/entry\n" + JCS(entry)      (JCS = RFC 8785)
import canonicalize from "canonicalize";

const encoder = new TextEncoder();
export const ENTRY_PREFIX = "alliance-ledger/v1/entry\n";
export const SESSION_PREFIX = "alliance-ledger/v1/session";

export class KeyFileError extends Error {}

function base64ToBytes(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

export function bytesToBase64(bytes) {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

function base64UrlToBytes(text) {
  const padded = text.replace(/-/g, "+").replace(/_/g, "/");
  return base64ToBytes(padded + "=".repeat((4 - (padded.length % 4)) % 4));
}

function hex(bytes) {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** The DER bytes of a "PRIVATE KEY" PEM block (PKCS#8, unencrypted). */
export function pemToDer(text) {
  const match = /-----BEGIN PRIVATE KEY-----([A-Za-z0-9+/=\s]+)-----END PRIVATE KEY-----/.exec(text);
  if (!match) {
    throw new KeyFileError("not an unencrypted PKCS#8 PEM key (BEGIN PRIVATE KEY)");
  }
  return base64ToBytes(match[1].replace(/\s+/g, ""));
}

/** The key id of a raw Ed25519 public key: hex of SHA-256(raw)[:16] (PROTOCOL §1). */
export async function keyIdOf(publicRaw) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", publicRaw));
  return hex(digest.slice(0, 16));
}

/**
 * Import a region's key file: { privateKey (non-extractable), keyId, publicB64 }.
 * The public key is read from a throwaway extractable import's JWK ("x"), which is
 * then dropped; the key kept cannot be exported by any script.
 */
export async function loadKey(pemText) {
  const der = pemToDer(pemText);
  const algorithm = { name: "Ed25519" };
  let jwk;
  try {
    const probe = await crypto.subtle.importKey("pkcs8", der, algorithm, true, ["sign"]);
    jwk = await crypto.subtle.exportKey("jwk", probe);
  } catch (error) {
    throw new KeyFileError(`not an Ed25519 key: ${error.message ?? error}`);
  }
  const publicRaw = base64UrlToBytes(jwk.x);
  const privateKey = await crypto.subtle.importKey("pkcs8", der, algorithm, false, ["sign"]);
  return { privateKey, keyId: await keyIdOf(publicRaw), publicB64: bytesToBase64(publicRaw) };
}

async function sign(key, message) {
  const signature = await crypto.subtle.sign({ name: "Ed25519" }, key.privateKey, message);
  return bytesToBase64(new Uint8Array(signature));
}

/** The sign-in message for a challenge's nonce. */
export function challengeMessage(nonce, region, keyId) {
  return encoder.encode(`${SESSION_PREFIX}\n${nonce}\nregion:${region}\n${keyId}\n`);
}

export async function signChallenge(key, nonce, region) {
  return sign(key, challengeMessage(nonce, region, key.keyId));
}

/** RFC 8785 bytes of a JSON value (the `canonicalize` package, by the RFC's author). */
export function canonicalBytes(value) {
  return encoder.encode(canonicalize(value));
}

/** Local time with the +08:00 offset, to the second: the clients' entry time format. */
export function shanghaiTime(date = new Date()) {
  const local = new Date(date.getTime() + 8 * 3600 * 1000);
  return `${local.toISOString().slice(0, 19)}+08:00`;
}

/** An `endorsement` entry of region `region` deciding `targets` (seqs). */
export function endorsementEntry(region, targets, decision, reason, id, time) {
  return {
    v: 1,
    kind: "endorsement",
    id: id ?? crypto.randomUUID(),
    time: time ?? shanghaiTime(),
    signer: `region:${region}`,
    body: { targets: [...targets], decision, reason: decision === "approve" ? "" : reason },
  };
}

/** A `submitted` document: the entry and the region key's signature over its JCS. */
export async function submittedEntry(key, entry) {
  const prefix = encoder.encode(ENTRY_PREFIX);
  const body = canonicalBytes(entry);
  const message = new Uint8Array(prefix.length + body.length);
  message.set(prefix);
  message.set(body, prefix.length);
  return { entry, signatures: [{ key: key.keyId, sig: await sign(key, message) }] };
}
