/**
 * Headless Chromium (Debian's `chromium`) driven over the DevTools protocol
 * with Node's own WebSocket: open a page, evaluate script in it, wait for
 * what it shows, take a screenshot. Chromium runs with its own profile in a
 * temporary directory and with every background service off, so it talks
 * only to the pages the test opens; it is killed by PID on close and when
 * this process exits.
 */
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { killOnExit } from "./shoal-process.ts";

/** Flags that keep Chromium to the pages a test opens: no sync, updates, pings or crash uploads. */
const QUIET = [
  "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-domain-reliability", "--disable-breakpad",
  "--no-pings", "--metrics-recording-only", "--disable-features=Translate,OptimizationHints,MediaRouter", "--hide-scrollbars",
];

/** One page (tab). */
export interface BrowserPage {
  /** Evaluate `expression` in the page (awaiting a promise) and return its value, which must be JSON. */
  evaluate<T>(expression: string): Promise<T>;
  /** Evaluate `expression` every 200 ms until it is neither undefined, null nor false; reject naming `what` after `timeoutMs`. */
  waitFor<T>(what: string, expression: string, timeoutMs?: number): Promise<T>;
  /** A PNG of the whole page at `width` CSS pixels, written to `path`. */
  screenshot(path: string, width?: number): Promise<void>;
  close(): Promise<void>;
}

/** A running Chromium. */
export interface Browser {
  open(url: string): Promise<BrowserPage>;
  close(): Promise<void>;
}

/** A DevTools protocol connection to one target. */
class Cdp {
  readonly #ws: WebSocket;
  readonly #waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  #next = 1;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.addEventListener("message", (ev) => {
      const msg = JSON.parse(String(ev.data)) as { id?: number; result?: unknown; error?: { message: string } };
      const w = msg.id !== undefined ? this.#waiting.get(msg.id) : undefined;
      if (!w) return;
      this.#waiting.delete(msg.id!);
      if (msg.error) w.reject(new Error(`DevTools: ${msg.error.message}`));
      else w.resolve(msg.result);
    });
    ws.addEventListener("close", () => {
      for (const w of this.#waiting.values()) w.reject(new Error("DevTools connection closed"));
      this.#waiting.clear();
    });
  }

  static connect(url: string): Promise<Cdp> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.addEventListener("open", () => resolve(new Cdp(ws)), { once: true });
      ws.addEventListener("error", () => reject(new Error(`cannot connect to DevTools at ${url}`)), { once: true });
    });
  }

  send<T>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.#ws.send(JSON.stringify({ id, method, params }));
    });
  }

  close(): void {
    this.#ws.close();
  }
}

/** Start headless Chromium; reject with its output if it does not offer DevTools within `timeoutMs`. */
export async function launchChromium(opts: { timeoutMs?: number } = {}): Promise<Browser> {
  const profile = await mkdtemp(join(tmpdir(), "shoal-chromium-"));
  const child = spawn("chromium", [...QUIET, "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", `--user-data-dir=${profile}`, "about:blank"], { stdio: ["ignore", "ignore", "pipe"] });
  killOnExit(child);
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await exited;
    }
    // chromium's helper processes outlive the browser for a moment and may still write its profile
    await rm(profile, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
  };
  try {
    const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
    let port = "";
    while (!port) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`chromium exited (${child.exitCode ?? child.signalCode}): ${stderr.trim()}`);
      if (Date.now() > deadline) throw new Error(`chromium offered no DevTools port: ${stderr.trim()}`);
      port = (await readFile(join(profile, "DevToolsActivePort"), "utf8").catch(() => "")).split("\n")[0] ?? "";
      if (!port) await new Promise((r) => setTimeout(r, 100));
    }
    const base = `127.0.0.1:${port}`;
    const pages: BrowserPage[] = [];
    return {
      async open(url) {
        const res = await fetch(`http://${base}/json/new?about:blank`, { method: "PUT" });
        const target = (await res.json()) as { id: string; webSocketDebuggerUrl: string };
        const cdp = await Cdp.connect(target.webSocketDebuggerUrl);
        // navigated rather than opened with the URL, so a fragment (#token=...) reaches the page
        const nav = await cdp.send<{ errorText?: string }>("Page.navigate", { url });
        if (nav.errorText) throw new Error(`chromium could not open ${url.split("#")[0]}: ${nav.errorText}`);
        const page = openPage(cdp, async () => {
          cdp.close();
          await fetch(`http://${base}/json/close/${target.id}`).then((r) => r.body?.cancel(), () => undefined);
        });
        pages.push(page);
        return page;
      },
      async close() {
        for (const p of pages) await p.close().catch(() => undefined);
        await kill();
      },
    };
  } catch (err) {
    await kill();
    throw err;
  }
}

function openPage(cdp: Cdp, close: () => Promise<void>): BrowserPage {
  const evaluate = async <T>(expression: string): Promise<T> => {
    const r = await cdp.send<{ result: { value?: T }; exceptionDetails?: { text: string; exception?: { description?: string } } }>(
      "Runtime.evaluate", { expression, returnByValue: true, awaitPromise: true },
    );
    if (r.exceptionDetails) throw new Error(`in the page: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
    return r.result.value as T;
  };
  return {
    evaluate,
    async waitFor<T>(what: string, expression: string, timeoutMs = 30_000): Promise<T> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const v = await evaluate<T>(expression).catch(() => undefined);
        if (v !== undefined && v !== null && v !== false) return v;
        if (Date.now() > deadline) throw new Error(`timed out waiting in the page for ${what}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    async screenshot(path, width = 1200) {
      await cdp.send("Emulation.setDeviceMetricsOverride", { width, height: 800, deviceScaleFactor: 1, mobile: false });
      const m = await cdp.send<{ cssContentSize: { height: number } }>("Page.getLayoutMetrics");
      const height = Math.min(6000, Math.ceil(m.cssContentSize.height));
      await cdp.send("Emulation.setDeviceMetricsOverride", { width, height, deviceScaleFactor: 1, mobile: false });
      const shot = await cdp.send<{ data: string }>("Page.captureScreenshot", { format: "png" });
      await writeFile(path, Buffer.from(shot.data, "base64"));
    },
    close,
  };
}
