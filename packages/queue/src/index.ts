export { QUEUE_DEFAULTS, DEFAULT_REDIS_URL, REDIS_URL_ENV, JOB_LIMITS, QUEUE_SECRET_ENV, QUEUE_SECRET_CHARS } from './defaults.js';
export { parseRedisUrl, displayUrl, clientConnection, workerConnection } from './connection.js';
export { makeScanJob, sha256File, jobModelPath, scanOptionsOfJob, SCAN_JOB_FORMAT, FRACTIONS_JOB_FORMAT, SCAN_JOB_OPTION_KEYS, type ScanJobData, type ScanJobOptions, type ScanJobResult } from './scan-job.js';
export {
  openScanQueue, enqueueScans, queueStatus, finishedSlides, queueFolders, resolveQueueName,
  type ScanQueue, type QueueName, type EnqueueOptions, type EnqueueResult, type QueueStatus, type FinishedSlides,
} from './queue.js';
export { startScanWorker, jobLabel, type ScanWorker, type ScanWorkerOptions } from './worker.js';
export {
  RejectedJobError, admitScanJob, rejectionReason, isRejected, hasValidSignature, parseScanJobData, scanJobDataOrNull, signJobData, canonicalJobBytes, loadQueueSecret, resolveJobRoots, printable,
  type JobRoots, type AdmittedJob,
} from './job-check.js';
