/**
 * What the leader checks of a job before anything starts: every operator (a plain name, arguments
 * its built-in accepts, an executable in ops_dir) and, with autoscale=true, that every stage can
 * change size and the policy settings are valid. A refusal is a LeaderError naming the stage.
 */
import { operatorFactory, STATELESS_OPERATORS } from "../../ops/registry.ts";
import type { NodeConfig } from "../node_config.ts";
import { type AutoscaleConfig, DEFAULT_AUTOSCALE, validateAutoscaleConfig } from "./autoscale.ts";
import { type JobSpec, validateOperatorName } from "./plan.ts";
import { isReplayable, RequestError, RUNNING_FROM_SOURCE, type Worker } from "./worker.ts";

/** A job the leader refuses, or cannot run now: answered with `status` and `{"error": message}`. */
export class LeaderError extends Error {
  constructor(
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

/** A stage's operator must be a plain name, accept its arguments (built-ins) and exist in ops_dir. */
export function checkOperator(worker: Worker, op: string, args: string[], i: number): void {
  try {
    validateOperatorName(op);
  } catch (err) {
    throw new LeaderError(`stage${i}: ${(err as Error).message}`);
  }
  const factory = operatorFactory(op);
  if (factory) {
    try {
      factory(args);
    } catch (err) {
      throw new LeaderError(`stage${i} ${op} ${JSON.stringify(args)}: ${(err as Error).message}`);
    }
  }
  try {
    worker.operatorCommand(op, args);
  } catch (err) {
    // A file that leads outside ops_dir (or is not executable) says so; a missing one is unknown.
    if (err instanceof RequestError) throw new LeaderError(`stage${i}: ${err.message}`);
    throw new LeaderError(
      `stage${i}: unknown operator ${JSON.stringify(op)} (no executable of that name in ${worker.opsDir()}${factory && RUNNING_FROM_SOURCE ? "; run npm run build" : ""})`,
    );
  }
}

/** The policy settings of an autoscale=true job, or a LeaderError saying why it cannot scale. */
export function autoscaleConfigOf(spec: JobSpec, nodeCfg: NodeConfig): AutoscaleConfig {
  spec.stages.forEach((s, i) => {
    if (!isReplayable(s.op)) {
      throw new LeaderError(
        `autoscale=true: stage${i} runs ${s.op}, which is not a known stateless operator (${[...STATELESS_OPERATORS].join(", ")}); its task count cannot change because moving per-key state between tasks is not supported. Run with autoscale=false, or autoscale a pipeline of stateless operators`,
      );
    }
  });
  const r = nodeCfg.rainstorm;
  const cfg = {
    ...DEFAULT_AUTOSCALE,
    lowWatermark: spec.lowWatermark,
    highWatermark: spec.highWatermark,
    sustainSamples: r.autoscale_sustain_samples,
    settleMs: r.autoscale_settle_ms,
    maxTasks: r.autoscale_max_tasks,
  };
  if (!(spec.highWatermark > 0)) throw new LeaderError(`autoscale=true: HW must be above 0 tuples/s per task, got ${spec.highWatermark}`);
  try {
    validateAutoscaleConfig(cfg);
  } catch (err) {
    throw new LeaderError(`autoscale=true: ${(err as Error).message}`);
  }
  return cfg;
}
