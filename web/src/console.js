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
const state = {
  phase: "idle",
  integrity: null,
  sampleRate: 0,
  channels: 0,
  samples: null,
  error: null,
  clickedAt: 0,
  firstAudibleMs: null, // from the click to the first sample scheduled to sound
  unlockMs: null, // opening the key copy (scrypt)
  unlockedAt: null, // ms from the click to the key copy opened
  wavesurfer: null,
};
window.recorderdPlayer = state;

let keyPassword = null; // memory only: cleared when the page goes away or after the idle timeout
let identities = null; // the key copy once opened (scrypt is slow): same lifetime as the password
let idleTimer = null;
function forget() {
  keyPassword = null;
  identities = null;
  const field = document.getElementById("key-password");
  if (field) field.required = true;
}
window.addEventListener("pagehide", forget);

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
    this.odd = null; // bytes of an incomplete sample frame left over between chunks
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
    // Each part holds whole sample frames (2 bytes per channel): a stereo recording's chunk may end
    // between the left and the right sample, and the streamer splits parts by channel.
    let bytes = chunk;
    if (this.odd !== null) {
      bytes = new Uint8Array(this.odd.length + chunk.length);
      bytes.set(this.odd);
      bytes.set(chunk, this.odd.length);
      this.odd = null;
    }
    const rest = bytes.length % (2 * state.channels);
    if (rest) {
      this.odd = bytes.slice(bytes.length - rest);
      bytes = bytes.subarray(0, bytes.length - rest);
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

// Decrypts chunk by chunk as the ciphertext arrives; each chunk's samples go to the streamer, which
// starts the audio before the rest has arrived.
async function decryptStream(stream, identities, streamer) {
  const d = new Decrypter();
  for (const i of identities) d.addIdentity(i);
  const plain = await d.decrypt(stream);
  const reader = plain.getReader();
  const au = new AuDecoder();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return au.samples();
    const before = au.parts.length;
    au.push(value);
    if (streamer && au.parts.length > before) streamer.push(au.parts[au.parts.length - 1]);
  }
}

// Plays decoded samples through Web Audio while the rest is still being decrypted, keeping at most
// AHEAD seconds scheduled (not the whole hour as Float32 buffers). When everything is decoded the
// page hands over to wavesurfer.js (waveform, seek, ±5 s, speed) at the same position.
const AHEAD = 20;
class Streamer {
  constructor(ctx) {
    this.ctx = ctx;
    this.queue = [];
    this.start = null;
    this.next = 0;
    this.sources = new Set();
    this.timer = setInterval(() => this.schedule(), 500);
  }
  push(samples) {
    this.queue.push(samples);
    this.schedule();
  }
  schedule() {
    const { ctx } = this;
    while (this.queue.length && (this.start === null || this.next - ctx.currentTime < AHEAD)) {
      const int16 = this.queue.shift();
      const frames = int16.length / state.channels;
      if (!frames) continue;
      const buf = ctx.createBuffer(state.channels, frames, state.sampleRate);
      for (let c = 0; c < state.channels; c++) {
        const out = buf.getChannelData(c);
        for (let i = 0; i < frames; i++) out[i] = int16[i * state.channels + c] / 32768;
      }
      const src = ctx.createBufferSource();
      src.buffer = buf;
      src.connect(ctx.destination);
      if (this.start === null) {
        this.start = this.next = ctx.currentTime + 0.02;
        state.firstAudibleMs = performance.now() - state.clickedAt;
      }
      src.start(this.next);
      this.next += buf.duration;
      this.sources.add(src);
      src.onended = () => this.sources.delete(src);
    }
  }
  position() {
    return this.start === null ? 0 : Math.max(0, this.ctx.currentTime - this.start);
  }
  stop() {
    clearInterval(this.timer);
    for (const s of this.sources) s.stop();
    this.sources.clear();
    this.queue = [];
    this.ctx.close();
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

// The waveform's peaks, computed here from the samples we have: wavesurfer.js then need not decode the
// whole recording again through Web Audio (an hour would be ~700 MB of float samples at 48 kHz).
function peaks(samples, bins) {
  const n = Math.max(1, Math.min(bins, samples.length));
  const per = samples.length / n;
  const out = new Float32Array(n);
  for (let b = 0; b < n; b++) {
    let m = 0;
    const end = Math.min(samples.length, Math.floor((b + 1) * per));
    for (let i = Math.floor(b * per); i < end; i++) {
      const v = Math.abs(samples[i]);
      if (v > m) m = v;
    }
    out[b] = m / 32768;
  }
  return out;
}

function player(samples, resumeAt, keepPlaying) {
  const url = URL.createObjectURL(wav(samples, state.sampleRate, state.channels));
  const duration = samples.length / state.channels / state.sampleRate;
  const ws = WaveSurfer.create({
    container: "#waveform",
    url,
    peaks: [peaks(samples, 4000)],
    duration,
    height: 96,
    waveColor: "#6b8fb3",
    progressColor: "#1f4e79",
  });
  state.wavesurfer = ws;
  $("controls").hidden = false;
  $("back5").addEventListener("click", () => ws.setTime(Math.max(0, ws.getCurrentTime() - 5)));
  $("fwd5").addEventListener("click", () => ws.setTime(Math.min(ws.getDuration(), ws.getCurrentTime() + 5)));
  $("toggle").addEventListener("click", () => ws.playPause());
  $("rate").addEventListener("change", (e) => ws.setPlaybackRate(parseFloat(e.target.value)));
  ws.on("timeupdate", (t) => ($("clock").textContent = `${mmss(t)} / ${mmss(ws.getDuration())}`));
  ws.on("ready", () => {
    if (resumeAt > 0) ws.setTime(Math.min(resumeAt, duration));
    if (keepPlaying) ws.play().catch(() => {});
    state.phase = "ready";
    state.readyAt = performance.now() - state.clickedAt;
  });
}

async function play(form, ctx) {
  const msg = form.dataset;
  const typed = $("key-password").value;
  $("key-password").value = "";
  if (typed) keyPassword = typed;
  clearTimeout(idleTimer);
  idleTimer = setTimeout(forget, Number(msg.idleMs || 900000));
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
  try {
    const t0 = performance.now();
    if (identities === null || typed) identities = await unlock(b64bytes(answer.key_copy), keyPassword || "");
    state.unlockMs = performance.now() - t0;
    state.unlockedAt = performance.now() - state.clickedAt;
    $("key-password").required = false; // open in this page: another play needs no password
  } catch (e) {
    forget();
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
  const streamer = ctx ? new Streamer(ctx) : null;
  let samples = null;
  try {
    samples = await decryptStream(forAudio, identities, streamer);
  } catch (e) {
    state.error = String(e);
  }
  const resumeAt = streamer ? streamer.position() : 0;
  if (streamer) streamer.stop();
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
  player(samples, resumeAt, streamer !== null && streamer.start !== null);
}

const form = $("play-form");
if (form) {
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    state.clickedAt = performance.now();
    // Made here, inside the click, so the browser lets it sound; the audio starts as soon as the
    // first chunk is decrypted.
    let ctx = null;
    try {
      ctx = new AudioContext();
    } catch (e) {
      ctx = null;
    }
    if (state.wavesurfer) {
      state.wavesurfer.destroy();
      state.wavesurfer = null;
    }
    play(form, ctx)
      .catch((e) => {
        state.phase = "failed";
        state.error = String(e);
        say(String(e));
      })
      .finally(() => {
        if (ctx && ctx.state !== "closed") ctx.close().catch(() => {});
      });
  });
}
