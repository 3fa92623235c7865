// Peer (d): Node.js Socket.IO (npm `socket.io`, in-memory adapter, room emit).
//
// The same contract as the python-socketio peer (benchmarks/peers/socketio_server.py), so the
// load generator talks to both alike: every client that connects joins room "bench";
// `POST /api/v1/events` (one event or an array) emits each event to the room with
// `io.to("bench").emit("event", event)`, the way a Socket.IO application broadcasts;
// `GET /healthz` answers {"status":"ok"}.
//
//     node benchmarks/peers/node-socketio/server.js --host 127.0.0.1 --port 8803
//
// Installed by the benchmark setup (`npm ci` here; `make bench` or the harness does it).
"use strict";

const http = require("node:http");
const { Server } = require("socket.io");

const ROOM = "bench";
const MAX_BODY = 16 * 1024 * 1024;

function parseArgs(argv) {
  const args = { host: "127.0.0.1", port: 8803 };
  for (let i = 0; i < argv.length; i += 2) {
    if (argv[i] === "--host") args.host = argv[i + 1];
    else if (argv[i] === "--port") args.port = Number(argv[i + 1]);
    else throw new Error(`unknown argument ${argv[i]} (want --host H --port P)`);
  }
  return args;
}

// The harness compares every frame with the bytes Python's orjson made of the same event.
// JSON.parse turns an integer past 2^53 into a different number, which would be re-encoded
// differently: refuse such a publish loudly rather than deliver altered events.
function exactNumbers(key, value) {
  if (typeof value === "number" && Number.isInteger(value) && !Number.isSafeInteger(value)) {
    throw new RangeError(`integer at "${key}" is beyond 2^53 and cannot be re-encoded exactly`);
  }
  return value;
}

function reply(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
  res.end(text);
}

function main() {
  const { host, port } = parseArgs(process.argv.slice(2));
  let io = null;

  const httpServer = http.createServer((req, res) => {
    if (req.method === "GET" && req.url === "/healthz") {
      reply(res, 200, { status: "ok" });
      return;
    }
    if (req.method !== "POST" || req.url !== "/api/v1/events") {
      reply(res, 404, { error: "not found" });
      return;
    }
    const chunks = [];
    let size = 0;
    req.on("data", (chunk) => {
      size += chunk.length;
      if (size <= MAX_BODY) chunks.push(chunk);
    });
    req.on("end", () => {
      if (size > MAX_BODY) {
        reply(res, 413, { error: "body too large" });
        return;
      }
      let payload;
      try {
        payload = JSON.parse(Buffer.concat(chunks).toString("utf8"), exactNumbers);
      } catch (err) {
        reply(res, 400, { error: String(err.message || err) });
        return;
      }
      const events = Array.isArray(payload) ? payload : [payload];
      for (const event of events) io.to(ROOM).emit("event", event);
      reply(res, 202, { ids: events.map((e) => (e && e.id) ?? null) });
    });
  });

  // Socket.IO's defaults otherwise (no per-message deflate), as a Socket.IO deployment runs it.
  io = new Server(httpServer, {
    serveClient: false,
    pingInterval: 25000,
    pingTimeout: 20000,
    maxHttpBufferSize: MAX_BODY,
  });
  io.on("connection", (socket) => socket.join(ROOM));

  const stop = () => {
    io.close(); // closes every client; waiting for idle keep-alive HTTP connections is not needed
    setImmediate(() => process.exit(0));
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);

  httpServer.listen(port, host, () => {
    const versions = `node ${process.version}, socket.io ${require("socket.io/package.json").version}`;
    console.log(`node-socketio listening on http://${host}:${port} (${versions})`);
  });
}

main();
