/**
 * A child process of the transfer experiment: receives one cell (CellTask) over IPC, trains and
 * scores it (trainTransferCell), sends back progress lines and the cell, then exits.
 */
import { trainTransferCell, type CellTask } from './transfer.js';

process.once('message', (task: CellTask) => {
  trainTransferCell(task, (line) => process.send!({ progress: line }))
    .then((cell) => process.send!({ cell }, () => process.exit(0)))
    .catch((err: unknown) => process.send!({ error: err instanceof Error ? err.message : String(err) }, () => process.exit(1)));
});
