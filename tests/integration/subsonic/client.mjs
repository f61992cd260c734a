// client.mjs - drives Talas's /rest/ API with npm's subsonic-api, a real
// Subsonic client library, for tests/integration/test_subsonic.py.
//
//   node client.mjs PLAN.json
//
// PLAN: {"url", "auth": {"username", "password"} | {"apiKey"}, "post": bool,
//        "calls": [[METHOD, PARAMS], ...]}. Prints one JSON array: for each
// call, the "subsonic-response" object; for stream and download, the
// HTTP status, Content-Type, length and SHA-256 of the body.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { SubsonicAPI } from "subsonic-api";

const plan = JSON.parse(readFileSync(process.argv[2], "utf8"));
const api = new SubsonicAPI({ url: plan.url, auth: plan.auth, post: !!plan.post });
const out = [];
for (const [method, params] of plan.calls) {
  const r = await api[method](params ?? {});
  if (r instanceof Response) {
    const body = Buffer.from(await r.arrayBuffer());
    out.push({
      http_status: r.status,
      content_type: r.headers.get("content-type"),
      length: body.length,
      sha256: createHash("sha256").update(body).digest("hex"),
      head: body.subarray(0, 4).toString("hex"),
    });
  } else {
    out.push(r);
  }
}
process.stdout.write(JSON.stringify(out));
