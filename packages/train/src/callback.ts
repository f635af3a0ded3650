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

/**
 * Hooks are synchronous: the per-microbatch events run inside the tensor
 * library's tidy() scopes, which track synchronous work only.
 */
export type Hook = (state: State, logger: Logger) => void;
export type CallbackHooks = { [K in CallbackMethod]?: Hook };

export class Callback {
  // One optional method per event (see events.ts for the order they fire in).
  init?(state: State, logger: Logger): void;
  beforeLoad?(state: State, logger: Logger): void;
  afterLoad?(state: State, logger: Logger): void;
  fitStart?(state: State, logger: Logger): void;
  epochStart?(state: State, logger: Logger): void;
  beforeDataloader?(state: State, logger: Logger): void;
  afterDataloader?(state: State, logger: Logger): void;
  batchStart?(state: State, logger: Logger): void;
  beforeTrainBatch?(state: State, logger: Logger): void;
  beforeForward?(state: State, logger: Logger): void;
  afterForward?(state: State, logger: Logger): void;
  beforeLoss?(state: State, logger: Logger): void;
  afterLoss?(state: State, logger: Logger): void;
  beforeBackward?(state: State, logger: Logger): void;
  afterBackward?(state: State, logger: Logger): void;
  afterTrainBatch?(state: State, logger: Logger): void;
  batchEnd?(state: State, logger: Logger): void;
  batchCheckpoint?(state: State, logger: Logger): void;
  epochEnd?(state: State, logger: Logger): void;
  epochCheckpoint?(state: State, logger: Logger): void;
  fitEnd?(state: State, logger: Logger): void;
  evalBeforeAll?(state: State, logger: Logger): void;
  evalStart?(state: State, logger: Logger): void;
  evalBatchStart?(state: State, logger: Logger): void;
  evalBeforeForward?(state: State, logger: Logger): void;
  evalAfterForward?(state: State, logger: Logger): void;
  evalBatchEnd?(state: State, logger: Logger): void;
  evalEnd?(state: State, logger: Logger): void;
  evalAfterAll?(state: State, logger: Logger): void;
  evalStandaloneStart?(state: State, logger: Logger): void;
  evalStandaloneEnd?(state: State, logger: Logger): void;

  /** Dispatches `event` to the method of the same name, when defined. */
  run(event: Event, state: State, logger: Logger): void {
    const hook = (this as CallbackHooks)[eventMethodName(event)];
    if (hook !== undefined) hook.call(this, state, logger);
  }

  /** Serializable state saved in checkpoints (for callbacks that count or remember). */
  stateDict(): Record<string, unknown> {
    return {};
  }

  loadStateDict(_state: Record<string, unknown>): void {}

  /** Called once when training ends (after FIT_END, or on an error): flush and close files. */
  close(_state: State, _logger: Logger): void {}
}

export interface Algorithm {
  /** A name for logs and checkpoints (defaults to the class name). */
  readonly name?: string;
  match(event: Event, state: State): boolean;
  apply(event: Event, state: State, logger: Logger): void;
  stateDict?(): Record<string, unknown>;
  loadStateDict?(state: Record<string, unknown>): void;
}

/** Runs an event through the algorithms that match it, then every callback. */
export function fireEvent(
  event: Event,
  state: State,
  logger: Logger,
  algorithms: readonly Algorithm[],
  callbacks: readonly Callback[],
): void {
  for (const a of algorithms) if (a.match(event, state)) a.apply(event, state, logger);
  for (const cb of callbacks) cb.run(event, state, logger);
}
