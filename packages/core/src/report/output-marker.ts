/**
 * The file that marks a folder as fqa output. An output folder holds PNG and JPEG images (overviews,
 * heatmaps, thumbnails, Deep Zoom tiles) that look like slides to a folder walk; a nightly run whose
 * --out lies inside its input tree would scan the last night's reports as input. Every folder fqa
 * writes reports into carries this file, and the input walk never enters a folder that has it.
 * Written once here so the side that writes it and the side that looks for it cannot disagree.
 * The writer also refuses to overwrite or delete files in a folder without it that fqa did not make.
 */
export const OUTPUT_MARKER = '.fqa-output';
