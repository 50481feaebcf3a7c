/**
 * A real OCI registry for tests: Debian's `docker-registry` (Distribution 2.8)
 * on 127.0.0.1 with storage in a fresh temp dir, optionally behind htpasswd
 * Basic auth or bearer-token auth (with a token server run here). Request
 * statistics come from the registry's own access log.
 */
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { createPrivateKey, randomBytes, randomUUID, sign } from "node:crypto";
import { rmSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer as createHttpServer, type Server } from "node:http";
import { createServer as createNetServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { blobStats, RegistryLog, registryConfigYaml, type LoggedRequest } from "./registry-common.ts";

/** Basic-auth user for htpasswd or the token server. */
export interface RegistryUser {
  user: string;
  password: string;
}

/** Bearer-token auth: a token server on 127.0.0.1 issuing ES256 JWTs the registry trusts. */
export interface TokenAuthOptions extends RegistryUser {
  /** Grant `pull` to anonymous token requests (default false: anonymous tokens grant nothing). */
  anonymousPull?: boolean;
  /** `expires_in` of issued tokens, seconds (default 300). */
  expiresIn?: number;
}

/** Options of `startRegistry`. */
export interface StartRegistryOptions {
  /** Require HTTP Basic auth with this user (htpasswd, bcrypt). */
  htpasswd?: RegistryUser;
  /** Require bearer tokens from a token server started alongside. */
  tokenAuth?: TokenAuthOptions;
  /** Registry binary; default `/usr/bin/docker-registry`. */
  binary?: string;
  /** Abort startup. */
  signal?: AbortSignal;
}

/** One request as the registry logged it. */
/** One request from the registry's log (see `parseRegistryLogLine`). */
export type RegistryRequestLog = LoggedRequest;

/** Request statistics since start or the last `resetStats()`. */
export interface RegistryStats {
  /** Body bytes written for `GET /v2/<repo>/blobs/<digest>`. */
  blobBytes: number;
  /** Number of `GET /v2/<repo>/blobs/<digest>` requests (HEADs and uploads not counted). */
  blobRequests: number;
  /**
   * Every request, in log order. Requests refused for lack of (valid)
   * credentials appear with status 401 and bytes 0.
   */
  requests: RegistryRequestLog[];
}

/** The token server of a registry started with `tokenAuth`. */
export interface TokenServerInfo {
  /** Realm URL. */
  readonly url: string;
  /** Token requests served (granted or refused) since start or `resetStats()`. */
  readonly tokenRequests: number;
}

/** A running registry. */
export interface RunningRegistry {
  /** `127.0.0.1:PORT`, the registry part of references. */
  readonly host: string;
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** Storage root (inside the temp dir deleted by `stop()`). */
  readonly dataDir: string;
  /** True after `halt()` (until `restart()`) and after `stop()`. */
  readonly stopped: boolean;
  /** PID of the current registry process. */
  readonly pid: number | undefined;
  /** Present with `tokenAuth`. */
  readonly tokenServer: TokenServerInfo | undefined;
  /** Statistics from the log lines read so far; call `settle()` first to include recent requests. */
  stats(): RegistryStats;
  /**
   * Forgets all statistics at once, and again after `settle()`: await it so
   * that requests answered before the call but logged late are dropped too
   * (and make no requests meanwhile).
   */
  resetStats(): Promise<void>;
  /**
   * Waits until the registry has logged every request it answered before
   * this call: sends a marker request, waits for its log line, then for the
   * log to go quiet briefly (log lines of concurrent requests may race).
   */
  settle(): Promise<void>;
  /** Kills the registry process (SIGKILL) but keeps port and storage: simulates an outage. */
  halt(): Promise<void>;
  /** Freezes the process (SIGSTOP): connections hang. `thaw()` resumes it. */
  freeze(): void;
  /** Resumes a frozen process (SIGCONT). */
  thaw(): void;
  /** Starts the registry again on the same port with the same storage. */
  restart(): Promise<void>;
  /** Kills the process, stops the token server, deletes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

const live = new Set<{ child: () => ChildProcess | undefined; dir: string }>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const r of live) {
      const child = r.child();
      if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(child.pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
      rmSync(r.dir, { recursive: true, force: true });
    }
  });
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createNetServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function execText(cmd: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { encoding: "utf8" }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} failed: ${stderr.trim() || err.message}`, { cause: err }));
      else resolve(stdout);
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** A bcrypt htpasswd line for `user`, made with libc's crypt(3) via perl (Distribution accepts only bcrypt). */
async function htpasswdLine(user: string, password: string): Promise<string> {
  if (user.includes(":") || /[\r\n]/.test(user + password)) throw new Error("htpasswd: user must not contain ':' or newlines");
  const alphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  const salt = Array.from(randomBytes(22), (b) => alphabet[b % 64]).join("").replace(/.$/, "u");
  const hash = (await execText("perl", ["-e", 'my $p = <STDIN>; chomp $p; print crypt($p, $ARGV[0])', `$2b$05$${salt}`], `${password}\n`)).trim();
  if (!hash.startsWith("$2b$05$") || hash.length !== 60) throw new Error("htpasswd: this libc's crypt(3) cannot make bcrypt hashes");
  return `${user}:${hash}\n`;
}

function base64url(b: Buffer | string): string {
  return Buffer.from(b).toString("base64url");
}

interface TokenServer {
  url: string;
  server: Server;
  requests: number;
}

/** A token server for Distribution's `auth.token`: ES256 JWTs with the signing cert in `x5c`. */
async function startTokenServer(dir: string, opts: TokenAuthOptions, service: string, issuer: string): Promise<{ ts: TokenServer; certPath: string }> {
  const keyPath = join(dir, "token-key.pem");
  const certPath = join(dir, "token-cert.pem");
  await execText("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", keyPath, "-out", certPath, "-days", "2", "-subj", "/CN=shoal-testkit-token",
  ]);
  const key = createPrivateKey(await readFile(keyPath));
  const certDer = (await readFile(certPath, "utf8")).replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  const expiresIn = opts.expiresIn ?? 300;
  const ts: TokenServer = { url: "", server: createHttpServer(), requests: 0 };
  ts.server.on("request", (req, res) => {
    ts.requests++;
    const u = new URL(req.url ?? "/", "http://x");
    const auth = req.headers.authorization;
    let authed = false;
    if (auth !== undefined) {
      const m = /^Basic\s+(.+)$/i.exec(auth);
      const decoded = m ? Buffer.from(m[1]!, "base64").toString("utf8") : "";
      if (decoded !== `${opts.user}:${opts.password}`) {
        res.writeHead(401, { "content-type": "application/json" }).end('{"details":"invalid credentials"}');
        return;
      }
      authed = true;
    }
    const access = u.searchParams.getAll("scope").flatMap((scope) => {
      const m = /^(repository):(.+):([a-z,*]+)$/.exec(scope);
      if (!m) return [];
      const wanted = m[3]!.split(",");
      const actions = authed ? wanted : opts.anonymousPull ? wanted.filter((a) => a === "pull") : [];
      return [{ type: m[1]!, name: m[2]!, actions }];
    });
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: "JWT", alg: "ES256", x5c: [certDer] };
    const claims = { iss: issuer, sub: authed ? opts.user : "", aud: service, exp: now + expiresIn, nbf: now - 10, iat: now, jti: randomUUID(), access };
    const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
    const signature = sign("sha256", Buffer.from(signingInput), { key, dsaEncoding: "ieee-p1363" });
    const token = `${signingInput}.${base64url(signature)}`;
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ token, access_token: token, expires_in: expiresIn, issued_at: new Date(now * 1000).toISOString() }));
  });
  await new Promise<void>((resolve) => ts.server.listen(0, "127.0.0.1", resolve));
  ts.url = `http://127.0.0.1:${(ts.server.address() as AddressInfo).port}/token`;
  return { ts, certPath };
}

/**
 * Starts `docker-registry serve` on 127.0.0.1 with a free port and fresh temp
 * storage, and resolves once `GET /v2/` answers (any status). The process is
 * killed and the temp dir removed by `stop()`, or at process exit.
 */
export async function startRegistry(opts: StartRegistryOptions = {}): Promise<RunningRegistry> {
  if (opts.htpasswd && opts.tokenAuth) throw new Error("startRegistry: choose htpasswd or tokenAuth, not both");
  installExitHook();
  const binary = opts.binary ?? "/usr/bin/docker-registry";
  const dir = await mkdtemp(join(tmpdir(), "shoal-registry-"));
  const dataDir = join(dir, "data");
  const configPath = join(dir, "config.yml");
  let child: ChildProcess | undefined;
  const entry = { child: () => child, dir };
  live.add(entry);

  let tokenServer: TokenServer | undefined;
  const log = new RegistryLog();
  let stopped = false;
  let finalStopped = false;
  let port = 0;

  const launch = async (): Promise<void> => {
    const c = spawn(binary, ["serve", configPath], { stdio: ["ignore", "ignore", "pipe"] });
    child = c;
    stopped = false;
    log.attach(c);
    await log.waitReady(c, `http://127.0.0.1:${port}`, opts.signal);
  };

  const kill = async (): Promise<void> => {
    const c = child;
    if (!c || c.pid === undefined || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => c.once("exit", () => resolve()));
    process.kill(c.pid, "SIGKILL");
    await gone;
  };

  try {
    let auth = "";
    if (opts.htpasswd) {
      const file = join(dir, "htpasswd");
      await writeFile(file, await htpasswdLine(opts.htpasswd.user, opts.htpasswd.password), { mode: 0o600 });
      auth = ["auth:", "  htpasswd:", "    realm: shoal-test", `    path: ${JSON.stringify(file)}`].join("\n");
    } else if (opts.tokenAuth) {
      const service = "shoal-test-registry";
      const issuer = "shoal-testkit";
      const started = await startTokenServer(dir, opts.tokenAuth, service, issuer);
      tokenServer = started.ts;
      auth = [
        "auth:", "  token:",
        `    realm: ${tokenServer.url}`, `    service: ${service}`, `    issuer: ${issuer}`,
        `    rootcertbundle: ${JSON.stringify(started.certPath)}`,
      ].join("\n");
    }
    for (let tries = 0; ; tries++) {
      port = await freePort();
      await writeFile(configPath, registryConfigYaml(dataDir, `127.0.0.1:${port}`, auth));
      try {
        await launch();
        break;
      } catch (err) {
        await kill();
        if (tries >= 2 || !log.tail.some((l) => l.includes("address already in use"))) throw err;
      }
    }
  } catch (err) {
    await kill();
    tokenServer?.server.closeAllConnections();
    tokenServer?.server.close();
    live.delete(entry);
    await rm(dir, { recursive: true, force: true });
    throw err;
  }

  const settle = async (): Promise<void> => {
    if (!stopped) await log.settle(`http://127.0.0.1:${port}`, { quiet: true });
  };

  const host = `127.0.0.1:${port}`;
  const url = `http://${host}`;

  return {
    host,
    url,
    dataDir,
    get stopped() {
      return stopped;
    },
    get pid() {
      return child?.pid;
    },
    tokenServer: tokenServer
      ? {
          url: tokenServer.url,
          get tokenRequests() {
            return tokenServer!.requests;
          },
        }
      : undefined,
    stats() {
      return blobStats(log.requests);
    },
    async resetStats() {
      const clear = (): void => {
        log.requests = [];
        if (tokenServer) tokenServer.requests = 0;
      };
      clear();
      await settle();
      clear();
    },
    settle,
    async halt() {
      stopped = true;
      await kill();
    },
    freeze() {
      if (child?.pid !== undefined) process.kill(child.pid, "SIGSTOP");
    },
    thaw() {
      if (child?.pid !== undefined) process.kill(child.pid, "SIGCONT");
    },
    async restart() {
      if (finalStopped) throw new Error("registry was stopped for good");
      await kill();
      await launch();
    },
    async stop() {
      if (finalStopped) return;
      finalStopped = true;
      stopped = true;
      if (child?.pid !== undefined && child.signalCode === null && child.exitCode === null) {
        try {
          process.kill(child.pid, "SIGCONT");
        } catch {
          // gone
        }
      }
      await kill();
      if (tokenServer) {
        tokenServer.server.closeAllConnections();
        await new Promise<void>((resolve) => tokenServer!.server.close(() => resolve()));
      }
      live.delete(entry);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
