import v8 from 'node:v8';

/**
 * How far V8 lets the old generation grow past what survived the last full collection, in percent, while
 * segsync delivers (V8's --heap-growing-percent; V8 otherwise picks a factor of up to 4 by its own measure of
 * GC speed). A delivery keeps a few batches of records alive across its I/O, so they are promoted, and with
 * V8's factor the garbage they leave grew the heap to about 120 MB at 1M records for a live set of about 30 MB.
 * At 50 the heap stays near 55 MB for about a second more of collection on the main thread (bench:sync,
 * docs/benchmarks.md). It is not a limit: the heap still grows to whatever the live set needs.
 */
const DELIVERY_HEAP_GROWING_PERCENT = 50;

let applied = false;

/**
 * Sets the delivery's heap growth for the whole process (a V8 flag read at each full collection), once; a
 * `--heap-growing-percent` given to node on its command line is left as it is.
 */
export function useDeliveryHeapGrowth(): void {
  if (applied) return;
  applied = true;
  if (process.execArgv.some((a) => a.startsWith('--heap-growing-percent') || a.startsWith('--heap_growing_percent'))) return;
  v8.setFlagsFromString(`--heap-growing-percent=${DELIVERY_HEAP_GROWING_PERCENT}`);
}
