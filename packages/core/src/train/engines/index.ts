/** The training engines by name, and `auto`: torch when its addon is built, else tfjs. */
import { UsageError } from '../../errors.js';
import { ENGINE_NAMES, type EngineName, type EngineStatus, type TrainingEngine } from './engine.js';
import { tfjsEngine } from './tfjs-engine.js';
import { torchEngine } from './torch-engine.js';

export * from './engine.js';

const ENGINES: Record<EngineName, TrainingEngine> = { torch: torchEngine, tfjs: tfjsEngine };

/** Every engine with whether it can run here, and why not (`fqa-scan info`). */
export async function trainingEngines(): Promise<EngineStatus[]> {
  return Promise.all(ENGINE_NAMES.map((name) => ENGINES[name].status()));
}

/** An engine by name; `auto` takes torch where it is built. A named engine that cannot run is a UsageError with the reason. */
export async function resolveEngine(name: EngineName | 'auto'): Promise<TrainingEngine> {
  if (name === 'auto') return (await torchEngine.status()).available ? torchEngine : tfjsEngine;
  const engine = ENGINES[name];
  if (!engine) throw new UsageError(`Expected one of auto, ${ENGINE_NAMES.join(', ')} for engine but received '${String(name)}'`);
  const status = await engine.status();
  if (!status.available) throw new UsageError(`the ${name} training engine is not available: ${status.reason}`);
  return engine;
}
