// Typed errors of @mbert/model. Every error carries a stable `code` string and a
// message that names the file or thing at fault and says how to fix it.

export class ModelError extends Error {
  readonly code: string;
  /** The file the error is about, when there is one. */
  readonly file: string | undefined;
  constructor(code: string, message: string, file?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.file = file;
  }
}

/** The fault found in a malformed safetensors file. */
export type SafetensorsFault =
  | "TOO_SHORT" // fewer than 8 bytes: no header length
  | "HEADER_LENGTH" // header length points past the end of the file
  | "HEADER_JSON" // header is not a JSON object
  | "ENTRY" // a tensor entry lacks dtype/shape/data_offsets or has the wrong types
  | "DTYPE" // a dtype outside F32/F16/BF16/F64/I32/I64
  | "SPAN" // shape x dtype size differs from the byte span
  | "OFFSETS" // an offset outside the data section
  | "OVERLAP" // two tensors share bytes, or bytes between them are unaccounted for
  | "MISSING_TENSOR"; // a tensor asked for is not in the file

/** A safetensors file that cannot be trusted; nothing from it is used. */
export class SafetensorsError extends ModelError {
  readonly fault: SafetensorsFault;
  constructor(file: string, fault: SafetensorsFault, detail: string) {
    super(
      `SAFETENSORS_${fault}`,
      `${file}: ${detail}; the file is truncated or was not written as safetensors — re-export it (e.g. save_pretrained(..., safe_serialization=True)) or re-download it`,
      file,
    );
    this.fault = fault;
  }
}

/** config.json is missing, unreadable, or holds a value of the wrong type. */
export class ConfigError extends ModelError {
  constructor(file: string | undefined, detail: string) {
    super("CONFIG_INVALID", `${file ?? "config"}: ${detail}`, file);
  }
}

/** A checkpoint folder we cannot load (no safetensors, only a pickle, ...). */
export class CheckpointError extends ModelError {
  constructor(code: string, file: string, detail: string) {
    super(code, `${file}: ${detail}`, file);
  }
}

/** What a state dict lacks or has in excess, by name. */
export interface StateDictReport {
  /** Model parameters the state dict does not hold. */
  missing: string[];
  /** State-dict keys the model has no parameter for. */
  unexpected: string[];
  /** Keys whose shapes differ: `name: checkpoint [a, b] vs model [c, d]`. */
  mismatched: string[];
}

/** A strict load found missing, unexpected or mis-shaped keys. */
export class StateDictMismatch extends ModelError {
  readonly report: StateDictReport;
  constructor(report: StateDictReport, file?: string) {
    const parts: string[] = [];
    if (report.missing.length > 0) parts.push(`missing ${report.missing.join(", ")}`);
    if (report.unexpected.length > 0) parts.push(`unexpected ${report.unexpected.join(", ")}`);
    if (report.mismatched.length > 0) parts.push(`mis-shaped ${report.mismatched.join("; ")}`);
    super(
      "STATE_DICT_MISMATCH",
      `${file ? `${file}: ` : ""}${parts.join("; ")}; check that config.json matches the weights (sizes, family), or load with { strict: false }`,
      file,
    );
    this.report = report;
  }
}

/** A token id outside [0, vocabSize) — caught on the host before any upload. */
export class TokenIdOutOfRange extends ModelError {
  constructor(what: string, index: number, id: number, vocabSize: number) {
    super(
      "TOKEN_ID_OUT_OF_RANGE",
      `${what}[${index}] = ${id} is outside the vocabulary [0, ${vocabSize}); the tokenizer and config.json disagree on vocab_size`,
    );
  }
}

/** A batch whose fields disagree (lengths, cuSeqlens, positions). */
export class BatchError extends ModelError {
  constructor(detail: string) {
    super("BATCH_INVALID", `${detail}`);
  }
}
