export { QUEUE_DEFAULTS, DEFAULT_REDIS_URL, REDIS_URL_ENV } from './defaults.js';
export { parseRedisUrl, displayUrl, clientConnection, workerConnection } from './connection.js';
export { makeScanJob, sha256File, jobModelPath, SCAN_JOB_FORMAT, type ScanJobData, type ScanJobOptions, type ScanJobResult } from './scan-job.js';
export {
  openScanQueue, enqueueScans, queueStatus, finishedSlides, queueFolders, resolveQueueName,
  type ScanQueue, type QueueName, type EnqueueOptions, type EnqueueResult, type QueueStatus, type FinishedSlides,
} from './queue.js';
export { startScanWorker, type ScanWorker, type ScanWorkerOptions } from './worker.js';
