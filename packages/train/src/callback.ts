/**
 * The plugin surface. A `Callback` has one optional method per event
 * (`fitStart`, `batchEnd`, `evalEnd`, ...) receiving the trainer state and
 * the logger; callbacks observe and log. An `Algorithm` changes training: the
 * trainer asks `match(event, state)` at every event and calls
 * `apply(event, state, logger)` when it returns true, before the callbacks.
 */
import { type CallbackMethod, type Event, eventMethodName } from "./events.js";
import type { Logger } from "./logger.js";
import type { State } from "./state.js";

export type Hook = (state: State, logger: Logger) => void | Promise<void>;
export type CallbackHooks = { [K in CallbackMethod]?: Hook };

export class Callback {
  // One optional method per event (see events.ts for the order they fire in).
  init?(state: State, logger: Logger): void | Promise<void>;
  beforeLoad?(state: State, logger: Logger): void | Promise<void>;
  afterLoad?(state: State, logger: Logger): void | Promise<void>;
  fitStart?(state: State, logger: Logger): void | Promise<void>;
  epochStart?(state: State, logger: Logger): void | Promise<void>;
  beforeDataloader?(state: State, logger: Logger): void | Promise<void>;
  afterDataloader?(state: State, logger: Logger): void | Promise<void>;
  batchStart?(state: State, logger: Logger): void | Promise<void>;
  beforeTrainBatch?(state: State, logger: Logger): void | Promise<void>;
  beforeForward?(state: State, logger: Logger): void | Promise<void>;
  afterForward?(state: State, logger: Logger): void | Promise<void>;
  beforeLoss?(state: State, logger: Logger): void | Promise<void>;
  afterLoss?(state: State, logger: Logger): void | Promise<void>;
  beforeBackward?(state: State, logger: Logger): void | Promise<void>;
  afterBackward?(state: State, logger: Logger): void | Promise<void>;
  afterTrainBatch?(state: State, logger: Logger): void | Promise<void>;
  batchEnd?(state: State, logger: Logger): void | Promise<void>;
  batchCheckpoint?(state: State, logger: Logger): void | Promise<void>;
  epochEnd?(state: State, logger: Logger): void | Promise<void>;
  epochCheckpoint?(state: State, logger: Logger): void | Promise<void>;
  fitEnd?(state: State, logger: Logger): void | Promise<void>;
  evalBeforeAll?(state: State, logger: Logger): void | Promise<void>;
  evalStart?(state: State, logger: Logger): void | Promise<void>;
  evalBatchStart?(state: State, logger: Logger): void | Promise<void>;
  evalBeforeForward?(state: State, logger: Logger): void | Promise<void>;
  evalAfterForward?(state: State, logger: Logger): void | Promise<void>;
  evalBatchEnd?(state: State, logger: Logger): void | Promise<void>;
  evalEnd?(state: State, logger: Logger): void | Promise<void>;
  evalAfterAll?(state: State, logger: Logger): void | Promise<void>;
  evalStandaloneStart?(state: State, logger: Logger): void | Promise<void>;
  evalStandaloneEnd?(state: State, logger: Logger): void | Promise<void>;

  /** Dispatches `event` to the method of the same name, when defined. */
  run(event: Event, state: State, logger: Logger): void | Promise<void> {
    const hook = (this as CallbackHooks)[eventMethodName(event)];
    if (hook !== undefined) return hook.call(this, state, logger);
  }

  /** Serializable state saved in checkpoints (for callbacks that count or remember). */
  stateDict(): Record<string, unknown> {
    return {};
  }

  loadStateDict(_state: Record<string, unknown>): void {}

  /** Called once when training ends (after FIT_END, or on an error): flush and close files. */
  close(_state: State, _logger: Logger): void | Promise<void> {}
}

export interface Algorithm {
  /** A name for logs and checkpoints (defaults to the class name). */
  readonly name?: string;
  match(event: Event, state: State): boolean;
  apply(event: Event, state: State, logger: Logger): void | Promise<void>;
  stateDict?(): Record<string, unknown>;
  loadStateDict?(state: Record<string, unknown>): void;
}

/** Runs an event through algorithms then callbacks, awaiting only hooks that return promises. */
export async function fireEvent(
  event: Event,
  state: State,
  logger: Logger,
  algorithms: readonly Algorithm[],
  callbacks: readonly Callback[],
): Promise<void> {
  for (const a of algorithms) {
    if (a.match(event, state)) {
      const r = a.apply(event, state, logger);
      if (r instanceof Promise) await r;
    }
  }
  for (const cb of callbacks) {
    const r = cb.run(event, state, logger);
    if (r instanceof Promise) await r;
  }
}
