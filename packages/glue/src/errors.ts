// Typed errors of @mbert/glue. Each carries a stable `code` and a message that
// names the file (and line) or the option at fault and says how to fix it.

export class GlueError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Why a TSV row was refused. */
export type BadRowKind =
  | "COLUMNS" // the row has another number of tab-separated fields than the header (or the format)
  | "LABEL" // a class label outside the task's label set
  | "SCORE"; // a regression score that is not a number in range

/** One refused row: where it is and what is wrong with it. */
export interface BadRow {
  file: string;
  /** 1-based line number in the file (the header, when there is one, is line 1). */
  line: number;
  kind: BadRowKind;
  detail: string;
}

/** A GLUE TSV row that does not fit its task's format. Names the file and line. */
export class GlueRowError extends GlueError {
  readonly file: string;
  readonly line: number;
  readonly kind: BadRowKind;
  /** Every bad row found when the reader collected them before throwing (first one first). */
  readonly rows: BadRow[];
  /** How many bad rows the file has in all (rows lists at most the first few). */
  readonly total: number;
  constructor(rows: BadRow[], total = rows.length) {
    const first = rows[0]!;
    const more = total > 1 ? ` (and ${total - 1} more bad row${total > 2 ? "s" : ""})` : "";
    super(
      `GLUE_BAD_ROW_${first.kind}`,
      `${first.file}:${first.line}: ${first.detail}${more}; fix or remove the row (the file should be as the GLUE download script writes it)`,
    );
    this.file = first.file;
    this.line = first.line;
    this.kind = first.kind;
    this.rows = rows;
    this.total = total;
  }
}

/** A GLUE file that is missing, unreadable, or whose header is not the task's. */
export class GlueFileError extends GlueError {
  readonly file: string;
  constructor(
    code: "GLUE_FILE_MISSING" | "GLUE_FILE_UNREADABLE" | "GLUE_HEADER",
    file: string,
    detail: string,
  ) {
    super(code, `${file}: ${detail}`);
    this.file = file;
  }
}

/** An unknown task name, split, or option value. */
export class GlueConfigError extends GlueError {
  constructor(message: string) {
    super("GLUE_CONFIG", message);
  }
}

/** Bad command-line arguments to `mbert glue`. */
export class GlueUsageError extends GlueError {
  constructor(message: string) {
    super("GLUE_USAGE", message);
  }
}
