/** Errors the CLI prints as one clean line; `exitCode` 2 for bad input, 1 for failures. */
export class CliError extends Error {
  readonly code: string;
  readonly exitCode: number;
  constructor(code: string, message: string, exitCode = 1) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.exitCode = exitCode;
  }
}

/** A config file or --set override that does not validate; lists every problem. */
export class ConfigError extends CliError {
  readonly issues: { key: string; message: string }[];
  constructor(file: string, issues: { key: string; message: string }[]) {
    const lines = issues.map((i) => `  ${i.key}: ${i.message}`).join("\n");
    super("E_CONFIG", `${file}: ${issues.length} problem${issues.length === 1 ? "" : "s"}\n${lines}`, 2);
    this.issues = issues;
  }
}

export class UsageError extends CliError {
  constructor(message: string) {
    super("E_USAGE", message, 2);
  }
}
