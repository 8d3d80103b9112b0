/** "Did you mean": the closest known option (or command) to a mistyped one. */

/** Edits between two words: insertions, deletions, substitutions and swaps of neighbours ('trian' -> 'train' is 1). */
function editDistance(a: string, b: string): number {
  let before = Array.from({ length: b.length + 1 }, () => 0);
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      let d = Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, before[j - 2]! + 1);
      row.push(d);
    }
    [before, previous] = [previous, row];
  }
  return previous[b.length]!;
}

/** The known option closest to `given` (at most a third of its letters off), or null. */
export function closestOption(given: string, known: string[]): string | null {
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const option of known) {
    const d = editDistance(given, option);
    if (d < bestDistance) [best, bestDistance] = [option, d];
  }
  return bestDistance <= Math.max(1, Math.floor(given.replace(/^-+/, '').length / 3)) ? best : null;
}

/** The long options a command's usage text lists (--name). */
export function optionsInUsage(usage: string): string[] {
  return [...new Set(usage.match(/--[a-z][a-z0-9-]*/g) ?? [])];
}
