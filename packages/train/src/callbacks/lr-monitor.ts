/** Logs the LR each optimizer group ran at: `lr-DecoupledAdamW/group0`. */
import { Callback } from "../callback.js";
import type { Logger } from "../logger.js";
import type { State } from "../state.js";

export class LRMonitor extends Callback {
  override batchEnd(state: State, logger: Logger): void {
    const m: Record<string, number> = {};
    for (const opt of state.optimizers) {
      opt.paramGroups.forEach((g, i) => {
        m[`lr-${opt.name}/group${i}`] = g.lr;
      });
    }
    logger.logMetrics(m);
  }
}
