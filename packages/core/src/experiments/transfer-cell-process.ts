/**
 * A child process of the transfer experiment: receives one cell (CellTask) over IPC, trains and
 * scores it (trainTransferCell), sends back progress lines and the cell (or its error, with its
 * class and exit code), then exits. It ends with its parent: a cell left running would write the
 * same checkpoints as the next run's.
 */
import { trainTransferCell, type CellMessage, type CellTask } from './transfer.js';

const send = (m: CellMessage, then: () => void = () => {}) => process.send!(m, then);
process.on('disconnect', () => process.exit(1));
process.once('message', (task: CellTask) => {
  trainTransferCell(task, (line) => send({ progress: line }))
    .then((cell) => send({ cell }, () => process.exit(0)))
    .catch((err: unknown) => {
      const e = err instanceof Error ? err : new Error(String(err));
      send({ error: { name: e.name === 'Error' ? e.constructor.name : e.name, message: e.message, exitCode: (e as { exitCode?: number }).exitCode } }, () => process.exit(1));
    });
});
