export { FqaError, UsageError, InputError, ModelFileError, TooSmallError } from './errors.js';
export { expectInteger, expectOneOf, parseIntegerOption, parseNumberOption } from './validate.js';
export {
  MODEL_MAGIC,
  MODEL_FORMAT_VERSION,
  FOCUSLITENN_VARIANTS,
  EONSS_LAYERS,
  parseModelFile,
  readModelFile,
  encodeModelFile,
  writeModelFile,
  toNativeSpec,
  toLoadedModel,
  modelArchitecture,
  loadModel,
  DEFAULT_MODEL_PATH,
  type Architecture,
  type ModelHeader,
  type ModelFile,
  type LoadedModel,
  type TensorEntry,
  type EonssLayerHeader,
} from './model-file.js';
export { convertReference, convertReferenceFile, referenceArchitectures, type ConvertOptions } from './convert-reference.js';
export {
  registerArchitecture,
  architectures,
  architectureNames,
  findArchitecture,
  getArchitecture,
  variantConfig,
  BACKEND_NAMES,
  NO_NORMALIZATION,
  GraphBuilder,
  GraphShapeError,
  inferShapes,
  fitsSize,
  parameterCount,
  flops,
  convCount,
  type ArchitectureDefinition,
  type BackendName,
  type TrainerName,
  type Normalization,
  type PaperRow,
  type Graph,
  type GraphNode,
  type GraphTensor,
} from './models/index.js';
export { createScorer, scoreGrid, patchesToNchw, backendAvailable, type PatchScorer, type ScorerOptions, type GridScores } from './models/backends/scorer.js';
export { exportOnnx } from './models/backends/onnx-export.js';
export { randomWeights, randomModelFile } from './models/weights.js';
export { loadOnnxRuntime } from './models/backends/onnxruntime.js';
export { tfjsGraph, graphForward, dilatedFilter, tensorToTf, tensorFromTf, type GraphForwardOptions } from './models/backends/tfjs.js';
export { decodeImage, type RgbImage } from './image.js';
export { MAX_DECODED_PIXELS, MAX_MODEL_FILE_BYTES, MAX_UPSAMPLING, MPP_RANGE, plausibleMpp } from './limits.js';
export { readRegularFile, requireRegularFile, fileKind } from './regular-file.js';
export { scoreImage, scoreRgb, resolveScoreOptions, expectFiniteScores, type ScoreOptions, type ResolvedScoreOptions, type ImageScores } from './score.js';
export { cpuInfo, gpuInfo, kernelNames, nativeBinaryPath, openslideVersion, version as nativeVersion, type KernelName } from '@fqa/native';
export { detectTissue, classifyPixel, patchTissueFractions, PixelClass, type TissueMask } from './tissue.js';
export { openSource, type SlideSource, type SourceLevel } from './slide-source.js';
export { groupDicomSeries, isDicomFile } from './dicom/wsi.js';
export { chooseLevel, planRegions, type LevelChoice, type GridRegion } from './scan/plan.js';
export { scanSlide, scanImage, resolveScanOptions, validateScanOptions, DEFAULT_MIN_TISSUE, DEFAULT_MAX_OUT_OF_FOCUS, type ScanOptions, type ScanResult, type ScanSummary, type ScanModelInfo, type ResolvedScanOptions } from './scan/scan-slide.js';
export { writeAtomic } from './atomic-write.js';
export { writeSlideReports, startSlideView, type PendingView, writeErrorReport, reportStem, tsvField, unescapeTsvField, MAX_STEM_BYTES, scoresTsv, summaryJson, summaryRow, errorRow, SUMMARY_COLUMNS, type ReportProvenance, type SlideReportOptions } from './scan/reports.js';
export { heatmapPng, overviewPng, heatmapRgba, colourScale, scaleColour, scalePosition, scaleBarLength, COLOUR_SPAN, COLOUR_STOPS, type ColourScale } from './scan/images.js';
export { slideFingerprint, reportKey } from './report/key.js';
export { readReportFolder, allocateStem, writeSummaryTsv, folderRows, adoptMovedReport, reportStands, reportsWrittenSinceSummary, hasErrorReport, FOLDER_COLUMNS, type FolderReport } from './report/folder.js';
export {
  upgradeReportJson, summaryInPercent, optionsInPercent, fractionToPercent, SUMMARY_PERCENT_FIELDS, OPTION_PERCENT_FIELDS, type SummaryInPercent, type OptionsInPercent,
} from './scan/report-json.js';
export { OutputError, OUTPUT_MARKER, LOCK_FILE, claimOutputFolder, lockOutputFolder, removeAbandonedStages, outputFullCode, outputFullError } from './report/output-folder.js';
export { flaggedRegions, type FlaggedRegion } from './report/regions.js';
export { blurScale, scoreText, legendTicks, legendTitle, verdictReason, nothingScoredReason, notScoredLabel, NOT_SCORED_GREY, type BlurScale, type LegendTick } from './report/reading.js';
export { writeDeepZoom, planView, shrinkBand, DEFAULT_VIEW_SIZE, type DeepZoomView, type ViewPlan } from './report/deepzoom.js';
export { writeIndexPage, thumbnailName } from './report/index-page.js';
export { writeViewerAssets } from './report/html-common.js';
export { scanGeoJson, geoJsonFeatures, geoJsonChunks, traceCells, OUT_OF_FOCUS, IN_FOCUS } from './scan/geojson.js';
export { patchUnionGrid, type PatchUnionGrid } from './scan/flagged-area.js';
export { streamedMaskImage, wholeLevelMaskImage, maskSize, MASK_SIDE, STREAMED_MASK_PIXELS, type MaskImage } from './scan/mask-thumbnail.js';
export { usableTissue, usableTissuePng, usableTissueGeoJson, type UsableTissue } from './scan/usable-tissue.js';
export { syntheticDefocus, diskKernel, type DefocusOptions, type PatchSet } from './train/synthetic.js';
export { scannerDefocus, DEFAULT_SCANNER, type ScannerDefocusOptions, type ScannerModel } from './train/scanner-defocus.js';
export { defocusPsf, convolveChannel, gaussianBlur, jitterStains, addSensorNoise, SRGB_TO_LINEAR, linearToSrgb, type Psf, type PsfOptions } from './train/optics.js';
export { trainFocusLite, lossAndGradient, trainingSchedule, type TrainOptions, type CommonTrainOptions, type EpochRecord, type TrainResult, type LossName, type InitName } from './train/trainer.js';
export { seededRandom, shuffle } from './train/random.js';
export { buildDefaultModel, makeDefaultTrainingSet, trainDefaultModel, inFocusThreshold, DEFAULT_RECIPE, type DefaultModelBuild, type DefaultRecipe } from './train/default-model.js';
export { makeDemoSlide, matchDemo, type DemoSlide, type DemoMatch, type Overlap } from './demo.js';
export { runAccuracySuite, accuracyTable, scoreSeries, readPlanes, type SuiteModel, type SuiteResult, type SeriesResult } from './validation/accuracy-suite.js';
export { plcc, srcc, krcc, rmse, ranks, curves, rocAuc, prAucTrapezoid, averagePrecision, bestThresholdAccuracy, type CurvePoint } from './train/metrics.js';
export { loadDataset, splitDataset, channelStats, type Dataset, type DatasetItem, type DatasetKind, type Split } from './train/datasets.js';
export { evaluateModel, type EvaluationResult } from './train/evaluate.js';
export { patchSetSource, patchSubset, randomCropSource, splitByCrop, type Batch, type BatchSource, type RandomCropOptions } from './train/batches.js';
export { focusLiteInit } from './train/trainer.js';
export { trainedModelFile, type TrainedModelInfo } from './train/export.js';
export { loadTf, conv2dTrainable, focusLiteTfModel, eonssTfModel, eonssInit, patchesToTensor, tfToTorchConv, type Tf, type TfModel, type TfRuntime } from './train/tfjs-models.js';
export { trainTfjs, tfLoss, tfGradients, initialTfModel, type TfTrainOptions, type TfTrainResult } from './train/tfjs-trainer.js';
export { runTraining, applyPreset, summarizeTrials, PAPER_NORMALIZATION, type TrainRunOptions, type TrainRunResult, type TrainProgress, type TrialResult, type MetricSummary, type TrainDatasetSpec } from './train/train-run.js';
export { rocSvg, prSvg, scatterSvg, type CurveSeries } from './train/plots.js';
export { trainArchitecture, epochRandom, type ArchitectureTrainOptions, type ArchitectureTrainResult } from './train/graph-trainer.js';
export { trainingEngines, resolveEngine, ENGINE_NAMES, type EngineName, type EngineStatus, type EngineSession, type EngineSessionOptions, type TrainingEngine } from './train/engines/index.js';
export { initialGraphWeights } from './train/graph-init.js';
export { batchNormTraining, type BatchMoments } from './train/training-ops.js';
export { conv2dIm2col } from './train/im2col-conv.js';
export { readCheckpoint, writeCheckpoint, type Checkpoint, type CheckpointHeader } from './train/checkpoint.js';
export { architectureModelFile } from './train/export.js';
export { DATASET_PRESETS, getDatasetPreset, paperSchedule, type DatasetPreset } from './train/presets.js';
export { MIN_PATCHES_FOR_VERDICT, SCORE_MIN_TISSUE, DARK_BACKGROUND_WARNING, PEN_WARNING_SHARE, checkBackground, penWarning, verdictBlocker, type BackgroundCheck } from './domain.js';
export { nvidiaDriverPresent, resolveDevice, trustDevice, verifyKernel, deviceNames, type Device, type ResolvedDevice, type KernelCheck } from './device.js';
export { svd, singularValues, matrix, transpose, type Matrix, type Svd } from './analysis/svd.js';
export { fminbound, type BoundedMinimum, type BoundedOptions } from './analysis/fminbound.js';
export { evbmf, evbFreeEnergy, type EvbmfResult } from './analysis/evbmf.js';
export { knowledgeGain, knowledgeGainAverages, modeMetrics, inputUnfolding, outputUnfolding, type ConvWeight, type LayerMetrics, type ModeMetrics, type KnowledgeGainAverages } from './analysis/knowledge-gain.js';
export { modelKnowledgeGain, convWeights, type ModelKnowledgeGain } from './analysis/model-knowledge-gain.js';
export { figure6Svg } from './analysis/figure6.js';
export { runSearch, type SearchRunOptions, type SearchRunResult, type SearchProgress } from './search/run-search.js';
export { runDarts, resolveDartsSettings, DARTS_FQA_SEARCH, type DartsSettings, type DartsResult, type SearchEpoch } from './search/darts.js';
export { createSupernet, type Supernet, type SupernetShape } from './search/supernet.js';
export { deriveGenotype, softmaxRows, readGenotypeFile, formatGenotype, edgeCount, PRIMITIVES, type Primitive } from './search/genotype.js';
export { trainGenotype, genotypeModelFile, type GenotypeTrainOptions, type GenotypeTrainResult } from './search/train-genotype.js';
export { searchData, type SearchData } from './search/search-data.js';
export { parseGenotype, DARTS_OPS, type DartsOp, type Genotype } from './models/architectures/darts-fqa.js';
export { runTransferExperiment, formatPercent, type TransferOptions, type TransferDataset, type TransferCell, type TransferResult, type CellTrial } from './experiments/transfer.js';
export { TABLE5_NETWORKS, TABLE5_DATASETS, paperCell, getTransferNetwork, type TransferNetwork, type PaperCell } from './experiments/table5.js';
