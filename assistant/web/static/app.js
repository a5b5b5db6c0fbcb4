// QuickTurn web client: microphone → websocket → live transcript, intent, reply audio.
// Protocol: docs/protocol.md. No build step; one module, one AudioWorklet file.

const $ = (id) => document.getElementById(id);
const STAGES = ['asr', 'disfluency', 'nlu', 'dialog', 'tts_first_audio'];
const enc = new TextEncoder();
const dec = new TextDecoder();

// Observable state (the browser tests read it; handy in devtools too).
const qt = window.qt = {
  status: 'idle', sessionId: null, events: [], turns: {}, bargeIns: [], errors: [], holds: [],
  audioChunksReceived: 0, audioChunksDropped: 0, playedMs: 0, renderedSoundMs: 0, closed: null,
};

const token = new URLSearchParams(location.search).get('token') || '';
let ws = null, ctx = null, meter = null, playBus = null, capture = null, mic = null, micSource = null;
let talking = false, connecting = null, sendSeq = 0;
const cancelled = new Set();           // turn ids whose audio must never play
const playing = new Map();             // turn id → {sources:Set, start, end, gain}

function setStatus(state, text) {
  qt.status = state;
  const el = $('status');
  el.dataset.state = state;
  el.textContent = text || state;
}

function showError(msg) {
  const el = $('error');
  el.hidden = false;
  el.textContent = msg;
}

// ------------------------------------------------------------------ audio graph
async function ensureAudio() {
  if (ctx) { if (ctx.state === 'suspended') await ctx.resume(); return; }
  ctx = new AudioContext({ latencyHint: 'interactive' });
  await ctx.audioWorklet.addModule('worklets.js');
  meter = new AudioWorkletNode(ctx, 'qt-meter', { numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1] });
  meter.port.onmessage = onMeter;
  playBus = ctx.createGain();
  playBus.connect(meter).connect(ctx.destination);
  if (ctx.state === 'suspended') await ctx.resume();
}

function onMeter(e) {
  const m = e.data;
  if (m.type === 'level') qt.renderedSoundMs = m.sound_ms;
  if (m.type === 'silent') {
    const b = qt.bargeIns.find((x) => x.silentAt === undefined);
    if (!b) return;
    b.silentAt = m.t;
    // Render clock: from the moment the page learnt of the speech start to the first
    // silent render quantum, plus what the device adds after rendering.
    b.renderStopMs = Math.max(0, 1000 * (m.t - b.detectCtxTime));
    b.outputLatencyMs = 1000 * ((ctx.outputLatency || 0) + (ctx.baseLatency || 0));
    b.stopMs = b.renderStopMs + b.outputLatencyMs;
  }
}

// ------------------------------------------------------------------- websocket
function connect() {
  if (connecting) return connecting;
  connecting = new Promise((resolve, reject) => {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    ws = new WebSocket(`${scheme}://${location.host}/ws?token=${encodeURIComponent(token)}`);
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => send({ type: 'session-start', sample_rate_hz: ctx.sampleRate, barge_in: $('bargein').checked,
      client: 'quickturn-web/1' });
    ws.onmessage = (e) => {
      if (typeof e.data === 'string') {
        const msg = JSON.parse(e.data);
        if (msg.type === 'session-started') { qt.sessionId = msg.session_id; setStatus('ready', 'connected'); resolve(); }
        onEvent(msg);
      } else {
        onAudio(e.data);
      }
    };
    ws.onclose = (e) => {
      qt.closed = { code: e.code, reason: e.reason };
      setStatus('closed', `closed (${e.code})`);
      stopMic();
      connecting = null;
      reject(new Error(e.reason || `closed ${e.code}`));
    };
  });
  return connecting;
}

function send(obj) { if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(obj)); }

function sendAudio(buffer) {
  if (!ws || ws.readyState !== WebSocket.OPEN || !talking) return;
  const head = enc.encode(JSON.stringify({ type: 'audio-chunk', seq: sendSeq++ }));
  const out = new Uint8Array(4 + head.length + buffer.byteLength);
  new DataView(out.buffer).setUint32(0, head.length);
  out.set(head, 4);
  out.set(new Uint8Array(buffer), 4 + head.length);  // Int16 little-endian as produced
  ws.send(out.buffer);
}

// ------------------------------------------------------------------ microphone
async function startMic() {
  mic = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: true, noiseSuppression: false, autoGainControl: false },
  });
  micSource = ctx.createMediaStreamSource(mic);
  capture = new AudioWorkletNode(ctx, 'qt-capture', { processorOptions: { frameMs: 20 } });
  capture.port.onmessage = (e) => sendAudio(e.data);
  const sink = ctx.createGain();
  sink.gain.value = 0;              // keeps the worklet pulled without making noise
  micSource.connect(capture).connect(sink).connect(ctx.destination);
}

function stopMic() {
  talking = false;
  if (mic) mic.getTracks().forEach((t) => t.stop());
  if (micSource) micSource.disconnect();
  if (capture) { capture.port.onmessage = null; capture.disconnect(); }
  mic = micSource = capture = null;
  const b = $('talk');
  b.setAttribute('aria-pressed', 'false');
  b.textContent = 'Talk';
}

async function toggleTalk() {
  if (talking) {
    stopMic();
    send({ type: 'end-of-turn' });
    setStatus('ready', 'connected');
    return;
  }
  try {
    await ensureAudio();
    await connect();
    await startMic();
    talking = true;
    const b = $('talk');
    b.setAttribute('aria-pressed', 'true');
    b.textContent = 'Stop';
    setStatus('listening', 'listening');
  } catch (err) {
    showError(`cannot start: ${err.message || err}`);
    stopMic();
  }
}

// -------------------------------------------------------------------- playback
function onAudio(data) {
  const view = new DataView(data);
  const n = view.getUint32(0);
  const head = JSON.parse(dec.decode(new Uint8Array(data, 4, n)));
  qt.audioChunksReceived++;
  if (cancelled.has(head.turn_id)) { qt.audioChunksDropped++; return; }
  const body = data.slice(4 + n);
  const pcm = new Int16Array(body);
  if (!pcm.length) return;
  const buffer = ctx.createBuffer(1, pcm.length, head.sample_rate_hz);
  const ch = buffer.getChannelData(0);
  for (let i = 0; i < pcm.length; i++) ch[i] = pcm[i] / 32768;
  let p = playing.get(head.turn_id);
  if (!p) {
    const gain = ctx.createGain();
    gain.connect(playBus);
    p = { sources: new Set(), start: null, end: ctx.currentTime, gain, final: false, segments: [] };
    playing.set(head.turn_id, p);
    turnCard(head.turn_id).firstAudioAt = performance.now();
  }
  const src = ctx.createBufferSource();
  src.buffer = buffer;
  src.connect(p.gain);
  const at = Math.max(p.end, ctx.currentTime + 0.005);
  if (p.start === null) p.start = at;
  src.start(at);
  p.end = at + buffer.duration;
  p.segments.push([at, p.end]);
  p.sources.add(src);
  if (head.final) p.final = true;
  src.onended = () => {
    p.sources.delete(src);
    if (p.final && p.sources.size === 0 && playing.get(head.turn_id) === p) {
      playing.delete(head.turn_id);
      const heard = audibleMs(p, p.end);
      qt.playedMs += heard;
      turnCard(head.turn_id).playedMs = Math.round(heard);
      if (playing.size === 0 && qt.status === 'speaking') setStatus(talking ? 'listening' : 'ready');
    }
  };
  setStatus('speaking', 'speaking');
}

// Stop a turn's audio now and never play more of it. Returns the milliseconds heard.
function stopTurnAudio(turnId) {
  cancelled.add(turnId);
  const p = playing.get(turnId);
  if (!p) return null;
  playing.delete(turnId);
  const now = ctx.currentTime;
  p.gain.gain.setValueAtTime(0, now);   // silence at the next render quantum…
  for (const s of p.sources) { try { s.stop(); } catch (_) { /* not started */ } }  // …and free the sources
  p.gain.disconnect();
  const played = audibleMs(p, now);
  qt.playedMs += played;
  return Math.round(played);
}

// Milliseconds of a turn's audio rendered up to ctx time `until` (gaps between phrases excluded).
function audibleMs(p, until) {
  let ms = 0;
  for (const [a, b] of p.segments) if (until > a) ms += 1000 * (Math.min(until, b) - a);
  return ms;
}

// Barge-in: stop every reply still playing (other than `keepTurnId`), measure how fast
// the output really went silent, and tell the server what the user heard.
// Called on turn-cancelled (the server's VAD heard speech during the reply) and on
// speech-started (when the server runs without barge-in but the page has it on).
function bargeIn(victimIds, cause) {
  if (!ctx) return;
  const detectMs = performance.now();
  const detectCtxTime = ctx.currentTime;
  const victims = victimIds.filter((t) => playing.has(t) && playing.get(t).end > detectCtxTime);
  for (const t of victimIds) if (!victims.includes(t)) stopTurnAudio(t);  // nothing audible: just drop it
  if (!victims.length) return;
  meter.port.postMessage({ arm: true });
  for (const turnId of victims) {
    const played = stopTurnAudio(turnId);
    send({ type: 'playback-stopped', turn_id: turnId, played_ms: played || 0 });
    const c = turnCard(turnId);
    c.el.classList.add('cancelled');
    c.playedMs = played;
    qt.bargeIns.push({ turn_id: turnId, cause, detectCtxTime, stopCallMs: performance.now() - detectMs, playedMs: played });
  }
  if (!playing.size) setStatus(talking ? 'listening' : 'ready');
}

// ---------------------------------------------------------------------- events
function turnCard(turnId) {
  let c = qt.turns[turnId];
  if (!c) {
    const el = $('turn-template').content.firstElementChild.cloneNode(true);
    el.dataset.turnId = turnId;
    $('turns').appendChild(el);
    c = qt.turns[turnId] = { el, transcript: '', clean: '', removed: [], intent: null, slots: [], reply: '', latency: null };
  }
  return c;
}

qt.onEvent = (msg) => onEvent(msg);  // the browser tests feed recorded events through it

function onEvent(msg) {
  qt.events.push(msg.type);
  const t = msg.turn_id;
  switch (msg.type) {
    case 'speech-started':
      if ($('bargein').checked) bargeIn([...playing.keys()].filter((x) => x !== t), 'speech-started');
      $('partial').textContent = '…';
      break;
    case 'transcript-partial':
      $('partial').textContent = msg.text;
      if (qt.status === 'holding') setStatus('listening');  // speech resumed after a hold
      break;
    case 'turn-decision':
      // The end-of-turn policy holds the turn (e.g. "set a timer for …"): show that it still listens.
      if (msg.decision === 'incomplete') {
        setStatus('holding', 'still listening…');
        qt.holds.push(msg.reason || '');
        $('partial').dataset.reason = msg.reason || '';
      }
      break;
    case 'speech-ended':
      if (qt.status === 'holding') setStatus(talking ? 'listening' : 'ready');
      delete $('partial').dataset.reason;
      break;
    case 'transcript-final': {
      $('partial').textContent = '';
      if (!msg.text) break;
      const c = turnCard(t);
      c.transcript = msg.text;
      c.el.querySelector('.transcript').textContent = msg.text;
      break;
    }
    case 'tokens-tagged': {
      if (!msg.final) break;
      const c = turnCard(t);
      c.clean = msg.clean_text;
      c.removed = msg.removed;
      c.tokens = msg.tokens;
      const box = c.el.querySelector('.cleaned');
      box.textContent = '';
      msg.tokens.forEach((tok, i) => {
        if (i) box.append(' ');
        if (tok.remove) { const s = document.createElement('s'); s.textContent = tok.word; s.title = tok.kind || 'removed'; box.append(s); }
        else box.append(tok.word);
      });
      break;
    }
    case 'nlu-result': {
      const c = turnCard(t);
      const r = msg.result;
      c.intent = r.intent;
      c.slots = r.slots;
      if (msg.restored && c.tokens) {
        // The NLU overruled the tagger: the struck words it parsed (msg.text) were slot words,
        // not a disfluency. Walk the tokens against msg.text; removed fillers stay struck.
        const words = (msg.text || '').split(' ');
        const struck = [...c.el.querySelectorAll('.cleaned s')];
        let w = 0;
        let k = 0;
        for (const tok of c.tokens) {
          const inText = w < words.length && words[w] === tok.word;
          if (inText) w += 1;
          if (!tok.remove) continue;
          const s = struck[k++];
          if (inText && s) {
            const kept = document.createElement('span');
            kept.className = 'restored';
            kept.title = 'kept: removing it would have cut a slot';
            kept.textContent = s.textContent;
            s.replaceWith(kept);
          }
        }
      }
      const chips = c.el.querySelector('.chips');
      chips.textContent = '';
      const intent = document.createElement('span');
      intent.className = 'chip intent';
      intent.textContent = `${r.intent || 'no intent'} ${Math.round(100 * (r.confidence || 0))}%`;
      chips.append(intent);
      for (const s of r.slots) {
        const chip = document.createElement('span');
        chip.className = 'chip slot';
        const b = document.createElement('b');
        b.textContent = s.slot;
        chip.append(b, `: ${s.value}`);
        chips.append(chip);
      }
      break;
    }
    case 'dialog-action': {
      const c = turnCard(t);
      c.reply = msg.text;
      c.el.querySelector('.reply').textContent = msg.text;
      break;
    }
    case 'stage-metrics':
      renderLatency(turnCard(t), msg.latency_ms);
      break;
    case 'turn-cancelled':
      bargeIn([t], msg.reason);
      cancelled.add(t);
      if (qt.turns[t]) qt.turns[t].el.classList.add('cancelled');
      break;
    case 'error':
      qt.errors.push(msg);
      showError(`${msg.code}: ${msg.message}`);
      break;
    default:
      break;
  }
}

function renderLatency(c, lat) {
  c.latency = lat;
  const box = c.el.querySelector('.latency');
  box.hidden = false;
  const bar = box.querySelector('.bar');
  const legend = box.querySelector('.legend');
  bar.textContent = '';
  legend.textContent = '';
  const total = STAGES.reduce((a, s) => a + (lat[s] || 0), 0) || 1;
  for (const s of STAGES) {
    if (lat[s] === undefined) continue;
    const seg = document.createElement('span');
    seg.style.width = `${(100 * lat[s]) / total}%`;
    seg.style.background = `var(--${s})`;
    seg.title = `${s} ${lat[s].toFixed(1)} ms`;
    bar.append(seg);
    const item = document.createElement('span');
    const dot = document.createElement('i');
    dot.style.background = `var(--${s})`;
    item.append(dot, `${s.replace('_first_audio', '')} ${lat[s].toFixed(0)}`);
    legend.append(item);
  }
  const sum = document.createElement('span');
  sum.textContent = `total ${lat.total !== undefined ? lat.total.toFixed(0) : '–'} ms (+ endpoint ${Math.round(lat.endpoint || 0)})`;
  legend.append(sum);
}

// ------------------------------------------------------------------------ wire
$('talk').addEventListener('click', toggleTalk);
$('stop').addEventListener('click', () => {
  for (const turnId of [...playing.keys()]) {
    const played = stopTurnAudio(turnId);
    send({ type: 'interrupt', turn_id: turnId, played_ms: played || 0 });
    send({ type: 'playback-stopped', turn_id: turnId, played_ms: played || 0 });
  }
});
$('bargein').addEventListener('change', (e) => send({ type: 'config', barge_in: e.target.checked }));
if (!token) showError('no access token in the URL: open the link printed by `quickturn serve web` (…/?token=…)');
