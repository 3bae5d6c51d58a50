import * as net from "node:net";

/** One TCP connection to host:port; rejects on the socket's first error. */
function openSocket(host: string, port: number): Promise<net.Socket> {
  return new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ host, port });
    s.once("connect", () => {
      s.removeAllListeners("error");
      resolve(s);
    });
    s.once("error", reject);
  });
}

/**
 * Connects to a store's server and runs `open` on the socket, retrying every 100 ms until `timeoutMs` has passed
 * (the server may not listen yet). An error for which `fatal` is true ends the retries at once; after the timeout,
 * the error says `what` could not be reached, with `hint` and the last failure.
 */
export async function connectWithRetry<T>(
  host: string,
  port: number,
  timeoutMs: number,
  open: (socket: net.Socket, deadline: number) => Promise<T>,
  what: string,
  hint: string,
  fatal: (e: unknown) => boolean = () => false,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  for (;;) {
    try {
      return await open(await openSocket(host, port), deadline);
    } catch (e) {
      if (fatal(e)) throw e;
      last = e instanceof Error ? e.message : String(e);
    }
    if (Date.now() >= deadline) throw new Error(`could not reach ${what} at ${host}:${port} within ${timeoutMs / 1000} s (${hint}): ${last}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
