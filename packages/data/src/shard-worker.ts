// Worker-thread entry of the shard writer: tokenizes chunks of documents.
// Built by tsup as dist/shard-worker.js; shard.ts starts it with new Worker().

import { parentPort, workerData } from "node:worker_threads";
import { type ChunkDoc, ChunkTokenizer, type TokenizeJobConfig } from "./shard-work.js";

if (parentPort) {
  const port = parentPort;
  let tokenizer: ChunkTokenizer | null = null;
  try {
    tokenizer = new ChunkTokenizer(workerData as TokenizeJobConfig);
  } catch (err) {
    port.postMessage({ type: "error", message: (err as Error).message });
  }
  port.on("message", (msg: { id: number; docs: ChunkDoc[] }) => {
    if (!tokenizer) return;
    try {
      const r = tokenizer.run(msg.docs);
      port.postMessage({ type: "result", id: msg.id, result: r }, [
        r.docSamples.buffer as ArrayBuffer,
        r.lengths.buffer as ArrayBuffer,
        r.values.buffer as ArrayBuffer,
      ]);
    } catch (err) {
      port.postMessage({ type: "error", id: msg.id, message: (err as Error).message });
    }
  });
}
