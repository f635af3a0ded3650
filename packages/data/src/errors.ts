// Typed errors of @mbert/data. Every error carries a stable `code` string and a
// message that names the file (or thing) at fault and says how to fix it.

export class DataError extends Error {
  readonly code: string;
  /** The file, URL or input the error is about, when there is one. */
  readonly file: string | undefined;
  constructor(code: string, message: string, file?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.file = file;
  }
}

/** A shard's bytes do not hash to the sha256 recorded in index.json. */
export class ShardHashMismatch extends DataError {
  constructor(file: string, expected: string, actual: string) {
    super(
      "SHARD_HASH_MISMATCH",
      `ShardHashMismatch: ${file}: sha256 differs from index.json (expected ${expected.slice(0, 12)}…, got ${actual.slice(0, 12)}…); delete the cached copy or re-run mbert shard`,
      file,
    );
  }
}

/** A shard's size differs from index.json (truncated or extended file). */
export class ShardSizeMismatch extends DataError {
  constructor(file: string, expected: number, actual: number) {
    super(
      "SHARD_SIZE_MISMATCH",
      `ShardSizeMismatch: ${file}: ${actual} bytes on disk, index.json says ${expected} (truncated or partial write?); delete it and re-run mbert shard`,
      file,
    );
  }
}

/** A shard listed in index.json is not there. */
export class ShardMissing extends DataError {
  constructor(file: string, where: string) {
    super(
      "SHARD_MISSING",
      `ShardMissing: ${file}: listed in index.json but not found at ${where}; re-run mbert shard to write it`,
      file,
    );
  }
}

/** A shard file is not a readable Arrow IPC file of the expected schema. */
export class ShardCorrupt extends DataError {
  constructor(file: string, detail: string, cause?: unknown) {
    super(
      "SHARD_CORRUPT",
      `ShardCorrupt: ${file}: ${detail}; delete it and re-run mbert shard`,
      file,
      cause === undefined ? undefined : { cause },
    );
  }
}

/** index.json is missing, not JSON, or not of the mbert-shards format. */
export class IndexInvalid extends DataError {
  constructor(file: string, detail: string, cause?: unknown) {
    super(
      "INDEX_INVALID",
      `IndexInvalid: ${file}: ${detail}; re-run mbert shard to rewrite it`,
      file,
      cause === undefined ? undefined : { cause },
    );
  }
}

/** The shards were written with a different tokenizer than the one given. */
export class TokenizerMismatch extends DataError {
  constructor(file: string, expected: string, actual: string) {
    super(
      "TOKENIZER_MISMATCH",
      `TokenizerMismatch: ${file}: shards were tokenized with tokenizer sha256 ${expected.slice(0, 12)}…, but the given tokenizer is ${actual.slice(0, 12)}…; pass the same tokenizer.json or re-shard`,
      file,
    );
  }
}

/** A tokenizer.json that cannot be loaded or lacks what BERT-style encoding needs. */
export class TokenizerError extends DataError {
  constructor(file: string, detail: string, cause?: unknown) {
    super(
      "TOKENIZER_INVALID",
      `TokenizerError: ${file}: ${detail}`,
      file,
      cause === undefined ? undefined : { cause },
    );
  }
}

/** A download failed after all retries. */
export class DownloadError extends DataError {
  constructor(url: string, attempts: number, detail: string, cause?: unknown) {
    super(
      "DOWNLOAD_FAILED",
      `DownloadError: ${url}: failed after ${attempts} attempt(s): ${detail}; check the URL and network, or raise retries/timeoutMs`,
      url,
      cause === undefined ? undefined : { cause },
    );
  }
}

/** Bad input to a corpus reader that cannot be skipped (missing file, unknown format). */
export class CorpusError extends DataError {
  constructor(file: string, detail: string, cause?: unknown) {
    super(
      "CORPUS_INVALID",
      `CorpusError: ${file}: ${detail}`,
      file,
      cause === undefined ? undefined : { cause },
    );
  }
}

/** Bad options or arguments (CLI flags, dataset options, state dicts). */
export class DataUsageError extends DataError {
  constructor(message: string) {
    super("USAGE", message);
  }
}

/** The shard cache cannot hold what the reader needs at once. */
export class CacheFullError extends DataError {
  constructor(dir: string, needBytes: number, limitBytes: number) {
    super(
      "CACHE_FULL",
      `CacheFullError: ${dir}: shards in use need ${needBytes} bytes but cacheLimitBytes is ${limitBytes}; raise cacheLimitBytes or lower shuffleBlockSize`,
      dir,
    );
  }
}
