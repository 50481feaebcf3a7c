import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { httpStatusOf, toShoalError } from "@shoal/base";
import { readJson } from "../src/http.ts";

/** A server that reads a JSON body of at most 1 KiB and answers its status and code. */
async function withServer<T>(fn: (url: string) => Promise<T>): Promise<T> {
  const server = createServer((req, res) => {
    readJson(req, { maxBytes: 1024 }).then(
      () => res.writeHead(200).end("{}"),
      (err: unknown) => res.writeHead(httpStatusOf(err), { "content-type": "application/json" }).end(JSON.stringify({ code: toShoalError(err).code })),
    );
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  try {
    return await fn(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
  } finally {
    await new Promise((r) => server.close(r));
  }
}

describe("readJson", () => {
  it("answers 413 for a body over the limit, 400 for one that is not JSON, and takes one that fits", async () => {
    await withServer(async (url) => {
      const post = async (body: string) => {
        const res = await fetch(url, { method: "POST", body });
        return [res.status, ((await res.json()) as { code?: string }).code];
      };
      expect(await post("x".repeat(4096))).toEqual([413, "SHOAL_ERR_BODY_TOO_LARGE"]);
      expect(await post("{not json")).toEqual([400, "SHOAL_ERR_BAD_REQUEST"]);
      expect(await post(JSON.stringify({ a: 1 }))).toEqual([200, undefined]);
    });
  });
});
