// Downloads with bounded retries, timeouts and exponential backoff.

import { DownloadError, ShardHashMismatch, ShardSizeMismatch } from "./errors.js";
import { sha256Bytes } from "./hash.js";

export interface RetryOptions {
  /** Attempts after the first (default 4). */
  retries?: number;
  /** Per-attempt timeout in ms, covering the whole body (default 60000). */
  timeoutMs?: number;
  /** First backoff in ms; doubles each retry, capped at 10 s (default 200). */
  backoffMs?: number;
}

export interface Expected {
  /** Name for error messages (e.g. the shard file name). */
  name: string;
  bytes?: number;
  sha256?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** HTTP statuses worth retrying; other 4xx mean the request itself is wrong. */
function retryableStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

/**
 * GET a URL's bytes. When `expected` has a size or sha256, a response that does
 * not match is retried like a dropped connection; after the last attempt the
 * typed ShardSizeMismatch/ShardHashMismatch is thrown, a DownloadError otherwise.
 */
export async function fetchBytes(
  url: string,
  options: RetryOptions = {},
  expected?: Expected,
): Promise<Uint8Array> {
  const retries = options.retries ?? 4;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const backoffMs = options.backoffMs ?? 200;
  let lastErr: unknown = null;
  for (let attempt = 0; attempt <= retries; attempt++) {
    if (attempt > 0) await sleep(Math.min(10_000, backoffMs * 2 ** (attempt - 1)));
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
      if (!res.ok) {
        const err = new DownloadError(url, attempt + 1, `HTTP ${res.status} ${res.statusText}`);
        if (!retryableStatus(res.status)) throw Object.assign(err, { fatal: true });
        lastErr = err;
        await res.body?.cancel().catch(() => {});
        continue;
      }
      const bytes = new Uint8Array(await res.arrayBuffer());
      if (expected?.bytes !== undefined && bytes.length !== expected.bytes) {
        lastErr = new ShardSizeMismatch(expected.name, expected.bytes, bytes.length);
        continue;
      }
      if (expected?.sha256 !== undefined) {
        const h = sha256Bytes(bytes);
        if (h !== expected.sha256) {
          lastErr = new ShardHashMismatch(expected.name, expected.sha256, h);
          continue;
        }
      }
      return bytes;
    } catch (err) {
      if ((err as { fatal?: boolean }).fatal) throw err;
      lastErr = err;
    }
  }
  if (lastErr instanceof ShardHashMismatch || lastErr instanceof ShardSizeMismatch) throw lastErr;
  if (lastErr instanceof DownloadError)
    throw new DownloadError(
      url,
      retries + 1,
      lastErr.message
        .replace(/^DownloadError: \S+: failed after \d+ attempt\(s\): /, "")
        .replace(/; check the URL.*$/, ""),
      lastErr,
    );
  const e = lastErr as Error;
  const detail =
    e?.name === "TimeoutError"
      ? `timed out after ${timeoutMs} ms`
      : `${e?.message ?? String(e)}${(e as { cause?: Error })?.cause?.message ? ` (${(e as { cause?: Error }).cause!.message})` : ""}`;
  throw new DownloadError(url, retries + 1, detail, lastErr);
}
