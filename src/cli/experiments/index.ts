import type { FlagSpecs } from "../args.js";
import type { CliIO } from "../io.js";
export const EXPERIMENTS = ["label-noise", "hessian", "m-sharpness"] as const;
export const EXPERIMENT_FLAGS: FlagSpecs = {};
export async function runExperiment(_name: string, _argv: string[], _io: CliIO): Promise<number> {
  return 2;
}
