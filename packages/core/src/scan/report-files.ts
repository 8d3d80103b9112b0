/**
 * The per-slide report files besides <stem>.json (written last) and the view's <stem>_files/, by
 * suffix: written once here for the writer that swaps them in and the folder check that must not
 * overwrite them in a folder fqa did not make.
 */
export const REPORT_FILES = ['.scores.tsv', '.heatmap.png', '.overview.png', '.geojson', '.usable.png', '.usable.geojson', '.thumb.jpg', '.dzi', '.html'] as const;
