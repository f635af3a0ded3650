/**
 * Typed errors of @mbert/train. Each carries a stable `code` so callers (the
 * CLI, tests) can tell a user error from a bug without parsing messages.
 */
export class TrainError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A malformed time string such as `"12xy"` or `"1.5ba"`. */
export class TimeStringError extends TrainError {
  constructor(message: string) {
    super("E_TIME_STRING", message);
  }
}

/** Trainer arguments that cannot work together (caught before training starts). */
export class TrainerConfigError extends TrainError {
  constructor(message: string) {
    super("E_TRAINER_CONFIG", message);
  }
}

/** The loss became NaN or infinite at a named step. */
export class NonFiniteLossError extends TrainError {
  readonly step: number;
  constructor(step: number, value: number) {
    super(
      "E_NON_FINITE_LOSS",
      `loss is ${value} at batch ${step}; lower the learning rate, check the data, ` +
        `or pass nonFiniteLoss: 'skip' to skip such steps`,
    );
    this.step = step;
  }
}

/** A checkpoint that is missing, incomplete, of another format, or inconsistent. */
export class CheckpointError extends TrainError {
  readonly path: string;
  constructor(path: string, message: string) {
    super("E_CHECKPOINT", `${path}: ${message}`);
    this.path = path;
  }
}

/** Thrown by a callback (e.g. early stopping) to ask the trainer to stop cleanly. */
export class MetricError extends TrainError {
  constructor(message: string) {
    super("E_METRIC", message);
  }
}
