// The README's quick start is two commands, and CI runs the same install step and test command,
// so the quick start cannot drift from what CI proves on a fresh machine.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, test } from 'vitest';
import { repoRoot } from './helpers/shared.js';

const read = (file: string) => readFileSync(path.join(repoRoot, file), 'utf8');

function quickStartCommands(): string[] {
  const readme = read('README.md');
  const section = readme.slice(readme.indexOf('## Quick start'));
  const block = /```sh\n([\s\S]*?)```/.exec(section);
  if (!block) throw new Error('README.md: no sh block under "## Quick start"');
  return block[1]!.split('\n').map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#'));
}

function ciCommands(): string[] {
  return read('.ci/run').split('\n').map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#'));
}

test('the quick start is two commands: install + the default job, then the tests', () => {
  const commands = quickStartCommands();
  expect(commands).toHaveLength(2);
  expect(commands[0]).toBe('bash scripts/install.sh && npx fqa-scan demo');
  expect(commands[1]).toBe('npm test');
});

test('.ci/run uses the quick start install step (with --train, the research line of the README) and ends with its test command', () => {
  const ci = ciCommands();
  // The research install is the quick start's plus libtorch: CI runs it so the torch engine's tests run too.
  expect(ci).toContain('bash scripts/install.sh --train');
  expect(read('README.md')).toMatch(/`bash scripts\/install\.sh --train`/);
  expect(ci.filter((line) => /\bnpm (ci|install)\b|apt-get install/.test(line))).toEqual([]);
  expect(ci.at(-1)).toBe(quickStartCommands()[1]);
});

test('the install step installs the system packages the build and the tests use', () => {
  const script = read('scripts/install.sh');
  const list = /packages=\(([^)]*)\)/.exec(script);
  expect(list, 'scripts/install.sh: packages=(...)').not.toBeNull();
  const packages = list![1]!.split(/\s+/).filter(Boolean);
  for (const needed of ['cmake', 'g++', 'libopenslide0', 'libtiff-dev', 'libjpeg62-turbo-dev', 'openslide-tools', 'chromium', 'redis-server', 'clang']) {
    expect(packages, needed).toContain(needed);
  }
  expect(script).toMatch(/^npm ci\b/m);
});
