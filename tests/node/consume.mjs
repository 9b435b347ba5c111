// Node's `eventsource` package (a WHATWG EventSource) as a client of ssenb's demo producers.
//
// Usage: node consume.mjs '<json: [{"url": ..., "events": ["connected", ...]}, ...]>' <seconds>
// Opens one EventSource per stream, all at once, and lets each run the way a browser would:
// it reconnects after every end with Last-Event-ID and stops only when the server fails the
// connection (204) or the time bound passes. Prints one JSON line: per stream, the messages
// (type, data, lastEventId), how many connections opened, the connection errors (no data)
// apart from server events named `error` (a MessageEvent with data), and whether it closed
// by itself.
import { EventSource } from "eventsource";

const streams = JSON.parse(process.argv[2]);
const bound = Number(process.argv[3] ?? 10) * 1000;
const started = Date.now();

function follow({ url, events = [] }) {
  return new Promise((resolve) => {
    const seen = { url, messages: [], opens: 0, failures: [], closed: false, ms: 0 };
    const es = new EventSource(url);
    const done = () => {
      clearTimeout(timer);
      es.close();
      seen.ms = Date.now() - started;
      resolve(seen);
    };
    const timer = setTimeout(done, bound);
    es.addEventListener("open", () => { seen.opens += 1; });
    const record = (ev) => {
      seen.messages.push({ type: ev.type, data: ev.data, lastEventId: ev.lastEventId });
    };
    for (const name of new Set(["message", ...events])) {
      if (name !== "error") es.addEventListener(name, record);
    }
    // One listener gets both: a server event named `error` (a MessageEvent, with data) and
    // the connection's own failures (no data). Only the second kind can close the source.
    es.addEventListener("error", (ev) => {
      if (typeof ev.data === "string") {
        record(ev);
        return;
      }
      seen.failures.push({ code: ev.code ?? null, message: ev.message ?? null,
                           readyState: es.readyState });
      if (es.readyState === EventSource.CLOSED) {
        seen.closed = true;
        done();
      }
    });
  });
}

const results = await Promise.all(streams.map(follow));
process.stdout.write(JSON.stringify(results) + "\n");
