// The console's browser code: playback decrypted in this page (issue 13).
//
// The server has checked the person's permission and committed the ledger entry before it answers
// POST /calls/<id>/play; it hands back the person's own key copy (an age scrypt file) and a one-time
// ticket for the recording's ciphertext. Here: the key copy is opened with the password the person
// types (kept in this page's memory only), the ciphertext is fetched as a stream, hashed (SHA-256,
// compared with the catalogue) and decrypted chunk by chunk by age-encryption (the reference
// JavaScript age), the Sun AU payload turned into samples, and wavesurfer.js plays them.
// No crypto is written here: age-encryption and @noble/hashes do it.

import { Decrypter } from "age-encryption";
import { sha256 } from "@noble/hashes/sha2.js";
import WaveSurfer from "wavesurfer.js";

// What the tests (and a curious person's devtools) can read back: state, integrity, the samples.
const state = { phase: "idle", integrity: null, sampleRate: 0, channels: 0, samples: null, error: null };
window.recorderdPlayer = state;

let keyPassword = null; // memory only: cleared when the page goes away or after the idle timeout
let idleTimer = null;
window.addEventListener("pagehide", () => {
  keyPassword = null;
});

function $(id) {
  return document.getElementById(id);
}

function say(text) {
  $("play-status").textContent = text;
}

function b64bytes(text) {
  const raw = atob(text);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function unlock(keyCopy, password) {
  const d = new Decrypter();
  d.addPassphrase(password);
  const text = await d.decrypt(keyCopy, "text");
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.startsWith("AGE-SECRET-KEY-1"));
}

async function hashStream(stream) {
  const h = sha256.create();
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return hex(h.digest());
    h.update(value);
  }
}

// Sun AU (storage/audio.py): big-endian header, 16-bit big-endian linear PCM. Converted as it arrives.
class AuDecoder {
  constructor() {
    this.head = new Uint8Array(0);
    this.offset = null;
    this.odd = null; // a byte left over between chunks
    this.parts = [];
    this.count = 0;
  }
  push(chunk) {
    if (this.offset === null) {
      const joined = new Uint8Array(this.head.length + chunk.length);
      joined.set(this.head);
      joined.set(chunk, this.head.length);
      if (joined.length < 24) {
        this.head = joined;
        return;
      }
      const v = new DataView(joined.buffer);
      if (v.getUint32(0) !== 0x2e736e64 || v.getUint32(12) !== 3) throw new Error("not 16-bit AU audio");
      this.offset = v.getUint32(4);
      state.sampleRate = v.getUint32(16);
      state.channels = v.getUint32(20);
      if (joined.length < this.offset) {
        this.head = joined;
        this.offset = null;
        return;
      }
      chunk = joined.subarray(this.offset);
    }
    let bytes = chunk;
    if (this.odd !== null) {
      bytes = new Uint8Array(chunk.length + 1);
      bytes[0] = this.odd;
      bytes.set(chunk, 1);
      this.odd = null;
    }
    if (bytes.length % 2) {
      this.odd = bytes[bytes.length - 1];
      bytes = bytes.subarray(0, bytes.length - 1);
    }
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    const out = new Int16Array(bytes.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = v.getInt16(2 * i, false);
    this.parts.push(out);
    this.count += out.length;
  }
  samples() {
    const all = new Int16Array(this.count);
    let at = 0;
    for (const p of this.parts) {
      all.set(p, at);
      at += p.length;
    }
    return all;
  }
}

async function decryptStream(stream, identities) {
  const d = new Decrypter();
  for (const i of identities) d.addIdentity(i);
  const plain = await d.decrypt(stream);
  const reader = plain.getReader();
  const au = new AuDecoder();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return au.samples();
    au.push(value);
  }
}

function wav(samples, rate, channels) {
  const data = samples.length * 2;
  const buf = new ArrayBuffer(44 + data);
  const v = new DataView(buf);
  const text = (at, s) => [...s].forEach((c, i) => v.setUint8(at + i, c.charCodeAt(0)));
  text(0, "RIFF");
  v.setUint32(4, 36 + data, true);
  text(8, "WAVE");
  text(12, "fmt ");
  v.setUint32(16, 16, true);
  v.setUint16(20, 1, true);
  v.setUint16(22, channels, true);
  v.setUint32(24, rate, true);
  v.setUint32(28, rate * channels * 2, true);
  v.setUint16(32, channels * 2, true);
  v.setUint16(34, 16, true);
  text(36, "data");
  v.setUint32(40, data, true);
  new Int16Array(buf, 44).set(samples);
  return new Blob([buf], { type: "audio/wav" });
}

function mmss(s) {
  const m = Math.floor(s / 60);
  return `${m}:${String(Math.floor(s % 60)).padStart(2, "0")}`;
}

function player(samples) {
  const url = URL.createObjectURL(wav(samples, state.sampleRate, state.channels));
  const ws = WaveSurfer.create({ container: "#waveform", url, height: 96, waveColor: "#6b8fb3", progressColor: "#1f4e79" });
  $("controls").hidden = false;
  $("back5").addEventListener("click", () => ws.setTime(Math.max(0, ws.getCurrentTime() - 5)));
  $("fwd5").addEventListener("click", () => ws.setTime(Math.min(ws.getDuration(), ws.getCurrentTime() + 5)));
  $("toggle").addEventListener("click", () => ws.playPause());
  $("rate").addEventListener("change", (e) => ws.setPlaybackRate(parseFloat(e.target.value)));
  ws.on("timeupdate", (t) => ($("clock").textContent = `${mmss(t)} / ${mmss(ws.getDuration())}`));
  ws.on("ready", () => (state.phase = "ready"));
}

async function play(form) {
  const msg = form.dataset;
  const typed = $("key-password").value;
  $("key-password").value = "";
  if (typed) keyPassword = typed;
  clearTimeout(idleTimer);
  idleTimer = setTimeout(() => (keyPassword = null), Number(msg.idleMs || 900000));
  state.phase = "granting";
  const grant = await fetch(`/calls/${encodeURIComponent(msg.call)}/play`, {
    method: "POST",
    credentials: "same-origin",
    headers: { "X-CSRF-Token": msg.csrf, "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ purpose: $("purpose").value }),
  });
  const answer = await grant.json();
  if (!grant.ok) {
    state.phase = "refused";
    state.error = answer.error;
    say(answer.error);
    return;
  }
  say(msg.msgUnlocking);
  state.phase = "unlocking";
  let identities;
  try {
    identities = await unlock(b64bytes(answer.key_copy), keyPassword || "");
  } catch (e) {
    keyPassword = null;
    state.phase = "wrong-key";
    say(msg.msgWrongKey);
    return;
  }
  say(msg.msgDecrypting);
  state.phase = "decrypting";
  const response = await fetch(`/sealed/${answer.ticket}`, { credentials: "same-origin" });
  if (!response.ok) {
    state.phase = "failed";
    say(await response.text());
    return;
  }
  const [forHash, forAudio] = response.body.tee();
  const hashing = hashStream(forHash);
  let samples = null;
  try {
    samples = await decryptStream(forAudio, identities);
  } catch (e) {
    state.error = String(e);
  }
  const digest = await hashing;
  state.integrity = answer.sha256 === null ? null : digest === answer.sha256;
  const box = $("integrity");
  box.textContent = state.integrity === false ? msg.msgBad : state.integrity ? msg.msgOk : "";
  box.className = state.integrity === false ? "bad" : "ok";
  if (samples === null) {
    state.phase = "failed";
    say(`${msg.msgFailed}: ${state.error}`);
    return;
  }
  state.samples = samples;
  state.phase = "decoded";
  say("");
  player(samples);
}

const form = $("play-form");
if (form) {
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    play(form).catch((e) => {
      state.phase = "failed";
      state.error = String(e);
      say(String(e));
    });
  });
}
