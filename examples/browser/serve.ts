/**
 * A tiny static file server for the browser example (and the TypeDoc output), bound to 127.0.0.1 only.
 *
 *   npm run serve:browser            # http://127.0.0.1:8080/ (PORT=0 picks a free port)
 *   npm run serve:browser docs/api   # any other folder
 */
import { readFile, stat } from "node:fs/promises";
import { type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, extname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
  ".woff2": "font/woff2",
  ".ico": "image/x-icon",
  ".js": "text/javascript; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".bin": "application/octet-stream",
  ".png": "image/png",
  ".svg": "image/svg+xml",
};

/** A running server: its base URL and a way to stop it. */
export interface StaticServer {
  url: string;
  close(): Promise<void>;
}

/** Maps a request path into `root`, or `null` when it would leave it. */
function fileFor(root: string, urlPath: string): string | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath.split("?")[0]!);
  } catch {
    return null;
  }
  const file = resolve(root, `.${decoded.endsWith("/") ? `${decoded}index.html` : decoded}`);
  return file === root || file.startsWith(root + sep) ? file : null;
}

/**
 * Serves the files under `root` on 127.0.0.1 (GET and HEAD only, no directory listings).
 *
 * @example const server = await serveStatic("examples/browser/dist"); console.log(server.url); await server.close();
 */
export function serveStatic(root: string, port = 0): Promise<StaticServer> {
  const base = resolve(root);
  const server: Server = createServer(async (req, res) => {
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    const file = fileFor(base, req.url ?? "/");
    if (file === null) {
      res.writeHead(403).end();
      return;
    }
    try {
      if (!(await stat(file)).isFile()) throw new Error("not a file");
      const body = await readFile(file);
      res.writeHead(200, {
        "content-type": TYPES[extname(file)] ?? "application/octet-stream",
        "content-length": body.length,
        "cache-control": "no-store",
      });
      res.end(req.method === "HEAD" ? undefined : body);
    } catch {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found");
    }
  });
  return new Promise((ok, fail) => {
    server.once("error", fail);
    server.listen(port, "127.0.0.1", () => {
      const { port: bound } = server.address() as AddressInfo;
      ok({
        url: `http://127.0.0.1:${bound}/`,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const dir = process.argv[2]
    ? resolve(process.argv[2])
    : join(dirname(fileURLToPath(import.meta.url)), "dist");
  serveStatic(dir, Number(process.env.PORT ?? 8080)).then(
    (s) => console.log(`serving ${dir} at ${s.url} (Ctrl-C stops)`),
    (e: Error) => {
      console.error(`serve:browser: ${e.message}`);
      process.exit(1);
    },
  );
}
