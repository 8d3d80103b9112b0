/**
 * fqa-scan: one file per command under commands/. This file only dispatches and owns the single
 * top-level error handler: every error becomes one line on stderr and an exit code
 * (0 ok, 1 QC failure, 2 usage error, 3 unreadable input).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { FqaError, UsageError, nativeVersion } from '@fqa/core';
import { analyzeCommand } from './commands/analyze.js';
import { convertReferenceCommand } from './commands/convert-reference.js';
import { demoCommand } from './commands/demo.js';
import { evalCommand } from './commands/eval.js';
import { experimentCommand } from './commands/experiment.js';
import { infoCommand } from './commands/info.js';
import { modelsCommand } from './commands/models.js';
import { queueCommand } from './commands/queue.js';
import { scanCommand } from './commands/scan.js';
import { scoreCommand } from './commands/score.js';
import { searchCommand } from './commands/search.js';
import { trainCommand } from './commands/train.js';
import { trainDefaultCommand } from './commands/train-default.js';
import { workerCommand } from './commands/worker.js';
import { closestOption, optionsInUsage } from './suggest.js';

export interface Command {
  summary: string;
  usage: string;
  run(args: string[]): Promise<number>;
}

const commands: Record<string, Command> = {
  scan: scanCommand,
  demo: demoCommand,
  eval: evalCommand,
  score: scoreCommand,
  'convert-reference': convertReferenceCommand,
  info: infoCommand,
  models: modelsCommand,
  train: trainCommand,
  'train-default': trainDefaultCommand,
  experiment: experimentCommand,
  queue: queueCommand,
  worker: workerCommand,
  analyze: analyzeCommand,
  search: searchCommand,
};

function help(): string {
  const lines = ['Usage: fqa-scan <command> [options]   (fqa-scan <slide...> = fqa-scan scan <slide...>)', '       fqa-scan --version', '', 'Commands:'];
  for (const [name, c] of Object.entries(commands)) lines.push(`  ${name.padEnd(18)} ${c.summary}`);
  lines.push('', 'Run fqa-scan <command> --help for its options.');
  return lines.join('\n');
}

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
  try {
    if (name === '--version' || name === '-V') {
      process.stdout.write(`fqa-scan ${nativeVersion}\n`);
      return 0;
    }
    if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
      process.stdout.write(help() + '\n');
      return name === undefined ? 2 : 0;
    }
    command = commands[name];
    let commandArgs = rest;
    // `fqa-scan slide.svs ...`: anything that is not a command but looks like an input is a scan.
    // (An option first, `fqa-scan --out r slide.svs`, is a scan too.)
    if (!command && (existsSync(name) || /[*?]/.test(name) || /\.[a-z0-9]{2,6}$/i.test(name) || name.startsWith('-') || name.includes(path.sep))) {
      command = scanCommand;
      commandArgs = argv;
    }
    if (!command) {
      const suggestion = closestOption(name, Object.keys(commands));
      throw new UsageError(`unknown command '${name}'${suggestion ? `; did you mean ${suggestion}?` : ''} (see fqa-scan --help)`);
    }
    if (commandArgs.includes('--help') || commandArgs.includes('-h')) {
      process.stdout.write(command.usage + '\n');
      return 0;
    }
    return await command.run(commandArgs);
  } catch (err) {
    if (err instanceof FqaError) {
      process.stderr.write(`fqa-scan: ${err.message}\n`);
      return err.exitCode;
    }
    // util.parseArgs errors are usage errors.
    const code = (err as { code?: string }).code;
    if (code === 'FQA_NATIVE_MISSING') {
      // An installation problem, not a bug: the loader's message lists what it tried and the fixes.
      process.stderr.write(`fqa-scan: ${(err as Error).message.replace(/^fqa: /, '')}\n`);
      return 70;
    }
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`fqa-scan: ${parseErrorMessage(err as Error, command)}\n`);
      return 2;
    }
    process.stderr.write(`fqa-scan: internal error: ${(err as Error).stack ?? String(err)}\n`);
    return 70;
  }
}

/** One line for a parseArgs error; an unknown option gets the closest one the command knows. */
function parseErrorMessage(err: Error, command: Command | undefined): string {
  const unknown = /^Unknown option '(-[^']+)'/.exec(err.message)?.[1];
  if (unknown === undefined) return err.message.split('\n')[0]!;
  const name = Object.entries(commands).find(([, c]) => c === command)?.[0] ?? 'scan';
  const suggestion = command ? closestOption(unknown, optionsInUsage(command.usage)) : null;
  return `unknown option '${unknown}'${suggestion ? `; did you mean ${suggestion}?` : ''} (see fqa-scan ${name} --help)`;
}
