/**
 * fqa-scan: one file per command under commands/. This file only dispatches and owns the single
 * top-level error handler: every error becomes one line on stderr and an exit code
 * (0 ok, 1 QC failure, 2 usage error, 3 unreadable input).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { closestOption, optionsInUsage } from './suggest.js';

export interface Command {
  summary: string;
  usage: string;
  run(args: string[]): Promise<number>;
}

/**
 * Commands are imported when run, not at start-up: the queue's Redis client, ONNX Runtime, tfjs and
 * the native addon cost half a second to load, which `--version`, `--help` of one command or a usage
 * error should not pay (and `scan` should not pay for the queue).
 */
const commands: Record<string, () => Promise<Command>> = {
  scan: async () => (await import('./commands/scan.js')).scanCommand,
  demo: async () => (await import('./commands/demo.js')).demoCommand,
  eval: async () => (await import('./commands/eval.js')).evalCommand,
  score: async () => (await import('./commands/score.js')).scoreCommand,
  'convert-reference': async () => (await import('./commands/convert-reference.js')).convertReferenceCommand,
  info: async () => (await import('./commands/info.js')).infoCommand,
  models: async () => (await import('./commands/models.js')).modelsCommand,
  train: async () => (await import('./commands/train.js')).trainCommand,
  'train-default': async () => (await import('./commands/train-default.js')).trainDefaultCommand,
  experiment: async () => (await import('./commands/experiment.js')).experimentCommand,
  queue: async () => (await import('./commands/queue.js')).queueCommand,
  worker: async () => (await import('./commands/worker.js')).workerCommand,
  analyze: async () => (await import('./commands/analyze.js')).analyzeCommand,
  search: async () => (await import('./commands/search.js')).searchCommand,
};

/** fqa's release (every package of the monorepo shares it), read without loading the native addon. */
function fqaVersion(): string {
  return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

async function help(): Promise<string> {
  const lines = ['Usage: fqa-scan <command> [options]   (fqa-scan <slide...> = fqa-scan scan <slide...>)', '       fqa-scan --version', '', 'Commands:'];
  for (const [name, load] of Object.entries(commands)) lines.push(`  ${name.padEnd(18)} ${(await load()).summary}`);
  lines.push('', 'Run fqa-scan <command> --help for its options.');
  return lines.join('\n');
}

/** A usage error found before any command (and so before @fqa/core) is loaded. */
class EarlyUsageError extends Error {}

/**
 * A reader that stops early (`fqa-scan ... --json | head -1`) closes the pipe: writes then fail with
 * EPIPE. That must not stop a scan before its reports and summary.tsv are written, so such errors on
 * stdout and stderr are ignored (the lines are lost, the run goes on and exits as it would have).
 */
function ignoreClosedPipes(): void {
  for (const stream of [process.stdout, process.stderr]) {
    if (stream.listenerCount('error') > 0) continue;
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') throw err;
    });
  }
}

export async function main(argv: string[]): Promise<number> {
  ignoreClosedPipes();
  const [name, ...rest] = argv;
  let command: Command | undefined;
  let commandName = 'scan';
  try {
    if (name === '--version' || name === '-V') {
      process.stdout.write(`fqa-scan ${fqaVersion()}\n`);
      return 0;
    }
    if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
      process.stdout.write((await help()) + '\n');
      return name === undefined ? 2 : 0;
    }
    let commandArgs = rest;
    if (Object.hasOwn(commands, name)) commandName = name;
    // `fqa-scan slide.svs ...`: anything that is not a command but looks like an input is a scan.
    // (An option first, `fqa-scan --out r slide.svs`, is a scan too.)
    else if (existsSync(name) || /[*?]/.test(name) || /\.[a-z0-9]{2,6}$/i.test(name) || name.startsWith('-') || name.includes(path.sep)) commandArgs = argv;
    else {
      const suggestion = closestOption(name, Object.keys(commands));
      throw new EarlyUsageError(`unknown command '${name}'${suggestion ? `; did you mean ${suggestion}?` : ''} (see fqa-scan --help)`);
    }
    command = await commands[commandName]!();
    if (commandArgs.includes('--help') || commandArgs.includes('-h')) {
      process.stdout.write(command.usage + '\n');
      return 0;
    }
    return await command.run(commandArgs);
  } catch (err) {
    if (err instanceof EarlyUsageError) {
      process.stderr.write(`fqa-scan: ${err.message}\n`);
      return 2;
    }
    const code = (err as { code?: string }).code;
    if (code === 'FQA_NATIVE_MISSING') {
      // An installation problem, not a bug: the loader's message lists what it tried and the fixes.
      process.stderr.write(`fqa-scan: ${(err as Error).message.replace(/^fqa: /, '')}\n`);
      return 70;
    }
    // Loaded here, after the command: every command imports @fqa/core anyway.
    const { FqaError } = await import('@fqa/core');
    if (err instanceof FqaError) {
      process.stderr.write(`fqa-scan: ${err.message}\n`);
      return err.exitCode;
    }
    // util.parseArgs errors are usage errors.
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`fqa-scan: ${parseErrorMessage(err as Error, command, commandName)}\n`);
      return 2;
    }
    process.stderr.write(`fqa-scan: internal error: ${(err as Error).stack ?? String(err)}\n`);
    return 70;
  }
}

/** One line for a parseArgs error; an unknown option gets the closest one the command knows. */
function parseErrorMessage(err: Error, command: Command | undefined, name: string): string {
  const unknown = /^Unknown option '(-[^']+)'/.exec(err.message)?.[1];
  if (unknown === undefined) return err.message.split('\n')[0]!;
  const suggestion = command ? closestOption(unknown, optionsInUsage(command.usage)) : null;
  return `unknown option '${unknown}'${suggestion ? `; did you mean ${suggestion}?` : ''} (see fqa-scan ${name} --help)`;
}
