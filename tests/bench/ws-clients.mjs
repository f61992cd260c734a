// ws-clients.mjs - one client process of scripts/bench-ws, on npm's ws.
//
//   node ws-clients.mjs URL COUNT EXPECTED
//
// Opens COUNT WebSocket connections to URL (user_id=<URL's>_<n>), prints
// "ready" once all are open, and stamps every message on arrival. A
// message whose ServerMessage text holds "t" (the publisher's wall clock,
// seconds) gives a latency; one holding "burst" counts toward the burst;
// any other message is bad. On "finish" (a line on stdin) it waits until
// EXPECTED messages per connection have arrived (at most 60 s) and prints
// one JSON line: {"lat": [[broadcast, seconds]...], "burst_seen",
// "burst_last", "got", "expected", "bad", "cpu_ready", "cpu_burst0",
// "cpu_last"}: the process's user+system CPU seconds once the connections
// are open, at the first burst message and at the last expected message.
import { WebSocket } from "ws";
import { createInterface } from "node:readline";

const [url, countArg, expectedArg] = process.argv.slice(2);
const count = Number(countArg);
const expected = count * Number(expectedArg);
const lat = [];
let got = 0;
let burstSeen = 0;
let burstLast = 0;
let bad = 0;
let cpuLast = 0;
let cpuReady = 0;
let cpuBurst0 = 0;
const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
let onAll = null;

// wall clock in seconds, sub-millisecond (Date.now() has 1 ms steps)
const now = () => (performance.timeOrigin + performance.now()) / 1000;

function onMessage(data) {
  const at = now();
  let ok = false;
  try {
    const ev = JSON.parse(data);
    if (ev.event === "ServerMessage") {
      const m = JSON.parse(ev.message);
      if (m.t !== undefined) {
        lat.push([m.i, at - m.t]);
        ok = true;
      } else if (m.burst !== undefined) {
        if (burstSeen++ === 0) cpuBurst0 = cpuSeconds();
        burstLast = at;
        ok = true;
      }
    }
  } catch {
    ok = false;
  }
  if (!ok) bad++;
  if (++got === expected) {
    cpuLast = cpuSeconds();
    if (onAll) onAll();
  }
}

function open(i) {
  return new Promise((resolve, reject) => {
    const attempt = (n) => {
      const ws = new WebSocket(`${url}_${i}`, { perMessageDeflate: false });
      ws.once("open", () => {
        ws.on("message", onMessage);
        resolve(ws);
      });
      ws.once("error", (err) => {
        if (n >= 5) reject(err);
        else setTimeout(() => attempt(n + 1), 200 * (n + 1));
      });
    };
    attempt(1);
  });
}

const socks = [];
for (let i = 0; i < count; i += 200) {
  const batch = [];
  for (let j = i; j < Math.min(count, i + 200); j++) batch.push(open(j));
  socks.push(...(await Promise.all(batch)));
}
cpuReady = cpuSeconds();
process.stdout.write("ready\n");

const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
  if (line.trim() !== "finish") continue;
  await new Promise((resolve) => {
    if (got >= expected) return resolve();
    onAll = resolve;
    setTimeout(resolve, 60000);
  });
  for (const ws of socks) ws.terminate();
  // exit once the line is out: a pipe is written asynchronously
  process.stdout.write(
    JSON.stringify({
      lat,
      burst_seen: burstSeen,
      burst_last: burstLast,
      got,
      expected,
      bad,
      cpu_ready: cpuReady,
      cpu_burst0: cpuBurst0,
      cpu_last: cpuLast || cpuSeconds(),
    }) + "\n",
    () => process.exit(0),
  );
}
