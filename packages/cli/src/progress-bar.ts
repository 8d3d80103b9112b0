/** One progress line on a TTY stderr (redrawn in place); nothing when stderr is a file or pipe. */
export class ProgressLine {
  private readonly tty = process.stderr.isTTY === true;

  bar(label: string, done: number, total: number, suffix = ''): void {
    if (!this.tty) return;
    const width = 30;
    const filled = total > 0 ? Math.round((width * Math.min(done, total)) / total) : 0;
    process.stderr.write(`\r\x1b[K${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}${suffix ? ` ${suffix}` : ''}`);
  }

  /** A line that stays (always printed; clears the bar first on a TTY). */
  log(line: string): void {
    process.stderr.write(`${this.tty ? '\r\x1b[K' : ''}${line}\n`);
  }

  clear(): void {
    if (this.tty) process.stderr.write('\r\x1b[K');
  }
}
