/**
 * Training-loop events, in the order Composer fires them. One fit:
 *
 *   INIT, BEFORE_LOAD, AFTER_LOAD, FIT_START
 *   per epoch: EPOCH_START
 *     per batch: BEFORE_DATALOADER, AFTER_DATALOADER, BATCH_START, BEFORE_TRAIN_BATCH,
 *       per microbatch: BEFORE_FORWARD, AFTER_FORWARD, BEFORE_LOSS, AFTER_LOSS,
 *                       BEFORE_BACKWARD, AFTER_BACKWARD
 *       AFTER_TRAIN_BATCH, BATCH_END,
 *       [when evalInterval is reached: EVAL_BEFORE_ALL, per evaluator EVAL_START,
 *        EVAL_BATCH_START, EVAL_BEFORE_FORWARD, EVAL_AFTER_FORWARD, EVAL_BATCH_END, EVAL_END,
 *        EVAL_AFTER_ALL]
 *       BATCH_CHECKPOINT
 *     EPOCH_END, [epoch-interval evaluation], EPOCH_CHECKPOINT
 *   FIT_END
 *
 * `Trainer.eval()` outside fit wraps evaluation in EVAL_STANDALONE_START/END.
 */
export const Event = {
  INIT: "init",
  BEFORE_LOAD: "before_load",
  AFTER_LOAD: "after_load",
  FIT_START: "fit_start",
  EPOCH_START: "epoch_start",
  BEFORE_DATALOADER: "before_dataloader",
  AFTER_DATALOADER: "after_dataloader",
  BATCH_START: "batch_start",
  BEFORE_TRAIN_BATCH: "before_train_batch",
  BEFORE_FORWARD: "before_forward",
  AFTER_FORWARD: "after_forward",
  BEFORE_LOSS: "before_loss",
  AFTER_LOSS: "after_loss",
  BEFORE_BACKWARD: "before_backward",
  AFTER_BACKWARD: "after_backward",
  AFTER_TRAIN_BATCH: "after_train_batch",
  BATCH_END: "batch_end",
  BATCH_CHECKPOINT: "batch_checkpoint",
  EPOCH_END: "epoch_end",
  EPOCH_CHECKPOINT: "epoch_checkpoint",
  FIT_END: "fit_end",
  EVAL_BEFORE_ALL: "eval_before_all",
  EVAL_START: "eval_start",
  EVAL_BATCH_START: "eval_batch_start",
  EVAL_BEFORE_FORWARD: "eval_before_forward",
  EVAL_AFTER_FORWARD: "eval_after_forward",
  EVAL_BATCH_END: "eval_batch_end",
  EVAL_END: "eval_end",
  EVAL_AFTER_ALL: "eval_after_all",
  EVAL_STANDALONE_START: "eval_standalone_start",
  EVAL_STANDALONE_END: "eval_standalone_end",
} as const;
export type Event = (typeof Event)[keyof typeof Event];

/** Every event, in declaration order. */
export const ALL_EVENTS: readonly Event[] = Object.values(Event);

/** The Callback method name of an event: `batch_end` -> `batchEnd`. */
export function eventMethodName(event: Event): CallbackMethod {
  return event.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()) as CallbackMethod;
}

type Camel<S extends string> = S extends `${infer H}_${infer T}` ? `${H}${Capitalize<Camel<T>>}` : S;
export type CallbackMethod = Camel<Event>;
