/** Marks a folder as fqa's output, so fqa never overwrites or deletes files in a folder it did not make. */
export const OUTPUT_MARKER = '.fqa-output';
